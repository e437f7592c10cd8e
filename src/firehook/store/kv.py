"""Script storage: a key/value store per integration, as the script runtime's backend.

:class:`IntegrationStorage` commits each write before it returns. A worker's script run uses
:class:`RunStorage` instead: it reads the database once and keeps the run's writes in
memory, and the worker writes them in
the transaction that records the run's outcome (:func:`apply`) — so the writes of a run are
atomic, a run that fails still keeps them (its outcome is recorded too), and a run costs no
transaction of its own for storage. A worker that dies mid-run loses them with the run, which
is run again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import sqlalchemy as sa

from firehook.store import db as dbmod
from firehook.store import raw
from firehook.store.schema import script_storage

S = script_storage.c


class IntegrationStorage:
    """The storage of one integration (implements firehook.scripts' StorageBackend), each
    write its own transaction: for use outside a worker's runs (tests, tools)."""

    def __init__(self, database: dbmod.Database, integration_id: str) -> None:
        self.database = database
        self.integration_id = integration_id

    def _write(self, op: Op) -> None:
        with self.database.write() as conn:
            apply(conn, [(self.integration_id, [op])])

    def get(self, key: str) -> str | None:
        with self.database.read() as conn:
            return raw.cursor(conn).execute(_GET, (self.integration_id, key)).scalar()

    def set(self, key: str, encoded: str) -> None:
        self._write(("set", key, encoded))

    def remove(self, key: str) -> None:
        self._write(("remove", key))

    def clear(self) -> None:
        self._write(("clear",))

    def total_bytes(self) -> int:
        # Summed by the database: the quota is checked on every `storage.set`, and reading up to
        # 1 MiB of values back each time only to measure them would be the costlier part.
        with self.database.read() as conn:
            return _total(conn, self.integration_id)

    def items(self) -> dict[str, str]:
        with self.database.read() as conn:
            rows = conn.execute(sa.select(S.key, S.value).where(S.integration_id == self.integration_id))
            return {k: v for k, v in rows}


_GET = "SELECT value FROM script_storage WHERE integration_id = ? AND key = ?"
_SUM_PG = ("SELECT coalesce(sum(octet_length(key) + octet_length(value)), 0) FROM script_storage "
           "WHERE integration_id = ?")
# SQLite's LENGTH counts characters of text; of a BLOB, bytes.
_SUM_SQLITE = ("SELECT coalesce(sum(length(CAST(key AS BLOB)) + length(CAST(value AS BLOB))), 0) "
               "FROM script_storage WHERE integration_id = ?")



# An operation of a run on its storage: ("set", key, encoded), ("remove", key) or ("clear",).
Op = tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Base:
    """What earlier runs of the integration wrote that is not committed yet (``firehook.handover``):
    a run reads it before the database. ``entries``: key → value (None: removed); ``cleared``:
    the keys not in ``entries`` are gone; ``total``: the bytes stored after those writes."""

    entries: Mapping[str, str | None]
    cleared: bool
    total: int


class RunStorage:
    """One run's view of its integration's storage (a StorageBackend): reads from ``base`` (the
    earlier runs' writes not committed yet), then from the database; writes kept in memory
    until :meth:`ops` hands them to the worker."""

    def __init__(self, database: dbmod.Database, integration_id: str, base: Base | None = None) -> None:
        self.database = database
        self.integration_id = integration_id
        self._pending: dict[str, str | None] = {}  # key → value written in this run (None: removed)
        self._stored: dict[str, str | None] = {}  # key → value before this run, as read
        self._cleared = False
        self._stored_total: int | None = None  # bytes before this run, when first asked
        # Whether the run used its storage at all: only then can its outcome depend on the
        # earlier runs' writes in ``base`` (a run that never called storage depends on nothing).
        self.touched = False
        if base is not None:
            self._stored.update(base.entries)
            self._stored_total = base.total
            self._base_cleared = base.cleared
        else:
            self._base_cleared = False

    def _read(self, key: str) -> str | None:
        if key not in self._stored:
            if self._base_cleared:  # an earlier run cleared the storage: only its writes remain
                self._stored[key] = None
                return None
            with self.database.read() as conn:
                cur = raw.cursor(conn)
                self._stored[key] = cur.execute(_GET, (self.integration_id, key)).scalar()
                if self._stored_total is None:
                    self._stored_total = _total(conn, self.integration_id)
        return self._stored[key]

    def get(self, key: str) -> str | None:
        self.touched = True
        if key in self._pending:
            return self._pending[key]
        return None if self._cleared else self._read(key)

    def set(self, key: str, encoded: str) -> None:
        self.touched = True
        self._pending[key] = encoded

    def remove(self, key: str) -> None:
        self.touched = True
        self._pending[key] = None

    def clear(self) -> None:
        self.touched = True
        self._pending.clear()
        self._cleared = True

    def total_bytes(self) -> int:
        self.touched = True
        if self._stored_total is None and not self._cleared:
            with self.database.read() as conn:
                self._stored_total = _total(conn, self.integration_id)
        total = 0 if self._cleared else (self._stored_total or 0)
        for key, value in self._pending.items():
            if not self._cleared:
                old = self._read(key)
                total -= _entry(key, old) if old is not None else 0
            total += _entry(key, value) if value is not None else 0
        return total

    def total_known(self) -> int | None:
        """:meth:`total_bytes` if it needs no read of the database, else None."""
        return self.total_bytes() if self._total_readable() else None

    def answers_from_memory(self, op: str, key: str | None = None) -> bool:
        """Whether the call ``op`` (``key``: of a get, a set or a remove) reads nothing from the
        database: what this run wrote, the earlier runs' writes handed over and what it read
        already answer it. A script pool then answers it on its event loop instead of sending
        it to a thread. A set counts the old value and the total against the quota."""
        if op in ("remove", "clear"):
            return True
        if op == "get":
            return self._known(key)
        if op == "set":
            return self._known(key) and self._total_readable()
        return op == "total_bytes" and self._total_readable()

    def _known(self, key: str | None) -> bool:
        return (key is not None and (key in self._pending or key in self._stored)) or self._cleared \
            or self._base_cleared

    def _total_readable(self) -> bool:
        """Whether :meth:`total_bytes` reads nothing: the total before this run and the old value
        of every key it wrote are known (or it cleared the storage)."""
        return self._cleared or (self._stored_total is not None and all(key in self._stored for key in self._pending))

    def ops(self) -> list[Op]:
        """What the run wrote, in an order that gives the same end state."""
        out: list[Op] = [("clear",)] if self._cleared else []
        for key, value in self._pending.items():
            out.append(("set", key, value) if value is not None else ("remove", key))
        return out


def _entry(key: str, encoded: str) -> int:
    return len(key.encode("utf-8")) + len(encoded.encode("utf-8"))


def _total(conn: sa.Connection, integration_id: str) -> int:
    size = _SUM_PG if conn.dialect.name == "postgresql" else _SUM_SQLITE
    return int(raw.cursor(conn).execute(size, (integration_id,)).scalar() or 0)


_UPSERT = ("INSERT INTO script_storage (integration_id, key, value) VALUES (?, ?, ?) "
           "ON CONFLICT (integration_id, key) DO UPDATE SET value = excluded.value")


def apply(conn: sa.Connection, writes: Sequence[tuple[str, Sequence[Op]]]) -> None:
    """Write the storage operations of several runs (``(integration id, ops)`` each), in order.
    An integration deleted meanwhile takes no writes (they have nowhere to go)."""
    writes = [(integration_id, ops) for integration_id, ops in writes if ops]
    if not writes:
        return
    cur = raw.cursor(conn)
    ids = list({integration_id for integration_id, _ in writes})
    among, params = raw.among(cur.dialect, "id", ids, "text")
    alive = {row[0] for row in cur.execute(f"SELECT id FROM integrations WHERE {among}", params).fetchall()}
    for integration_id, ops in writes:
        if integration_id not in alive:
            continue
        sets = []
        for op in ops:
            if op[0] == "set":
                sets.append((integration_id, op[1], op[2]))
                continue
            cur.executemany(_UPSERT, sets)  # what came before a removal or a clear, first
            sets = []
            if op[0] == "remove":
                cur.execute("DELETE FROM script_storage WHERE integration_id = ? AND key = ?", (integration_id, op[1]))
            else:
                cur.execute("DELETE FROM script_storage WHERE integration_id = ?", (integration_id,))
        cur.executemany(_UPSERT, sets)
