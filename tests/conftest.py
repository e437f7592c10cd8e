"""Fixtures: databases (a SQLite file and the real PostgreSQL), services, tokens."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import support


@pytest.fixture(scope="session")
def postgres_db() -> Iterator[support.PostgresDatabase]:
    try:
        database = support.PostgresDatabase()
    except Exception as exc:  # connection refused, no driver…
        support.postgres_unavailable(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
    from firehook.store import db, migrations

    handle = db.Database(database.url)
    migrations.upgrade(handle)
    handle.dispose()
    yield database
    database.drop()


def _truncate(url: str) -> None:
    import sqlalchemy as sa

    from firehook.store import schema

    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        names = ", ".join(t.name for t in schema.metadata.sorted_tables)
        conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each test using this runs twice: on a fresh SQLite file and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'firehook.db'}"
        return
    database: support.PostgresDatabase = request.getfixturevalue("postgres_db")
    _truncate(database.url)
    yield database.url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'firehook.db'}"


@pytest.fixture
def postgres_url(postgres_db: support.PostgresDatabase) -> str:
    _truncate(postgres_db.url)
    return postgres_db.url


def make_settings(tmp_path: Path, database_url: str, **overrides: Any) -> Any:
    from firehook import settings

    values = {"data_dir": str(tmp_path / "data"), "database_url": database_url,
              "outbound_allow": ("127.0.0.1/32", "::1/128", "localhost"), "poll_interval": 0.05}
    values.update(overrides)
    return settings.load(values, environ={})


@pytest.fixture
def services(tmp_path: Path, database_url: str) -> Iterator[Any]:
    from firehook import assembly

    built = assembly.services(make_settings(tmp_path, database_url), migrate=True)
    yield built
    built.script_runner.close()  # the script processes of its dry runs, if any
    built.database.dispose()


@pytest.fixture
def admin(services: Any) -> Any:
    from firehook import model

    return model.Token(id="admin", project=None, read_only=False, description=None, created_at="")
