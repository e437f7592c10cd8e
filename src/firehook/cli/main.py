"""The ``firehook`` entry point: one group, commands with Upsun-style names."""

from __future__ import annotations

import sys

import click

import firehook
from firehook import errors
from firehook.cli import (
    activities,
    integrations,
    interaction,
    local,
    projects,
    runs,
    server,
    storage,
    tokens,
    variables,
)
from firehook.cli.client import CliError

EXIT_CODES = """\b
Exit codes:
  0  success
  1  an error (the message says what to do)
  2  a usage error (a missing or unknown option or argument)
  4  integration:validate / add / update: the integration is invalid
"""

ALIASES: dict[str, str] = {**integrations.ALIASES, **runs.ALIASES}


class Group(click.Group):
    """Turns firehook errors into a message and an exit code instead of a traceback (``-v``
    shows it), and resolves the Upsun aliases (``integrations``, ``integration:activities``)."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, ALIASES.get(cmd_name, cmd_name))
        if command is not None or ":" not in cmd_name:
            return command
        # Symfony Console's abbreviations, which Upsun users type: each part a prefix (int:get).
        parts = cmd_name.split(":")
        matches = [name for name in self.list_commands(ctx)
                   if len(name.split(":")) == len(parts)
                   and all(full.startswith(part) for full, part in zip(name.split(":"), parts, strict=True))]
        if len(matches) > 1:
            raise CliError(f'Command "{cmd_name}" is ambiguous. Did you mean one of these? {", ".join(matches)}')
        return super().get_command(ctx, matches[0]) if matches else None

    def resolve_command(self, ctx: click.Context,
                        args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        _, command, rest = super().resolve_command(ctx, args)
        return (command.name if command else None), command, rest

    def invoke(self, ctx: click.Context) -> object:
        interaction.reset()
        try:
            return super().invoke(ctx)
        except (CliError, errors.FirehookError) as exc:
            if interaction.STATE.verbosity:
                import traceback

                traceback.print_exc()
            bare = getattr(exc, "bare", False)
            click.echo(exc.message if bare else f"Error: {exc.message}", err=True)
            sys.exit(getattr(exc, "exit_code", 1))


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXIT_CODES)
@click.version_option(firehook.__version__, "-V", "--version", prog_name="firehook")
def cli() -> None:
    """firehook: activity scripts and signed webhooks, self-hosted.

    Commands other than serve, worker, db:upgrade, script:run and webhook:verify talk to a
    firehook server (--server / FIREHOOK_SERVER, default http://127.0.0.1:8780) with the
    token in FIREHOOK_TOKEN or the data directory's admin.token.

    \b
    Getting started:
      firehook serve &                                  # or: make run
      firehook project:create --id shop --title Shop
      export FIREHOOK_PROJECT=shop
      firehook integration:add --type script --file ./my_script.js
      firehook activity:emit --type environment.push -e main --state complete
      firehook integration:activity:log <integration id>

    \b
    Global options (on every command, anywhere on its line, as in the Upsun CLI):
      -y, --yes          answer "yes" to confirmation questions; disable interaction
      -n, --no           answer "no" to confirmation questions; disable interaction
      --no-interaction   do not ask any question; accept default values
                         (also FIREHOOK_NO_INTERACTION=1)
      -q, --quiet        only print necessary output (implies --no-interaction)
      -v, -vv, -vvv      increase the verbosity; an error shows its traceback
    """


SHELLS = ("bash", "zsh", "fish")


@click.command("completion")
@click.argument("shell", type=click.Choice(SHELLS), default="bash")
def completion(shell: str) -> None:
    """Print the shell completion script for bash, zsh or fish.

    \b
    Example: enable it for the current shell (add the line to ~/.bashrc to keep it):
      eval "$(_FIREHOOK_COMPLETE=bash_source firehook)"
    or, the same thing:
      eval "$(firehook completion bash)"
    \b
    zsh:  eval "$(_FIREHOOK_COMPLETE=zsh_source firehook)"
    fish: _FIREHOOK_COMPLETE=fish_source firehook | source
    """
    from click.shell_completion import get_completion_class

    completer = get_completion_class(shell)
    assert completer is not None
    click.echo(completer(cli, {}, "firehook", "_FIREHOOK_COMPLETE").source())


for command in (server.serve, server.worker, server.db_upgrade, *projects.COMMANDS, *integrations.COMMANDS,
                *runs.COMMANDS, *variables.COMMANDS, *storage.COMMANDS, *activities.COMMANDS, *tokens.COMMANDS,
                *local.COMMANDS, completion):
    interaction.add_global_options(command)
    cli.add_command(command)
interaction.add_global_options(cli)  # before the command name too: firehook -y integration:delete …


def main() -> None:
    cli(prog_name="firehook")
