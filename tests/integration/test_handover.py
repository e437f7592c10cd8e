"""A script run's turn ends when its outcome is handed to the recorder: the next run of the
integration reads the writes not committed yet (firehook.handover), and is recorded only if
they are. On SQLite and PostgreSQL, with the real recording transactions."""

from __future__ import annotations

import time
from typing import Any

from firehook import handover, queue, recording, turns
from firehook.service import intake, integrations, projects
from firehook.store import kv, raw
from tests.integration.test_worker import ADMIN, log_messages, run_doc


def test_the_view_composes_the_writes_in_order_and_ends_with_them() -> None:
    pending = handover.Handover()
    assert pending.base("i") == (None, ())
    first = pending.add("i", 1, [("set", "a", "1"), ("set", "b", "2")], 10)
    second = pending.add("i", 2, [("remove", "a"), ("set", "c", "3")], 8)
    base, requires = pending.base("i")
    assert base == kv.Base({"a": None, "b": "2", "c": "3"}, False, 8) and requires == (first, second)
    third = pending.add("i", 3, [("clear",), ("set", "d", "4")], 2)
    assert pending.base("i")[0] == kv.Base({"d": "4"}, True, 2)
    assert base.entries == {"a": None, "b": "2", "c": "3"}  # a view handed out never changes
    assert pending.base("other") == (None, ())
    pending.settle(first, recorded=True)
    pending.settle(second, recorded=False)
    assert first.state == handover.RECORDED and second.state == handover.REFUSED
    assert pending.base("i") == (kv.Base({"d": "4"}, True, 2), (third,))
    pending.settle(third, recorded=True)
    assert pending.base("i") == (None, ()) and pending.pending() == 0
    assert handover.may_record([first], set()) and not handover.may_record([second], {2})
    pending_entry = pending.add("j", 4, [("set", "x", "1")], 2)
    assert handover.may_record([pending_entry], {4}) and not handover.may_record([pending_entry], {3})


def test_a_run_reads_the_uncommitted_writes_before_the_database(services: Any) -> None:
    projects.create(services, ADMIN, {"id": "w", "title": "Worker"})
    hook = integrations.create(services, ADMIN, "w", {"type": "script", "script": "1"})
    stored = kv.IntegrationStorage(services.database, hook["id"])
    stored.set("a", '"12345"')  # 1 + 7 bytes
    stored.set("b", "1")  # 1 + 1 bytes
    run = kv.RunStorage(services.database, hook["id"], kv.Base({"a": None, "c": "true"}, False, 7))
    assert run.get("a") is None and run.get("c") == "true" and run.get("b") == "1"
    assert run.total_bytes() == 7
    run.set("b", "22")
    assert run.total_known() == 8 and run.total_bytes() == 8
    cleared = kv.RunStorage(services.database, hook["id"], kv.Base({"c": "true"}, True, 5))
    assert cleared.get("a") is None and cleared.get("b") is None and cleared.get("c") == "true"
    unread = kv.RunStorage(services.database, hook["id"])
    unread.remove("a")  # a's size is not known without reading the database
    assert unread.total_known() is None and unread.total_bytes() == 2
    assert unread.total_known() == 2  # a's size was read for the total
    unread.set("c", "false")
    assert unread.total_known() is None  # c was never read
    assert unread.get("c") == "false" and unread.total_known() is None
    assert unread.total_bytes() == 2 + 6 and unread.total_known() == 2 + 6


def _claim(services: Any, owner: str, mine: turns.Turns, count: int) -> list[Any]:
    for _ in range(count):
        intake.ingest(services, ADMIN, "w", {"type": "environment.push"})
    now = time.time()
    with services.database.write() as conn:
        jobs = queue.claim_on(conn, owner, ["script"], 10, 60, now)
        kept, _ = mine.claimed(conn, jobs, now, now + 60)
        loaded = recording._start(conn, kept, now, "")
    assert len(kept) == count
    return [(job, loaded[job.id]) for job in sorted(kept, key=lambda j: j.id)]


def _finished(job: Any, loaded: Any, turn: str, ops: list[kv.Op], requires: tuple[handover.Entry, ...],
              entry: handover.Entry | None) -> recording.Finished:
    return recording.Finished(job=job, result="success", storage=ops, turn=turn, started=loaded,
                              requires=requires, entry=entry, logs=[("2026-01-01T00:00:00.000000Z", "ran")])


