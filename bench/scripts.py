"""Activity scripts: runs per second, each in a fresh isolated context.

Three measurements, with the script, activity (~50 KB) and loopback fetch target of
``bench/scripts_bench.py`` (whose functions are reused here):

- ``runtime``: ``firehook.scripts.run_script`` called in this process, 1 thread and one
  thread per core (scripts_bench's ``_measure``); every run must succeed;
- ``node`` (baseline, when ``node`` is installed): the same script as a new Node.js process
  per run (Underscore loaded from firehook's vendored copy, the same ``fetch``), 1 and
  ``nproc`` processes at a time; every process must exit 0;
- ``serve``: end to end through ``firehook serve`` on SQLite — eight script integrations matching
  every activity, activities posted through the batch endpoint, runs/s from the first post to
  the last run recorded, every run ``complete/success``; the memory and CPU of ``serve`` and
  all its descendants (worker child, script pool children) are measured.

CPU per run: of this process for ``runtime`` (the runtime alone: the fetch target is another
process), of the reaped Node processes for ``node``, of the ``serve`` tree for ``serve``.
"""

from __future__ import annotations

import asyncio
import json
import math
import multiprocessing
import os
import resource
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench import common, procs, scripts_bench
from bench.profile import Profiler
from firehook import scripts as runtime

NODE_SCRIPT = """
const _ = require(process.env.UNDERSCORE);
const fs = require('fs');
const activity = JSON.parse(fs.readFileSync(process.env.ACTIVITY, 'utf8'));
const project = {id: 'abcdefgh1234567', title: 'Bench'};
const variables = {URL: process.env.URL};
(async () => {
  var commits = _.map(activity.payload.commits || [], function (c) { return c.sha.slice(0, 7); });
  var summary = {
    text: activity.text || activity.description,
    type: activity.type,
    project: project.id,
    commits: commits,
    size: _.size(activity.log)
  };
  const response = await fetch(variables.URL, {
    method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(summary)
  });
  if (!response.ok) { throw new Error('status ' + response.status); }
  console.log('sent', (await response.json()).received);
})().catch((e) => { console.error(e); process.exit(1); });
"""


def _underscore() -> Path:
    return Path(runtime.__file__).resolve().parent / "vendor" / "underscore-umd.js"


def _node(seconds: float, processes: int, env: dict[str, str], script: Path) -> dict[str, Any]:
    node = shutil.which("node")
    assert node is not None
    done = 0
    failures = 0
    errors: list[str] = []
    lock = threading.Lock()
    stop = time.perf_counter() + seconds
    # The Node processes' CPU: what this process's reaped children used (nothing else of the
    # harness is reaped meanwhile; the fetch target keeps running).
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)

    def worker() -> None:
        nonlocal done, failures
        while time.perf_counter() < stop:
            proc = subprocess.run([node, str(script)], env=env, capture_output=True, text=True, timeout=60)
            with lock:
                done += 1
                if proc.returncode != 0 or not proc.stdout.startswith("sent "):
                    failures += 1
                    if len(errors) < 3:
                        errors.append((proc.stderr or proc.stdout)[-300:])

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(processes)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (children_after.ru_utime + children_after.ru_stime) - (children_before.ru_utime + children_before.ru_stime)
    return {"processes": processes, "runs": done, "failures": failures, "errors": errors,
            "seconds": round(elapsed, 3), "runs_per_second": round(done / elapsed, 1),
            "ms_per_run": round(elapsed * 1000 * processes / max(done, 1), 1),
            "cpu_ms_per_run": round(cpu * 1000 / max(done, 1), 2),
            "load_average": common.load_average()}


# Runs of one script integration never overlap (SPEC §4.4): the runs are spread over this many
# integrations, each matching every activity, so that the script processes have runs to share.
INTEGRATIONS = 8


WARM_UP_LINES = 2


