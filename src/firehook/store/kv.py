"""Script storage: a key/value store per integration, as the script runtime's backend.

Each write is its own transaction, so a run that fails keeps what it wrote before failing.
"""

from __future__ import annotations

import sqlalchemy as sa

from firehook.store import db as dbmod
from firehook.store.schema import integrations, script_storage

S = script_storage.c


class IntegrationStorage:
    """The storage of one integration (implements firehook.scripts' StorageBackend)."""

    def __init__(self, database: dbmod.Database, integration_id: str) -> None:
        self.database = database
        self.integration_id = integration_id

    def get(self, key: str) -> str | None:
        with self.database.read() as conn:
            return conn.execute(
                sa.select(S.value).where(S.integration_id == self.integration_id, S.key == key)
            ).scalar_one_or_none()

    def set(self, key: str, encoded: str) -> None:
        with self.database.write() as conn:
            # The integration may have been deleted while the run was going: then the write
            # has nowhere to go, and is dropped rather than failing the foreign key.
            exists = sa.select(integrations.c.id).where(integrations.c.id == self.integration_id)
            if conn.execute(exists).first() is None:
                return
            updated = conn.execute(
                script_storage.update()
                .where(S.integration_id == self.integration_id, S.key == key)
                .values(value=encoded)
            ).rowcount
            if not updated:
                conn.execute(script_storage.insert().values(integration_id=self.integration_id, key=key, value=encoded))

    def remove(self, key: str) -> None:
        with self.database.write() as conn:
            conn.execute(script_storage.delete().where(S.integration_id == self.integration_id, S.key == key))

    def clear(self) -> None:
        with self.database.write() as conn:
            conn.execute(script_storage.delete().where(S.integration_id == self.integration_id))

    def total_bytes(self) -> int:
        # Summed by the database: the quota is checked on every `storage.set`, and reading up to
        # 1 MiB of values back each time only to measure them would be the costlier part.
        with self.database.read() as conn:
            return int(conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(_bytes(conn, S.key) + _bytes(conn, S.value)), 0))
                .where(S.integration_id == self.integration_id)
            ).scalar_one())

    def items(self) -> dict[str, str]:
        with self.database.read() as conn:
            rows = conn.execute(sa.select(S.key, S.value).where(S.integration_id == self.integration_id))
            return {k: v for k, v in rows}


def _bytes(conn: sa.Connection, column: sa.ColumnElement[str]) -> sa.ColumnElement[int]:
    """The UTF-8 length in bytes of a text column (SQLite's LENGTH counts characters)."""
    if conn.dialect.name == "postgresql":
        return sa.func.octet_length(column)
    return sa.func.length(sa.cast(column, sa.LargeBinary))
