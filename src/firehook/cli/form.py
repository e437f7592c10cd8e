"""The ``integration:add`` form, as the Upsun CLI's (its console-form fields): each field an
option; on a terminal, the fields that apply to the type and were not given are asked, in
Upsun's order and words; without one, a required field with no default fails with
``--<option> is required`` (exit code 1)."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from firehook.cli import common, interaction
from firehook.cli.client import CliError

TYPES = ("script", "webhook")
SCRIPT_EXTENSIONS = (".js", ".mjs", ".cjs", "")


@dataclasses.dataclass(frozen=True)
class Field:
    key: str  # the click parameter
    api: str  # the API field
    label: str
    description: str
    types: tuple[str, ...]
    required: bool = True
    default: tuple[str, ...] | None = None
    array: bool = False
    question_line: str | None = None

    @property
    def option(self) -> str:
        return "--" + self.key.replace("_", "-")

    @property
    def asks_required(self) -> bool:
        # console-form: a list with a default is never required
        return self.required and not (self.array and self.default)

    def question(self) -> str:
        header = ("* " if self.asks_required else "") + f"{self.label} ({self.option})"
        line = self.description if self.question_line is None else self.question_line
        if line:
            header += "\n" + line
        if self.default:
            header += "\nDefault: " + ", ".join(self.default)
        if self.array:
            header += "\nEnter comma-separated values" + ("" if self.asks_required else " (or leave this blank)")
        return header + "\n> "


# Upsun's order (IntegrationCommandBase::getFields), the fields script and webhook have.
FIELDS = (
    Field("url", "url", "URL", "The URL or API endpoint for the integration", ("webhook",)),
    Field("shared_key", "shared_key", "Shared key", "Webhook: the JWS shared secret key", ("webhook",),
          required=False,
          question_line="Optionally, enter a JWS shared secret key, for validating webhook requests"),
    Field("file", "script", "Script file", "The name of a local file that contains the script to upload",
          ("script",)),
    Field("events", "events", "Events", "A list of events to act on, e.g. environment.push", TYPES,
          default=("*",), array=True),
    Field("states", "states", "States", "A list of states to act on, e.g. pending, in_progress, complete", TYPES,
          default=("complete",), array=True),
    Field("environments", "environments", "Included environments", "The environment IDs to include", TYPES,
          default=("*",), array=True),
    Field("excluded_environments", "excluded_environments", "Excluded environments",
          "The environment IDs to exclude", ("webhook",), required=False, default=(), array=True),
)


def read_script(path: str) -> str:
    """The script file's text, or a clear error (missing, a directory, not a text file)."""
    if path == "-":
        data = sys.stdin.buffer.read()
        shown = "standard input"
    else:
        file = Path(path).expanduser()
        shown = str(path)
        if not file.exists():
            raise CliError(f"The script file does not exist: {path}")
        if file.is_dir():
            raise CliError(f"The script file is a directory: {path}")
        if file.suffix.lower() not in SCRIPT_EXTENSIONS:
            raise CliError(f"The script file {path} is not JavaScript: expected a .js file, "
                           f"not {file.suffix}")
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise CliError(f"Cannot read the script file {path}: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise CliError(f"The script file {shown} is not JavaScript: it is not UTF-8 text.") from None
    if "\x00" in text:
        raise CliError(f"The script file {shown} is not JavaScript: it holds binary data.")
    if not text.strip():
        raise CliError(f"The script file {shown} is empty.")
    return text


def _check(field: Field, answer: str) -> Any:
    """An answer typed for ``field``, checked as console-form checks it; its API value."""
    if field.array:
        values = common.split_values(answer)
        if not values and field.asks_required:
            raise CliError(f"'{field.label}' is required")
        return values or list(field.default or ())
    answer = answer.strip()
    if not answer:
        if field.required:
            raise CliError(f"'{field.label}' is required")
        return None
    if field.key == "url" and not urlsplit(answer).hostname:
        raise CliError(f"Invalid URL: {answer}")
    if field.key == "file":
        return read_script(answer)
    return answer


def ask_type() -> str:
    text = "* Integration type (--type)\nEnter a number to choose: "
    return interaction.choose([(t, t) for t in TYPES], text, prompt="> ")


def resolve_type(kind: str | None) -> str:
    if kind:
        return kind
    if not interaction.STATE.interactive:
        raise CliError("--type is required")
    return ask_type()


def ask_missing(kind: str, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` (from the options) completed as Upsun's form completes them: asked on a
    terminal, else refused when required without a default."""
    out = dict(values)
    for field in FIELDS:
        if kind not in field.types or field.api in out:
            continue
        if interaction.STATE.interactive:
            value = interaction.ask(field.question(), lambda answer, f=field: _check(f, answer))  # type: ignore[misc]
            interaction.message("")
            if value is not None:
                out[field.api] = value
        elif field.required and not field.default:
            raise CliError(f"{field.option} is required")
    return out
