"""Intake: activities accepted per second over HTTP, and the server CPU each one costs.

One ``firehook serve`` per database (SQLite, PostgreSQL), a project with no integrations (so
intake is measured alone), and three closed-loop phases from one aiohttp client with a fixed
number of concurrent connections:

- ``healthz``: ``GET /healthz`` (the same server's trivial endpoint);
- ``single``: ``POST /api/projects/bench/activities``, one ~20 KB document per request,
  8 concurrent clients; every answer must be 201 with the new activity's id;
- ``batch``: ``POST …/activities:batch``, NDJSON of ``batch_lines`` documents per request;
  every answer must report all its lines accepted and none rejected.

After each phase the store is read back: it must hold exactly the activities the answers
reported. A phase stops at its count or its time bound; the rate is what was accepted
divided by the time taken. CPU: ``serve`` and all its descendants (its worker child…), and
the database's PostgreSQL backends, over the phase, per accepted activity.

Baseline, before and after the firehook servers (the mean is reported): ``bench/bare.py``, a
bare FastAPI route under uvicorn with firehook's uvicorn options, in its own process, loaded
by the same request function (same client, concurrency, 20 KB document and answer checks).
The idle memory of ``serve`` (all its processes) is taken once it is settled, before load.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from bench import bare as bare_mod
from bench import common, procs
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


def _single(url: str, token: str, body: bytes) -> Request:
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


def _single_url(base: str) -> str:
    return f"{base}/api/projects/{common.PROJECT}/activities"


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


@dataclasses.dataclass
class Target:
    """What a phase loads: the server's process tree (``pids``: one name → root PID), how to
    tell it is still alive, how many activities its store holds (None: nothing stored), and
    the fleet whose PostgreSQL backends to count (None: no database)."""

    pids: dict[str, int]
    check_alive: Callable[[], None]
    stored: Callable[[], int] | None = None
    fleet: common.Fleet | None = None

    @classmethod
    def of_fleet(cls, fleet: common.Fleet, stored: bool) -> Target:
        return cls({"serve": fleet.pids()["serve"]}, fleet.check_alive,
                   (lambda: common.store_counts(fleet.database_url)["activities"]) if stored else None, fleet)


async def _phase(target: Target, cfg: common.Config, request: Request, n: int, clients: int,
                 warmup: int, profiler: Profiler | None, profile_name: str) -> dict[str, Any]:
    target.check_alive()
    async with common.client_session(clients) as session:
        # Warm-up: connections open, code paths hot; not counted.
        await closed_loop(session, request, warmup, clients, cfg.phase_seconds)
        warm_stored = target.stored() if target.stored else 0
        profile_ctx = profiler.phase(profile_name, target.pids) if profiler and profile_name else None
        # Each server is measured with all its descendants (serve's worker child, script pools).
        cpu = common.CpuMeter(target.pids).start()
        pg_cpu = common.PgCpu(target.fleet) if target.fleet is not None else None
        with common.MemorySampler(target.pids) as memory:
            if profile_ctx is not None:
                with profile_ctx:
                    result = await closed_loop(session, request, n, clients, cfg.phase_seconds)
            else:
                result = await closed_loop(session, request, n, clients, cfg.phase_seconds)
        used = cpu.stop(result["seconds"])
        pg_used = pg_cpu.stop(result["seconds"]) if pg_cpu is not None else None
        if pg_used is not None:
            used["postgres"] = pg_used
        for usage in used.values():
            accepted = result["accepted"]
            usage["ms_per_item"] = round(usage["cpu_seconds"] * 1000 / accepted, 4) if accepted else None
        result["cpu"] = used
    result["per_second"] = round(result["accepted"] / result["seconds"], 1) if result["seconds"] else 0.0
    result["memory"] = next(iter(memory.peaks().values()))
    result["clients"] = clients
    result["load_average"] = common.load_average()
    checks = []
    if result["failed_requests"]:
        checks.append(f"{result['failed_requests']} requests failed, e.g. {result['errors'][0]}")
    if target.stored is not None:
        stored = target.stored() - warm_stored
        result["stored"] = stored
        if stored != result["accepted"]:
            checks.append(f"the store holds {stored} new activities, the answers reported {result['accepted']}")
    if not result["accepted"]:
        checks.append("nothing was accepted")
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
        out["settled"] = procs.wait_quiet(fleet.pids().values(), timeout=15)
        out["idle_memory"] = common.idle_memory(fleet.pids()["serve"])
        warmup = cfg.warmup_requests
        unstored = Target.of_fleet(fleet, stored=False)
        stored = Target.of_fleet(fleet, stored=True)
        out["healthz"] = await _phase(unstored, cfg, _healthz(fleet.base_url), cfg.healthz_requests,
                                      cfg.intake_clients, warmup, None, "")
        out["single"] = await _phase(stored, cfg, _single(_single_url(fleet.base_url), fleet.token, body),
                                     cfg.single_requests, cfg.intake_clients, warmup, profiler,
                                     f"intake-single-{database}")
        batches = max(1, cfg.batch_docs // cfg.batch_lines)
        out["batch"] = await _phase(stored, cfg, _batch(fleet.base_url, fleet.token, ndjson, cfg.batch_lines),
                                    batches, cfg.batch_clients, 2, profiler, f"intake-batch-{database}")
        fleet.check_alive()
    return out


async def _measure_bare(cfg: common.Config) -> dict[str, Any]:
    """The bare FastAPI route, loaded exactly as firehook's single intake is."""
    body = common.dumps(common.activity_doc(cfg.intake_doc_bytes))
    with bare_mod.BareProcess() as bare:

        def alive() -> None:
            if bare.proc is not None and bare.proc.poll() is not None:
                raise common.BenchError(f"the bare FastAPI app exited with {bare.proc.returncode}")

        procs.wait_quiet([bare.pid], timeout=15)
        idle = common.idle_memory(bare.pid)
        target = Target({"bare": bare.pid}, alive)
        out = await _phase(target, cfg, _single(bare.url, "not-checked", body), cfg.single_requests,
                           cfg.intake_clients, cfg.warmup_requests, None, "")
        alive()
    out["idle_memory"] = idle
    out["doc_bytes"] = len(body)
    out["uvicorn"] = bare_mod.uvicorn_options()
    return out


