"""Putting the parts together for a process: services with their hooks, executors, worker."""

from __future__ import annotations

from firehook import executors, outbound, scripts
from firehook import settings as settings_mod
from firehook import validate as validate_mod
from firehook import worker as worker_mod
from firehook.scripts import pool, runner
from firehook.service import Services, open_services


def services(settings: settings_mod.Settings, *, migrate: bool | None = None, check_schema: bool = True) -> Services:
    """Open the database and plug in the script compiler, the URL guard and validation."""
    built = open_services(settings, migrate=migrate, check_schema=check_schema)
    guard = outbound.Guard(settings.outbound_allow)
    built.check_script = scripts.check_syntax
    built.check_url = guard.check_url
    built.validate_integration = validate_mod.validate
    built.script_runner = runner.ThreadedRunner(pool.default_size(int(settings.workers)))
    return built


def worker(built: Services, *, kinds: tuple[str, ...] = ("script", "webhook"),
           owner: str | None = None) -> worker_mod.Worker:
    chosen: list[worker_mod.Executor] = []
    if "script" in kinds:
        chosen.append(executors.ScriptExecutor(built.database, built.settings))
    if "webhook" in kinds:
        chosen.append(executors.WebhookExecutor(built.settings))
    return worker_mod.Worker(built.database, built.settings, chosen, owner=owner)
