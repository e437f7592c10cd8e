"""Options shared by the commands that talk to a server: ``--server``, ``--data-dir``,
``-p/--project`` and the listing options (``--format``, ``--no-header``)."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

import click

from firehook.cli import client as client_mod
from firehook.cli import dates, interaction, output

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
                       "--token or FIREHOOK_TOKEN, when set, is used instead.")
    @click.option("--token", metavar="TOKEN", default=None,
                  help="The API token [env FIREHOOK_TOKEN; default the data directory's admin.token].")
    @functools.wraps(fn)
    def wrapper(*args: Any, server: str, data_dir: str | None, token: str | None, **kwargs: Any) -> Any:
        api = client_mod.Client(server, client_mod.find_token(data_dir, token))
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
    """Add ``--format``, ``-c/--columns``, ``--no-header`` and ``--date-fmt`` (Upsun's table
    options); the command gets ``fmt`` (an output.Format)."""

    @click.option("--format", "format_", type=click.Choice(output.FORMATS), default="table", show_default=True,
                  help="The output format.")
    @click.option("-c", "--columns", multiple=True, metavar="COLUMNS",
                  help='Columns to display (the column names of the table, any case). The character "+" can be '
                       "used as a placeholder for the default columns. The % or * characters may be used as a "
                       'wildcard. Values may be split by commas (e.g. "a,b,c") and/or whitespace.')
    @click.option("--no-header", is_flag=True, help="Do not output the table header.")
    @click.option("--date-fmt", metavar="FORMAT", default=None,
                  help="The date format (as a PHP date format string) [default: c]. Dates are shown in the local "
                       "time zone (TZ).")
    @functools.wraps(fn)
    def wrapper(*args: Any, format_: str, columns: tuple[str, ...], no_header: bool, date_fmt: str | None,
                **kwargs: Any) -> Any:
        output.DATE_FORMAT = date_fmt or dates.DEFAULT_FORMAT
        return fn(*args, fmt=output.Format(format_, no_header, columns), **kwargs)

    return wrapper


def wait_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Upsun's ``-W/--no-wait`` and ``--wait``: accepted and without effect, since firehook's
    operations are complete when the server answers."""

    @click.option("-W", "--no-wait", "no_wait", is_flag=True, help="Do not wait for the operation to complete "
                  "(firehook: without effect, operations are synchronous).")
    @click.option("--wait", "wait", is_flag=True, help="Wait for the operation to complete (default).")
    @functools.wraps(fn)
    def wrapper(*args: Any, no_wait: bool, wait: bool, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    return wrapper


def err(message: str = "") -> None:
    """A message for the person (stderr), so stdout stays machine-readable; none with -q."""
    interaction.message(message)
