"""Schema migrations with Alembic, run programmatically (``firehook db:upgrade``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from firehook.store import db as dbmod

if TYPE_CHECKING:
    from alembic.config import Config

# Alembic is imported where it is used: a process that never migrates (a worker child) does
# not carry it.

HERE = Path(__file__).resolve().parent


def _config(database: dbmod.Database) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(HERE / "migrations"))
    cfg.attributes["engine"] = database.engine
    return cfg


def upgrade(database: dbmod.Database, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (default the newest)."""
    from alembic import command

    lock = database._write_lock  # one migrator at a time within this process on SQLite
    if lock is not None:
        with lock:
            command.upgrade(_config(database), revision)
    else:
        command.upgrade(_config(database), revision)


def current(database: dbmod.Database) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with database.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(HERE / "migrations")).get_current_head()


def is_current(database: dbmod.Database) -> bool:
    return current(database) == head()
