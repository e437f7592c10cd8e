"""Runs of one script integration never overlap (SPEC §4.4), in one worker and across workers,
so the documented counter never loses an update; a run whose integration another worker is
running waits for its turn. Real workers, real script processes, SQLite and PostgreSQL."""

from __future__ import annotations

import time
from typing import Any

from firehook.service import batch, intake, integrations, projects
from firehook.store import kv, raw
from tests.integration.test_worker import ADMIN, RunningWorker, finished
from tests.integration.test_worker import fast_services as fast_services  # noqa: F401  (the fixture)
from tests.receivers import wait_for

COUNTER = "var counter = storage.get('counter') || 0;\nstorage.set('counter', counter + 1);\n"
RUNS = 120


def _push_many(services: Any, count: int) -> list[str]:
    body = b"\n".join(b'{"type":"environment.push","environments":["main"]}' for _ in range(count))
    report = batch.ingest_batch(services, ADMIN, "w", body)
    assert report["accepted"] == count
    return [line["id"] for line in report["results"]]


def _leases(services: Any) -> list[tuple[Any, ...]]:
    with services.database.read() as conn:
        return raw.cursor(conn).execute("SELECT integration_id, owner FROM integration_leases").fetchall()


def _all_done(services: Any) -> bool:
    with services.database.read() as conn:
        return raw.cursor(conn).execute("SELECT count(*) FROM jobs").scalar() == 0


def test_the_counter_counts_every_run_with_two_workers(fast_services: Any) -> None:
    services = fast_services
    projects.create(services, ADMIN, {"id": "w", "title": "Worker"})
    hook = integrations.create(services, ADMIN, "w", {"type": "script", "script": COUNTER})
    other = integrations.create(services, ADMIN, "w", {"type": "script", "script": COUNTER})
    workers = [RunningWorker(services, kinds=("script",)) for _ in range(2)]
    try:
        _push_many(services, RUNS)
        wait_for(lambda: _all_done(services), timeout=180)
    finally:
        for worker in workers:
            worker.stop()
    # Each integration counted every one of its runs: none read a value another run of it was
    # about to replace.
    assert kv.IntegrationStorage(services.database, hook["id"]).get("counter") == str(RUNS)
    assert kv.IntegrationStorage(services.database, other["id"]).get("counter") == str(RUNS)
    assert _leases(services) == []  # every turn was given back


def test_a_run_waits_while_another_worker_holds_its_integrations_turn(fast_services: Any) -> None:
    services = fast_services
    projects.create(services, ADMIN, {"id": "w", "title": "Worker"})
    hook = integrations.create(services, ADMIN, "w", {"type": "script", "script": COUNTER})
    with services.database.write() as conn:  # a worker elsewhere is running this integration
        raw.cursor(conn).execute("INSERT INTO integration_leases (integration_id, owner, expires_at) VALUES (?, ?, ?)",
                                 (hook["id"], "elsewhere:1", time.time() + 3600))
    worker = RunningWorker(services, kinds=("script",))
    try:
        [run_id] = [r["id"] for r in intake.ingest(services, ADMIN, "w", {"type": "environment.push"}).runs]
        rounds = worker.worker.claim_rounds
        wait_for(lambda: worker.worker.claim_rounds >= rounds + 3, timeout=60)  # it tried, and parked it
        assert finished(services, run_id) is None
        with services.database.write() as conn:  # the other worker is done with it
            raw.cursor(conn).execute("DELETE FROM integration_leases")
        wait_for(lambda: finished(services, run_id), timeout=60)
        wait_for(lambda: _all_done(services), timeout=60)
    finally:
        worker.stop()
    assert kv.IntegrationStorage(services.database, hook["id"]).get("counter") == "1"
    assert _leases(services) == []


def test_a_lapsed_turn_is_noticed_at_renewal_and_taken_again_only_when_free(fast_services: Any) -> None:
    from firehook import queue, turns

    services = fast_services
    projects.create(services, ADMIN, {"id": "w", "title": "Worker"})
    hook = integrations.create(services, ADMIN, "w", {"type": "script", "script": COUNTER})
    intake.ingest(services, ADMIN, "w", {"type": "environment.push"})
    mine = turns.Turns("me:1")
    now = time.time()
    with services.database.write() as conn:
        jobs = queue.claim_on(conn, "me:1", ["script"], 10, 60, now)
        kept, turn_of = mine.claimed(conn, jobs, now, now + 60)
    assert [mine.integration_of(job.id) for job in kept] == [hook["id"]] and turn_of
    with services.database.write() as conn:  # the lease lapsed and another worker took it
        raw.cursor(conn).execute("UPDATE integration_leases SET owner = ?", ("elsewhere:1",))
        mine.renew(conn, time.time() + 60)
    assert mine.lost(hook["id"])
    with services.database.write() as conn:
        assert not mine.retake(conn, hook["id"], time.time(), time.time() + 60)
    assert mine.lost(hook["id"])
    with services.database.write() as conn:  # the other worker is done with it
        raw.cursor(conn).execute("DELETE FROM integration_leases")
        assert mine.retake(conn, hook["id"], time.time(), time.time() + 60)
    assert not mine.lost(hook["id"]) and _leases(services) == [(hook["id"], "me:1")]
    with services.database.write() as conn:
        mine.finished(conn, [(hook["id"], kept[0].id)])
    assert _leases(services) == []


def test_a_run_whose_writes_cannot_be_handed_over_keeps_its_turn_until_they_are_committed(
        fast_services: Any) -> None:
    # Removing a key never read leaves the stored size unknown without a read: such a run's
    # writes are not handed over to the next run, which then reads them from the database.
    services = fast_services
    projects.create(services, ADMIN, {"id": "w", "title": "Worker"})
    script = "storage.remove('never-read');\n" + COUNTER
    hook = integrations.create(services, ADMIN, "w", {"type": "script", "script": script})
    worker = RunningWorker(services, kinds=("script",))
    try:
        _push_many(services, 40)
        wait_for(lambda: _all_done(services), timeout=180)
    finally:
        worker.stop()
    assert kv.IntegrationStorage(services.database, hook["id"]).get("counter") == "40"
    assert worker.worker.handover.pending() == 0 and _leases(services) == []
