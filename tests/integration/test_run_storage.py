"""A script run's storage: read once, written in memory, recorded with the run's outcome in
one transaction — through the real worker, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

from firehook.scripts import pool
from firehook.scripts.limits import ScriptLimits
from firehook.scripts.storage import QuotaStorage
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


def test_a_run_storage_says_which_calls_need_the_database(services: Any) -> None:
    """``answers_from_memory`` is true exactly when a call reads nothing from the database:
    the script pool then answers it on its event loop (checked here by counting the reads)."""
    projects.create(services, ADMIN, {"id": "w", "title": "Worker"})
    hook = integrations.create(services, ADMIN, "w", {"type": "script", "script": "1"})
    kv.IntegrationStorage(services.database, hook["id"]).set("stored", '"x"')  # 6 + 3 bytes
    reads = []
    real_read = services.database.read

    def counted() -> Any:
        reads.append(1)
        return real_read()

    services.database.read = counted  # type: ignore[method-assign]
    try:
        def promise_kept(run: kv.RunStorage, op: str, *args: str) -> bool:
            """Whether the run says the call needs no read, and the call then reads nothing."""
            said = run.answers_from_memory(op, args[0] if args else None)
            before = len(reads)
            if op == "set":
                QuotaStorage(run, ScriptLimits()).set(*args)  # the quota check reads old value and total
            else:
                getattr(run, op)(*args)
            if said:
                assert len(reads) == before, f"{op} said it reads nothing, and read"
            return said

        fresh = kv.RunStorage(services.database, hook["id"])
        assert not promise_kept(fresh, "get", "stored")  # read from the database, with the total...
        assert promise_kept(fresh, "get", "stored") and promise_kept(fresh, "total_bytes")  # ...once
        totals = kv.RunStorage(services.database, hook["id"])
        assert not promise_kept(totals, "total_bytes") and promise_kept(totals, "total_bytes")
        assert promise_kept(fresh, "set", "stored", "1")  # its old value and the total are known
        assert not promise_kept(fresh, "set", "other", "2")  # the old value of `other` is not
        assert promise_kept(fresh, "remove", "never-read") and promise_kept(fresh, "clear")
        assert promise_kept(fresh, "get", "anything") and promise_kept(fresh, "set", "new", "3")

        handed = kv.RunStorage(services.database, hook["id"], kv.Base({"stored": '"y"'}, False, 9))
        assert promise_kept(handed, "set", "stored", "4")  # an earlier run's writes answer it
        assert not promise_kept(handed, "get", "elsewhere")
        wiped = kv.RunStorage(services.database, hook["id"], kv.Base({"kept": "1"}, True, 5))
        assert promise_kept(wiped, "get", "elsewhere") and promise_kept(wiped, "set", "x", "5")
        assert reads, "some calls must have read"
    finally:
        services.database.read = real_read  # type: ignore[method-assign]


def test_the_pool_answers_a_storage_call_on_its_loop_when_it_reads_nothing(services: Any, monkeypatch: Any) -> None:
    """A child's storage call that reads nothing is answered on the pool's event loop; one that
    reads the database goes to a thread (the loop never waits on the database)."""
    projects.create(services, ADMIN, {"id": "w", "title": "Worker"})
    hook = integrations.create(services, ADMIN, "w", {"type": "script", "script": "1"})
    kv.IntegrationStorage(services.database, hook["id"]).set("stored", '"x"')
    hops: list[str] = []
    real_to_thread = asyncio.to_thread

    async def counted(fn: Any, *args: Any) -> Any:
        hops.append(getattr(fn, "__name__", "?"))
        return await real_to_thread(fn, *args)

    monkeypatch.setattr(asyncio, "to_thread", counted)
    handed = kv.RunStorage(services.database, hook["id"], kv.Base({"last": '"a1"'}, False, 8))
    fresh = kv.RunStorage(services.database, hook["id"])

    async def calls() -> list[dict[str, Any]]:
        return [await pool._storage_call(handed, ScriptLimits(), {"op": "set", "args": ["last", '"a2"']}),
                await pool._storage_call(handed, ScriptLimits(), {"op": "get", "args": ["last"]}),
                await pool._storage_call(fresh, ScriptLimits(), {"op": "get", "args": ["stored"]})]

    replies = asyncio.run(calls())
    assert replies == [{"t": "reply", "value": None}, {"t": "reply", "value": '"a2"'}, {"t": "reply", "value": '"x"'}]
    assert hops == ["get"]  # only the read of `stored` left the loop
