"""Output formats of listings, as in the Upsun CLI: ``table`` (an ASCII table drawn with rich),
``csv``, ``tsv``, ``plain`` (tab-separated lines), plus ``json`` (the server's objects as they
are). Property/Value tables for one object; value formatting like Upsun's (dates without
microseconds, lists as YAML-style ``- item`` lines)."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import click

from firehook.cli import dates
from firehook.cli.client import CliError

if TYPE_CHECKING:
    from rich.console import Console

FORMATS = ("table", "csv", "tsv", "plain", "json")
DATE_PROPERTIES = frozenset({"created_at", "updated_at", "started_at", "completed_at", "cancelled_at",
                             "expires_at", "previous_key_expires_at"})
# Scalars that YAML would read as something else, quoted like Symfony's YAML dumper does.
_YAML_PLAIN = re.compile(r"^[A-Za-z0-9_./][A-Za-z0-9_./:@+=-]*$")
_YAML_KEYWORDS = frozenset({"true", "false", "null", "yes", "no", "on", "off", "~"})
MASK = "******"
# Table columns kept whole at any terminal width (the table grows past a terminal too narrow for
# them): the ids and names of things, and dates (any --date-fmt of digits and separators).
WHOLE_COLUMNS = frozenset({"ID", "Run", "Activity", "Integration", "Property", "Key", "Name"})
_DATE = re.compile(r"(?=.*\d{2})[0-9:./+T -]+")
# The narrowest a free-text column is made to keep other columns whole.
FREE_TEXT_MIN = 15


# The --date-fmt of the running command (a PHP date() format, Upsun's default "c").
DATE_FORMAT = dates.DEFAULT_FORMAT


@dataclasses.dataclass(frozen=True)
class Format:
    name: str = "table"
    no_header: bool = False
    columns: tuple[str, ...] = ()  # -c/--columns as given

    @property
    def machine_readable(self) -> bool:
        return self.name != "table"


def stdout_console(min_width: int = 0) -> Console:
    """A console on stdout: the terminal's width on a terminal (at least ``min_width``, what a
    table needs to keep its ids and dates whole), unbounded in a pipe (so tables are never
    wrapped for a script reading them), no colours, no markup."""
    from rich.console import Console

    if sys.stdout.isatty():
        console = Console(highlight=False, emoji=False)
        if console.width < min_width:
            console = Console(highlight=False, emoji=False, width=min_width)
        return console
    return Console(file=sys.stdout, width=100_000, color_system=None, highlight=False, emoji=False,
                   soft_wrap=True)


def stderr_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, emoji=False)


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _split_columns(given: Sequence[str]) -> list[str]:
    values = list(given)
    if len(values) == 1 and "+" in values[0]:  # "+id" and "id+" as Upsun reads them
        values = [re.sub(r"\+([\w%*])", r"+,\1", re.sub(r"([\w%*])\+", r"\1,+", values[0]))]
    return [part for value in values for part in re.split(r"[,\s]+", value) if part]


def columns_to_display(keys: Sequence[str], default: Sequence[str], given: Sequence[str]) -> list[int]:
    """Upsun's ``-c/--columns``: names (any case), ``+`` for the default columns, ``%`` or ``*``
    as wildcards. Returns the indexes of the columns to show; CliError for an unknown name."""
    names = [k.lower() for k in keys]
    requested: list[str] = []
    for value in _split_columns(given) or ["+"]:
        requested += [d.lower() for d in default] if value == "+" else [value.lower()]
    chosen: list[int] = []
    for want in requested:
        pattern = re.compile("^" + re.escape(want).replace("%", ".*").replace("\\*", ".*") + "$")
        matched = [i for i, n in enumerate(names) if pattern.match(n)]
        if not matched:
            defaults = [d.lower() for d in default]
            available = ", ".join([f"{d}*" for d in defaults] + sorted(set(names) - set(defaults)))
            raise CliError(f"Column not found: {want} (available columns: {available})")
        chosen += [i for i in matched if i not in chosen]
    return chosen


def render(rows: Sequence[Sequence[Any]], header: Sequence[str], fmt: Format, json_data: Any = None,
           keys: Sequence[str] | None = None, default: Sequence[str] | None = None) -> None:
    """Print ``rows`` under ``header`` in ``fmt``; ``json`` prints ``json_data`` when given
    (the API objects), else the rows as objects keyed by the header. ``keys`` name the columns
    for ``-c/--columns`` (default: the header's words), ``default`` those shown without it."""
    keys = list(keys or [h.lower().replace(" ", "_") for h in header])
    shown = columns_to_display(keys, default or keys, fmt.columns)
    header = [header[i] for i in shown]
    rows = [[row[i] if i < len(row) else "" for i in shown] for row in rows]
    if fmt.name == "json":
        data = json_data if json_data is not None else [dict(zip(header, map(cell, row), strict=False)) for row in rows]
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    texts = [[cell(v) for v in row] for row in rows]
    if fmt.name in ("csv", "tsv"):
        buffer = io.StringIO()
        # LF line breaks, as Upsun does: CRLF confuses POSIX shells.
        writer = csv.writer(buffer, delimiter="," if fmt.name == "csv" else "\t", lineterminator="\n")
        if not fmt.no_header:
            writer.writerow(header)
        writer.writerows(texts)
        click.echo(buffer.getvalue(), nl=False)
        return
    if fmt.name == "plain":
        lines = [] if fmt.no_header else ["\t".join(header)]
        lines += ["\t".join(t.replace("\n", " ") for t in row) for row in texts]
        if lines:
            click.echo("\n".join(lines))
        return
    # rich is imported only to draw a table: the other formats (and scripts) start faster.
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(box=box.ASCII2, show_header=not fmt.no_header, highlight=False)
    widths = _column_widths(header, texts)
    console = stdout_console(min_width=1 + sum(3 + (w or 4) for w in widths))
    room = console.width - 1 - 3 * len(header) - sum(w for w in widths if w)  # for the other columns
    text_columns = sum(1 for i, w in enumerate(widths) if w is None and any(" " in row[i] for row in texts))
    # Words without spaces (types, states, results) are kept whole too while the free text keeps
    # FREE_TEXT_MIN a column; the narrowest first.
    tokens = sorted((max(_longest_word(texts, i), len(header[i])), i) for i, w in enumerate(widths)
                    if w is None and not any(" " in row[i] for row in texts))
    for longest, index in tokens:
        if room - longest < FREE_TEXT_MIN * text_columns:
            break
        widths[index] = longest
        room -= longest
    for name, width in zip(header, widths, strict=True):
        if width is not None:
            table.add_column(Text(name), no_wrap=True, min_width=width, width=max(width, len(name)))
        else:  # wraps between words (a word longer than its column is folded)
            table.add_column(Text(name), overflow="fold")
    for row in texts:
        table.add_row(*[Text(t) for t in row])
    console.print(table)


def _longest_word(texts: Sequence[Sequence[str]], index: int) -> int:
    return max([len(w) for row in texts for w in row[index].split()], default=1)


def _column_widths(header: Sequence[str], texts: Sequence[Sequence[str]]) -> list[int | None]:
    """The width of each column kept whole (ids, names, dates), None for the others."""
    widths: list[int | None] = []
    for index, name in enumerate(header):
        values = [row[index] for row in texts if row[index]]
        if name in WHOLE_COLUMNS or (values and all(_DATE.fullmatch(v) for v in values)):
            widths.append(max([len(v) for v in values] + [len(name)]))
        else:
            widths.append(None)
    return widths


def render_properties(properties: Mapping[str, Any], fmt: Format, json_data: Any = None) -> None:
    """One object as a Property/Value table (Upsun's ``renderSimple``)."""
    rows = [(name, format_value(value, name)) for name, value in properties.items() if not name.startswith("_")]
    render(rows, ("Property", "Value"), fmt, json_data=json_data if json_data is not None else dict(properties))


def print_property(doc: Mapping[str, Any], prop: str) -> None:
    """Print one property of ``doc`` (``-P/--property``; dotted for nested, numbers index
    lists), or CliError when it is missing."""
    value: Any = doc
    for part in prop.split("."):
        if isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]  # a list index, as Upsun's nested-array lookup: events.0
        elif isinstance(value, Mapping) and part in value:
            value = value[part]
        else:
            raise CliError(f"Property not found: {prop}")
    click.echo(format_value(value, prop.split(".")[-1]))


