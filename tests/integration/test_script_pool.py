"""The script pool: real child processes running the real engine. A child that dies costs its
run only; a child that stops answering is killed past the deadline; a project's runaways do
not hold another project's run; the child knows nothing but the run's inputs."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from typing import Any

from firehook.scripts import MemoryStorage, ScriptLimits, limits, pool


def request(source: str, project: str = "a", *, timeout: float = 20.0, storage: Any = None,
            log: Callable[[str], None] | None = None, activity: str = '{"type":"environment.push"}') -> pool.Request:
    return pool.Request(project_id=project, source=source, activity_json=activity, project={"id": project},
                        variables={"NAME": "value"}, storage=storage if storage is not None else MemoryStorage(),
                        limits=ScriptLimits(timeout=timeout), log=log or (lambda line: None))


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_a_run_in_a_child_logs_reads_and_writes_storage() -> None:
    async def main() -> None:
        the_pool = pool.ScriptPool(2)
        storage = MemoryStorage({"counter": "41"})
        lines: list[str] = []
        try:
            result = await the_pool.run(request(
                "var c = storage.get('counter'); storage.set('counter', c + 1);"
                "console.log(activity.type, project.id, variables.NAME, storage.get('counter'), typeof process);",
                storage=storage, log=lines.append))
            assert result.success and result.error is None and result.limit is None
            assert lines == ["environment.push a value 42 undefined"]
            assert storage.get("counter") == "42"
            assert the_pool.pids() and os.getpid() not in the_pool.pids()
            failed = await the_pool.run(request("null.x", log=lines.append))
            assert not failed.success and failed.error is not None and failed.error.startswith("TypeError")
        finally:
            await the_pool.aclose()
        assert the_pool.pids() == []

    run(main())


def _started(lines: list[str]) -> asyncio.Event:
    """An event set when the script's first log line arrives (it is then running in a child)."""
    event = asyncio.Event()
    original = lines.append

    def append(line: str) -> None:
        original(line)
        event.set()

    lines.append = append  # type: ignore[method-assign]
    return event


class _Lines(list[str]):
    pass


def test_a_child_that_dies_costs_its_run_only() -> None:
    async def main() -> None:
        the_pool = pool.ScriptPool(1)
        lines = _Lines()
        started = _started(lines)
        try:
            running = asyncio.create_task(the_pool.run(request("console.log('in'); for (;;) {}", log=lines.append)))
            await started.wait()
            [pid] = the_pool.busy_pids()
            os.kill(pid, signal.SIGKILL)
            result = await running
            assert not result.success and result.limit is None
            assert result.error == "the script's process stopped unexpectedly (killed by signal SIGKILL); the run was stopped"
            assert lines[-1] == result.error
            assert the_pool.crashed == 1
            after = await the_pool.run(request("console.log('next')"))
            assert after.success
            assert pid not in the_pool.pids()
        finally:
            await the_pool.aclose()

    run(main())


def test_a_child_that_stops_answering_is_killed_past_the_deadline() -> None:
    async def main() -> None:
        the_pool = pool.ScriptPool(1, kill_grace=0.2)
        lines = _Lines()
        started = _started(lines)
        try:
            running = asyncio.create_task(the_pool.run(request("console.log('in'); for (;;) {}", timeout=0.5,
                                                               log=lines.append)))
            await started.wait()
            [pid] = the_pool.busy_pids()
            os.kill(pid, signal.SIGSTOP)  # the engine's own deadline can no longer fire
            result = await running
            assert not result.success and result.limit == limits.TIMEOUT
            assert result.error == "time limit of 0.5 s exceeded" and lines[-1] == result.error
            assert the_pool.killed == 1
            assert (await the_pool.run(request("1"))).success
            assert pid not in the_pool.pids()
        finally:
            await the_pool.aclose()

    run(main())


def test_runaways_of_one_project_do_not_hold_another_projects_run() -> None:
    async def main() -> None:
        the_pool = pool.ScriptPool(2)
        a_lines = _Lines()
        a_started = _started(a_lines)
        try:
            await the_pool.run(request("1"))  # a child is up
            runaways = [asyncio.create_task(the_pool.run(request("console.log('A'); for (;;) {}", "A", timeout=60,
                                                                 log=a_lines.append))) for _ in range(2)]
            await a_started.wait()
            while the_pool.holding().get("A", 0) < 2:  # both children are A's now
                await asyncio.sleep(0.01)
            result = await the_pool.run(request("console.log('B')", "B"))
            assert result.success
            assert not any(task.done() for task in runaways)  # B did not wait for A's deadline
            assert the_pool.holding() == {"A": 2}
            # A third run of A waits, though the spare B used is idle: A may not take a spare.
            third = asyncio.create_task(the_pool.run(request("1", "A")))
            await asyncio.sleep(0)
            assert len(the_pool.pids()) >= 3 and the_pool.busy_pids() and the_pool.holding() == {"A": 2}
            assert not third.done() and len(the_pool._waiting) == 1
            for task in runaways:
                task.cancel()
            third.cancel()
        finally:
            await the_pool.aclose()

    run(main())


