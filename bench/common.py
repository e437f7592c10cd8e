"""What the scenarios of ``python -m bench`` share: processes, the API, memory, statistics.

Every process the harness starts is tracked by its PID here and stopped by that PID; nothing
is ever looked up or killed by name (other people's servers may run on the same machine).
All traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp

from bench import procs
from tests import support

KEY = "bench-shared-key-0123456789abcdef"
PROJECT = "bench"
#: The registry default of the poll interval: tests/support.py sets 0.1 s for speed, the
#: benchmark measures firehook as shipped.
DEFAULT_POLL_INTERVAL = "0.5"


class BenchError(RuntimeError):
    """A scenario could not be measured (a process died, a check failed, a time bound hit)."""


# ---------------------------------------------------------------------------------------------
# the machine


def machine() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    node = shutil.which("node")
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "memory_mib": round(mem_kb / 1024),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "aiohttp": aiohttp.__version__,
        "node": _node_version(node) if node else None,
    }


def _node_version(node: str) -> str | None:
    try:
        return subprocess.run([node, "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# ---------------------------------------------------------------------------------------------
# statistics


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0–100) by linear interpolation between closest ranks."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    if len(ordered) == 1:
        return float(ordered[0])
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (rank - low))


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99/max of durations given in seconds, in milliseconds."""
    return {
        "p50_ms": round(percentile(seconds, 50) * 1000, 2),
        "p95_ms": round(percentile(seconds, 95) * 1000, 2),
        "p99_ms": round(percentile(seconds, 99) * 1000, 2),
        "max_ms": round(max(seconds) * 1000, 2),
        "n": len(seconds),
    }


# ---------------------------------------------------------------------------------------------
# documents


def fixture(name: str) -> dict[str, Any]:
    return support.fixture_doc(name)


def activity_doc(size: int | None = None, *, base: str = "push-complete") -> dict[str, Any]:
    """A real Upsun ``environment.push`` (complete, success), without its id so that firehook
    creates a new activity for every copy; padded in ``log`` to about ``size`` bytes of JSON."""
    doc = copy.deepcopy(fixture(base))
    doc.pop("id", None)
    doc.pop("_links", None)
    doc.update(type="environment.push", state="complete", result="success")
    if size is not None:
        doc["log"] = ""
        base_len = len(json.dumps(doc, separators=(",", ":")).encode())
        doc["log"] = "x" * max(0, size - base_len)
    return doc


