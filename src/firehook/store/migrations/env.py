"""Alembic environment: the engine comes from the caller (firehook.store.migrations)."""

from __future__ import annotations

from alembic import context

from firehook.store import schema

engine = context.config.attributes["engine"]

with engine.connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    driver = connection.connection.driver_connection
    if sqlite:
        # A batch migration rebuilds a table (copy, drop, rename): with foreign keys enforced,
        # dropping a table that others refer to would delete their rows (ON DELETE CASCADE).
        # The pragma is a no-op inside a transaction, so it is set before the migrations' one
        # begins, on the driver's connection (SQLAlchemy's own would begin first), and set back
        # before the connection returns to the pool.
        driver.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
    try:
        context.configure(
            connection=connection,
            target_metadata=schema.metadata,
            render_as_batch=sqlite,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
    finally:
        if sqlite:
            connection.rollback()  # nothing is pending after a commit; after a failure, nothing stays
            driver.execute("PRAGMA foreign_keys=ON")  # type: ignore[union-attr]
