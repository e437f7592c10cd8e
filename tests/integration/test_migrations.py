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


def test_snapshot_bodies_survive_the_upgrade_and_the_downgrade(database_url: str) -> None:
    """0006 makes ``snapshots.body`` nullable: on SQLite by rebuilding the table, which must keep
    every run and job that refers to it; going back writes the bodies left to activities out."""
    import sqlalchemy as sa
    from alembic import command

    from firehook.store import activities as store
    from firehook.store import runs as run_store

    database = db.Database(database_url)
    try:
        command.downgrade(migrations._config(database), "base")  # PostgreSQL: the shared database
        migrations.upgrade(database, "0005")
        source = '{"id":"a1","type":"environment.push","state":"complete","text":"é"}'
        run = '{"id":"r1","type":"integration.webhook","state":"pending"}'
        with database.engine.begin() as conn:
            conn.execute(schema.projects.insert(), [{"id": "p", "title": "P", "doc": "{}", "created_at": "t",
                                                     "updated_at": "t"}])
            conn.execute(schema.activities.insert(), [
                {"pk": 1, "project_id": "p", "id": "a1", "type": "environment.push", "state": "complete",
                 "environments": "[]", "created_at": "t", "updated_at": "t", "doc": source},
                {"pk": 2, "project_id": "p", "id": "r1", "type": "integration.webhook", "state": "pending",
                 "environments": "[]", "integration_id": "i", "created_at": "t", "updated_at": "t", "doc": run}])
            conn.execute(schema.snapshots.insert(), [{"pk": 1, "activity_pk": 1, "state": "complete", "body": source,
                                                      "reached_at": "t"}])
            conn.execute(schema.runs.insert(), [{"pk": 2, "integration_id": "i", "kind": "webhook", "snapshot_pk": 1,
                                                 "source_pk": 1, "attempts": 0, "queued_at": 1.0, "finished": False}])
            conn.execute(schema.jobs.insert(), [{"pk": 1, "run_pk": 2, "project_id": "p", "kind": "webhook",
                                                 "ordering_key": "k", "run_at": 1.0}])
        migrations.upgrade(database)
        with database.engine.begin() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(schema.jobs)).scalar() == 1
            assert run_store.load(conn, [2])[2].body == source
            assert store.find_snapshot(conn, 1, "complete")["body"] == source  # type: ignore[index]
            # A body left to its activity, as intake now writes one.
            conn.execute(schema.activities.insert(), [
                {"pk": 3, "project_id": "p", "id": "a2", "type": "environment.push", "state": "pending",
                 "environments": "[]", "created_at": "t", "updated_at": "t", "doc": '{"id":"a2"}'}])
            conn.execute(schema.snapshots.insert(), [{"pk": 2, "activity_pk": 3, "state": "pending", "body": None,
                                                      "reached_at": "t"}])
            if conn.dialect.name == "sqlite":
                assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1  # enforced again
        command.downgrade(migrations._config(database), "0005")
        with database.engine.connect() as conn:
            bodies = dict(conn.execute(sa.select(schema.snapshots.c.pk, schema.snapshots.c.body)).all())
            assert bodies == {1: source, 2: '{"id":"a2"}'}
            assert conn.execute(sa.select(sa.func.count()).select_from(schema.runs)).scalar() == 1
        migrations.upgrade(database)
    finally:
        database.dispose()
