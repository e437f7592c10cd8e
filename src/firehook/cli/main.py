"""The ``firehook`` entry point: one group, commands with Upsun-style names."""

from __future__ import annotations

import sys

import click

import firehook
from firehook import errors
from firehook.cli import server


class Group(click.Group):
    """Turns firehook errors into a message and an exit code instead of a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except errors.FirehookError as exc:
            click.echo(f"Error: {exc.message}", err=True)
            if ctx.obj and ctx.obj.get("verbose"):
                raise
            sys.exit(1)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(firehook.__version__, prog_name="firehook")
@click.option("-v", "--verbose", is_flag=True, help="Show tracebacks and debug logs.")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """firehook: activity scripts and signed webhooks, self-hosted."""
    ctx.ensure_object(dict)
    ctx.obj["verbose"] = verbose


for command in (server.serve, server.worker, server.db_upgrade):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="firehook")
