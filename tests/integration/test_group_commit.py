"""Group commit: many documents in one transaction, a document that fails on its own merits failing alone."""

from __future__ import annotations

from typing import Any

import pytest

from firehook import errors, model
from firehook.service import activities, group_commit, integrations, projects, tokens

ADMIN = model.Token(id="a", project=None, read_only=False, description=None, created_at="")


def test_failures_in_a_group_lose_nothing_else(services: Any) -> None:
    projects.create(services, ADMIN, {"id": "g", "title": "Group"})
    projects.create(services, ADMIN, {"id": "other", "title": "Other"})
    integrations.create(services, ADMIN, "g", {"type": "webhook", "url": "http://127.0.0.1:9/x"})
    admin_header = "Bearer " + tokens.create(services, ADMIN, {})["token"]
    reader_header = "Bearer " + tokens.create(services, ADMIN, {"read_only": True})["token"]
    scoped_header = "Bearer " + tokens.create(services, ADMIN, {"project": "other"})["token"]
    writer = group_commit.GroupCommit(services)
    try:
        # Submitted back to back, so most land in the same group as the failures around them.
        futures = [
            writer.submit(admin_header, "g", {"id": "ok1", "type": "environment.push"}),
            writer.submit("Bearer fh_nope", "g", {"id": "bad-token", "type": "environment.push"}),
            writer.submit(reader_header, "g", {"id": "read-only", "type": "environment.push"}),
            writer.submit(scoped_header, "g", {"id": "wrong-project", "type": "environment.push"}),
            writer.submit(admin_header, "missing", {"id": "no-project", "type": "environment.push"}),
            writer.submit(admin_header, "g", {"id": "ok1", "type": "environment.deploy"}),  # type change
            writer.submit(admin_header, "g", {"id": "ok2", "type": "environment.push", "state": "pending"}),
            writer.submit(admin_header, "g", {"id": "ok2", "type": "environment.push", "state": "complete"}),
            writer.submit(None, "g", {"id": "relayed", "type": "environment.push"}, check_token=False),
        ]
        outcomes = []
        for future in futures:
            try:
                outcomes.append(future.result(timeout=30))
            except errors.FirehookError as exc:
                outcomes.append(exc)
    finally:
        writer.close()
    kinds = [type(o).__name__ for o in outcomes]
    assert kinds == ["Accepted", "Unauthorized", "Forbidden", "Forbidden", "NotFound", "InvalidInput",
                     "Accepted", "Accepted", "Accepted"]
    assert [len(o.runs) for o in outcomes if not isinstance(o, Exception)] == [1, 0, 1, 1]
    stored = {a["id"]: a["state"] for a in activities.list_(services, ADMIN, "g", {"type": ["environment.push"]})}
    assert stored == {"ok1": "complete", "ok2": "complete", "relayed": "complete"}
    assert activities.list_(services, ADMIN, "other", {}) == []


def test_close_finishes_what_was_queued(services: Any) -> None:
    projects.create(services, ADMIN, {"id": "g", "title": "Group"})
    header = "Bearer " + tokens.create(services, ADMIN, {})["token"]
    writer = group_commit.GroupCommit(services)
    futures = [writer.submit(header, "g", {"type": "environment.push"}) for _ in range(300)]
    writer.close()
    assert all(f.done() and f.exception() is None for f in futures)
    assert len(activities.list_(services, ADMIN, "g", {"count": "1000"})) == 300


@pytest.mark.parametrize("size", [1, 2])
def test_group_size_bound(services: Any, size: int) -> None:
    projects.create(services, ADMIN, {"id": "g", "title": "Group"})
    header = "Bearer " + tokens.create(services, ADMIN, {})["token"]
    writer = group_commit.GroupCommit(services, max_group=size)
    futures = [writer.submit(header, "g", {"type": "environment.push"}) for _ in range(5)]
    writer.close()
    assert [f.exception() for f in futures] == [None] * 5


def test_a_broken_kept_connection_is_replaced(services: Any) -> None:
    """The writer keeps its connection between groups; when it breaks (the database restarted,
    the socket died) the group is written on a new one and nothing is lost."""
    projects.create(services, ADMIN, {"id": "g", "title": "Group"})
    header = "Bearer " + tokens.create(services, ADMIN, {})["token"]
    writer = group_commit.GroupCommit(services)
    try:
        writer.submit(header, "g", {"id": "first", "type": "environment.push"}).result(timeout=30)
        kept = writer._conn
        assert kept is not None
        kept.connection.driver_connection.close()  # type: ignore[union-attr]
        accepted = writer.submit(header, "g", {"id": "second", "type": "environment.push"}).result(timeout=30)
        assert accepted.created
        assert writer._conn is not None and writer._conn is not kept
        writer.submit(header, "g", {"id": "third", "type": "environment.push"}).result(timeout=30)
    finally:
        writer.close()
    assert writer._conn is None  # closed with the writer
    stored = {a["id"] for a in activities.list_(services, ADMIN, "g", {})}
    assert stored == {"first", "second", "third"}
