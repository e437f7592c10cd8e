"""Webhook fan-out: signed deliveries per second, end to end, against a verifying receiver.

End to end means: from the first activity posted to the moment the store has recorded the
attempt of the last run. Activities (a real Upsun ``environment.push``, complete/success)
are posted through the batch endpoint, ``fanout_batch_lines`` per request, while the
workers deliver; the project has 1 or 10 webhooks that match every activity, all signed with
a shared key and pointed at ``bench.receiver`` (its own process, verifying every signature).

A run counts only if all of these hold at the end, otherwise the figure is refused:
- every batch answer accepted all its lines, each with as many runs as there are webhooks;
- the store has every run ``complete/success`` with exactly one attempt, answered 2xx;
- the receiver verified one delivery per run (``X-Firehook-Delivery`` = run id, the same
  set of ids as the store's runs) and refused none.

The ceiling, measured in the same run against the same receiver: a bare aiohttp client
posting bodies of the same size, signed in advance, at firehook's webhook concurrency
(``FIREHOOK_WEBHOOK_CONCURRENCY``, 256), before and after the firehook runs.

CPU: each firehook process with all its descendants (``serve``'s worker child, script pools),
the PostgreSQL backends of the database, the receiver, and the harness itself (the load),
per delivery.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import os
import time
from typing import Any

import aiohttp

import firehook
from bench import common
from bench.profile import Profiler
from bench.receiver import ReceiverProcess
from firehook import fanout as fanout_mod
from firehook import signing, timefmt


def delivery_body(doc: dict[str, Any], i: int) -> bytes:
    """A body shaped like the snapshot firehook sends for ``doc`` (id, project, links, stamps)."""
    body = dict(doc)
    body["id"] = f"ceil{i:09d}"
    body["project"] = common.PROJECT
    now = timefmt.now_ts()
    body.setdefault("created_at", now)
    body["updated_at"] = now
    body["_links"] = fanout_mod.activity_links("http://127.0.0.1:8780", common.PROJECT, body["id"])
    return common.dumps(body)


async def ceiling(receiver: ReceiverProcess, doc: dict[str, Any], n: int, concurrency: int) -> dict[str, Any]:
    """Bare aiohttp posts of signed bodies, everything prepared beforehand."""
    prepared = []
    for i in range(64):
        body = delivery_body(doc, i)
        prepared.append((body, signing.signature_header(body, (common.KEY,))))
    await receiver.reset()
    counter = itertools.count()
    failures: list[str] = []
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client() -> None:
            while (i := next(counter)) < n:
                body, signature = prepared[i % len(prepared)]
                headers = {"Content-Type": "application/json", "User-Agent": f"firehook/{firehook.__version__}",
                           "X-Firehook-Delivery": f"ceiling-{i}", "X-JWS-Signature": signature}
                try:
                    async with session.post(receiver.url, data=body, headers=headers) as response:
                        await response.read()
                        if response.status != 204:
                            failures.append(f"status {response.status}")
                except aiohttp.ClientError as exc:
                    failures.append(f"{type(exc).__name__}: {exc}")

        cpu = common.CpuMeter({"receiver": receiver.pid}).start()
        with common.timer() as t:
            await asyncio.gather(*(client() for _ in range(concurrency)))
        receiver_cpu = cpu.stop(t["seconds"]).get("receiver", {})
    stats = await receiver.stats()
    problems = []
    if failures:
        problems.append(f"{len(failures)} posts failed, e.g. {failures[0]}")
    if stats["verified"] != n or stats["unique"] != n or stats["refused"]:
        problems.append(f"the receiver verified {stats['verified']} ({stats['unique']} unique) of {n}, "
                        f"refused {stats['refused']}")
    return {
        "deliveries": n,
        "concurrency": concurrency,
        "body_bytes": len(prepared[0][0]),
        "seconds": round(t["seconds"], 3),
        "per_second": round(n / t["seconds"], 1),
        "client_cpu_us_per_delivery": round(t["client_cpu_seconds"] / n * 1e6, 1),
        "receiver_cpu_us_per_delivery": round(receiver_cpu["cpu_seconds"] / n * 1e6, 1) if receiver_cpu else None,
        "load_average": common.load_average(),
        "ok": not problems,
        "problems": problems,
    }


async def _feed(fleet: common.Fleet, docs_body: bytes, lines: int, batches: int, webhooks: int,
                seconds: float, backlog: int, progress: dict[str, int]) -> dict[str, Any]:
    """Post batches one after the other until ``batches`` or ``seconds``; every line must be
    accepted with ``webhooks`` runs. Holds back while more than ``backlog`` deliveries are
    queued (``progress["finished"]`` is kept up to date by the caller), so that the run
    measures a steady state and ends soon after the feed, whatever the delivery rate."""
    url = f"{fleet.base_url}/api/projects/{common.PROJECT}/activities:batch"
    headers = {"Authorization": f"Bearer {fleet.token}", "Content-Type": "application/x-ndjson"}
    posted = 0
    problems: list[str] = []
    deadline = time.monotonic() + seconds
    async with common.client_session(1) as session:
        for _ in range(batches):
            while posted * webhooks - progress["finished"] > backlog and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            if time.monotonic() >= deadline:
                break
            async with session.post(url, data=docs_body, headers=headers) as response:
                raw = await response.read()
            if response.status != 200:
                problems.append(f"batch answered {response.status}: {raw[:300]!r}")
                break
            answer = json.loads(raw)
            wrong = [r for r in answer["results"] if "id" not in r or r.get("runs") != webhooks]
            if answer["accepted"] != lines or wrong:
                problems.append(f"batch accepted {answer['accepted']} of {lines}; e.g. {wrong[:1]}")
                break
            posted += lines
            progress["posted"] = posted
    return {"activities": posted, "problems": problems}


async def measure(database: str, webhooks: int, cfg: common.Config, *, workers: int = 0,
                  profiler: Profiler | None = None, receiver: ReceiverProcess,
                  integration_key: str = common.KEY) -> dict[str, Any]:
    """One end-to-end fan-out run on a fresh fleet: ``serve`` (embedded worker) when
    ``workers`` is 0, else ``serve --no-worker`` and ``workers`` worker processes.
    (``integration_key`` differs from the receiver's only in the self-check.)"""
    doc = common.activity_doc()
    lines = cfg.fanout_batch_lines
    activities_wanted = math.ceil(cfg.fanout_deliveries / webhooks)
    batches = max(1, math.ceil(activities_wanted / lines))
    ndjson = b"\n".join([common.dumps(doc)] * lines) + b"\n"
    name = f"fanout-{database}-{webhooks}wh-{workers or 'embedded'}w"
    with common.Fleet(database, workers=workers, embedded_worker=workers == 0) as fleet:
        api = common.Api(fleet.base_url, fleet.token)
        await api.setup_project([f"{receiver.url}?w={k}" for k in range(webhooks)], key=integration_key)
        await receiver.reset()
        pids = fleet.pids()
        idle = {k: common.idle_memory(pid) for k, pid in pids.items()}
        profile_ctx = profiler.phase(name, pids) if profiler else None
        # serve and each worker with all their descendants; the harness alone (its descendants
        # are the servers and the receiver, counted apart).
        cpu = common.CpuMeter({**pids, "receiver": receiver.pid, "harness": os.getpid()}, alone=["harness"]).start()
        pg_cpu = common.PgCpu(fleet)
        timed_out = False
        with common.MemorySampler(pids) as memory:
            if profile_ctx is not None:
                profile_ctx.__enter__()
            try:
                t0 = time.monotonic()
                progress = {"finished": 0, "posted": 0}
                feed_task = asyncio.create_task(_feed(fleet, ndjson, lines, batches, webhooks,
                                                      cfg.fanout_feed_seconds, cfg.fanout_backlog, progress))
                fed: dict[str, Any] | None = None
                drain_deadline: float | None = None
                while True:
                    await asyncio.sleep(0.05)
                    if fed is None and feed_task.done():
                        fed = feed_task.result()
                        drain_deadline = time.monotonic() + cfg.fanout_drain_seconds
                    done = await asyncio.to_thread(common.finished_runs, fleet.database_url)
                    progress["finished"] = done
                    if fed is not None:
                        if fed["problems"] or done >= fed["activities"] * webhooks:
                            break
                        assert drain_deadline is not None
                        if time.monotonic() > drain_deadline:
                            timed_out = True
                            break
                    fleet.check_alive()
                t_end = time.monotonic()
                cpu_used = cpu.stop(t_end - t0)
                pg_used = pg_cpu.stop(t_end - t0)
                if pg_used is not None:
                    cpu_used["postgres"] = pg_used
                total = sum(v["cpu_seconds"] for v in cpu_used.values())
                cpu_used["all"] = {"cpu_seconds": round(total, 2), "cores_busy": round(total / (t_end - t0), 2)}
                # The firehook processes together (serve, workers, their descendants), without
                # PostgreSQL, the receiver and the load generator.
                mine = sum(v["cpu_seconds"] for k, v in cpu_used.items() if k in pids)
                cpu_used["firehook"] = {"cpu_seconds": round(mine, 3), "cores_busy": round(mine / (t_end - t0), 2)}
            finally:
                if profile_ctx is not None:
                    profile_ctx.__exit__(None, None, None)
        assert fed is not None
        expected = fed["activities"] * webhooks
        # Let the last answers of the receiver land before reading it (the store recorded them).
        stats = await receiver.stats()
        arrivals = await receiver.arrivals()
        counts = await asyncio.to_thread(common.store_counts, fleet.database_url)
        ids = await asyncio.to_thread(common.run_ids, fleet.database_url)
        common.dispose_cached()
        fleet.check_alive()

    problems = list(fed["problems"])
    if timed_out:
        problems.append(f"only {counts['runs_finished']} of {expected} runs finished within "
                        f"{cfg.fanout_drain_seconds:g} s after the last activity was posted")
    if counts["runs_by_state"] != {"complete/success": expected}:
        problems.append(f"runs by state/result: {counts['runs_by_state']}, expected {expected} complete/success")
    if counts["attempts"] != expected or counts["attempts_2xx"] != expected or counts["runs_with_attempt"] != expected:
        problems.append(f"attempts recorded: {counts['attempts']} ({counts['attempts_2xx']} 2xx, on "
                        f"{counts['runs_with_attempt']} runs), expected {expected}")
    if stats["refused"] or stats["missing_id"]:
        problems.append(f"the receiver refused {stats['refused']} deliveries: {stats['errors'][:2]}")
    if stats["unique"] != expected or set(arrivals) != ids:
        problems.append(f"the receiver verified {stats['unique']} distinct deliveries; the store has {len(ids)} "
                        f"runs; {len(ids - set(arrivals))} runs never arrived")
    seconds = t_end - t0
    for usage in cpu_used.values():
        usage["ms_per_delivery"] = round(usage["cpu_seconds"] * 1000 / expected, 4) if expected else None
    receiver_span = (stats["last_arrival"] or 0) - (stats["first_arrival"] or 0)
    return {
        "database": database,
        "webhooks_per_activity": webhooks,
        "workers": workers or "embedded",
        "activities": fed["activities"],
        "deliveries": expected,
        "duplicates": stats["duplicates"],
        "body_bytes": round(stats["bytes"] / stats["verified"]) if stats["verified"] else None,
        "seconds": round(seconds, 3),
        "per_second": round(expected / seconds, 1) if seconds > 0 and not problems else None,
        "per_second_unchecked": round(expected / seconds, 1) if seconds > 0 else None,
        "receiver_span_per_second": round(stats["unique"] / receiver_span, 1) if receiver_span > 0 else None,
        "memory_idle": idle,
        "memory": memory.peaks(),
        "cpu": cpu_used,
        "load_average": common.load_average(),
        "ok": not problems,
        "problems": problems,
    }


async def _scenario(cfg: common.Config, profiler: Profiler | None, databases: tuple[str, ...],
                    webhook_counts: tuple[int, ...]) -> dict[str, Any]:
    doc = common.activity_doc()
    out: dict[str, Any] = {}
    with ReceiverProcess(common.KEY) as receiver:
        out["ceiling_before"] = await ceiling(receiver, doc, cfg.ceiling_deliveries, cfg.webhook_concurrency)
        for database in databases:
            out[database] = {}
            for webhooks in webhook_counts:
                try:
                    out[database][str(webhooks)] = await measure(
                        database, webhooks, cfg, workers=0 if database == "sqlite" else 1,
                        profiler=profiler, receiver=receiver)
                except common.BenchError as exc:
                    out[database][str(webhooks)] = {"ok": False, "error": str(exc), "problems": [str(exc)]}
        out["ceiling_after"] = await ceiling(receiver, doc, cfg.ceiling_deliveries, cfg.webhook_concurrency)
    rates = [c["per_second"] for c in (out["ceiling_before"], out["ceiling_after"]) if c["ok"]]
    out["ceiling_per_second"] = round(sum(rates) / len(rates), 1) if rates else None
    return out


def run(cfg: common.Config, profiler: Profiler | None = None, databases: tuple[str, ...] = ("sqlite", "postgres"),
        webhook_counts: tuple[int, ...] = (1, 10)) -> dict[str, Any]:
    return dict(common.run(_scenario(cfg, profiler, databases, webhook_counts)))


if __name__ == "__main__":
    print(json.dumps(run(common.Config.quick_config()), indent=2))
