"""A script run's storage: read once, written in memory, recorded with the run's outcome in
one transaction — through the real worker, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from firehook.service import intake, integrations, projects
from firehook.store import kv
from tests.integration.test_worker import ADMIN, RunningWorker, finished, log_messages
from tests.integration.test_worker import fast_services as fast_services  # noqa: F401  (the fixture)
from tests.receivers import wait_for

COUNTER = """
var counter = storage.get('counter') || 0;
storage.set('counter', counter + 1);
storage.set('scratch', 'x');
storage.remove('scratch');
console.log('counter', storage.get('counter'), 'scratch', storage.get('scratch'));
if (activity.environments[0] === 'boom') { throw new Error('failed after writing'); }
"""


def push(services: Any, environment: str) -> str:
    accepted = intake.ingest(services, ADMIN, "w", {"type": "environment.push", "environments": [environment]})
    return accepted.runs[0]["id"]


def test_runs_count_and_a_failing_run_keeps_its_writes(fast_services: Any) -> None:
    services = fast_services
    projects.create(services, ADMIN, {"id": "w", "title": "Worker"})
    hook = integrations.create(services, ADMIN, "w", {"type": "script", "script": COUNTER})
    store = kv.IntegrationStorage(services.database, hook["id"])
    store.set("scratch", '"left over"')  # removed by the first run
    worker = RunningWorker(services, kinds=("script",))
    try:
        for n, environment in enumerate(["main", "boom", "main"], start=1):
            run_id = push(services, environment)  # one at a time: each run sees the last one's writes
            doc = wait_for(lambda run_id=run_id: finished(services, run_id))
            assert doc["result"] == ("failure" if environment == "boom" else "success")
            assert f"counter {n} scratch null" in log_messages(services, run_id)
            assert store.get("counter") == str(n)  # written with the outcome, failure included
        assert store.get("scratch") is None
        assert store.items() == {"counter": "3"}
    finally:
        worker.stop()


def test_run_storage_reads_once_and_sees_its_own_writes(services: Any) -> None:
    projects.create(services, ADMIN, {"id": "w", "title": "Worker"})
    hook = integrations.create(services, ADMIN, "w", {"type": "script", "script": "1"})
    stored = kv.IntegrationStorage(services.database, hook["id"])
    stored.set("a", '"12345"')  # 1 + 7 bytes
    stored.set("b", "1")  # 1 + 1 bytes
    run = kv.RunStorage(services.database, hook["id"])
    assert run.get("a") == '"12345"' and run.total_bytes() == 10
    run.set("a", '"1"')  # 1 + 3: replaces 8 bytes
    run.set("é", "2")  # 2 + 1 bytes
    assert run.get("a") == '"1"' and run.total_bytes() == 2 + 4 + 3
    assert stored.get("a") == '"12345"'  # nothing written before the outcome
    run.clear()
    run.set("c", "true")
    assert run.get("a") is None and run.total_bytes() == 5
    assert run.ops() == [("clear",), ("set", "c", "true")]
    with services.database.write() as conn:
        kv.apply(conn, [(hook["id"], run.ops())])
    assert stored.items() == {"c": "true"}


def test_writes_of_a_deleted_integration_go_nowhere(services: Any) -> None:
    projects.create(services, ADMIN, {"id": "w", "title": "Worker"})
    hook = integrations.create(services, ADMIN, "w", {"type": "script", "script": "1"})
    other = integrations.create(services, ADMIN, "w", {"type": "script", "script": "1"})
    integrations.delete(services, ADMIN, "w", hook["id"])
    with services.database.write() as conn:
        kv.apply(conn, [(hook["id"], [("set", "k", "1")]), (other["id"], [("set", "k", "2"), ("remove", "k"),
                                                                          ("set", "j", "3")])])
    assert kv.IntegrationStorage(services.database, hook["id"]).items() == {}
    assert kv.IntegrationStorage(services.database, other["id"]).items() == {"j": "3"}


def test_freed_slots_are_claimed_in_batches(tmp_path: Any, database_url: str) -> None:
    from firehook import assembly
    from tests.conftest import make_settings

    # A poll interval no test waits for: every claim after the first comes from freed slots.
    services = assembly.services(make_settings(tmp_path, database_url, poll_interval=600.0, workers=2),
                                 migrate=True)
    try:
        projects.create(services, ADMIN, {"id": "w", "title": "Worker"})
        integrations.create(services, ADMIN, "w", {"type": "script", "script": "storage.set('n', 1);"})
        runs = [push(services, "main") for _ in range(40)]
        worker = RunningWorker(services, kinds=("script",))
        try:
            for run_id in runs:
                wait_for(lambda run_id=run_id: finished(services, run_id))
        finally:
            worker.stop()
        executor = worker.worker.executors["script"]
        batch = worker.worker.batch(executor)
        assert executor.concurrency == 16 and batch == 4  # 8 runs held per script process
        # the first claim fills 16 slots (more: runs waiting for their integration's turn do
        # not hold one); each later one waits for 4 free slots and takes all free ones; one
        # more finds the queue empty (a claim per finished run would be ~25)
        assert worker.worker.claim_rounds <= 1 + (40 - 16) // batch + 1, worker.worker.claim_rounds
    finally:
        services.database.dispose()


def test_a_run_storage_says_whether_the_run_used_it(services: Any) -> None:
    """A run that never called its storage depends on no earlier run's writes (the worker then
    records it whatever becomes of those): any call at all, a read included, counts."""
    projects.create(services, ADMIN, {"id": "w", "title": "Worker"})
    hook = integrations.create(services, ADMIN, "w", {"type": "script", "script": "1"})
    base = kv.Base({"counter": "1"}, False, 8)
    assert kv.RunStorage(services.database, hook["id"], base).touched is False
    for use in (lambda s: s.get("counter"), lambda s: s.set("k", "1"), lambda s: s.remove("k"),
                lambda s: s.clear(), lambda s: s.total_bytes()):
        run = kv.RunStorage(services.database, hook["id"], base)
        use(run)
        assert run.touched is True