def dumps(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


# ---------------------------------------------------------------------------------------------
# memory and CPU of process trees (bench/procs.py): a name is a root PID and all its descendants

MemorySampler = procs.MemorySampler
CpuMeter = procs.CpuMeter


def idle_memory(pid: int) -> dict[str, Any]:
    """Memory of a process and its descendants now: summed RSS, VmHWM and PSS (MiB)."""
    return procs.tree_memory(pid)


# ---------------------------------------------------------------------------------------------
# processes


#: Processes that firehook left running after it was stopped (then killed here), for the report.
LEFTOVERS: list[str] = []


class Fleet:
    """The firehook processes of one scenario: one ``serve`` and optional ``worker`` processes,
    on SQLite (a temporary data directory) or on a PostgreSQL database created for it.

    Stopped (SIGTERM to the PIDs started here, SIGKILL after a grace) and cleaned up on exit.
    """

    def __init__(self, database: str, *, workers: int = 0, embedded_worker: bool = True,
                 env: dict[str, str] | None = None) -> None:
        if database not in ("sqlite", "postgres"):
            raise ValueError(database)
        self.database = database
        self.worker_count = workers
        self.embedded_worker = embedded_worker
        self.base = Path(tempfile.mkdtemp(prefix="firehook-bench-"))
        self.env = {
            "FIREHOOK_POLL_INTERVAL": DEFAULT_POLL_INTERVAL,
            "FIREHOOK_OUTBOUND_ALLOW": "127.0.0.1/32",
            **(env or {}),
        }
        self.pg: support.PostgresDatabase | None = None
        self.serve: support.ServerProcess | None = None
        self.workers: list[support.ServerProcess] = []
        self.settled: dict[str, Any] = {}
        self.leftovers: list[int] = []

    def __enter__(self) -> Fleet:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        if self.database == "postgres":
            try:
                self.pg = support.PostgresDatabase()
            except Exception as exc:
                raise BenchError(f"PostgreSQL is not reachable at {support.PG_ADMIN_URL}: {exc}") from exc
            self.env["FIREHOOK_DATABASE_URL"] = self.pg.url
            upgrade_env = {k: v for k, v in os.environ.items() if not k.startswith("FIREHOOK_")}
            upgrade_env["FIREHOOK_DATABASE_URL"] = self.pg.url
            done = subprocess.run(support.firehook_command() + ["db:upgrade"], env=upgrade_env,
                                  capture_output=True, text=True, timeout=120)
            if done.returncode != 0:
                raise BenchError(f"firehook db:upgrade failed: {done.stdout}{done.stderr}")
        args = [] if self.embedded_worker else ["--no-worker"]
        self.serve = support.ServerProcess(self.base / "serve", args=args, env=self.env)
        self.serve.wait_ready(60)
        for i in range(self.worker_count):
            # Workers share serve's data directory (only the database matters to them).
            proc = support.ServerProcess(self.base / f"worker{i}", command="worker", env=self.env)
            self.workers.append(proc)
        # A worker is ready once its loop has started (it logs event=worker.start): its imports
        # (the script engine among them) take seconds on a busy machine and must not fall
        # inside a measured phase.
        deadline = time.monotonic() + 60
        for proc in self.workers:
            while "event=worker.start" not in proc.output():
                if proc.proc.poll() is not None:
                    raise BenchError(f"firehook worker exited with {proc.proc.returncode}:\n{proc.output()[-2000:]}")
                if time.monotonic() > deadline:
                    raise BenchError(f"firehook worker did not start within 60 s:\n{proc.output()[-2000:]}")
                time.sleep(0.1)
        # serve's worker runs in a child process (and script pools are children again): wait
        # until every tree has its processes and is idle, so that no start-up work falls in a
        # measured phase or in the idle memory.
        self.settled = procs.wait_quiet(self.pids().values(), timeout=45)
        self.check_alive()

    @property
    def base_url(self) -> str:
        assert self.serve is not None
        return self.serve.base_url

    @property
    def token(self) -> str:
        assert self.serve is not None
        return self.serve.token

    @property
    def database_url(self) -> str:
        if self.pg is not None:
            return self.pg.url
        return "sqlite:///" + str(self.base / "serve" / "firehook.db")

    def pids(self) -> dict[str, int]:
        out = {}
        if self.serve is not None:
            out["serve"] = self.serve.proc.pid
        for i, proc in enumerate(self.workers):
            out[f"worker{i}"] = proc.proc.pid
        return out

    def check_alive(self) -> None:
        for name, proc in [("serve", self.serve), *((f"worker{i}", w) for i, w in enumerate(self.workers))]:
            if proc is not None and proc.proc.poll() is not None:
                raise BenchError(f"firehook {name} exited with {proc.proc.returncode}:\n{proc.output()[-2000:]}")

    def stop_servers(self) -> None:
        """Stop serve and the workers (SIGTERM, SIGKILL after a grace), then any descendant
        they left running. The data directory stays until :meth:`close`."""
        # The descendants are taken before stopping: if a server is killed after its grace,
        # children it could not stop would be left running (re-parented away from it).
        members = [m for pid in self.pids().values() for m in procs.snapshot(pid)]
        for proc in [*self.workers, self.serve]:
            if proc is not None and proc.proc.poll() is None:
                with contextlib.suppress(Exception):
                    proc.stop(timeout=15)
        left = procs.kill_leftovers(members)
        self.leftovers += left
        if left:
            LEFTOVERS.append(f"{len(left)} descendant(s) of the {self.database} fleet still ran after "
                             f"their server stopped (killed by the harness): PIDs {left}")

    def close(self) -> None:
        self.stop_servers()
        for proc in [*self.workers, self.serve]:
            if proc is not None:
                with contextlib.suppress(Exception):
                    proc.stop(timeout=15)  # closes its log file
        if self.pg is not None:
            with contextlib.suppress(Exception):
                self.pg.drop()
        shutil.rmtree(self.base, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# the API


def new_loop() -> asyncio.AbstractEventLoop:
    """uvloop when installed (uvicorn[standard] brings it): less client CPU per request."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def loop_name() -> str:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def run(coro: Any) -> Any:
    loop = new_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


class Api:
    """A few API calls over one aiohttp session (setup, not measured)."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    async def call(self, session: aiohttp.ClientSession, method: str, path: str, body: Any = None) -> Any:
        async with session.request(method, self.base_url + path, data=None if body is None else dumps(body),
                                   headers=self.headers) as response:
            text = await response.text()
            if response.status >= 300:
                raise BenchError(f"{method} {path}: {response.status} {text[:500]}")
            return json.loads(text) if text else None

    async def setup_project(self, webhooks: Sequence[str] = (), key: str = KEY,
                            project: str = PROJECT) -> list[str]:
        """The project, and one webhook integration per URL (all events, state complete)."""
        ids = []
        async with aiohttp.ClientSession() as session:
            await self.call(session, "POST", "/api/projects", {"id": project, "title": "Benchmark"})
            for url in webhooks:
                created = await self.call(session, "POST", f"/api/projects/{project}/integrations", {
                    "type": "webhook", "url": url, "shared_key": key, "events": ["*"], "states": ["complete"],
                })
                ids.append(created["_embedded"]["entity"]["id"])
        return ids


def client_session(limit: int) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=0, force_close=False)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120))


