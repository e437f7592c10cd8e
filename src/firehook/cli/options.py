"""Click options generated from the settings registry, so flags, variables and docs agree."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import click

from firehook import settings as settings_mod

SERVER_SETTINGS = tuple(
    s.name for s in settings_mod.REGISTRY if s.name not in ("server", "token", "project")
)
WORKER_SETTINGS = tuple(n for n in SERVER_SETTINGS if n not in ("host", "port", "public_url", "max_document_bytes"))


def settings_options(names: Sequence[str]) -> Callable[[Any], Any]:
    """Add ``--flag`` options for the named settings; values stay None unless given, so the
    environment and defaults are resolved in one place (settings.load)."""

    def decorate(fn: Any) -> Any:
        for name in reversed(names):
            setting = settings_mod.BY_NAME[name]
            # The default as words where it depends on the machine or on other settings, so the help
            # (and docs/cli.md) is the same everywhere.
            fn = click.option(
                setting.flag, name, default=None, metavar=setting.metavar,
                help=f"{setting.help} [env {setting.env}; default {setting.shown_default}]",
            )(fn)
        return fn

    return decorate


def load_settings(flags: dict[str, Any]) -> settings_mod.Settings:
    return settings_mod.load({k: v for k, v in flags.items() if k in settings_mod.BY_NAME})
