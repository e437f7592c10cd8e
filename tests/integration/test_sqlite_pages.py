"""SQLite files firehook creates use its page size; a file made before keeps its own."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlalchemy as sa

from firehook.store import db


def _page_size(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA page_size").fetchone()[0])
    finally:
        conn.close()


def test_a_new_database_takes_firehooks_page_size(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    database = db.Database(f"sqlite:///{path}")
    try:
        with database.write() as conn:
            conn.execute(sa.text("CREATE TABLE t (doc TEXT)"))
            conn.execute(sa.text("INSERT INTO t VALUES (:doc)"), {"doc": "x" * 20_000})
    finally:
        database.dispose()
    assert db.SQLITE_PAGE_SIZE != 4096  # SQLite's own default: otherwise this proves nothing
    assert _page_size(path) == db.SQLITE_PAGE_SIZE


def test_an_existing_database_keeps_its_page_size_and_works(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    made = sqlite3.connect(path)
    made.execute("PRAGMA page_size=4096")
    made.execute("PRAGMA journal_mode=WAL")
    made.execute("CREATE TABLE t (doc TEXT)")
    made.commit()
    made.close()
    database = db.Database(f"sqlite:///{path}")
    try:
        with database.write() as conn:
            conn.execute(sa.text("INSERT INTO t VALUES (:doc)"), {"doc": "y" * 20_000})
        with database.read() as conn:
            assert conn.execute(sa.text("SELECT length(doc) FROM t")).scalar_one() == 20_000
    finally:
        database.dispose()
    assert _page_size(path) == 4096
