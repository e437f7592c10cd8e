"""``python -m bench --self-check``: the harness checks itself, without pytest.

A benchmark that counts failures as throughput is wrong, so this checks the parts that decide
what counts: the receiver refuses bad signatures and missing delivery ids; the closed-loop
counter loses no additions between concurrent clients; percentiles are right; a fan-out run
whose deliveries are refused (a webhook signed with the wrong key) is reported as failed with
no figure, while the same run with the right key passes; profiles parse; the report shows a
failed figure as failed and judges the targets right; a process tree's CPU counts a
descendant that has exited, its memory sums the tree, and leftovers are killed; the bare
FastAPI baseline answers and stops; a fleet leaves no process behind; the dbwork checks refuse
wrong data; the isolation rows judge their targets strictly and show a failed phase as failed.
Exit status 0 when every check passes.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench import bare, common, dbwork, fanout, intake, procs, profile, report
from bench.receiver import ReceiverProcess
from firehook import signing

_results: list[tuple[str, bool, str]] = []


def check(name: str, condition: bool, detail: Any = "") -> None:
    _results.append((name, bool(condition), str(detail)[:500]))
    print(f"[{'ok' if condition else 'FAIL'}] {name}{'' if condition else f': {detail}'}", flush=True)


def _percentiles() -> None:
    values = list(range(1, 101))
    check("percentile p50 of 1..100 is 50.5", common.percentile(values, 50) == 50.5, common.percentile(values, 50))
    check("percentile p99 of 1..100 is 99.01", abs(common.percentile(values, 99) - 99.01) < 1e-9,
          common.percentile(values, 99))
    check("percentile of one value", common.percentile([7.0], 99) == 7.0)


async def _closed_loop() -> None:
    async def request(_session: Any, i: int) -> int:
        await asyncio.sleep(0.001 * (i % 3))
        if i % 50 == 49:
            raise RuntimeError("refused")
        return 2

    result = await intake.closed_loop(None, request, 500, 8, 30)  # type: ignore[arg-type]
    check("closed loop adds every answer (no lost updates between clients)",
          result["accepted"] == 2 * 490 and result["requests"] == 490, result)
    check("closed loop counts failures apart", result["failed_requests"] == 10, result["failed_requests"])


async def _receiver() -> None:
    with ReceiverProcess(common.KEY) as receiver:
        body = b'{"id":"x","type":"environment.push"}'
        good = signing.signature_header(body, (common.KEY,))
        bad = signing.signature_header(body, ("another-key",))
        async with aiohttp.ClientSession() as session:
            async def post(headers: dict[str, str]) -> int:
                async with session.post(receiver.url, data=body, headers=headers) as response:
                    await response.read()
                    return response.status

            statuses = [
                await post({"X-JWS-Signature": good, "X-Firehook-Delivery": "d1"}),
                await post({"X-JWS-Signature": good, "X-Firehook-Delivery": "d1"}),
                await post({"X-JWS-Signature": bad, "X-Firehook-Delivery": "d2"}),
                await post({"X-Firehook-Delivery": "d3"}),
                await post({"X-JWS-Signature": good}),
            ]
            async with session.post(receiver.url, data=body + b" ",
                                    headers={"X-JWS-Signature": good, "X-Firehook-Delivery": "d4"}) as response:
                statuses.append(response.status)
        stats = await receiver.stats()
        arrivals = await receiver.arrivals()
    check("receiver answers 204, 204, 401, 401, 400, 401", statuses == [204, 204, 401, 401, 400, 401], statuses)
    check("receiver counts only verified deliveries", stats["verified"] == 2 and stats["unique"] == 1
          and stats["duplicates"] == 1 and stats["refused"] == 3 and stats["missing_id"] == 1, stats)
    check("receiver records the arrival of verified ids only", set(arrivals) == {"d1"}, arrivals)


async def _fanout_end_to_end() -> None:
    cfg = common.Config(quick=True, fanout_deliveries=20, fanout_batch_lines=10, fanout_feed_seconds=10,
                        fanout_drain_seconds=30)
    with ReceiverProcess(common.KEY) as receiver:
        good = await fanout.measure("sqlite", 1, cfg, receiver=receiver)
        check("fan-out with the right key: every delivery verified, figure given",
              good["ok"] and good["per_second"] and good["deliveries"] == 20, good.get("problems"))
        bad = await fanout.measure("sqlite", 2, cfg, receiver=receiver, integration_key="not-the-receivers-key")
        check("fan-out with a wrong key: refused deliveries fail the run, no figure",
              not bad["ok"] and bad["per_second"] is None and any("refused" in p for p in bad["problems"]),
              bad.get("problems"))
        results = {"meta": _meta(), "fanout": {"sqlite": {"1": good, "2": bad}, "ceiling_per_second": 1000.0}}
        rows = {r["what"]: r for r in report.rows(results)}
        failed_row = next(r for w, r in rows.items() if "2 webhooks" in w)
        check("the report shows a failed run as failed, not as a figure",
              failed_row["firehook"] is None and failed_row["failed"], failed_row)


_GRANDCHILD = ("import time\nt = time.process_time()\nwhile time.process_time() - t < 0.4:\n    pass\n"
               "time.sleep(1.0)\n")
_CHILD = ("import subprocess, sys, time\ntime.sleep(0.3)\n"
          f"p = subprocess.Popen([sys.executable, '-c', {_GRANDCHILD!r}])\np.wait()\ntime.sleep(20)\n")
_ORPHANING = ("import subprocess, sys, time\n"
              "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], start_new_session=True)\n"
              "time.sleep(60)\n")


def _procs() -> None:
    """Trees: a grandchild that burns 0.4 s of CPU and exits is found while it lives and
    counted after (through its parent's cutime); leftovers of a killed parent are killed."""
    child = subprocess.Popen([sys.executable, "-c", _CHILD])
    try:
        meter = procs.CpuMeter({"tree": child.pid}).start()
        seen = False
        with procs.MemorySampler({"tree": child.pid}, interval=0.02) as memory:
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and not seen:
                seen = len(procs.tree(child.pid)) >= 2
                time.sleep(0.02)
            while time.monotonic() < deadline and len(procs.tree(child.pid)) > 1:
                time.sleep(0.05)
            gone = len(procs.tree(child.pid)) == 1
        used = meter.stop(1.0)["tree"]
        check("procs: a grandchild is found in the tree while it runs, and gone after", seen and gone,
              procs.tree(child.pid))
        check("procs: its CPU is counted once it has exited (≥ 0.38 s, of which descendants ≥ 0.38 s)",
              0.38 <= used["cpu_seconds"] < 1.5 and used["descendants_cpu_seconds"] >= 0.38, used)
        peak = memory.peaks()["tree"]
        check("procs: memory sums the tree (2 processes seen, more than the parent alone)",
              peak["processes"] >= 2 and peak["peak_rss_mib"] > peak["own_peak_rss_mib"], peak)
    finally:
        child.kill()
        child.wait(10)
    parent = subprocess.Popen([sys.executable, "-c", _ORPHANING])
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and len(procs.tree(parent.pid)) < 2:
            time.sleep(0.05)
        members = procs.snapshot(parent.pid)
    finally:
        parent.kill()
        parent.wait(10)
    killed = procs.kill_leftovers(members, grace=5)
    time.sleep(0.2)
    alive = [p for p, start in members if (st := procs.stat(p)) is not None and st.start == start
             and not procs._zombie(p)]
    check("procs: a descendant left behind by a killed parent is found and killed", len(killed) == 1 and not alive,
          (members, killed, alive))


async def _bare() -> None:
    body = common.dumps(common.activity_doc(20 * 1024))
    with bare.BareProcess() as server:
        pid = server.pid
        request = intake._single(server.url, "token", body)
        async with common.client_session(2) as session:
            got = await intake.closed_loop(session, request, 20, 2, 30)
    check("bare FastAPI baseline: 20 posts of 20 KB answered 201 with an id", got["accepted"] == 20
          and not got["failed_requests"], got)
    check("bare FastAPI baseline: its process is stopped", procs.stat(pid) is None, pid)


def _fleet_stops_everything() -> None:
    with common.Fleet("sqlite") as fleet:
        members = [(p, procs.stat(p)) for p in procs.tree(fleet.pids()["serve"])]
        settled = fleet.settled
    time.sleep(0.2)
    alive = [p for p, st in members if st is not None and (now := procs.stat(p)) is not None
             and now.start == st.start and not procs._zombie(p)]
    check("a fleet settles after start (its tree idle) and leaves no process behind",
          settled.get("settled") and not alive, (settled, members, alive))


def _dbwork_checks() -> None:
    ids = {"r1", "r2", "r3"}
    counts = {"runs_by_state": {"complete/success": 3}}
    good = {"runs_finished": 3, "called": ["r1", "r2", "r3"], "calls": 3, "duplicate_calls": 0, "errors": []}
    floor = {"ok": True}
    check("dbwork: a complete measurement passes", not dbwork.checks(good, floor, counts, ids, '"r2"'),
          dbwork.checks(good, floor, counts, ids, '"r2"'))
    twice = {**good, "called": ["r1", "r2"], "calls": 3, "duplicate_calls": 1}
    check("dbwork: a run executed twice and one never fail the figure",
          dbwork.checks(twice, floor, counts, ids, '"r2"'))
    check("dbwork: a storage value of no run fails the figure", dbwork.checks(good, floor, counts, ids, '"other"'))
    check("dbwork: runs left unfinished fail the figure",
          dbwork.checks(good, floor, {"runs_by_state": {"complete/success": 2, "in_progress/None": 1}}, ids, '"r1"'))


def _meta() -> dict[str, Any]:
    return {"started_at": "now", "quick": True, "machine": common.machine(), "load_average_before": [0.0, 0.0, 0.0],
            "load_average_after": [0.0, 0.0, 0.0], "seconds": 1}


def _profile() -> None:
    raw = ("main (a.py:1);loop (a.py:5);work (b.py:9) 30\n"
           "main (a.py:1);loop (a.py:5);idle (c.py:2) 10\n"
           "main (a.py:1);work (b.py:10) 10\n")
    summary = profile.summarise(raw)
    own = {r["function"]: r["samples"] for r in summary["own"]}
    inclusive = {r["function"]: r["samples"] for r in summary["inclusive"]}
    check("profile summary: own time per function, lines merged", own == {"work (b.py)": 40, "idle (c.py)": 10}, own)
    check("profile summary: inclusive time", inclusive["main (a.py)"] == 50 and inclusive["loop (a.py)"] == 40,
          inclusive)


def _report() -> None:
    memory = {"peak_rss_mib": 1, "vm_hwm_mib": 1}
    results = {
        "meta": _meta(),
        "intake": {"sqlite": {"idle_memory": {"rss_mib": 150.0, "vm_hwm_mib": 150.0, "processes": 2},
                              "batch_lines": 10,
                              "healthz": {"per_second": 120.0, "ok": True, "memory": memory},
                              "single": {"per_second": 50.0, "ok": True, "memory": memory,
                                         "cpu": {"serve": {"ms_per_item": 0.25}}},
                              "batch": {"per_second": 999.0, "ok": False, "problems": ["boom"],
                                        "memory": memory, "cpu": {"serve": {"ms_per_item": 0.05}}}},
                   "bare_fastapi": {"ok": True, "per_second": 100.0, "cpu_ms_per_request": 0.2,
                                    "idle_memory": {"rss_mib": 40.0, "vm_hwm_mib": 40.0}}},
        "latency": {"firehook": {"ok": True, "offered_per_second": 500.0, "answer_to_delivery": {"p99_ms": 12.0},
                                 "cpu": {"serve": {"ms_per_activity": 0.5}}},
                    "baseline": {"ok": True, "send_to_arrival": {"p99_ms": 1.0}}},
        "dbwork": {"ok": True, "ms_per_run": 0.25, "floor": {"ms_per_run": 0.03}, "problems": [],
                   "worker": {"ms_per_run": 0.25, "storage_ms_per_run": 0.1}},
    }
    text = report.markdown(results, "x.png")
    check("markdown: a passing figure is shown with its CPU and its baseline",
          "| 50.0/s | 0.250 ms/request | 100/s (bare FastAPI route" in text, text[:1500])
    check("markdown: a failed figure is shown as failed", "failed: boom" in text and "999" not in text, text[:1500])
    met = {r["what"]: r["met"] for r in report.rows(results)}
    check("targets: 50 % of the bare route is met (≥ 40 %), 0.25 ms of CPU per request is met (≤ 0.3)",
          met.get("intake single 20 KB, sqlite (8 clients)") is True
          and met.get("intake single, sqlite: server CPU per request (serve + descendants)") is True, met)
    check("targets: a failed batch is not met, whatever its CPU; 0.25 ms per script run is not met (≤ 0.2)",
          met.get("intake batch 20 KB × 10, sqlite (documents/s)") is False
          and met.get("database work per script run, sqlite (real worker, one storage.set, engine stubbed)") is False,
          met)
    check("targets: 150 MiB idle is met (≤ 200)", met.get("serve idle, all its processes (2), sqlite: summed RSS"),
          met)
    latency = next((r for r in report.rows(results) if r["what"].startswith("latency p99")), {})
    check("targets: a p99 of 12 ms is met (≤ 50), beside its baseline and CPU per activity",
          latency.get("met") is True and latency.get("firehook") == 12.0 and latency.get("baseline") == 1.0
          and latency.get("cpu_ms") == 0.5, latency)
    cpu_text = report.cpu_table(results)
    check("CPU table: the target and whether it is met", "| ≤ 0.30 | yes |" in cpu_text
          and "| ≤ 0.10 | **no** |" in cpu_text and "| ≤ 0.20 | **no** |" in cpu_text, cpu_text)
    _isolation_report(results)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.png"
        drawn = report.plot(results, path)
        check("plot: drawn (matplotlib installed)", drawn and path.stat().st_size > 1000, drawn)


def _isolation_report(results: dict[str, Any]) -> None:
    results = dict(results, isolation={
        "settings": {"workers": 2, "script_timeout": 20.0}, "healthz_per_second": 100.0,
        "baseline": {"ok": True, "healthz": {"p99_ms": 3.0, "n": 300}, "runs": {"max_ms": 40.0, "p50_ms": 20.0},
                     "dry_runs": {"max_ms": 30.0, "p50_ms": 10.0}},
        "runs": {"ok": True, "problems": [], "b": {"max_ms": 999.0, "p50_ms": 400.0, "n": 10},
                 "healthz": {"p99_ms": 50.0, "n": 900}},
        "dry_runs": {"ok": False, "problems": ["a dry run of project B answered 429"],
                     "b": {"max_ms": 20.0, "p50_ms": 10.0, "n": 3}, "healthz": {"p99_ms": 4.0, "n": 900}},
    })
    rows = {r["what"]: r for r in report.rows(results) if r["what"].startswith("isolation:")}
    run_max = rows.get("isolation: trivial run of project B while 2 runaways of A run, max of 10", {})
    healthz = rows.get("isolation: GET /healthz p99 while 2 runaways of A run (100/s offered)", {})
    dry_max = rows.get("isolation: trivial dry run of project B while 2 runaway dry runs of A are in flight, max of 3",
                       {})
    check("isolation: a slowest B run of 999 ms is met (< 1 s), beside B's runs with nothing else running",
          run_max.get("met") is True and run_max.get("firehook") == 999.0 and run_max.get("baseline") == 40.0, rows)
    check("isolation: a /healthz p99 of 50 ms is not met (< 50 ms)", healthz.get("met") is False
          and healthz.get("baseline") == 3.0, healthz)
    check("isolation: a phase whose checks failed is shown failed, not as a figure",
          dry_max.get("firehook") is None and dry_max.get("met") is False and "429" in (dry_max.get("failed") or ""),
          dry_max)
    check("isolation: the markdown has the scenario's section", "## Isolation (issue 12)" in report.markdown(
        results, None))


def main() -> int:
    started = time.perf_counter()
    _percentiles()
    _profile()
    _report()
    _dbwork_checks()
    _procs()
    common.run(_closed_loop())
    common.run(_receiver())
    common.run(_bare())
    try:
        _fleet_stops_everything()
    except Exception as exc:
        check("a fleet starts and stops", False, f"{type(exc).__name__}: {exc}")
    try:
        common.run(_fanout_end_to_end())
    except Exception as exc:
        check("fan-out end to end ran", False, f"{type(exc).__name__}: {exc}")
    failed = [name for name, ok, _ in _results if not ok]
    print(json.dumps({"checks": len(_results), "failed": failed,
                      "seconds": round(time.perf_counter() - started, 1)}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
