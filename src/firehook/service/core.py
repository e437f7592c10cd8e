"""The services object (database, settings, hooks) and the access rules for tokens."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from sqlalchemy import exc as sa_exc

from firehook import errors, fanout, model
from firehook import settings as settings_mod
from firehook.store import db as dbmod
from firehook.store import migrations
from firehook.store import projects as project_store


@dataclasses.dataclass
class Services:
    """What every use case needs. Hooks let upper layers plug in the script compiler, the
    outbound guard and the validators without the service importing them."""

    database: dbmod.Database
    settings: settings_mod.Settings
    check_script: Callable[[str], None] | None = None
    check_url: Callable[[str], None] | None = None
    validate_integration: Callable[[Services, model.Integration], dict[str, Any]] | None = None
    # Runs scripts outside this process (firehook.scripts.runner.ThreadedRunner): dry runs, validate.
    script_runner: Any = None
    wakeups: list[Callable[[], None]] = dataclasses.field(default_factory=list)

    def notify(self) -> None:
        """Tell in-process workers that jobs were queued (they poll the database anyway)."""
        for wake in list(self.wakeups):
            wake()

    def activity_links(self, project_id: str, activity_id: str) -> dict[str, Any]:
        return fanout.activity_links(self.settings.resolved_public_url, project_id, activity_id)


def open_services(settings: settings_mod.Settings, *, migrate: bool | None = None,
                  check_schema: bool = True) -> Services:
    """Open the database. Migrations run here for SQLite (or when ``migrate``); on PostgreSQL
    an out-of-date schema is an error that says to run ``firehook db:upgrade``. A process whose
    parent did all that already (``serve``'s worker child) passes ``check_schema=False``."""
    database = dbmod.Database(settings.resolved_database_url, busy_timeout=settings.sqlite_busy_timeout)
    where = dbmod.redact(settings.resolved_database_url)
    if not check_schema:
        return Services(database=database, settings=settings)
    if migrate is None:
        migrate = database.is_sqlite
    try:
        if migrate:
            migrations.upgrade(database)
        elif not migrations.is_current(database):
            database.dispose()
            raise errors.StoreError(f"the database schema is not up to date: run `firehook db:upgrade` against {where}")
    except sa_exc.OperationalError as exc:
        database.dispose()
        first = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else type(exc).__name__
        raise errors.StoreError(f"cannot reach the database at {where}: {first}") from None
    return Services(database=database, settings=settings)


# --- access rules -------------------------------------------------------------------------------


def require_project(principal: model.Token, project_id: str) -> None:
    if principal.project is not None and principal.project != project_id:
        raise errors.Forbidden("this token is limited to another project")


def require_write(principal: model.Token) -> None:
    if principal.read_only:
        raise errors.Forbidden("this token is read-only")


def require_admin(principal: model.Token) -> None:
    if not principal.is_admin:
        raise errors.Forbidden("this needs an admin token (not limited to a project, not read-only)")


def project_not_found(project_id: str) -> errors.NotFound:
    """The one 404 for a missing project, saying how to create it."""
    return errors.NotFound(f"project {project_id} not found; create it with POST /api/projects "
                           "or `firehook project:create`")


def readable_project(services: Services, principal: model.Token, project_id: str) -> None:
    """The token may see the project, and it exists (403 / 404 otherwise)."""
    require_project(principal, project_id)
    with services.database.read() as conn:
        if not project_store.exists(conn, project_id):
            raise project_not_found(project_id)
