"""Client CPU per webhook POST: aiohttp against firehook's delivery client, on loopback.

    .venv/bin/python -m bench.webhooks_client [--n 5000] [--size 6144] [--concurrency 256]
                                              [--rounds 3] [--uvloop] [--max-seconds 300]

Not part of ``make bench``: it measures one layer, the HTTP client of the worker. The receiver
is ``bench.receiver`` in its own process (it verifies every signature and counts deliveries by
id); every run must be received in full, verified and without duplicates, or the script fails.

Four clients send ``--n`` signed POSTs of ``--size`` bytes each, ``--concurrency`` at a time,
one after another and repeated ``--rounds`` times (interleaved, so a noisy neighbour on a
shared machine hits all of them alike):

- ``aiohttp_bare``: a plain ``aiohttp.ClientSession``, headers signed in advance; the ceiling
  ``make bench`` compares with;
- ``aiohttp_firehook``: aiohttp set up as ``webhooks.make_session`` had it before
  ``firehook.delivery_http`` (guarded resolver, the literal-host middleware, no cookies, a total
  timeout per request, 4 KiB of the answer read), signing each request;
- ``lean_bare``: ``delivery_http.Client.post`` with the headers signed in advance;
- ``webhooks_send``: ``webhooks.send`` as the worker calls it (signing per attempt, the guard,
  the attempt record).

CPU is the client process's (``getrusage``: every thread, user + system, and the system
share apart), divided by the deliveries; the receiver's CPU is not in it. Prints one JSON report.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import resource
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

import firehook
from bench.receiver import ReceiverProcess
from firehook import outbound, outbound_aiohttp, signing, webhooks

KEY = "bench-shared-key-0123456789abcdef"
MODES = ("aiohttp_bare", "aiohttp_firehook", "lean_bare", "webhooks_send")
GUARD = outbound.Guard(["127.0.0.1/32"])

Post = Callable[[int], Awaitable[None]]


def make_bodies(size: int, count: int = 64) -> list[bytes]:
    """``count`` distinct JSON documents of about ``size`` bytes."""
    bodies = []
    for i in range(count):
        doc = {"id": f"bench{i:08d}", "type": "environment.push", "state": "complete", "log": ""}
        base = len(json.dumps(doc, separators=(",", ":")))
        doc["log"] = "x" * max(0, size - base)
        bodies.append(json.dumps(doc, separators=(",", ":")).encode())
    return bodies


def signed_headers(body: bytes, delivery_id: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": f"firehook/{firehook.__version__}",
        "X-Firehook-Delivery": delivery_id,
        "X-JWS-Signature": signing.sign_detached(body, KEY),
    }


def firehook_aiohttp_session(guard: outbound.Guard, concurrency: int) -> aiohttp.ClientSession:
    """The aiohttp session of ``webhooks.make_session`` before the switch (the baseline)."""
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=0,
                                     resolver=outbound_aiohttp.GuardedResolver(guard), ttl_dns_cache=10)
    passed: set[str] = set()

    async def check_literal_host(request: aiohttp.ClientRequest,
                                 handler: aiohttp.ClientHandlerType) -> aiohttp.ClientResponse:
        host = request.url.raw_host or ""
        if host not in passed:
            guard.check_literal(host)
            if len(passed) < 1024:
                passed.add(host)
        return await handler(request)

    return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar(), trust_env=False,
                                 middlewares=(check_literal_host,), raise_for_status=False)


async def run_mode(mode: str, url: str, bodies: list[bytes], n: int, concurrency: int, tag: str) -> dict[str, Any]:
    """Send ``n`` deliveries with one client; returns seconds and CPU seconds."""
    failures: list[str] = []
    closers: list[Callable[[], Awaitable[None]]] = []
    post: Post
    if mode == "aiohttp_bare":
        prepared = [(body, signed_headers(body, "")) for body in bodies]
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency, limit_per_host=0))
        closers.append(session.close)

        async def post(i: int) -> None:
            body, headers = prepared[i % len(prepared)]
            async with session.post(url, data=body, headers={**headers, "X-Firehook-Delivery": f"{tag}{i}"}) as r:
                await r.read()
                if r.status != 204:
                    failures.append(str(r.status))

    elif mode == "aiohttp_firehook":
        fh_session = firehook_aiohttp_session(GUARD, concurrency)
        closers.append(fh_session.close)
        timeout = aiohttp.ClientTimeout(total=15.0)

        async def post(i: int) -> None:
            delivery = webhooks.Delivery(run_id=f"{tag}{i}", url=url, body=bodies[i % len(bodies)], keys=(KEY,))
            headers = webhooks.headers_for(delivery, firehook.__version__)
            async with fh_session.post(url, data=delivery.body, headers=headers, allow_redirects=False,
                                       timeout=timeout) as r:
                await r.content.read(webhooks.RESPONSE_LIMIT)
                if r.status != 204:
                    failures.append(str(r.status))

    elif mode == "lean_bare":
        prepared = [(body, signed_headers(body, "")) for body in bodies]
        client = webhooks.make_session(GUARD, concurrency)
        closers.append(client.close)

        async def post(i: int) -> None:
            body, headers = prepared[i % len(prepared)]
            response = await client.post(url, body, {**headers, "X-Firehook-Delivery": f"{tag}{i}"}, 15.0)
            if response.status != 204 or response.failure is not None:
                failures.append(str(response.status))

    elif mode == "webhooks_send":
        send_client = webhooks.make_session(GUARD, concurrency)
        closers.append(send_client.close)

        async def post(i: int) -> None:
            delivery = webhooks.Delivery(run_id=f"{tag}{i}", url=url, body=bodies[i % len(bodies)], keys=(KEY,))
            result = await webhooks.send(send_client, delivery, 15.0, firehook.__version__)
            if not result.success:
                failures.append(result.error or str(result.status))

    else:
        raise ValueError(mode)

    counter = itertools.count()

    async def worker() -> None:
        while (i := next(counter)) < n:
            await post(i)

    try:
        t0, u0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds, u1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
    finally:
        for close in closers:
            await close()
    if failures:
        raise RuntimeError(f"{mode}: {len(failures)} deliveries failed, e.g. {failures[0]}")
    user, system = u1.ru_utime - u0.ru_utime, u1.ru_stime - u0.ru_stime
    return {"seconds": seconds, "cpu": user + system, "user": user, "system": system}


async def bench(args: argparse.Namespace, receiver: ReceiverProcess) -> dict[str, Any]:
    bodies = make_bodies(args.size)
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    for mode in MODES:  # warm-up: imports, code paths and the receiver's, not measured
        await run_mode(mode, receiver.url, bodies, min(500, args.n), args.concurrency, f"warm-{mode}-")
    for round_no in range(args.rounds):
        for mode in MODES:
            await receiver.reset()
            measured = await run_mode(mode, receiver.url, bodies, args.n, args.concurrency, f"{mode}-{round_no}-")
            stats = await receiver.stats()
            if (stats["verified"], stats["unique"], stats["duplicates"], stats["refused"]) != (args.n, args.n, 0, 0):
                raise RuntimeError(f"{mode}: the receiver counted {stats}, expected {args.n} verified deliveries")
            runs[mode].append(measured)
    report: dict[str, Any] = {
        "n": args.n, "body_bytes": len(bodies[0]), "concurrency": args.concurrency, "rounds": args.rounds,
        "loop": "uvloop" if args.uvloop else "asyncio", "cpus": os.cpu_count(),
        "python": platform.python_version(), "aiohttp": aiohttp.__version__, "modes": {},
    }
    for mode, measured in runs.items():
        per_post = [m["cpu"] / args.n * 1e6 for m in measured]
        system = [m["system"] / args.n * 1e6 for m in measured]
        rates = [args.n / m["seconds"] for m in measured]
        report["modes"][mode] = {
            "client_cpu_us_per_post": round(statistics.median(per_post), 1),
            "client_cpu_us_per_post_each": [round(v, 1) for v in per_post],
            "of_which_system_us": round(statistics.median(system), 1),
            "posts_per_s": round(statistics.median(rates), 1),
        }
    cpu = {mode: report["modes"][mode]["client_cpu_us_per_post"] for mode in MODES}
    report["cpu_ratio_aiohttp_firehook_to_webhooks_send"] = round(cpu["aiohttp_firehook"] / cpu["webhooks_send"], 2)
    report["cpu_ratio_aiohttp_bare_to_lean_bare"] = round(cpu["aiohttp_bare"] / cpu["lean_bare"], 2)
    return report


async def _main(args: argparse.Namespace, receiver: ReceiverProcess) -> dict[str, Any]:
    async with asyncio.timeout(args.max_seconds):
        return await bench(args, receiver)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--n", type=int, default=5000, help="deliveries per run")
    parser.add_argument("--size", type=int, default=6 * 1024, help="body bytes")
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--uvloop", action="store_true", help="run the client on uvloop (the worker does not)")
    parser.add_argument("--max-seconds", type=float, default=300.0, help="give up after this long")
    args = parser.parse_args()
    with ReceiverProcess(KEY) as receiver:
        if args.uvloop:
            import uvloop

            report = uvloop.run(_main(args, receiver))
        else:
            report = asyncio.run(_main(args, receiver))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
