"""The database: engine set-up, transactions and error translation at the driver edge.

SQLite is the default and gets one writer at a time: write transactions start with
``BEGIN IMMEDIATE`` (so two writers never deadlock upgrading a read lock) under a
process-wide lock and an ``flock`` shared by the processes on the file (``serve`` and its
worker child), in WAL mode with a busy timeout for any other process. PostgreSQL runs any
number of writers.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event, exc

from firehook import errors
from firehook.store import raw

log = logging.getLogger("firehook.store")

def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` and select the psycopg 3 driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except exc.ArgumentError:
        return "<unparseable database URL>"


class Database:
    """An engine plus the transaction discipline for its dialect."""

    def __init__(self, url: str, *, pool_size: int = 10, busy_timeout: float = 30.0) -> None:
        self.url = normalise_url(url)
        try:
            parsed = sa.engine.make_url(self.url)
        except exc.ArgumentError:
            raise errors.InvalidInput.field("database_url", f"not a database URL: {redact(url)}") from None
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        self._write_lock = threading.Lock() if self.is_sqlite else None
        self._file_lock: _FileLock | None = None
        if self.is_sqlite:
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
                self._file_lock = _FileLock(Path(parsed.database + "-writer.lock"))
            self.engine = sa.create_engine(
                self.url,
                # How long a statement waits for a lock another program holds on the file
                # (firehook's own processes take turns through the file lock first).
                connect_args={"timeout": busy_timeout, "check_same_thread": False},
                pool_size=pool_size,
                max_overflow=20,
                hide_parameters=True,  # never a document or a secret in an error's text
            )
            event.listen(self.engine, "connect", _sqlite_connect)
            event.listen(self.engine, "begin", _sqlite_begin)
        else:
            self.engine = sa.create_engine(
                # No ping before each checkout: it cost a round trip per transaction (about an
                # eighth of a PostgreSQL writer's time). A connection that died with the
                # server fails its transaction (503, the client sends again; the worker retries)
                # and SQLAlchemy then discards the whole pool, so the next ones reconnect.
                self.url, pool_size=pool_size, max_overflow=20, pool_recycle=1800,
                hide_parameters=True,  # never a document or a secret in an error's text
            )

    @contextlib.contextmanager
    def write(self) -> Iterator[sa.Connection]:
        """A write transaction: committed when the block ends, rolled back on error."""
        lock = self._write_lock
        if lock is None:
            with _translated():
                with self.engine.connect() as conn:
                    with conn.begin():
                        yield conn
            return
        with lock, self._file_lock_held():
            with _translated():
                with self.engine.connect() as conn:
                    with conn.execution_options(firehook_immediate=True).begin():
                        yield conn

    @contextlib.contextmanager
    def write_on(self, conn: sa.Connection) -> Iterator[sa.Connection]:
        """:meth:`write` on a connection the caller keeps open between transactions (a writer
        thread's own: no pool checkout and return per transaction). After an error the caller
        should close it (it may be broken) and connect again."""
        lock = self._write_lock
        if lock is None:
            with _translated():
                with conn.begin():
                    yield conn
            return
        with lock, self._file_lock_held():
            with _translated():
                with conn.execution_options(firehook_immediate=True).begin():
                    yield conn

    def connect(self) -> sa.Connection:
        """A connection of the pool, for :meth:`write_on`."""
        with _translated():
            return self.engine.connect()

    @staticmethod
    def close_kept(conn: sa.Connection | None) -> None:
        """Close a connection kept for :meth:`write_on` after a failed transaction, whatever
        state it is in (a broken one may fail to close too)."""
        if conn is None:
            return
        try:
            conn.close()
        except Exception as exc:  # noqa: BLE001
            log.debug("event=store.close_failed error=%s", type(exc).__name__)

    @contextlib.contextmanager
    def _file_lock_held(self) -> Iterator[None]:
        if self._file_lock is None:
            yield
            return
        try:
            self._file_lock.acquire()
        except OSError as e:
            raise errors.StoreError(f"cannot lock the database for writing ({self._file_lock.path}): "
                                    f"{e.strerror or e}") from None
        try:
            yield
        finally:
            self._file_lock.release()

    @contextlib.contextmanager
    def read(self) -> Iterator[sa.Connection]:
        """A read-only transaction (a consistent view on both dialects)."""
        with _translated():
            with self.engine.connect() as conn:
                with conn.begin():
                    yield conn

    def dispose(self) -> None:
        self.engine.dispose()
        if self._file_lock is not None:
            self._file_lock.close()


class _FileLock:
    """The single writer across processes on one SQLite file (``serve`` and its worker child).

    SQLite's own busy handler retries a locked database by sleeping 1, 2, 5, 10… ms, which
    adds tens of milliseconds to a write that waits behind another process's short one; a
    blocking ``flock`` wakes the waiter the moment the lock is released. Held only around
    a write transaction, after the process-wide thread lock (flock does not exclude threads of
    one process)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def _open(self) -> int:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        return self._fd

    def acquire(self) -> None:
        fcntl.flock(self._open(), fcntl.LOCK_EX)

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


# Pages of 16 KiB rather than SQLite's 4 KiB: a document of 20 KB then fills 2 pages instead
# of 6 (one in the table, the rest an overflow chain), each a frame of the WAL, copied again at
# a checkpoint. Measured with `make bench ARGS=--only intake,dbwork` (2026-12-02, runs each way
# back to back on one machine): batch intake 0.514 -> 0.291 ms of server CPU per document;
# single intake 1.07 -> 0.52 ms per request; fan-out and a script run's database work
# unchanged within the machine's noise.
SQLITE_PAGE_SIZE = 16384


def _sqlite_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    # Let SQLAlchemy's "begin" event emit BEGIN itself, so writes can say IMMEDIATE.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # Only a new, empty file takes it (a database keeps the page size it was created with).
    cursor.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(conn: sa.Connection) -> None:
    # On the driver's connection: SQLAlchemy's own execution of a statement costs more than
    # BEGIN itself, and a worker begins a transaction for every claim round and group.
    text = "BEGIN IMMEDIATE" if conn.get_execution_options().get("firehook_immediate") else "BEGIN"
    with _translated_driver():
        conn.connection.driver_connection.execute(text)  # type: ignore[union-attr]


@contextlib.contextmanager
def _translated_driver() -> Iterator[None]:
    """A driver error of a statement run on the driver's connection, as SQLAlchemy would
    have raised it (then translated by :func:`_translated` like any other)."""
    try:
        yield
    except Exception as e:
        if isinstance(e, sqlite3.OperationalError):
            raise exc.OperationalError("BEGIN", None, e) from None
        if isinstance(e, sqlite3.Error):
            raise exc.DBAPIError("BEGIN", None, e) from None
        raise


def translate(e: BaseException) -> BaseException:
    """A SQLAlchemy driver error as the firehook error :func:`_translated` raises; any other
    exception as it is (for code that catches errors before they leave a transaction)."""
    if isinstance(e, exc.IntegrityError):
        return raw.Conflict(f"conflicts with a concurrent write ({_constraint(e)})")
    if isinstance(e, exc.OperationalError):
        kind = errors.DatabaseBusy if _busy(e) else errors.StoreError
        return kind(f"database unavailable or failing: {_first_line(e)}")
    if isinstance(e, exc.DBAPIError):
        return errors.StoreError(f"database error: {_first_line(e)}")
    return e


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    """Translate driver failures into firehook errors with words a user understands: a
    unique-key race is a Conflict (409), anything else a StoreError. The driver's exception is
    not chained (``from None``): its text may quote the statement's parameters — a document,
    a sensitive value — and a logged traceback would print it."""
    try:
        yield
    except exc.DBAPIError as e:
        raise translate(e) from None


def _busy(e: exc.DBAPIError) -> bool:
    """SQLite's SQLITE_BUSY ("database is locked"), raised once its busy timeout ran out."""
    orig = e.orig
    name = str(getattr(orig, "sqlite_errorname", ""))
    return isinstance(orig, sqlite3.OperationalError) and name.startswith("SQLITE_BUSY")


def _constraint(e: exc.DBAPIError) -> str:
    return raw.constraint(e.orig if e.orig is not None else e)


def _first_line(e: exc.DBAPIError) -> str:
    return raw.first_line(e.orig if e.orig is not None else e)