def _three_claimed_runs(services: Any) -> tuple[dict[str, Any], str, turns.Turns, handover.Handover, list[Any]]:
    """A script integration and three of its runs claimed by one worker (owner ``me:1``)."""
    projects.create(services, ADMIN, {"id": "w", "title": "Worker"})
    hook = integrations.create(services, ADMIN, "w", {"type": "script", "script": "1"})
    owner = "me:1"
    mine = turns.Turns(owner)
    return hook, owner, mine, handover.Handover(), list(_claim(services, owner, mine, 3))


def test_a_run_that_read_writes_never_recorded_goes_back_to_the_queue(services: Any) -> None:
    hook, owner, mine, pending, claimed = _three_claimed_runs(services)
    (job1, loaded1), (job2, loaded2), (job3, loaded3) = claimed
    entry1 = pending.add(hook["id"], job1.id, [("set", "counter", "1")], 8)
    _, requires2 = pending.base(hook["id"])
    entry2 = pending.add(hook["id"], job2.id, [("set", "counter", "2")], 8)
    _, requires3 = pending.base(hook["id"])
    assert requires2 == (entry1,) and requires3 == (entry1, entry2)
    items = [_finished(job1, loaded1, hook["id"], [("set", "counter", "1")], (), entry1),
             _finished(job2, loaded2, hook["id"], [("set", "counter", "2")], requires2, entry2),
             _finished(job3, loaded3, hook["id"], [], requires3, None)]
    with services.database.write() as conn:  # the first run's lease lapsed and another worker took it
        raw.cursor(conn).execute("UPDATE jobs SET lease_owner = ? WHERE pk = ?", ("elsewhere:1", job1.id))
    with services.database.write() as conn:
        recorded = recording.finish_many_on(conn, items, owner, turns=mine)
    assert recorded == set()
    # Nothing of the three was written: the storage is as before, the runs are in progress, and
    # the two that read the first one's writes are claimable again at once.
    assert kv.IntegrationStorage(services.database, hook["id"]).items() == {}
    with services.database.read() as conn:
        leases = dict(raw.cursor(conn).execute("SELECT pk, lease_owner FROM jobs").fetchall())
        turn_leases = raw.cursor(conn).execute("SELECT count(*) FROM integration_leases").scalar()
    assert leases == {job1.id: "elsewhere:1", job2.id: None, job3.id: None}
    assert turn_leases == 0  # this worker holds none of the integration's runs any more
    for job in (job2, job3):
        assert run_doc(services, job.run_id)["state"] == "in_progress"
        assert log_messages(services, job.run_id) == [recording.NOT_RECORDED]
    assert log_messages(services, job1.run_id) == []


def test_a_run_that_read_writes_recorded_before_or_with_it_is_recorded(services: Any) -> None:
    hook, owner, mine, pending, claimed = _three_claimed_runs(services)
    (job1, loaded1), (job2, loaded2), (job3, loaded3) = claimed
    entry1 = pending.add(hook["id"], job1.id, [("set", "counter", "1")], 8)
    with services.database.write() as conn:
        assert recording.finish_many_on(conn, [_finished(job1, loaded1, hook["id"], [("set", "counter", "1")],
                                                         (), entry1)], owner, turns=mine) == {job1.id}
    _, requires2 = pending.base(hook["id"])
    entry2 = pending.add(hook["id"], job2.id, [("set", "counter", "2")], 8)
    pending.settle(entry1, recorded=True)  # as the worker does once the write ended
    _, requires3 = pending.base(hook["id"])
    entry3 = pending.add(hook["id"], job3.id, [("set", "counter", "3")], 8)
    assert requires2 == (entry1,) and requires3 == (entry2,)
    with services.database.write() as conn:
        recorded = recording.finish_many_on(conn, [
            _finished(job2, loaded2, hook["id"], [("set", "counter", "2")], requires2, entry2),
            _finished(job3, loaded3, hook["id"], [("set", "counter", "3")], requires3, entry3)], owner, turns=mine)
    assert recorded == {job2.id, job3.id}
    assert kv.IntegrationStorage(services.database, hook["id"]).items() == {"counter": "3"}
    for job in (job1, job2, job3):
        assert run_doc(services, job.run_id)["state"] == "complete"
        assert log_messages(services, job.run_id) == ["ran"]
    with services.database.read() as conn:
        assert raw.cursor(conn).execute("SELECT count(*) FROM jobs").scalar() == 0