async def _warm_up(session: aiohttp.ClientSession, fleet: common.Fleet, doc: dict[str, Any],
                   problems: list[str]) -> int:
    """Runs posted and finished before the measurement: every script process of the pool
    (and its standby spare) started and has run a script. Returns how many runs."""
    ndjson = b"\n".join([common.dumps(doc)] * WARM_UP_LINES) + b"\n"
    refused = await _post_batch(session, fleet, ndjson, WARM_UP_LINES)
    if refused:
        problems.append(f"the warm-up {refused}")
        return 0
    runs = WARM_UP_LINES * INTEGRATIONS
    deadline = time.monotonic() + 120
    while await asyncio.to_thread(common.finished_runs, fleet.database_url) < runs:
        if time.monotonic() > deadline:
            problems.append("the warm-up runs did not finish within 120 s")
            break
        fleet.check_alive()
        await asyncio.sleep(0.05)
    # The standby spare is started once the pool is in use: wait until every script process
    # is idle (its CPU time unchanged over half a second), so that none builds its engine
    # inside the measurement.
    quiet = 0
    while time.monotonic() < deadline:
        before = _script_process_cpu(fleet)
        await asyncio.sleep(0.5)
        after = _script_process_cpu(fleet)
        quiet = quiet + 1 if after and after == before else 0
        # The pool (one process per core) and its spare; or, whatever their number, 5 s quiet.
        if quiet and (len(after) > (os.cpu_count() or 1) or quiet >= 10):
            break
    else:
        problems.append("the script processes were still starting 120 s after the warm-up runs")
    return runs


async def _post_batch(session: aiohttp.ClientSession, fleet: common.Fleet, ndjson: bytes, lines: int) -> str | None:
    """Post one NDJSON batch; what went wrong, or None when every line was accepted."""
    headers = {"Authorization": f"Bearer {fleet.token}", "Content-Type": "application/x-ndjson"}
    async with session.post(f"{fleet.base_url}/api/projects/{common.PROJECT}/activities:batch",
                            data=ndjson, headers=headers) as response:
        answer = json.loads(await response.read())
    if response.status != 200 or answer.get("accepted") != lines:
        return f"batch answered {response.status}: {str(answer)[:300]}"
    return None


def _script_process_cpu(fleet: common.Fleet) -> dict[int, float]:
    """CPU seconds of each script process of the fleet's serve."""
    out: dict[int, float] = {}
    for pid in procs.tree(fleet.pids()["serve"]):
        stat = procs.stat(pid)
        if stat is not None and procs.role(pid) == "script processes":
            out[pid] = stat.own
    return out


async def _serve_runs(cfg: common.Config, url: str, activity: str, profiler: Profiler | None) -> dict[str, Any]:
    # At the target rate (600/s) the full count takes ~5 s; the feed's time bound ends it sooner.
    runs_wanted = 3000 if not cfg.quick else 100
    lines = 50
    doc = json.loads(activity)
    doc.pop("id", None)
    doc.update(type="environment.push", state="complete", result="success")
    ndjson = b"\n".join([common.dumps(doc)] * lines) + b"\n"
    with common.Fleet("sqlite") as fleet:
        api = common.Api(fleet.base_url, fleet.token)
        await api.setup_project()
        async with aiohttp.ClientSession() as session:
            for _ in range(INTEGRATIONS):
                created = await api.call(session, "POST", f"/api/projects/{common.PROJECT}/integrations", {
                    "type": "script", "script": scripts_bench.SCRIPT, "events": ["*"], "states": ["complete"]})
                integration = created["_embedded"]["entity"]["id"]
                await api.call(session, "POST", f"/api/projects/{common.PROJECT}/integrations/{integration}/variables",
                               {"name": "URL", "value": url})
            pids = fleet.pids()
            idle = common.idle_memory(pids["serve"])
            problems: list[str] = []
            # The script processes start at the first run (each compiles the engine and builds
            # the prelude's image: ~0.6 s of CPU); the figure is of the steady state, so they
            # are started, and have run a script, before the clock and the CPU meter start.
            warmed = await _warm_up(session, fleet, doc, problems)
            posted = warmed
            profile_ctx = profiler.phase("scripts-serve-sqlite", pids) if profiler else None
            cpu = common.CpuMeter(pids).start()
            with common.MemorySampler(pids) as memory:
                if profile_ctx is not None:
                    profile_ctx.__enter__()
                try:
                    t0 = time.monotonic()
                    feed_deadline = t0 + cfg.fanout_feed_seconds
                    for _ in range(math.ceil(runs_wanted / (lines * INTEGRATIONS))):
                        # Hold back while many runs are queued: a steady state, and a bounded end.
                        while (posted - await asyncio.to_thread(common.finished_runs, fleet.database_url) > 400
                               and time.monotonic() < feed_deadline):
                            await asyncio.sleep(0.05)
                        if time.monotonic() > feed_deadline:
                            break
                        refused = await _post_batch(session, fleet, ndjson, lines)
                        if refused:
                            problems.append(refused)
                            break
                        posted += lines * INTEGRATIONS
                    drain_deadline = time.monotonic() + cfg.fanout_drain_seconds
                    timed_out = False
                    while True:
                        if await asyncio.to_thread(common.finished_runs, fleet.database_url) >= posted:
                            break
                        if time.monotonic() > drain_deadline:
                            timed_out = True
                            break
                        fleet.check_alive()
                        await asyncio.sleep(0.05)
                    seconds = time.monotonic() - t0
                    cpu_used = cpu.stop(seconds)
                finally:
                    if profile_ctx is not None:
                        profile_ctx.__exit__(None, None, None)
        counts = await asyncio.to_thread(common.store_counts, fleet.database_url)
        common.dispose_cached()
    if timed_out:
        problems.append(f"only {counts['runs_finished']} of {posted} runs finished in time")
    if counts["runs_by_state"] != {"complete/success": posted}:
        problems.append(f"runs by state/result: {counts['runs_by_state']}, expected {posted} complete/success")
    measured = posted - warmed  # the warm-up's runs are checked but not timed
    return {
        "database": "sqlite",
        "runs": measured,
        "warm_up_runs": warmed,
        "seconds": round(seconds, 3),
        "runs_per_second": round(measured / seconds, 1) if not problems else None,
        "runs_per_second_unchecked": round(measured / seconds, 1),
        "memory_idle": idle,
        "memory": memory.peaks(),
        "cpu": {name: {**usage, "ms_per_run": round(usage["cpu_seconds"] * 1000 / measured, 3) if measured else None}
                for name, usage in cpu_used.items()},
        "load_average": common.load_average(),
        "ok": not problems,
        "problems": problems,
    }


