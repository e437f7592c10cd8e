"""Options shared by the commands that talk to a server: ``--server``, ``--data-dir``,
``-p/--project`` and the listing options (``--format``, ``--no-header``)."""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Callable
from typing import Any

import click

from firehook.cli import client as client_mod
from firehook.cli import output

SPLIT = re.compile(r"[,\s]+")


def split_values(values: tuple[str, ...] | list[str] | str | None) -> list[str]:
    """Option values split on commas and spaces (``--events 'a, b' --events c`` → a, b, c)."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    return [part for value in values for part in SPLIT.split(value) if part]


def remote(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--server`` and ``--data-dir``; the command gets ``api`` (a connected Client)."""

    @click.option("--server", metavar="URL", envvar="FIREHOOK_SERVER", default=client_mod.DEFAULT_SERVER,
                  show_default=True, help="The firehook server [env FIREHOOK_SERVER].")
    @click.option("--data-dir", metavar="DIR", envvar="FIREHOOK_DATA_DIR", default=None,
                  help="Where to find the admin.token written by `firehook serve` "
                       "[env FIREHOOK_DATA_DIR; default ~/.local/share/firehook]. "
                       "FIREHOOK_TOKEN, when set, is used instead.")
    @functools.wraps(fn)
    def wrapper(*args: Any, server: str, data_dir: str | None, **kwargs: Any) -> Any:
        api = client_mod.Client(server, client_mod.find_token(data_dir))
        try:
            return fn(*args, api=api, **kwargs)
        finally:
            api.close()

    return wrapper


def project(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``-p/--project`` (FIREHOOK_PROJECT); the command gets ``project`` (required)."""

    @click.option("-p", "--project", "project", metavar="PROJECT", envvar="FIREHOOK_PROJECT", default=None,
                  help="The project id [env FIREHOOK_PROJECT].")
    @functools.wraps(fn)
    def wrapper(*args: Any, project: str | None, **kwargs: Any) -> Any:
        if not project:
            raise click.UsageError(
                "No project given: pass -p PROJECT or set FIREHOOK_PROJECT.\n"
                "List projects with `firehook project:list`; create one with "
                "`firehook project:create --title \"My project\"`."
            )
        return fn(*args, project=project, **kwargs)

    return wrapper


def listing(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--format`` and ``--no-header``; the command gets ``fmt`` (an output.Format)."""

    @click.option("--format", "format_", type=click.Choice(output.FORMATS), default="table", show_default=True,
                  help="The output format.")
    @click.option("--no-header", is_flag=True, help="Do not output the table header.")
    @functools.wraps(fn)
    def wrapper(*args: Any, format_: str, no_header: bool, **kwargs: Any) -> Any:
        return fn(*args, fmt=output.Format(format_, no_header), **kwargs)

    return wrapper


def confirm(question: str, yes: bool, refusal: str) -> bool:
    """Ask ``question`` unless ``yes``; without a terminal on stdin, refuse with ``refusal``."""
    if yes:
        return True
    if not sys.stdin.isatty():
        raise client_mod.CliError(refusal)
    return click.confirm(question, default=False, err=True)


def err(message: str = "") -> None:
    """A message for the person (stderr), so stdout stays machine-readable."""
    click.echo(message, err=True)