# ---------------------------------------------------------------------------------------------
# the store, read directly for the end-to-end checks


def store_counts(database_url: str, project: str = PROJECT) -> dict[str, Any]:
    """What the store holds for the benchmark project: activities, and webhook runs by state
    and result, with their recorded attempts (read with firehook's own schema)."""
    import sqlalchemy as sa

    from firehook.store import db as dbmod
    from firehook.store.schema import activities, attempts, runs

    database = dbmod.Database(database_url, pool_size=1)
    try:
        with database.read() as conn:
            sources = conn.execute(
                sa.select(sa.func.count()).select_from(activities)
                .where(activities.c.project_id == project, activities.c.integration_id.is_(None))
            ).scalar_one()
            by_state = conn.execute(
                sa.select(activities.c.state, activities.c.result, sa.func.count())
                .where(activities.c.project_id == project, activities.c.integration_id.is_not(None))
                .group_by(activities.c.state, activities.c.result)
            ).all()
            attempt_rows = conn.execute(
                sa.select(sa.func.count(), sa.func.count(sa.distinct(attempts.c.run_pk)),
                          sa.func.sum(sa.case((attempts.c.status.between(200, 299), 1), else_=0)))
                .select_from(attempts.join(runs, runs.c.pk == attempts.c.run_pk))
            ).one()
            finished = conn.execute(sa.select(sa.func.count()).select_from(runs).where(runs.c.finished)).scalar_one()
            total_runs = conn.execute(sa.select(sa.func.count()).select_from(runs)).scalar_one()
    finally:
        database.dispose()
    return {
        "activities": int(sources),
        "runs": int(total_runs),
        "runs_finished": int(finished),
        "runs_by_state": {f"{s}/{r}": int(n) for s, r, n in by_state},
        "attempts": int(attempt_rows[0] or 0),
        "runs_with_attempt": int(attempt_rows[1] or 0),
        "attempts_2xx": int(attempt_rows[2] or 0),
    }


def run_ids(database_url: str, project: str = PROJECT) -> set[str]:
    import sqlalchemy as sa

    from firehook.store import db as dbmod
    from firehook.store.schema import activities

    database = dbmod.Database(database_url, pool_size=1)
    try:
        with database.read() as conn:
            return set(conn.execute(
                sa.select(activities.c.id)
                .where(activities.c.project_id == project, activities.c.integration_id.is_not(None))
            ).scalars())
    finally:
        database.dispose()


def finished_runs(database_url: str) -> int:
    """Runs the store has finished (complete, whatever the result)."""
    import sqlalchemy as sa

    from firehook.store.schema import runs

    database = _cached_db(database_url)
    with database.read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(runs).where(runs.c.finished)).scalar_one())


_DBS: dict[str, Any] = {}


def _cached_db(url: str) -> Any:
    from firehook.store import db as dbmod

    if url not in _DBS:
        _DBS[url] = dbmod.Database(url, pool_size=1)
    return _DBS[url]


def dispose_cached() -> None:
    for database in _DBS.values():
        database.dispose()
    _DBS.clear()


def python() -> str:
    return sys.executable


