"""The process side of the ``dbwork`` scenario (``bench/dbwork.py`` starts it; not run by hand).

    python -m bench.dbwork_child --runs N --seconds S --out FILE

Settings come from the ``FIREHOOK_*`` environment (the data directory of a ``serve --no-worker``
that queued N script runs, one per activity, and was stopped). Two measurements, each with the
CPU of this whole process (every thread) from ``time.process_time()``:

``worker``: firehook's real worker as ``firehook.assembly.worker(…, kinds=("script",))`` builds
it — its claim, start, recording and batching writer, its turns, and its real script executor
(storage backend, variables, masking) — with only the script processes replaced:
``ScriptPool.run`` (patched in this process) does the host side of a script whose one
statement is ``storage.set('last', activity.id)``: the pool's own handler of a child's storage
call over the backend the executor built (on the event loop when the call reads nothing, else
in a thread, as for a real child), and reports success. So the CPU is the data path's work
of a script run, not the JavaScript engine's. Subtracted (and reported): the polling that
tells when all runs are finished, and the stub reading the activity id from its JSON.

``floor``: the same writes in raw ``sqlite3`` on a scratch file with firehook's pragmas, one
thread, no framework: per claim round of ``group`` runs one transaction that claims, starts
and reads the runs; per run one transaction for its storage upsert; per round one that
finishes the runs and deletes their jobs.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import logging
import os
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

RUN_DOC = json.dumps({"id": "r" * 16, "type": "integration.script", "state": "complete", "result": "success",
                      "project": "bench", "integration": "i" * 16, "started_at": "2026-01-01T00:00:00.000000Z",
                      "timings": {"wait": 0.001, "execute": 0.002}, "_links": {"self": {"href": "x" * 120}},
                      "log": "", "payload": {"activity": "a" * 16}})


class StubEngine:
    """Stands in for the script processes (``ScriptPool.run``): a script whose one statement is
    ``storage.set('last', activity.id)``, its storage call handled by the pool's own handler of
    a child's storage calls (``pool._storage_call``: ``QuotaStorage``'s rules and quota, then the
    backend the executor built, on the event loop when it reads nothing, else in a thread),
    then success."""

    def __init__(self) -> None:
        self.calls: collections.Counter[str] = collections.Counter()
        self.storage_cpu = 0.0  # the backend's own calls, in whichever thread they ran
        self.stub_cpu = 0.0  # reading the activity id out of its JSON: not database work
        self.errors: list[str] = []
        self._lock = threading.Lock()

    def timed(self, backend: Any) -> Any:
        return _Timed(backend, self)

    async def run(self, request: Any) -> Any:
        from firehook.scripts import pool
        from firehook.scripts import storage as storage_mod

        began = time.time()
        started = time.thread_time()
        activity_id = str(_loads(request.activity_json)["id"])
        self.stub_cpu += time.thread_time() - started
        reply = await pool._storage_call(self.timed(request.storage), request.limits, {
            "op": "set", "args": ["last", storage_mod.encode_value(activity_id)]})
        error = reply.get("error")
        with self._lock:
            self.calls[activity_id] += 1
            if error:  # reported, and the run fails: never a silent success
                self.errors.append(str(error)[:300])
        return pool.Result(success=error is None, error=error, limit=None, duration_ms=0.0, began_at=began,
                           waited=0.0)


class _Timed:
    """A storage backend whose calls' CPU is added to the engine's ``storage_cpu``."""

    def __init__(self, backend: Any, engine: StubEngine) -> None:
        self._backend = backend
        self._engine = engine

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._backend, name)
        if name not in ("get", "set", "remove", "clear", "total_bytes"):
            return attribute  # answers_from_memory, read by the pool

        def call(*args: Any) -> Any:
            started = time.thread_time()
            try:
                return attribute(*args)
            finally:
                spent = time.thread_time() - started
                with self._engine._lock:
                    self._engine.storage_cpu += spent

        return call


def _loads(text: str) -> Any:
    try:
        import orjson
    except ImportError:
        return json.loads(text)
    return orjson.loads(text)


def _configure_logging() -> None:
    """As ``firehook worker`` does (its INFO lines are part of its cost), to this stderr."""
    try:
        from firehook.cli import server

        server.configure_logging()
    except (ImportError, AttributeError):
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")


async def _measure_worker(runs: int, seconds: float) -> dict[str, Any]:
    import sqlalchemy as sa

    from firehook import assembly, collector
    from firehook import settings as settings_mod
    from firehook.scripts import pool
    from firehook.store.schema import runs as runs_table

    settings = settings_mod.load()
    built = assembly.services(settings, migrate=False)
    engine = StubEngine()
    # In this process only: the executor hands each run to its script pool, whose children
    # would run the engine; the stub answers in their place (no child is ever started).
    pool.ScriptPool.run = lambda _self, request: engine.run(request)  # type: ignore[method-assign]
    the_worker = assembly.worker(built, kinds=("script",))
    collector.settle()  # as firehook.worker_process does once its worker is built
    script_executor = next((e for e in getattr(the_worker, "executors", {}).values()
                            if getattr(e, "kind", None) == "script"), None)
    poll_cpu = 0.0

    def finished() -> int:
        nonlocal poll_cpu
        started = time.thread_time()
        with built.database.read() as conn:
            count = int(conn.execute(sa.select(sa.func.count()).select_from(runs_table)
                                     .where(runs_table.c.finished)).scalar_one())
        poll_cpu += time.thread_time() - started
        return count

    stop = asyncio.Event()
    cpu0, t0 = time.process_time(), time.monotonic()
    task = asyncio.create_task(the_worker.run(stop))
    deadline = t0 + seconds
    done = 0
    while time.monotonic() < deadline and not task.done():
        await asyncio.sleep(0.1)
        done = await asyncio.to_thread(finished)
        if done >= runs:
            break
    cpu, elapsed = time.process_time() - cpu0, time.monotonic() - t0
    stop.set()
    try:
        await asyncio.wait_for(task, 60)
    finally:
        built.database.dispose()
    measured = cpu - poll_cpu - engine.stub_cpu
    calls = sum(engine.calls.values())
    errors = list(engine.errors[:5])
    if not calls:
        errors.append("the stub engine was never called: the script executor no longer runs scripts through "
                      "firehook.scripts.pool.ScriptPool.run; adapt bench/dbwork_child.py")
    return {
        "runs_finished": done,
        "runs_wanted": runs,
        "bounded_by": "count" if done >= runs else "time",
        "seconds": round(elapsed, 3),
        "runs_per_second": round(done / elapsed, 1) if elapsed else None,
        "process_cpu_seconds": round(cpu, 4),
        "poll_cpu_seconds": round(poll_cpu, 4),
        "stub_cpu_seconds": round(engine.stub_cpu, 4),
        "cpu_seconds": round(measured, 4),
        "ms_per_run": round(measured * 1000 / done, 4) if done else None,
        "storage_cpu_seconds": round(engine.storage_cpu, 4),
        "storage_ms_per_run": round(engine.storage_cpu * 1000 / done, 4) if done else None,
        "executor": type(script_executor).__module__ + "." + type(script_executor).__qualname__
        if script_executor is not None else None,
        "concurrency": getattr(script_executor, "concurrency", None),
        "calls": calls,
        "called": sorted(engine.calls),
        "duplicate_calls": sum(n - 1 for n in engine.calls.values() if n > 1),
        "errors": errors,
    }


def floor(path: Path, runs: int, group: int, seconds: float) -> dict[str, Any]:
    """The raw-sqlite3 floor of the same writes (see the module's docstring)."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        from firehook.store.db import SQLITE_PAGE_SIZE

        for pragma in (f"page_size={SQLITE_PAGE_SIZE}", "journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON",
                       "busy_timeout=30000"):
            conn.execute(f"PRAGMA {pragma}")
        conn.executescript("""
            CREATE TABLE f_runs (pk INTEGER PRIMARY KEY, doc TEXT NOT NULL, state TEXT NOT NULL, result TEXT,
                                 finished INTEGER NOT NULL DEFAULT 0);
            CREATE TABLE f_jobs (pk INTEGER PRIMARY KEY, run_pk INTEGER NOT NULL REFERENCES f_runs(pk),
                                 available_at REAL NOT NULL, owner TEXT, lease_until REAL);
            CREATE INDEX f_jobs_claim ON f_jobs (owner, available_at);
            CREATE TABLE f_kv (integration_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
                               PRIMARY KEY (integration_id, key));
        """)
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO f_runs (pk, doc, state) VALUES (?, ?, 'pending')",
                         [(i, RUN_DOC) for i in range(1, runs + 1)])
        conn.executemany("INSERT INTO f_jobs (pk, run_pk, available_at) VALUES (?, ?, 0)",
                         [(i, i) for i in range(1, runs + 1)])
        conn.execute("COMMIT")
        done = 0
        cpu0, t0 = time.process_time(), time.monotonic()
        while done < runs and time.monotonic() - t0 < seconds:
            conn.execute("BEGIN IMMEDIATE")
            claimed = conn.execute(
                "UPDATE f_jobs SET owner = 'bench', lease_until = ? WHERE pk IN (SELECT pk FROM f_jobs "
                "WHERE owner IS NULL AND available_at <= ? ORDER BY available_at LIMIT ?) RETURNING pk, run_pk",
                (time.time() + 60, time.time(), group)).fetchall()
            if not claimed:
                conn.execute("COMMIT")
                break
            run_pks = [(r[1],) for r in claimed]
            conn.executemany("UPDATE f_runs SET state = 'in_progress' WHERE pk = ?", run_pks)
            marks = ",".join("?" * len(run_pks))
            docs = conn.execute(f"SELECT pk, doc FROM f_runs WHERE pk IN ({marks})",  # noqa: S608
                                [p for (p,) in run_pks]).fetchall()
            conn.execute("COMMIT")
            for pk, _doc in docs:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("INSERT INTO f_kv (integration_id, key, value) VALUES ('i', 'last', ?) "
                             "ON CONFLICT (integration_id, key) DO UPDATE SET value = excluded.value",
                             (json.dumps(f"run{pk}"),))
                conn.execute("COMMIT")
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("UPDATE f_runs SET state = 'complete', result = 'success', finished = 1, doc = ? "
                             "WHERE pk = ?", [(doc, pk) for pk, doc in docs])
            conn.executemany("DELETE FROM f_jobs WHERE pk = ?", [(r[0],) for r in claimed])
            conn.execute("COMMIT")
            done += len(claimed)
        cpu, elapsed = time.process_time() - cpu0, time.monotonic() - t0
        finished = conn.execute("SELECT count(*) FROM f_runs WHERE finished = 1").fetchone()[0]
        left = conn.execute("SELECT count(*) FROM f_jobs").fetchone()[0]
    finally:
        conn.close()
    return {"runs": done, "finished": finished, "jobs_left": left, "group": group, "seconds": round(elapsed, 3),
            "cpu_seconds": round(cpu, 4), "ms_per_run": round(cpu * 1000 / done, 4) if done else None,
            "ok": finished == runs and left == 0 and done == runs}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    _configure_logging()
    out: dict[str, Any] = {"pid": os.getpid()}
    try:
        out["worker"] = asyncio.run(_measure_worker(args.runs, args.seconds))
    except Exception as exc:
        out["worker"] = {"error": f"{type(exc).__name__}: {exc}"}
    with tempfile.TemporaryDirectory(prefix="firehook-bench-floor-") as tmp:
        group = int((out["worker"] or {}).get("concurrency") or 8)
        out["floor"] = floor(Path(tmp) / "floor.db", args.runs, group, args.seconds)
    args.out.write_text(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
