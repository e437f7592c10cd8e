"""The migrations build exactly the schema of store/schema.py, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from firehook.store import db, migrations, schema


def test_migrations_match_the_schema_and_go_both_ways(database_url: str) -> None:
    database = db.Database(database_url)
    try:
        migrations.upgrade(database)
        assert migrations.is_current(database)
        with database.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), schema.metadata)
        assert diff == [], f"schema.py and the migrations disagree: {diff}"
        migrations.upgrade(database)  # a second upgrade is a no-op
        from alembic import command

        command.downgrade(migrations._config(database), "base")
        assert migrations.current(database) is None
        migrations.upgrade(database)
        assert migrations.current(database) == migrations.head()
    finally:
        database.dispose()