@contextlib.contextmanager
def timer() -> Iterator[dict[str, float]]:
    out: dict[str, float] = {}
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        yield out
    finally:
        out["seconds"] = time.perf_counter() - t0
        out["client_cpu_seconds"] = time.process_time() - c0


# ---------------------------------------------------------------------------------------------
# sizes of one run of the harness


@dataclasses.dataclass(frozen=True)
class Config:
    """Counts and time bounds of every scenario. Each phase stops at its count or its time
    bound, whichever comes first, and reports which one it was."""

    quick: bool = False
    # intake
    intake_doc_bytes: int = 20 * 1024
    intake_clients: int = 8
    healthz_requests: int = 20_000
    single_requests: int = 20_000
    batch_docs: int = 40_000
    batch_lines: int = 500
    batch_clients: int = 2
    phase_seconds: float = 6.0
    warmup_requests: int = 200
    # fan-out
    fanout_deliveries: int = 10_000
    fanout_feed_seconds: float = 8.0
    fanout_drain_seconds: float = 60.0
    fanout_batch_lines: int = 100
    fanout_backlog: int = 4_000  # deliveries queued at most before the feed holds back (4 batches of 10 webhooks)
    ceiling_deliveries: int = 10_000
    webhook_concurrency: int = 256  # firehook's default FIREHOOK_WEBHOOK_CONCURRENCY
    # latency
    latency_rate: float = 500.0
    latency_seconds: float = 6.0
    latency_drain_seconds: float = 40.0  # after the last send, for every run to be delivered
    # scripts
    scripts_seconds: float = 5.0
    node_seconds: float = 3.0
    # database work of script runs
    dbwork_runs: int = 3_000
    dbwork_seconds: float = 60.0
    # scaling
    scaling_workers: tuple[int, ...] = (1, 2, 4)
    scaling_webhooks: int = 10
    # isolation: 2 runaway scripts of one project beside another project's trivial runs
    isolation_timeout: float = 30.0  # FIREHOOK_SCRIPT_TIMEOUT (the default): how long the runaways run
    isolation_runs: int = 10  # trivial runs (and dry runs) of project B beside the runaways
    isolation_baseline_runs: int = 5  # the same with nothing else running
    isolation_interval: float = 1.0  # seconds from the start of one of B's runs to the next
    isolation_healthz_rate: float = 100.0  # GET /healthz per second, open loop, in every phase
    isolation_healthz_seconds: float = 5.0  # /healthz alone, nothing running (the baseline)

    @classmethod
    def quick_config(cls) -> Config:
        return cls(
            quick=True, healthz_requests=500, single_requests=500, batch_docs=1_000, batch_lines=100,
            phase_seconds=3.0, warmup_requests=20, fanout_deliveries=400, fanout_feed_seconds=5.0,
            fanout_drain_seconds=60.0, fanout_batch_lines=50, fanout_backlog=300, ceiling_deliveries=1_000,
            latency_seconds=2.0,
            latency_drain_seconds=30.0, scripts_seconds=1.0, node_seconds=1.0, dbwork_runs=300,
            dbwork_seconds=30.0, isolation_timeout=12.0, isolation_runs=4, isolation_baseline_runs=2,
            isolation_healthz_seconds=2.0,
        )


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time a process has used so far, itself only (``/proc/<pid>/stat``)."""
    st = procs.stat(pid)
    return None if st is None else st.own


def pg_backend_pids(fleet: Fleet) -> list[int]:
    """The PostgreSQL server processes serving the fleet's database (same machine)."""
    if fleet.pg is None:
        return []
    import psycopg

    with psycopg.connect(support.PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (fleet.pg.name,)).fetchall()
    return [int(r[0]) for r in rows]


class PgCpu:
    """CPU used by the PostgreSQL backends of a fleet's database during a phase; backends that
    connect during the phase count from zero."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.before = {pid: cpu_seconds(pid) or 0.0 for pid in pg_backend_pids(fleet)}

    def stop(self, elapsed: float) -> dict[str, Any] | None:
        if self.fleet.pg is None:
            return None
        used = 0.0
        pids = pg_backend_pids(self.fleet)
        for pid in pids:
            now = cpu_seconds(pid)
            if now is not None:
                used += now - self.before.get(pid, 0.0)
        return {"cpu_seconds": round(used, 2), "cores_busy": round(used / elapsed, 2) if elapsed else None,
                "backends": len(pids)}