def format_value(value: Any, prop: str | None = None) -> str:
    """A property value as Upsun's CLI shows it."""
    if value is None:
        return ""
    if prop in DATE_PROPERTIES and isinstance(value, str):
        return format_date(value)
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return _yaml(value, 0).rstrip("\n")


def format_date(text: str | None) -> str:
    """A timestamp as Upsun shows it: local time zone, the --date-fmt (default ``c``:
    ``2025-12-14T16:41:05+01:00``)."""
    return dates.format_date(text, DATE_FORMAT)


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    text = str(value)
    if _YAML_PLAIN.match(text) and text.lower() not in _YAML_KEYWORDS and not _is_number(text):
        return text
    return "'" + text.replace("'", "''") + "'"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _yaml(value: Any, indent: int) -> str:
    pad = " " * indent
    if isinstance(value, Mapping):
        if not value:
            return pad + "{  }\n"
        out = ""
        for key, item in value.items():
            if isinstance(item, (Mapping, list)) and item:
                out += f"{pad}{_scalar(key)}:\n" + _yaml(item, indent + 4)
            else:
                out += f"{pad}{_scalar(key)}: {_yaml(item, 0).strip()}\n"
        return out
    if isinstance(value, list):
        if not value:
            return pad + "[]\n"
        out = ""
        for item in value:
            if isinstance(item, (Mapping, list)) and item:
                out += f"{pad}-\n" + _yaml(item, indent + 4)
            else:
                out += f"{pad}- {_yaml(item, 0).strip()}\n"
        return out
    return pad + _scalar(value) + "\n"


def strip_tags(html: str | None) -> str:
    """Activity descriptions are HTML-ish (``<user>…</user> pushed to …``): the text only."""
    return re.sub(r"<[^>]+>", "", html or "")
