"""One registry of settings: name, type, default and help.

Every setting has a command-line flag (``--script-timeout``), an environment variable
(``FIREHOOK_SCRIPT_TIMEOUT``) and a documented default; the CLI builds its flags from this
registry and ``docs/settings.md`` is generated from it. Precedence: flag, then environment,
then default.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from firehook import errors

ADMIN_TOKEN_FILE = "admin.token"  # in the data directory: written by the first `serve`, read by the CLI


def _int(text: str) -> int:
    return int(text)


def _float(text: str) -> float:
    return float(text)


def _text(text: str) -> str:
    return text


def _csv(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


LOG_LEVELS = ("debug", "info", "warning", "error")


def _log_level(text: str) -> str:
    level = text.strip().lower()
    if level not in LOG_LEVELS:
        raise ValueError(f"choose one of {', '.join(LOG_LEVELS)}")
    return level


def _seconds_list(text: str) -> tuple[float, ...]:
    values = tuple(float(part) for part in _csv(text))
    if any(v < 0 for v in values):
        raise ValueError("delays cannot be negative")
    return values


METAVARS = {"data_dir": "DIR", "database_url": "URL", "host": "ADDRESS", "port": "PORT", "public_url": "URL",
            "server": "URL", "token": "TOKEN", "project": "PROJECT", "outbound_allow": "CIDR,...",
            "script_memory_mb": "MIB", "retry_schedule": "SECONDS,...", "log_level": "LEVEL"}


@dataclasses.dataclass(frozen=True)
class Setting:
    name: str
    parse: Callable[[str], Any]
    default: str
    help: str
    # The default as the help shows it, when the value above is empty or depends on the machine.
    shown: str = ""

    @property
    def shown_default(self) -> str:
        return self.shown or self.default

    @property
    def metavar(self) -> str:
        """What the flag takes, for the help: ``--port PORT``, ``--script-timeout SECONDS``."""
        if self.name in METAVARS:
            return METAVARS[self.name]
        if self.name.endswith("_bytes"):
            return "BYTES"
        if self.parse is _float:
            return "SECONDS"
        return "N"

    @property
    def env(self) -> str:
        return "FIREHOOK_" + self.name.upper()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


def _default_data_dir() -> str:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "firehook")


REGISTRY: tuple[Setting, ...] = (
    Setting("data_dir", _text, "", "Data directory (SQLite file, admin token).",
            "~/.local/share/firehook ($XDG_DATA_HOME/firehook when set)"),
    Setting("database_url", _text, "", "Database URL; postgresql://user@host/db for PostgreSQL.",
            "sqlite:///DATA_DIR/firehook.db"),
    Setting("host", _text, "127.0.0.1", "Address `serve` listens on."),
    Setting("port", _int, "8780", "Port `serve` listens on."),
    Setting("public_url", _text, "", "Base URL put in activities' _links.", "http://HOST:PORT"),
    Setting("server", _text, "http://127.0.0.1:8780", "Server the CLI talks to."),
    Setting("token", _text, "", "API token for the CLI.", "the data directory's admin.token"),
    Setting("project", _text, "", "Default project for the CLI's project commands.", "none"),
    Setting("max_document_bytes", _int, str(2 * 1024 * 1024), "Largest activity document accepted (413 above)."),
    Setting("outbound_allow", _csv, "", "CIDRs and host names the outbound guard lets through, comma-separated.",
            "none: public addresses only"),
    # 1 MiB: fourteen times Underscore's 68 KB, far above any integration script seen, and it
    # keeps the time to compile the largest script allowed well within the default time limit.
    Setting("script_max_bytes", _int, str(1024 * 1024), "Largest integration script, UTF-8 bytes (400 above)."),
    Setting("script_timeout", _float, "30", "Wall-clock seconds per script run, fetch time included."),
    Setting("script_memory_mb", _int, "128", "Memory per script run, MiB."),
    Setting("script_log_bytes", _int, str(1024 * 1024), "Log kept per script run, bytes."),
    Setting("script_fetch_limit", _int, "100", "fetch calls per script run."),
    Setting("script_fetch_timeout", _float, "30", "Seconds per fetch call."),
    Setting("script_fetch_max_bytes", _int, str(10 * 1024 * 1024), "Largest fetch response body, bytes."),
    Setting("storage_key_bytes", _int, "256", "Largest storage key, bytes."),
    Setting("storage_value_bytes", _int, str(64 * 1024), "Largest storage value, bytes."),
    Setting("storage_total_bytes", _int, str(1024 * 1024), "Storage per integration, bytes."),
    Setting("webhook_timeout", _float, "15", "Seconds per webhook attempt."),
    Setting("retry_schedule", _seconds_list, "5,300,1800,7200,18000,36000,36000",
            "Seconds between webhook attempts, comma-separated."),
    Setting("webhook_disable_after", _float, str(5 * 24 * 3600),
            "Disable a webhook whose every delivery failed for this many seconds (0: never)."),
    Setting("workers", _int, "0", "Script processes per pool, each running one script at a time (0: one per "
            "core); a worker and serve (for dry runs) each have a pool, started at their first script.",
            "0 (one per core)"),
    Setting("webhook_concurrency", _int, "256", "Webhook deliveries in flight per process."),
    Setting("lease_seconds", _float, "60", "How long a claimed job is held before another worker may take it."),
    Setting("poll_interval", _float, "0.5", "Seconds a worker waits between polls of an empty queue."),
    Setting("shutdown_grace", _float, "10", "Seconds in-flight runs get to finish on SIGTERM."),
    Setting("sqlite_busy_timeout", _float, "30", "Seconds a SQLite write waits for a lock another program holds "
            "on the database file before it fails (503)."),
    Setting("log_level", _log_level, "info", "Log level of `serve` and `worker`: debug, info, warning, error. "
            "debug adds a line per run recorded."),
)

BY_NAME: Mapping[str, Setting] = {s.name: s for s in REGISTRY}


@dataclasses.dataclass(frozen=True)
class Settings:
    """Resolved settings; build with :func:`load`."""

    values: Mapping[str, Any]

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def data_path(self) -> Path:
        return Path(self.values["data_dir"])

    @property
    def resolved_database_url(self) -> str:
        url = self.values["database_url"]
        if url:
            return str(url)
        return "sqlite:///" + str(self.data_path / "firehook.db")

    @property
    def resolved_public_url(self) -> str:
        if self.values["public_url"]:
            return str(self.values["public_url"]).rstrip("/")
        return f"http://{self.values['host']}:{self.values['port']}"

    def to_environ(self) -> dict[str, str]:
        """Every setting as its ``FIREHOOK_*`` variable, so a child process resolves the same
        values whatever flags its parent was given."""
        out = {}
        for setting in REGISTRY:
            value = self.values[setting.name]
            if isinstance(value, tuple):
                text = ",".join(str(v) for v in value)
            else:
                text = str(value)
            out[setting.env] = text
        return out

    def replace(self, **changes: Any) -> Settings:
        merged = dict(self.values)
        merged.update(changes)
        return Settings(merged)


def load(overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Resolve every setting: ``overrides`` (flags; None means unset), environment, default.

    A value that does not parse raises InvalidInput naming the setting and its source.
    """
    environ = os.environ if environ is None else environ
    overrides = overrides or {}
    values: dict[str, Any] = {}
    for setting in REGISTRY:
        given = overrides.get(setting.name)
        if given is not None and not isinstance(given, str):
            values[setting.name] = given
            continue
        source, text = ("flag " + setting.flag, given) if given is not None else (setting.env, environ.get(setting.env))
        if text is None or text == "":
            source, text = "default", setting.default
        try:
            values[setting.name] = setting.parse(text)
        except ValueError as exc:
            raise errors.InvalidInput.field(setting.name, f"{text!r} from {source} is not valid: {exc}") from None
    if not values["data_dir"]:
        values["data_dir"] = _default_data_dir()
    return Settings(values)


def markdown_document() -> str:
    """The whole of docs/settings.md (a test keeps the file equal to this)."""
    return (
        "# Settings\n\n"
        "Every setting has a flag, an environment variable and a default. A flag wins over the\n"
        "environment, which wins over the default. This file is generated from\n"
        "`firehook.settings.REGISTRY`: `python -c 'from firehook import settings; "
        "print(settings.markdown_document(), end=\"\")' > docs/settings.md`.\n\n"
        + markdown_table()
    )


def markdown_table() -> str:
    """The settings as a Markdown table, for docs/settings.md."""
    lines = ["| flag | environment | default | meaning |", "|---|---|---|---|"]
    for s in REGISTRY:
        default = s.shown_default.replace("|", "\\|")
        lines.append(f"| `{s.flag}` | `{s.env}` | `{default}` | {s.help} |")
    return "\n".join(lines) + "\n"