def test_a_free_child_goes_to_the_project_below_its_share_first() -> None:
    pool_ = pool.ScriptPool(2)
    loop = asyncio.new_event_loop()
    try:
        futures = [loop.create_future() for _ in range(3)]
        jobs = [pool._Job(request("1", project), future) for project, future in zip("AAB", futures, strict=True)]
        pool_._waiting.extend(jobs)
        pool_._holding["A"] = 1
        assert pool_._next(fair_only=False) is jobs[2]  # B, though A's runs came first
        pool_._holding["B"] = 1
        assert pool_._next(fair_only=True) is None  # everyone is at its share: no spare for it
        assert pool_._next(fair_only=False) is jobs[0]  # a regular child takes the oldest
    finally:
        loop.close()


def test_inputs_beyond_json_a_dead_idle_child_and_checked_storage_calls() -> None:
    async def main() -> None:
        the_pool = pool.ScriptPool(1)
        lines: list[str] = []
        try:
            # A variable's JSON value beyond 64 bits reaches the script as JavaScript reads it.
            big = pool.Request(project_id="a", source="console.log(typeof variables.BIG, variables.BIG > 1e29)",
                               activity_json="{}", project={"id": "a"}, variables={"BIG": 123456789012345678901234567890},
                               storage=MemoryStorage(), limits=ScriptLimits(timeout=20), log=lines.append)
            result = await the_pool.run(big)
            assert result.success and lines == ["number true"]
            # A child that died while idle costs no run: the next one goes to another child.
            for pid in the_pool.pids():
                os.kill(pid, signal.SIGKILL)
            while any(os.path.exists(f"/proc/{pid}/status") and "zombie" not in
                      open(f"/proc/{pid}/status").read() for pid in the_pool.pids()):
                await asyncio.sleep(0.01)
            after = await the_pool.run(request("console.log('after')", log=lines.append))
            assert after.success and lines[-1] == "after"
        finally:
            await the_pool.aclose()
        # The parent checks a child's storage calls as the script's own are checked.
        storage = MemoryStorage()
        too_long = {"t": "call", "op": "set", "args": ["k" * 300, "1"]}
        answer = await pool._storage_call(storage, ScriptLimits(), too_long)
        assert answer["error"] == "storage key is 300 bytes; the limit is 256 bytes"
        for bad in ({"op": "set", "args": [["list"], "1"]}, {"op": "drop", "args": []}, {"op": "get", "args": "k"}):
            try:
                await pool._storage_call(storage, ScriptLimits(), {"t": "call", **bad})
            except pool._Violation:
                pass
            else:
                raise AssertionError(f"accepted {bad}")
        assert storage.get("k" * 300) is None

    run(main())


def test_runs_fail_when_no_child_can_start_and_close_stops_a_starting_child() -> None:
    async def main() -> None:
        broken = pool.ScriptPool(1, env={**os.environ, "PYTHONHOME": "/nonexistent"})
        try:
            result = await broken.run(request("1"))
            assert not result.success and result.error is not None
            assert result.error.startswith("the run could not start: no script process could start")
        finally:
            await broken.aclose()
        starting = pool.ScriptPool(1)
        task = asyncio.create_task(starting.run(request("1")))
        while not starting._starting_procs:
            await asyncio.sleep(0.001)
        [proc] = list(starting._starting_procs)
        await starting.aclose()
        assert proc.returncode is not None  # killed and reaped, not left waiting for input
        task.cancel()

    run(main())


def test_a_pool_with_an_idle_timeout_stops_its_processes_and_starts_again() -> None:
    async def main() -> None:
        the_pool = pool.ScriptPool(1, idle_timeout=0.2)
        try:
            assert (await the_pool.run(request("1"))).success
            while the_pool.pids():  # bounded by the test's timeout, not asserted as a speed
                await asyncio.sleep(0.05)
            assert (await the_pool.run(request("console.log('again')"))).success
            assert the_pool.started >= 2
        finally:
            await the_pool.aclose()

    run(main())