def _bare_summary(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The mean of the passing measurements before and after firehook's."""
    good = [m for m in (before, after) if m.get("ok")]
    cpu = [_get_ms(m) for m in good]
    return {
        "what": "bare FastAPI route under uvicorn (uvloop, httptools): POST reads the JSON body, answers 201",
        "before": before, "after": after,
        "per_second": round(sum(m["per_second"] for m in good) / len(good), 1) if good else None,
        "cpu_ms_per_request": round(sum(c for c in cpu if c is not None) / len(cpu), 4)
        if cpu and None not in cpu else None,
        "idle_memory": before.get("idle_memory"),
        "ok": bool(good),
        "problems": [p for m in (before, after) for p in m.get("problems", [])],
    }


def _get_ms(measured: dict[str, Any]) -> float | None:
    return (measured.get("cpu") or {}).get("bare", {}).get("ms_per_item")


def run(cfg: common.Config, profiler: Profiler | None = None,
        databases: tuple[str, ...] = ("sqlite", "postgres")) -> dict[str, Any]:
    out: dict[str, Any] = {}

    def bare() -> dict[str, Any]:
        try:
            return dict(common.run(_measure_bare(cfg)))
        except (common.BenchError, RuntimeError) as exc:
            return {"ok": False, "error": str(exc), "problems": [str(exc)]}

    before = bare()
    for database in databases:
        try:
            out[database] = common.run(_measure_database(database, cfg, profiler))
        except common.BenchError as exc:
            out[database] = {"error": str(exc)}
    out["bare_fastapi"] = _bare_summary(before, bare())
    return out


if __name__ == "__main__":
    print(json.dumps(run(common.Config.quick_config()), indent=2))
