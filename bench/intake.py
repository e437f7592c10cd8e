"""Intake: activities accepted per second over HTTP, on SQLite and on PostgreSQL.

One ``firehook serve`` per database, a project with no integrations (so intake is measured
alone), and three closed-loop phases from one aiohttp client with a fixed number of
concurrent connections:

- ``healthz``: ``GET /healthz`` (the same server's trivial endpoint: one ``SELECT 1``) — the
  HTTP ceiling of this client against this server;
- ``single``: ``POST /api/projects/bench/activities``, one ~20 KB document per request,
  8 concurrent clients; every answer must be 201 with the new activity's id;
- ``batch``: ``POST …/activities:batch``, NDJSON of ``batch_lines`` documents per request;
  every answer must report all its lines accepted and none rejected.

After each phase the store is read back: it must hold exactly the activities the answers
reported. A phase stops at its count or its time bound; the rate is what was accepted
divided by the time taken.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from bench import common
from bench.profile import Profiler

Request = Callable[[aiohttp.ClientSession, int], Awaitable[int]]


async def closed_loop(session: aiohttp.ClientSession, request: Request, n: int, clients: int,
                      seconds: float) -> dict[str, Any]:
    """``clients`` coroutines issue ``request`` back to back until ``n`` were issued or
    ``seconds`` passed. ``request`` returns how many items the answer accepted, or raises."""
    counter = itertools.count()
    accepted = 0
    requests = 0
    errors: list[str] = []
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal accepted, requests
        while time.perf_counter() < deadline and (i := next(counter)) < n:
            try:
                # Await first, then add: ``accepted += await …`` would read the total before
                # the await and lose the other clients' additions.
                got = await request(session, i)
                accepted += got
                requests += 1
            except Exception as exc:  # counted and reported, never as throughput
                errors.append(f"{type(exc).__name__}: {exc}"[:300])

    with common.timer() as t:
        await asyncio.gather(*(client() for _ in range(clients)))
    return {
        "requests": requests,
        "accepted": accepted,
        "failed_requests": len(errors),
        "errors": errors[:5],
        "seconds": round(t["seconds"], 3),
        "bounded_by": "count" if requests + len(errors) >= n else "time",
        "client_cpu_us_per_request": round(t["client_cpu_seconds"] / max(requests, 1) * 1e6, 1),
    }


def _healthz(base: str) -> Request:
    url = base + "/healthz"

    async def request(session: aiohttp.ClientSession, _i: int) -> int:
        async with session.get(url) as response:
            await response.read()
            if response.status != 200:
                raise common.BenchError(f"/healthz answered {response.status}")
            return 1

    return request


def _single(base: str, token: str, body: bytes) -> Request:
    url = f"{base}/api/projects/{common.PROJECT}/activities"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    async def request(session: aiohttp.ClientSession, _i: int) -> int:
        async with session.post(url, data=body, headers=headers) as response:
            raw = await response.read()
            if response.status != 201:
                raise common.BenchError(f"intake answered {response.status}: {raw[:300]!r}")
            answer = json.loads(raw)
            if not answer["_embedded"]["entity"].get("id"):
                raise common.BenchError("intake answered 201 without an activity id")
            return 1

    return request


def _batch(base: str, token: str, body: bytes, lines: int) -> Request:
    url = f"{base}/api/projects/{common.PROJECT}/activities:batch"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"}

    async def request(session: aiohttp.ClientSession, _i: int) -> int:
        async with session.post(url, data=body, headers=headers) as response:
            raw = await response.read()
            if response.status != 200:
                raise common.BenchError(f"batch answered {response.status}: {raw[:300]!r}")
            answer = json.loads(raw)
            if answer.get("accepted") != lines or answer.get("rejected"):
                raise common.BenchError(f"batch accepted {answer.get('accepted')} of {lines} lines, "
                                        f"rejected {answer.get('rejected')}")
            return lines

    return request


async def _phase(fleet: common.Fleet, cfg: common.Config, request: Request, n: int, clients: int,
                 warmup: int, profiler: Profiler | None, profile_name: str, expect_stored: bool) -> dict[str, Any]:
    fleet.check_alive()
    async with common.client_session(clients) as session:
        # Warm-up: connections open, code paths hot; not counted.
        await closed_loop(session, request, warmup, clients, cfg.phase_seconds)
        warm_stored = common.store_counts(fleet.database_url)["activities"] if expect_stored else 0
        profile_ctx = profiler.phase(profile_name, {"serve": fleet.pids()["serve"]}) if profiler else None
        cpu = common.CpuMeter(fleet.pids()).start()
        pg_cpu = common.PgCpu(fleet)
        with common.MemorySampler({"serve": fleet.pids()["serve"]}) as memory:
            if profile_ctx is not None:
                with profile_ctx:
                    result = await closed_loop(session, request, n, clients, cfg.phase_seconds)
            else:
                result = await closed_loop(session, request, n, clients, cfg.phase_seconds)
        used = cpu.stop(result["seconds"])
        pg_used = pg_cpu.stop(result["seconds"])
        if pg_used is not None:
            used["postgres"] = pg_used
        for usage in used.values():
            accepted = result["accepted"]
            usage["ms_per_item"] = round(usage["cpu_seconds"] * 1000 / accepted, 3) if accepted else None
        result["cpu"] = used
    result["per_second"] = round(result["accepted"] / result["seconds"], 1) if result["seconds"] else 0.0
    result["memory"] = memory.peaks()["serve"]
    result["clients"] = clients
    result["load_average"] = common.load_average()
    checks = []
    if result["failed_requests"]:
        checks.append(f"{result['failed_requests']} requests failed, e.g. {result['errors'][0]}")
    if expect_stored:
        stored = common.store_counts(fleet.database_url)["activities"] - warm_stored
        result["stored"] = stored
        if stored != result["accepted"]:
            checks.append(f"the store holds {stored} new activities, the answers reported {result['accepted']}")
    result["ok"] = not checks
    result["problems"] = checks
    return result


async def _measure_database(database: str, cfg: common.Config, profiler: Profiler | None) -> dict[str, Any]:
    doc = common.activity_doc(cfg.intake_doc_bytes)
    body = common.dumps(doc)
    ndjson = b"\n".join([body] * cfg.batch_lines) + b"\n"
    out: dict[str, Any] = {"database": database, "doc_bytes": len(body), "batch_lines": cfg.batch_lines}
    with common.Fleet(database) as fleet:
        await common.Api(fleet.base_url, fleet.token).setup_project()
        await asyncio.sleep(1.0)
        out["idle_memory"] = common.idle_memory(fleet.pids()["serve"])
        warmup = cfg.warmup_requests
        out["healthz"] = await _phase(fleet, cfg, _healthz(fleet.base_url), cfg.healthz_requests,
                                      cfg.intake_clients, warmup, None, "", False)
        out["single"] = await _phase(fleet, cfg, _single(fleet.base_url, fleet.token, body), cfg.single_requests,
                                     cfg.intake_clients, warmup, profiler, f"intake-single-{database}", True)
        batches = max(1, cfg.batch_docs // cfg.batch_lines)
        out["batch"] = await _phase(fleet, cfg, _batch(fleet.base_url, fleet.token, ndjson, cfg.batch_lines),
                                    batches, cfg.batch_clients, 2, profiler, f"intake-batch-{database}", True)
        fleet.check_alive()
    return out


def run(cfg: common.Config, profiler: Profiler | None = None,
        databases: tuple[str, ...] = ("sqlite", "postgres")) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for database in databases:
        try:
            out[database] = common.run(_measure_database(database, cfg, profiler))
        except common.BenchError as exc:
            out[database] = {"error": str(exc)}
    return out


if __name__ == "__main__":
    print(json.dumps(run(common.Config.quick_config()), indent=2))