def run(cfg: common.Config, profiler: Profiler | None = None) -> dict[str, Any]:
    receiving, sending = multiprocessing.Pipe(duplex=False)
    server = multiprocessing.get_context("fork").Process(target=scripts_bench._serve, args=(sending,), daemon=True)
    server.start()
    out: dict[str, Any] = {}
    try:
        port = receiving.recv()
        url = f"http://127.0.0.1:{port}/hook"
        activity = scripts_bench._activity()
        limits = runtime.ScriptLimits(timeout=10.0)
        variables = {"URL": url}

        def one() -> runtime.ScriptOutcome:
            return runtime.run_script(
                scripts_bench.SCRIPT, activity_json=activity,
                project={"id": "abcdefgh1234567", "title": "Bench"}, variables=variables,
                storage=runtime.MemoryStorage(), limits=limits, log=lambda line: None,
                outbound_allow=("127.0.0.1/32",),
            )

        first = one()
        if not first.success:
            raise common.BenchError(f"the benchmark script failed: {first.error}")
        warm = time.perf_counter()
        while time.perf_counter() - warm < 0.5:
            one()
        cores = os.cpu_count() or 1
        measured = [scripts_bench._measure(1, cfg.scripts_seconds, one)]
        if cores > 1:
            measured.append(scripts_bench._measure(cores, cfg.scripts_seconds, one))
        for m in measured:
            m["ok"] = m["failures"] == 0
        out["activity_bytes"] = len(activity)
        out["runtime"] = {f"{m['threads']}": m for m in measured}
        out["runtime_memory_mib"] = common.idle_memory(os.getpid())

        if shutil.which("node"):
            with tempfile.TemporaryDirectory(prefix="firehook-bench-node-") as tmp:
                script = Path(tmp) / "script.js"
                script.write_text(NODE_SCRIPT)
                activity_file = Path(tmp) / "activity.json"
                activity_file.write_text(activity)
                env = {"PATH": os.environ.get("PATH", ""), "UNDERSCORE": str(_underscore()),
                       "ACTIVITY": str(activity_file), "URL": url}
                _node(min(1.0, cfg.node_seconds), 1, env, script)  # warm the file cache
                node_runs = [_node(cfg.node_seconds, 1, env, script)]
                if cores > 1:
                    node_runs.append(_node(cfg.node_seconds, cores, env, script))
                for m in node_runs:
                    m["ok"] = m["failures"] == 0
                out["node"] = {f"{m['processes']}": m for m in node_runs}
        else:
            out["node"] = None
        try:
            out["serve"] = common.run(_serve_runs(cfg, url, activity, profiler))
        except common.BenchError as exc:
            out["serve"] = {"ok": False, "error": str(exc), "problems": [str(exc)]}
    finally:
        server.terminate()
        server.join(5)
    return out


if __name__ == "__main__":
    print(json.dumps(run(common.Config.quick_config()), indent=2))
