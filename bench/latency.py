"""Latency: intake answer → first attempt reaching the receiver, at a fixed offered rate.

Open loop: request ``i`` is sent at ``t0 + i / rate`` whatever happened to the earlier ones
(each is its own task), so a slow server faces a growing backlog instead of a politely
waiting client — the way real senders behave. ``firehook serve`` on SQLite (API and embedded
worker), one signed webhook matching every activity, single-document intake.

For each activity: the moment its intake answer was read (harness, ``time.monotonic()``) and
the moment its run's first delivery reached the receiver (receiver process, the same
system-wide monotonic clock), matched by ``X-Firehook-Delivery`` = the run id from the
answer's ``_embedded.runs[].id``. Checked: every request answered 201 with one run, every run
arrived verified and ended ``complete/success`` in the store.

CPU: ``serve`` with all its descendants (its worker child), from the first send until every
run was finished, per activity (intake and delivery together).

Baseline in the same run: the same open loop from a bare aiohttp client posting the signed
bodies straight to the receiver (send → arrival): the floor of loopback HTTP plus
verification at this rate on this machine.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp

from bench import common
from bench.fanout import delivery_body
from bench.profile import Profiler
from bench.receiver import ReceiverProcess
from firehook import signing


async def _open_loop(rate: float, seconds: float, send: Any) -> tuple[list[Any], dict[str, float]]:
    """Call ``send(i)`` as a task at ``t0 + i / rate`` for ``seconds``; gather the results.
    Returns them, how late at worst a send started compared with its schedule, and the rate
    actually sent (lower than offered when the harness itself could not keep up)."""
    n = max(1, int(rate * seconds))
    tasks = []
    worst_lag = 0.0
    t0 = time.monotonic() + 0.05
    for i in range(n):
        target = t0 + i / rate
        delay = target - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            worst_lag = max(worst_lag, -delay)
        tasks.append(asyncio.create_task(send(i)))
    span = time.monotonic() - t0
    sent = {"worst_send_lag_ms": round(worst_lag * 1000, 2),
            "sent_per_second": round((n - 1) / span, 1) if span > 0 else float(n)}
    return list(await asyncio.gather(*tasks)), sent


async def _firehook(cfg: common.Config, receiver: ReceiverProcess, profiler: Profiler | None) -> dict[str, Any]:
    body = common.dumps(common.activity_doc())
    with common.Fleet("sqlite") as fleet:
        await common.Api(fleet.base_url, fleet.token).setup_project([receiver.url])
        await receiver.reset()
        url = f"{fleet.base_url}/api/projects/{common.PROJECT}/activities"
        headers = {"Authorization": f"Bearer {fleet.token}", "Content-Type": "application/json"}
        connector = aiohttp.TCPConnector(limit=512, limit_per_host=0)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
            # Warm-up, not measured: connections open, code paths hot.
            for _ in range(20):
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()

            async def send(_i: int) -> tuple[float, float, int, Any]:
                sent = time.monotonic()
                try:
                    async with session.post(url, data=body, headers=headers) as response:
                        raw = await response.read()
                        answered = time.monotonic()
                        if response.status != 201:
                            return sent, answered, response.status, None
                        runs = json.loads(raw)["_embedded"]["runs"]
                        return sent, answered, 201, [r["id"] for r in runs]
                except (aiohttp.ClientError, TimeoutError) as exc:
                    return sent, time.monotonic(), 0, f"{type(exc).__name__}: {exc}"

            await receiver.reset()
            pids = fleet.pids()
            cpu = common.CpuMeter(pids).start()
            t_cpu = time.monotonic()
            with common.MemorySampler(pids) as memory:
                if profiler is not None:
                    with profiler.phase("latency-sqlite", pids):
                        results, lag = await _open_loop(cfg.latency_rate, cfg.latency_seconds, send)
                else:
                    results, lag = await _open_loop(cfg.latency_rate, cfg.latency_seconds, send)
                # Wait (bounded) for the store to finish every run.
                deadline = time.monotonic() + cfg.latency_drain_seconds
                ok_runs = [r[3][0] for r in results if r[2] == 201 and r[3] and len(r[3]) == 1]
                while time.monotonic() < deadline:
                    counts = await asyncio.to_thread(common.store_counts, fleet.database_url)
                    if counts["runs_finished"] >= counts["runs"]:
                        break
                    await asyncio.sleep(0.2)
            cpu_used = cpu.stop(time.monotonic() - t_cpu)
        arrivals = await receiver.arrivals()
        stats = await receiver.stats()
        counts = await asyncio.to_thread(common.store_counts, fleet.database_url)
        fleet.check_alive()

    problems = []
    failed = [r for r in results if r[2] != 201]
    if failed:
        problems.append(f"{len(failed)} of {len(results)} requests failed, e.g. status {failed[0][2]} {failed[0][3]}")
    wrong_runs = [r for r in results if r[2] == 201 and (not r[3] or len(r[3]) != 1)]
    if wrong_runs:
        problems.append(f"{len(wrong_runs)} answers did not carry exactly one run")
    latencies = []
    missing = 0
    for _sent, answered, status, runs in results:
        if status == 201 and runs and len(runs) == 1:
            arrived = arrivals.get(runs[0])
            if arrived is None:
                missing += 1
            else:
                latencies.append(arrived - answered)
    if missing:
        problems.append(f"{missing} of {len(results)} runs did not reach the receiver within "
                        f"{cfg.latency_drain_seconds:g} s after the last send (the percentiles in the JSON "
                        "cover the delivered ones only: lower bounds)")
    if stats["refused"]:
        problems.append(f"the receiver refused {stats['refused']} deliveries: {stats['errors'][:2]}")
    warmup_runs = counts["runs"] - len(ok_runs)
    if counts["runs_by_state"].get("complete/success", 0) != counts["runs"]:
        problems.append(f"runs by state/result: {counts['runs_by_state']}")
    intake = [answered - sent for sent, answered, status, _ in results if status == 201]
    out: dict[str, Any] = {
        "database": "sqlite",
        "offered_per_second": cfg.latency_rate,
        "seconds": cfg.latency_seconds,
        "activities": len(results),
        "warmup_activities": warmup_runs,
        **lag,
        "memory": memory.peaks(),
        "cpu": cpu_used,
        "load_average": common.load_average(),
        "ok": not problems,
        "problems": problems,
    }
    if latencies:
        out["answer_to_delivery"] = common.summary_ms(latencies)
        out["answer_to_delivery"]["min_ms"] = round(min(latencies) * 1000, 2)
        out["before_answer"] = sum(1 for x in latencies if x < 0)
    if intake:
        out["intake_answer"] = common.summary_ms(intake)
    for usage in cpu_used.values():
        # Intake and delivery of one activity (its one run), the drain included.
        usage["ms_per_activity"] = round(usage["cpu_seconds"] * 1000 / len(results), 4) if results else None
    return out


async def _baseline(cfg: common.Config, receiver: ReceiverProcess) -> dict[str, Any]:
    doc = common.activity_doc()
    body = delivery_body(doc, 0)
    signature = signing.signature_header(body, (common.KEY,))
    connector = aiohttp.TCPConnector(limit=512, limit_per_host=0)
    await receiver.reset()
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:

        async def send(i: int) -> tuple[str, float, int]:
            headers = {"Content-Type": "application/json", "X-Firehook-Delivery": f"base-{i}",
                       "X-JWS-Signature": signature}
            sent = time.monotonic()
            try:
                async with session.post(receiver.url, data=body, headers=headers) as response:
                    await response.read()
                    return f"base-{i}", sent, response.status
            except (aiohttp.ClientError, TimeoutError):
                return f"base-{i}", sent, 0

        results, lag = await _open_loop(cfg.latency_rate, cfg.latency_seconds, send)
    arrivals = await receiver.arrivals()
    latencies = [arrivals[i] - sent for i, sent, status in results if status == 204 and i in arrivals]
    failed = sum(1 for _, _, status in results if status != 204)
    return {
        "what": "bare aiohttp → receiver, send to arrival, same open loop",
        "activities": len(results),
        **lag,
        "send_to_arrival": common.summary_ms(latencies) if latencies else None,
        "ok": not failed and len(latencies) == len(results),
        "problems": [f"{failed} posts failed"] if failed else [],
    }


async def _scenario(cfg: common.Config, profiler: Profiler | None) -> dict[str, Any]:
    with ReceiverProcess(common.KEY) as receiver:
        baseline = await _baseline(cfg, receiver)
        try:
            firehook = await _firehook(cfg, receiver, profiler)
        except common.BenchError as exc:
            firehook = {"ok": False, "error": str(exc), "problems": [str(exc)]}
    return {"firehook": firehook, "baseline": baseline}


def run(cfg: common.Config, profiler: Profiler | None = None) -> dict[str, Any]:
    return dict(common.run(_scenario(cfg, profiler)))


if __name__ == "__main__":
    print(json.dumps(run(common.Config.quick_config()), indent=2))
