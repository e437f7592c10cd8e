"""Isolation: with 2 runaway scripts of project A going, a trivial run of project B and ``/healthz``.

One ``firehook serve`` on SQLite with ``FIREHOOK_WORKERS=2`` (two script processes per pool:
the worker child's, and serve's own for dry runs) and ``FIREHOOK_SCRIPT_TIMEOUT`` =
``cfg.isolation_timeout`` (30 s, the default; 12 s with ``--quick``). Project A has two script
integrations whose script is ``for (;;) {}``, each matching one activity type (runs of one
integration take turns, so two runaways need two integrations); project B has one whose
script is ``console.log('ok')``, matching everything.

- **baseline**, nothing else running: ``GET /healthz`` alone (5 s); then (after one
  unmeasured run and dry run that start the two pools) B's trivial runs and dry runs as
  below, ``/healthz`` sampled meanwhile.
- **runs**: one activity for each of A's integrations; once both runs are ``in_progress`` and
  both are seen running in the worker's script processes (each child past the CPU that
  starting a child costs, and still using CPU), B's activities are posted one at a time, one
  every ``cfg.isolation_interval`` (1 s; at once when the one before took longer). A
  B run's figure is its run document's ``created_at → completed_at``, both stamped by
  firehook in microseconds: the run is created in the intake's transaction, before the
  answer, so this bounds "intake answer → complete" from above, and neither the harness's
  clock nor its polling (every 20 ms, to know when to send the next one) enter it. Kept
  beside it: intake answer (harness, same system clock) → ``completed_at``, what the polling
  saw, and the run's ``timings.wait`` / ``execute``.
- **dry_runs**: two concurrent ``POST …/dry-run`` of ``for(;;){}`` from A in flight (they
  answer at the time limit), seen running in serve's own script processes; then B's trivial
  dry runs in the same way, the figure being the request's round trip.

In every phase a probe process of its own sends ``GET /healthz`` open loop at
``cfg.isolation_healthz_rate`` per second (each request at its scheduled time whatever
happened to the earlier ones) and keeps every latency. B's runs stop at their count or when
A's runaways come within 3 s of their time limit, whichever comes first (the JSON says which).

Checked: every B run answered 201 with one run and ended ``complete/success``, every B dry run
``success``; A's runs (and dry runs) were still running when B's last one ended, then ended
``failure`` with the time-limit message; every ``/healthz`` answered 200. Also given: the CPU
of the ``serve`` tree (its worker child and both pools) per phase, the script processes
started during each phase (spares for fairness), the pools' logged events (killed, crashed)
and the load average.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench import common, procs
from bench.profile import Profiler
from firehook import timefmt

PROJECT_A = "isolation-a"
PROJECT_B = "isolation-b"
RUNAWAY = "for (;;) {}"
TRIVIAL = "console.log('ok')"
#: One activity type per runaway integration of A: runs of one integration never overlap.
RUNAWAY_TYPES = ("environment.push", "environment.redeploy")
POLL = 0.02  # seconds between two reads of a B run's document
RUN_WAIT = 30.0  # seconds a B run may take before it is a failure
MARGIN = 3.0  # B's runs stop this long before A's runaways reach their time limit
KILL_GRACE = 2.0  # firehook.scripts.pool.KILL_GRACE: a child past its run's limit plus this is killed
SPIN_CORES = 0.1  # a child past its start-up using this much of a core is running a runaway
CHILD_MODULE = b"firehook.scripts.child"
POOL_EVENT = re.compile(r"event=script_pool\.(\w+)")


# ---------------------------------------------------------------------------------------------
# /healthz, open loop, from a process of its own


async def _probe(url: str, rate: float, stop: asyncio.Event) -> dict[str, Any]:
    """``GET url`` at ``rate`` per second, open loop (each request a task at its scheduled
    time), until ``stop``; the latencies of the answers and how late the sends were at worst."""
    samples: list[tuple[float, int]] = []  # (seconds, status; 0 = no answer)
    pending: set[asyncio.Task[None]] = set()
    lags: list[float] = []
    connector = aiohttp.TCPConnector(limit=200, limit_per_host=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:

        async def one() -> None:
            sent = time.monotonic()
            try:
                async with session.get(url) as response:
                    await response.read()
                    status = response.status
            except (aiohttp.ClientError, TimeoutError):
                status = 0
            samples.append((time.monotonic() - sent, status))

        for _ in range(3):  # warm-up, not counted: a connection open
            async with session.get(url) as response:
                await response.read()
        print("ready", flush=True)
        t0 = time.monotonic()
        i = 0
        while not stop.is_set():
            delay = t0 + i / rate - time.monotonic()
            if delay > 0:
                try:
                    await asyncio.wait_for(stop.wait(), delay)
                    break
                except TimeoutError:
                    pass
            # How late this send is: the probe's own lateness (a machine too busy to run it on
            # time), which every latency it measures carries too.
            lags.append(max(0.0, time.monotonic() - (t0 + i / rate)))
            task = asyncio.create_task(one())
            pending.add(task)
            task.add_done_callback(pending.discard)
            i += 1
        span = time.monotonic() - t0
        if pending:
            await asyncio.gather(*list(pending), return_exceptions=True)
    ok = [s for s, status in samples if status == 200]
    out: dict[str, Any] = {"offered_per_second": rate, "seconds": round(span, 2), "requests": len(samples),
                           "failed": len(samples) - len(ok)}
    if lags:
        lag = common.summary_ms(lags)
        out.update(send_lag_p99_ms=lag["p99_ms"], worst_send_lag_ms=lag["max_ms"])
    if ok:
        out.update(common.summary_ms(ok))
    return out


def probe_main(url: str, rate: float) -> None:
    """``python -m bench.isolation --probe URL RATE``: samples until its input closes, then
    prints the summary as one JSON line."""
    loop = common.new_loop()
    stop = asyncio.Event()

    def wait_for_eof() -> None:
        sys.stdin.read()
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=wait_for_eof, daemon=True).start()
    try:
        print(json.dumps(loop.run_until_complete(_probe(url, rate, stop))), flush=True)
    finally:
        loop.close()


class HealthzSampler:
    """The ``/healthz`` probe as a child process of the harness (so that its latencies carry
    none of the harness's own work), from :meth:`start` to :meth:`stop`; stopped by its PID."""

    def __init__(self, base_url: str, rate: float) -> None:
        self.url = base_url + "/healthz"
        self.rate = rate
        self._stderr = tempfile.TemporaryFile()
        self.proc: subprocess.Popen[str] | None = None

    async def start(self) -> HealthzSampler:
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.isolation", "--probe", self.url, str(self.rate)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, text=True)
        assert self.proc.stdout is not None
        try:
            line = await asyncio.wait_for(asyncio.to_thread(self.proc.stdout.readline), 60)
        except TimeoutError:
            line = ""
        if line.strip() != "ready":
            self.close()
            raise common.BenchError(f"the /healthz probe did not start: {line!r} {self._error()}")
        return self

    def _error(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")[-1000:]

    async def stop(self) -> dict[str, Any]:
        assert self.proc is not None
        try:
            out, _ = await asyncio.to_thread(self.proc.communicate, "", 60)
            return dict(json.loads(out.strip().splitlines()[-1]))
        except (subprocess.TimeoutExpired, ValueError, IndexError) as exc:
            raise common.BenchError(f"the /healthz probe gave no figures ({type(exc).__name__}): "
                                    f"{self._error()}") from exc
        finally:
            self.close()

    def close(self) -> None:
        if self.proc is not None:
            procs.stop_process(self.proc)
        self._stderr.close()


# ---------------------------------------------------------------------------------------------
# the script children of serve's tree


def _pool_children(serve_pid: int) -> dict[int, tuple[int, float]]:
    """PID → (parent PID, CPU seconds so far) of every script child in serve's tree. Those
    whose parent is serve belong to its own pool (dry runs); the others to its worker's."""
    out = {}
    for pid in procs.tree(serve_pid)[1:]:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if CHILD_MODULE not in cmdline:
            continue
        st = procs.stat(pid)
        if st is not None:
            out[pid] = (st.ppid, st.own)
    return out


def _startup_cpu(serve_pid: int, own_pool: bool) -> float:
    """The CPU seconds an idle child of one pool has used so far: what starting a child costs
    (its few trivial runs aside). Raises when that pool has no child yet."""
    found = [cpu for ppid, cpu in _pool_children(serve_pid).values() if (ppid == serve_pid) == own_pool]
    if not found:
        raise common.BenchError(f"the {'API' if own_pool else 'worker'}'s script pool had no child after the warm-up")
    return max(found)


async def _wait_spinning(serve_pid: int, own_pool: bool, wanted: int, startup_cpu: float, timeout: float,
                         still_going: Any) -> dict[str, Any]:
    """Wait until ``wanted`` children of one pool (serve's own, or its worker's) are running
    the runaways: each has used clearly more CPU than starting a child costs (``startup_cpu``,
    by 25 % and 0.25 s) and still uses at least :data:`SPIN_CORES` (a machine busy with other
    work gives each runaway less than a core; an idle child uses none)."""
    deadline = time.monotonic() + timeout
    window = 0.5
    enough = startup_cpu * 1.25 + 0.25
    while time.monotonic() < deadline:
        if not await still_going():
            raise common.BenchError("the runaways of project A ended before they were seen running")
        before = _pool_children(serve_pid)
        await asyncio.sleep(window)
        after = _pool_children(serve_pid)
        spinning = [pid for pid, (ppid, cpu) in after.items()
                    if pid in before and (ppid == serve_pid) == own_pool and cpu > enough
                    and (cpu - before[pid][1]) / window >= SPIN_CORES]
        if len(spinning) >= wanted:
            return {"children": sorted(spinning), "startup_cpu_seconds": round(startup_cpu, 3),
                    "cores": round(sum(after[p][1] - before[p][1] for p in spinning) / window, 2),
                    "waited_seconds": round(time.monotonic() - deadline + timeout, 2)}
    raise common.BenchError(f"{wanted} children of the {'API' if own_pool else 'worker'}'s script pool were "
                            f"not seen running the runaways within {timeout:g} s")


class ChildWatch:
    """The script children seen in serve's tree during a phase, sampled every 50 ms: which
    were started meanwhile (spares for fairness among them), in which pool, and when."""

    def __init__(self, serve_pid: int) -> None:
        self.serve_pid = serve_pid
        self.t0 = time.monotonic()
        first = _pool_children(serve_pid)
        self.at_start = set(first)
        self.first = [{"pid": pid, "pool": "api" if ppid == serve_pid else "worker", "cpu_seconds": round(cpu, 2)}
                      for pid, (ppid, cpu) in sorted(first.items())]
        self.new: dict[int, dict[str, Any]] = {}
        self.most = len(self.at_start)
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        while not self._stop.is_set():
            now = _pool_children(self.serve_pid)
            for pid, (ppid, _cpu) in now.items():
                if pid not in self.at_start and pid not in self.new:
                    self.new[pid] = {"pid": pid, "pool": "api" if ppid == self.serve_pid else "worker",
                                     "seen_at_s": round(time.monotonic() - self.t0, 2)}
            self.most = max(self.most, len(now))
            try:
                await asyncio.wait_for(self._stop.wait(), 0.05)
            except TimeoutError:
                pass

    async def stop(self) -> dict[str, Any]:
        self._stop.set()
        await self._task
        return {"at_start": len(self.at_start), "started_during": len(self.new), "most_at_once": self.most,
                "children_at_start": self.first, "started": sorted(self.new.values(), key=lambda c: c["seen_at_s"])}


class PoolEvents:
    """What the script pools logged (``event=script_pool.*``: killed, crashed, start_failed…)
    in serve's log (its worker child's lines included) since it was made."""

    def __init__(self, fleet: common.Fleet) -> None:
        self.fleet = fleet
        self.offset = len(self._log())

    def _log(self) -> str:
        return self.fleet.serve.output() if self.fleet.serve is not None else ""

    def since(self) -> dict[str, Any]:
        lines = [line for line in self._log()[self.offset:].splitlines() if POOL_EVENT.search(line)]
        counts: dict[str, int] = {}
        for line in lines:
            match = POOL_EVENT.search(line)
            assert match is not None
            counts[match.group(1)] = counts.get(match.group(1), 0) + 1
        return {"counts": counts, "first": [line[-300:] for line in lines[:3]]}


# ---------------------------------------------------------------------------------------------
# runs and dry runs


class Client:
    def __init__(self, fleet: common.Fleet, session: aiohttp.ClientSession) -> None:
        self.api = common.Api(fleet.base_url, fleet.token)
        self.base_url = fleet.base_url
        self.session = session

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        return await self.api.call(self.session, method, path, body)

    async def post(self, path: str, body: Any) -> tuple[int, Any, float, float]:
        """(status, answer, round trip seconds, wall-clock time of the answer)."""
        sent = time.monotonic()
        async with self.session.post(self.base_url + path, data=common.dumps(body),
                                     headers=self.api.headers) as response:
            raw = await response.read()
            answered_wall, answered = time.time(), time.monotonic()
        try:
            answer = json.loads(raw) if raw else None
        except ValueError:
            answer = raw[:300].decode(errors="replace")
        return response.status, answer, answered - sent, answered_wall

    async def run_doc(self, project: str, run_id: str) -> dict[str, Any]:
        return dict(await self.call("GET", f"/api/projects/{project}/activities/{run_id}"))

    async def run_log(self, project: str, run_id: str) -> list[str]:
        async with self.session.get(f"{self.base_url}/api/projects/{project}/activities/{run_id}/log",
                                    headers=self.api.headers) as response:
            text = await response.text()
        lines = []
        for line in text.splitlines():
            item = json.loads(line)
            if "data" in item:
                lines.append(str(item["data"].get("message", "")))
        return lines


def _activity(kind: str = "environment.push") -> dict[str, Any]:
    doc = common.activity_doc()
    doc["type"] = kind
    return doc


async def _post_activity(client: Client, project: str, kind: str = "environment.push") -> tuple[str, float]:
    """Post one activity that triggers exactly one run: (its run id, wall-clock time of the answer)."""
    status, answer, _rtt, answered_wall = await client.post(f"/api/projects/{project}/activities", _activity(kind))
    if status != 201:
        raise common.BenchError(f"intake of project {project} answered {status}: {str(answer)[:300]}")
    runs = (answer.get("_embedded") or {}).get("runs") or []
    if len(runs) != 1:
        raise common.BenchError(f"an activity of project {project} triggered {len(runs)} runs, expected 1")
    return str(runs[0]["id"]), answered_wall


async def _trivial_run(client: Client) -> dict[str, Any]:
    """One activity of B, then its run read every :data:`POLL` until it is complete. The
    figure (``seconds``) is the run document's ``created_at → completed_at``, both stamped by
    firehook: the run is created in the intake's transaction, before the answer, so it bounds
    the answer → completion time from above; the harness's clock and polling play no part."""
    run_id, answered_wall = await _post_activity(client, PROJECT_B)
    answered = time.monotonic()
    while True:
        doc = await client.run_doc(PROJECT_B, run_id)
        if doc.get("state") == "complete":
            seen = time.monotonic() - answered
            break
        if time.monotonic() - answered > RUN_WAIT:
            return {"run": run_id, "error": f"run {run_id} of project B was still {doc.get('state')} "
                                            f"{RUN_WAIT:g} s after its intake answer"}
        await asyncio.sleep(POLL)
    completed = timefmt.parse_ts(doc["completed_at"]).timestamp()
    created = timefmt.parse_ts(doc["created_at"]).timestamp()
    out = {"run": run_id, "result": doc.get("result"), "seconds": completed - created, "seen": seen,
           "answer_to_completed": completed - answered_wall, "timings": doc.get("timings") or {}}
    if doc.get("result") != "success":
        out["error"] = f"run {run_id} of project B ended complete/{doc.get('result')}"
    return out


def _dry_body(script: str) -> dict[str, Any]:
    return {"script": script, "activity": _activity()}


async def _trivial_dry_run(client: Client) -> dict[str, Any]:
    status, answer, rtt, _ = await client.post(f"/api/projects/{PROJECT_B}/dry-run", _dry_body(TRIVIAL))
    out: dict[str, Any] = {"status": status, "seconds": rtt}
    if status != 200 or not isinstance(answer, dict) or answer.get("result") != "success":
        out["error"] = f"a dry run of project B answered {status}: {str(answer)[:300]}"
    return out


async def _series(one: Any, count: int, interval: float, until: float | None) -> tuple[list[dict[str, Any]], str]:
    """``one()`` up to ``count`` times, one at a time, the k-th started at ``k × interval``
    from the first (at once when the one before took longer), none started past ``until``
    (monotonic); how it ended: ``count``, ``time`` or ``error``."""
    done: list[dict[str, Any]] = []
    t0 = time.monotonic()
    for k in range(count):
        delay = t0 + k * interval - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if until is not None and time.monotonic() > until:
            return done, "time"
        item = await one()
        done.append(item)
        if "error" in item:
            return done, "error"
    return done, "count"


def _summary(items: list[dict[str, Any]], key: str = "seconds") -> dict[str, Any] | None:
    values = [i[key] for i in items if "error" not in i and key in i]
    return common.summary_ms(values) if values else None


def _timings(items: list[dict[str, Any]]) -> dict[str, Any]:
    out = {}
    for name in ("wait", "execute"):
        values = [float(i["timings"][name]) for i in items if isinstance(i.get("timings", {}).get(name), (int, float))]
        if values:
            out[name] = common.summary_ms(values)
    return out


# ---------------------------------------------------------------------------------------------
# the scenario


async def _setup(client: Client) -> None:
    for project in (PROJECT_A, PROJECT_B):
        await client.call("POST", "/api/projects", {"id": project, "title": f"Isolation {project[-1].upper()}"})
    for kind in RUNAWAY_TYPES:
        await client.call("POST", f"/api/projects/{PROJECT_A}/integrations", {
            "type": "script", "script": RUNAWAY, "events": [kind], "states": ["complete"]})
    await client.call("POST", f"/api/projects/{PROJECT_B}/integrations", {
        "type": "script", "script": TRIVIAL, "events": ["*"], "states": ["complete"]})


class Phase:
    """The measurements every phase takes: /healthz, CPU and memory of the trees, children."""

    def __init__(self, fleet: common.Fleet, cfg: common.Config, name: str, profiler: Profiler | None) -> None:
        self.fleet = fleet
        self.cfg = cfg
        self.name = name
        self.profiler = profiler
        self.pids = fleet.pids()

    async def __aenter__(self) -> Phase:
        self.healthz = await HealthzSampler(self.fleet.base_url, self.cfg.isolation_healthz_rate).start()
        self.children = ChildWatch(self.pids["serve"])
        self.memory = common.MemorySampler(self.pids).__enter__()
        self.profile = self.profiler.phase(f"isolation-{self.name}", self.pids) if self.profiler else None
        if self.profile is not None:
            self.profile.__enter__()
        self.cpu = common.CpuMeter(self.pids).start()
        self.t0 = time.monotonic()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.seconds = time.monotonic() - self.t0
        self.cpu_used = self.cpu.stop(self.seconds)
        if self.profile is not None:
            self.profile.__exit__(None, None, None)
        self.memory.__exit__(None, None, None)
        self.children_used = await self.children.stop()
        self.healthz_used = await self.healthz.stop()

    def figures(self) -> dict[str, Any]:
        return {"seconds": round(self.seconds, 2), "healthz": self.healthz_used, "cpu": self.cpu_used,
                "memory": self.memory.peaks(), "script_children": self.children_used,
                "load_average": common.load_average()}


def _healthz_problems(what: str, healthz: dict[str, Any]) -> list[str]:
    if healthz.get("failed"):
        return [f"{healthz['failed']} of {healthz['requests']} GET /healthz {what} were not answered 200"]
    if not healthz.get("requests"):
        return [f"no GET /healthz was answered {what}"]
    return []


def _item_problems(items: list[dict[str, Any]], what: str) -> list[str]:
    problems = [i["error"] for i in items if "error" in i][:3]
    if not problems and not items:
        problems.append(f"no {what} was measured: the runaways' time limit left no room (raise isolation_timeout)")
    return problems


async def _baseline(fleet: common.Fleet, cfg: common.Config, client: Client) -> dict[str, Any]:
    pids = fleet.pids()
    cpu = common.CpuMeter(pids).start()
    t0 = time.monotonic()
    sampler = await HealthzSampler(fleet.base_url, cfg.isolation_healthz_rate).start()
    await asyncio.sleep(cfg.isolation_healthz_seconds)
    idle = await sampler.stop()
    idle_cpu = cpu.stop(time.monotonic() - t0)
    # One run and one dry run not measured: they start the worker's and the API's script pools.
    warm_run = await _trivial_run(client)
    warm_dry = await _trivial_dry_run(client)
    problems = [f"warm-up: {w['error']}" for w in (warm_run, warm_dry) if "error" in w]
    sampler = await HealthzSampler(fleet.base_url, cfg.isolation_healthz_rate).start()
    runs, _ = await _series(lambda: _trivial_run(client), cfg.isolation_baseline_runs, cfg.isolation_interval, None)
    dry, _ = await _series(lambda: _trivial_dry_run(client), cfg.isolation_baseline_runs, cfg.isolation_interval,
                           None)
    beside = await sampler.stop()
    problems += _item_problems(runs, "B run")
    problems += _item_problems(dry, "B dry run")
    problems += _healthz_problems("with nothing running", idle) + _healthz_problems("beside B's runs", beside)
    return {
        "what": "nothing else running",
        "healthz": idle, "healthz_cpu": idle_cpu, "healthz_beside_b": beside,
        "runs": _summary(runs), "runs_answer_to_completed": _summary(runs, "answer_to_completed"),
        "runs_seen": _summary(runs, "seen"), "runs_timings": _timings(runs), "dry_runs": _summary(dry),
        "warm_up": {"run_seconds": round(warm_run.get("seconds", 0.0), 3),
                    "dry_run_seconds": round(warm_dry.get("seconds", 0.0), 3)},
        "load_average": common.load_average(),
        "ok": not problems, "problems": problems,
    }


async def _runs(fleet: common.Fleet, cfg: common.Config, client: Client, profiler: Profiler | None) -> dict[str, Any]:
    serve_pid = fleet.pids()["serve"]
    events = PoolEvents(fleet)
    startup_cpu = _startup_cpu(serve_pid, False)
    ids = [(await _post_activity(client, PROJECT_A, kind))[0] for kind in RUNAWAY_TYPES]
    began = time.monotonic()

    async def states() -> list[str]:
        return [str((await client.run_doc(PROJECT_A, run_id)).get("state")) for run_id in ids]

    async def going() -> bool:
        return all(s != "complete" for s in await states())

    try:
        while (found := await states()) != ["in_progress"] * len(ids):
            if "complete" in found or time.monotonic() > began + 30:
                raise common.BenchError(f"the runaway runs of project A were {found}, not both in_progress")
            await asyncio.sleep(0.05)
        spinning = await _wait_spinning(serve_pid, False, len(ids), startup_cpu, 30, going)
        async with Phase(fleet, cfg, "runs", profiler) as phase:
            items, bound = await _series(lambda: _trivial_run(client), cfg.isolation_runs, cfg.isolation_interval,
                                         began + cfg.isolation_timeout - MARGIN)
            during = await states()
    finally:
        # A's runs end at their time limit (the engine's, or the parent's kill 2 s after it);
        # the next phase must not start beside them.
        while (set(await states()) != {"complete"}
               and time.monotonic() < began + cfg.isolation_timeout + KILL_GRACE + 30):
            await asyncio.sleep(0.2)
    problems = _item_problems(items, "B run")
    if during != ["in_progress"] * len(ids):
        problems.append(f"A's runaways were {during} when B's last run ended: not measured beside them")
    a_runs = []
    for run_id in ids:
        doc = await client.run_doc(PROJECT_A, run_id)
        log = await client.run_log(PROJECT_A, run_id) if doc.get("state") == "complete" else []
        limit_line = next((line for line in log if "time limit" in line), None)
        a_runs.append({"run": run_id, "state": doc.get("state"), "result": doc.get("result"),
                       "time_limit_line": limit_line, "timings": doc.get("timings"), "log_tail": log[-2:]})
        if doc.get("state") != "complete" or doc.get("result") != "failure" or limit_line is None:
            problems.append(f"runaway run {run_id} of project A ended {doc.get('state')}/{doc.get('result')} "
                            f"(log: {log[-2:]}), expected complete/failure on the time limit")
    problems += _healthz_problems("while A's runaways ran", phase.healthz_used)
    fleet.check_alive()
    return {
        "runaways": len(ids), "spinning_before": spinning, "b_runs": len(items), "b_runs_wanted": cfg.isolation_runs,
        "bound": bound, "b": _summary(items), "b_answer_to_completed": _summary(items, "answer_to_completed"),
        "b_seen": _summary(items, "seen"), "b_timings": _timings(items),
        "b_each_ms": [round(i["seconds"] * 1000, 1) for i in items if "seconds" in i],
        **phase.figures(), "pool_events": events.since(), "a_runs": a_runs, "ok": not problems, "problems": problems,
    }


async def _dry_runs(fleet: common.Fleet, cfg: common.Config, client: Client,
                    profiler: Profiler | None) -> dict[str, Any]:
    serve_pid = fleet.pids()["serve"]
    events = PoolEvents(fleet)
    startup_cpu = _startup_cpu(serve_pid, True)
    began = time.monotonic()
    runaways = [asyncio.create_task(client.post(f"/api/projects/{PROJECT_A}/dry-run", _dry_body(RUNAWAY)))
                for _ in range(2)]

    async def going() -> bool:
        return not any(t.done() for t in runaways)

    try:
        spinning = await _wait_spinning(serve_pid, True, len(runaways), startup_cpu, 30, going)
        async with Phase(fleet, cfg, "dry-runs", profiler) as phase:
            items, bound = await _series(lambda: _trivial_dry_run(client), cfg.isolation_runs,
                                         cfg.isolation_interval, began + cfg.isolation_timeout - MARGIN)
            during = await going()
    finally:
        # They answer at their time limit (or the parent's kill 2 s after it).
        left = began + cfg.isolation_timeout + KILL_GRACE + 30 - time.monotonic()
        done, _ = await asyncio.wait(runaways, timeout=max(1.0, left))
        for task in runaways:
            task.cancel()
    problems = _item_problems(items, "B dry run")
    if not during:
        problems.append("a runaway dry run of A had answered before B's last dry run ended: not measured beside it")
    a_dry = []
    for task in runaways:
        if task not in done or task.exception() is not None:
            problems.append(f"a runaway dry run of A did not answer: {task.exception() if task in done else 'timeout'}")
            continue
        status, answer, rtt, _ = task.result()
        error = answer.get("error") if isinstance(answer, dict) else None
        result = answer.get("result") if isinstance(answer, dict) else None
        a_dry.append({"status": status, "result": result, "error": error, "seconds": round(rtt, 2)})
        if status != 200 or result != "failure" or "time limit" not in str(error):
            problems.append(f"a runaway dry run of A answered {status}: {str(answer)[:200]}, expected failure on "
                            "the time limit")
    problems += _healthz_problems("while A's runaway dry runs were in flight", phase.healthz_used)
    fleet.check_alive()
    return {
        "runaways": len(runaways), "spinning_before": spinning, "b_runs": len(items),
        "b_runs_wanted": cfg.isolation_runs, "bound": bound, "b": _summary(items),
        "b_each_ms": [round(i["seconds"] * 1000, 1) for i in items if "seconds" in i],
        **phase.figures(), "pool_events": events.since(), "a_dry_runs": a_dry, "ok": not problems,
        "problems": problems,
    }


async def _scenario(cfg: common.Config, profiler: Profiler | None) -> dict[str, Any]:
    env = {"FIREHOOK_WORKERS": "2", "FIREHOOK_SCRIPT_TIMEOUT": f"{cfg.isolation_timeout:g}"}
    out: dict[str, Any] = {"database": "sqlite", "settings": {"workers": 2, "script_timeout": cfg.isolation_timeout},
                           "healthz_per_second": cfg.isolation_healthz_rate}
    with common.Fleet("sqlite", env=env) as fleet:
        async with common.client_session(16) as session:
            client = Client(fleet, session)
            await _setup(client)
            out["baseline"] = await _baseline(fleet, cfg, client)
            for name, measure in (("runs", _runs), ("dry_runs", _dry_runs)):
                try:
                    out[name] = await measure(fleet, cfg, client, profiler)
                except common.BenchError as exc:
                    out[name] = {"ok": False, "error": str(exc), "problems": [str(exc)]}
    return out


def run(cfg: common.Config, profiler: Profiler | None = None) -> dict[str, Any]:
    return dict(common.run(_scenario(cfg, profiler)))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--probe"]:
        probe_main(sys.argv[2], float(sys.argv[3]))
    else:
        print(json.dumps(run(common.Config.quick_config()), indent=2))
