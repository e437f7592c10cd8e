"""The batching writer: waiting writes share one transaction; a failing one fails alone."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import sqlalchemy as sa

from firehook import errors
from firehook.store import raw
from firehook.store import writer as store_writer


def project_ids(services: Any) -> set[str]:
    with services.database.read() as conn:
        return {row[0] for row in raw.cursor(conn).execute("SELECT id FROM projects").fetchall()}


def add_project(project_id: str) -> Any:
    def write(conn: sa.Connection) -> str:
        raw.cursor(conn).execute(
            "INSERT INTO projects (id, title, doc, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
            (project_id, project_id, "{}", "2026-01-01T00:00:00.000000+00:00", "2026-01-01T00:00:00.000000+00:00"))
        return project_id
    return write


def held_writer(services: Any) -> tuple[store_writer.Writer, threading.Event, Any]:
    """A writer whose thread is held inside a first write until the event is set, so that
    whatever is submitted meanwhile is queued as one group."""
    writer = store_writer.Writer(services.database)
    release = threading.Event()
    entered = threading.Event()

    def first(conn: sa.Connection) -> str:
        entered.set()
        assert release.wait(30)
        return add_project("first")(conn)

    head = writer.submit(first)
    assert entered.wait(30)
    return writer, release, head


def test_waiting_writes_share_one_transaction(services: Any) -> None:
    writer, release, head = held_writer(services)
    try:
        futures = [writer.submit(add_project(f"p{i}")) for i in range(20)]
        release.set()
        assert [f.result(30) for f in futures] == [f"p{i}" for i in range(20)]
        assert head.result(30) == "first"
        # the held write's own transaction, then one for all twenty
        assert writer.transactions == 2
    finally:
        writer.close()
    assert project_ids(services) >= {"first"} | {f"p{i}" for i in range(20)}


def test_a_failing_write_fails_alone(services: Any) -> None:
    writer, release, head = held_writer(services)

    def broken(conn: sa.Connection) -> None:
        add_project("half-written")(conn)
        raise ValueError("this write is broken")

    try:
        before = writer.submit(add_project("before"))
        bad = writer.submit(broken)
        duplicate = writer.submit(add_project("before"))  # the same id again: a unique-key race
        after = writer.submit(add_project("after"))
        release.set()
        head.result(30)
        assert before.result(30) == "before" and after.result(30) == "after"
        with pytest.raises(ValueError, match="broken"):
            bad.result(30)
        with pytest.raises(errors.Conflict) as caught:
            duplicate.result(30)
        assert "before" not in str(caught.value)  # a conflict never quotes the values
    finally:
        writer.close()
    ids = project_ids(services)
    assert {"first", "before", "after"} <= ids and "half-written" not in ids


def test_a_closed_writer_refuses(services: Any) -> None:
    writer = store_writer.Writer(services.database)
    assert writer.call(add_project("once")) == "once"
    writer.close()
    with pytest.raises(errors.StoreError, match="closed"):
        writer.submit(add_project("twice"))
