"""Script storage: a key/value store per integration, as the script runtime's backend.

Each write is committed before it returns (alone, or in a group of the worker's batching
writer), so a run that fails keeps what it wrote before failing.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from firehook.store import db as dbmod
from firehook.store import raw
from firehook.store import writer as store_writer
from firehook.store.schema import script_storage

S = script_storage.c


class IntegrationStorage:
    """The storage of one integration (implements firehook.scripts' StorageBackend).

    Reads go straight to the database; writes go through the process's batching writer when
    one is given (a worker's), so the storage writes of concurrent runs share transactions
    with each other and with the run recording. A write returns once it is committed."""

    def __init__(self, database: dbmod.Database, integration_id: str, writer: store_writer.Writer | None = None
                 ) -> None:
        self.database = database
        self.integration_id = integration_id
        self.writer = writer

    def _write(self, fn: Callable[[sa.Connection], None]) -> None:
        if self.writer is not None:
            self.writer.call(fn)
        else:
            with self.database.write() as conn:
                fn(conn)

    def get(self, key: str) -> str | None:
        with self.database.read() as conn:
            return raw.cursor(conn).execute(
                "SELECT value FROM script_storage WHERE integration_id = ? AND key = ?",
                (self.integration_id, key)).scalar()

    def set(self, key: str, encoded: str) -> None:
        self._write(lambda conn: _set(conn, self.integration_id, key, encoded))

    def remove(self, key: str) -> None:
        self._write(lambda conn: _execute(conn, "DELETE FROM script_storage WHERE integration_id = ? AND key = ?",
                                          (self.integration_id, key)))

    def clear(self) -> None:
        self._write(lambda conn: _execute(conn, "DELETE FROM script_storage WHERE integration_id = ?",
                                          (self.integration_id,)))

    def total_bytes(self) -> int:
        # Summed by the database: the quota is checked on every `storage.set`, and reading up to
        # 1 MiB of values back each time only to measure them would be the costlier part.
        with self.database.read() as conn:
            size = _SUM_PG if conn.dialect.name == "postgresql" else _SUM_SQLITE
            return int(raw.cursor(conn).execute(size, (self.integration_id,)).scalar() or 0)

    def items(self) -> dict[str, str]:
        with self.database.read() as conn:
            rows = conn.execute(sa.select(S.key, S.value).where(S.integration_id == self.integration_id))
            return {k: v for k, v in rows}


_SUM_PG = ("SELECT coalesce(sum(octet_length(key) + octet_length(value)), 0) FROM script_storage "
           "WHERE integration_id = ?")
# SQLite's LENGTH counts characters of text; of a BLOB, bytes.
_SUM_SQLITE = ("SELECT coalesce(sum(length(CAST(key AS BLOB)) + length(CAST(value AS BLOB))), 0) "
               "FROM script_storage WHERE integration_id = ?")


def _execute(conn: sa.Connection, statement: str, params: tuple[str, ...]) -> None:
    raw.cursor(conn).execute(statement, params)


def _set(conn: sa.Connection, integration_id: str, key: str, encoded: str) -> None:
    cur = raw.cursor(conn)
    # The integration may have been deleted while the run was going: then the write has
    # nowhere to go, and is dropped rather than failing the foreign key.
    if cur.execute("SELECT 1 FROM integrations WHERE id = ?", (integration_id,)).fetchone() is None:
        return
    cur.execute("UPDATE script_storage SET value = ? WHERE integration_id = ? AND key = ?",
                (encoded, integration_id, key))
    if not cur.rowcount:
        cur.execute("INSERT INTO script_storage (integration_id, key, value) VALUES (?, ?, ?)",
                    (integration_id, key, encoded))
