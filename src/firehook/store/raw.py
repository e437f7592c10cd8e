"""Hot statements on the DB-API directly, inside a SQLAlchemy transaction.

SQLAlchemy keeps the schema, migrations, transactions and the cold paths; a statement on a
hot path (intake, claims, run recording) skips its ~50–100 µs of Python per execution and
goes to the driver's cursor of the same connection, in the same transaction. The drivers
prepare what they run often (sqlite3's statement cache, psycopg's prepare threshold), and
psycopg pipelines ``executemany``.

SQL is written once with ``?`` placeholders and turned into the driver's style per dialect.
Driver errors are translated here, at the edge: a unique-key race becomes
:class:`errors.Conflict` and any other failure :class:`errors.StoreError`, and neither ever
carries the statement's parameters (they may hold a document or a secret).
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NoReturn

import sqlalchemy as sa

from firehook import errors


class Conflict(errors.Conflict):
    """A unique-key race (two writers created the same row at once)."""


@functools.lru_cache(maxsize=512)
def _for(dialect: str, text: str, binary: bool = False) -> str:
    if dialect == "postgresql":
        return text.replace("%", "%%").replace("?", "%b" if binary else "%s")
    return text


def _psycopg() -> Any:
    # Only a process that connected to PostgreSQL has psycopg loaded, and only such a process
    # can see its errors: a SQLite process does not import it (~10 MiB).
    return sys.modules.get("psycopg")


def _integrity(exc: BaseException) -> bool:
    if isinstance(exc, sqlite3.IntegrityError):
        return True
    psycopg = _psycopg()
    return psycopg is not None and isinstance(exc, psycopg.errors.IntegrityError)


def _driver_error(exc: BaseException) -> bool:
    if isinstance(exc, sqlite3.Error):
        return True
    psycopg = _psycopg()
    return psycopg is not None and isinstance(exc, psycopg.Error)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _translate(exc: Exception) -> Exception:
    """A driver exception as the firehook error to raise instead (``from None``), or itself."""
    if isinstance(exc, errors.FirehookError):
        return exc
    if _integrity(exc):
        # The constraint's name is enough to say what collided; never the values.
        return Conflict(f"conflicts with a concurrent write ({constraint(exc)})")
    if _driver_error(exc):
        return errors.StoreError(f"database error: {first_line(exc)}")
    return exc


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Driver exceptions as firehook errors, without parameters."""
    try:
        yield
    except Exception as exc:
        error = _translate(exc)
        if error is exc:
            raise
        raise error from None


def constraint(exc: BaseException) -> str:
    diag = getattr(exc, "diag", None)
    name = getattr(diag, "constraint_name", None) if diag is not None else None
    if name:
        return str(name)
    return first_line(exc)[:120]


class Cursor:
    """The driver cursor of a SQLAlchemy connection's transaction."""

    __slots__ = ("_cur", "dialect")

    def __init__(self, conn: sa.Connection) -> None:
        self.dialect = conn.dialect.name
        self._cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]

    # The statements run for every item of the hot paths: the translation is a try/except of
    # its own in each method (a context manager per call costs more than a small statement).

    def execute(self, text: str, params: Sequence[Any] = (), *, binary: bool = False) -> Cursor:
        """``binary``: send the parameters in PostgreSQL's binary format (arrays of long texts
        are then length-prefixed rather than escaped character by character)."""
        try:
            self._cur.execute(_for(self.dialect, text, binary), params)
        except Exception as exc:
            _reraise(exc)
        return self

    def executemany(self, text: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = list(rows)
        if not rows:
            return
        try:
            self._cur.executemany(_for(self.dialect, text), rows)
        except Exception as exc:
            _reraise(exc)

    def bulk(self, sqlite_text: str, postgresql_text: str, rows: Iterable[Sequence[Any]]) -> None:
        """The same statement for many rows: ``executemany`` on SQLite (a loop in C), one
        statement on PostgreSQL whose ``?`` each take a whole column as an array (``unnest``):
        one round trip and one plan instead of a pipeline of one execution per row."""
        rows = list(rows)
        if not rows:
            return
        if self.dialect == "postgresql":
            self.execute(postgresql_text, [list(column) for column in zip(*rows, strict=True)], binary=True)
        else:
            self.executemany(sqlite_text, rows)

    def fetchall(self) -> list[tuple[Any, ...]]:
        try:
            return list(self._cur.fetchall())
        except Exception as exc:
            _reraise(exc)

    def fetchone(self) -> tuple[Any, ...] | None:
        try:
            row = self._cur.fetchone()
        except Exception as exc:
            _reraise(exc)
        return tuple(row) if row is not None else None

    def scalar(self) -> Any:
        row = self.fetchone()
        return row[0] if row else None

    @property
    def rowcount(self) -> int:
        return int(self._cur.rowcount)

    def close(self) -> None:
        self._cur.close()


def _reraise(exc: Exception) -> NoReturn:
    error = _translate(exc)
    if error is exc:
        raise exc
    raise error from None


def cursor(conn: sa.Connection) -> Cursor:
    return Cursor(conn)


def placeholders(count: int) -> str:
    """``?, ?, ?`` for an ``IN (…)`` list of ``count`` values."""
    return ", ".join("?" * count)


def among(dialect: str, column: str, values: Sequence[Any], sql_type: str) -> tuple[str, list[Any]]:
    """``column`` is one of ``values``, and the parameters for it: ``column IN (?, …)`` on
    SQLite; on PostgreSQL ``column = ANY(?)`` with one array, the same text whatever the count,
    which psycopg converts once and PostgreSQL prepares (each new count of an ``IN`` list was a
    new statement to parse and plan). ``sql_type``: the values' PostgreSQL type."""
    if dialect == "postgresql":
        return f"{column} = ANY(?::{sql_type}[])", [list(values)]
    return f"{column} IN ({placeholders(len(values))})", list(values)


@contextlib.contextmanager
def pipelined(conn: sa.Connection) -> Iterator[None]:
    """The statements of the block are sent without waiting for each other's answers: on
    PostgreSQL one psycopg pipeline (one round trip; errors surface when it ends); on SQLite,
    where a statement is a function call, nothing changes."""
    if conn.dialect.name != "postgresql":
        yield
        return
    driver = conn.connection.driver_connection
    with translated(), driver.pipeline():  # type: ignore[union-attr]
        yield
