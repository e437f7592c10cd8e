"""Webhook sending throughput on loopback: a raw aiohttp ceiling against ``webhooks.send``.

    .venv/bin/python -m bench.webhooks_bench [--n 20000] [--size 40960] [--concurrency 256]

The client's CPU time per delivery is reported too: on a small machine the receiver (which
verifies every signature) can be the limit, and the CPU figure shows what sending costs.

A receiver runs in its own process on 127.0.0.1: it reads every body, verifies every
``X-JWS-Signature`` with ``firehook.receiver`` and counts. The client sends N deliveries
twice, at the same concurrency: first raw ``session.post`` calls with the bytes and headers
prepared in advance (the ceiling: no signing, no guard, no result record), then
``webhooks.send`` through ``webhooks.make_session`` (signature computed per attempt, guarded
resolver, attempt result built). Prints one JSON report.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import multiprocessing
import os
import platform
import socket
import time
from typing import Any

import aiohttp
from aiohttp import web

import firehook
from firehook import outbound, receiver, signing, webhooks

KEY = "bench-shared-key-0123456789abcdef"


def make_bodies(size: int, count: int = 64) -> list[bytes]:
    """``count`` distinct JSON bodies of about ``size`` bytes (cycled through)."""
    bodies = []
    for i in range(count):
        doc = {"id": f"bench{i:08d}", "type": "environment.push", "state": "complete", "log": ""}
        base = len(json.dumps(doc, separators=(",", ":")).encode())
        doc["log"] = "x" * max(0, size - base)
        bodies.append(json.dumps(doc, separators=(",", ":")).encode())
    return bodies


def serve(sock: socket.socket, ready: Any) -> None:
    """The receiver process: verify and count."""
    counts = {"verified": 0, "refused": 0}

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        signature = request.headers.get("X-JWS-Signature")
        if signature is None:  # the raw ceiling run sends a precomputed signature too
            counts["refused"] += 1
            return web.Response(status=401)
        try:
            receiver.verify(body, signature, KEY)
        except receiver.SignatureError:
            counts["refused"] += 1
            return web.Response(status=401)
        counts["verified"] += 1
        return web.Response(status=204)

    async def stats(request: web.Request) -> web.Response:
        result = dict(counts)
        counts.update(verified=0, refused=0)
        return web.json_response(result)

    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_post("/hook", hook)
    app.router.add_get("/stats", stats)

    async def main() -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.SockSite(runner, sock, backlog=4096)
        await site.start()
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(main())


async def take_stats(base: str) -> dict[str, int]:
    async with aiohttp.ClientSession() as session, session.get(base + "/stats") as response:
        return dict(await response.json())


async def run_raw(base: str, bodies: list[bytes], n: int, concurrency: int) -> tuple[float, float]:
    """The ceiling: aiohttp posts with everything computed beforehand."""
    prepared = [
        (
            body,
            {
                "Content-Type": "application/json",
                "User-Agent": f"firehook/{firehook.__version__}",
                "X-Firehook-Delivery": f"raw{i}",
                "X-JWS-Signature": signing.sign_detached(body, KEY),
            },
        )
        for i, body in enumerate(bodies)
    ]
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=0)
    counter = itertools.count()
    failures = 0
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal failures
            while (i := next(counter)) < n:
                body, headers = prepared[i % len(prepared)]
                async with session.post(base + "/hook", data=body, headers=headers) as response:
                    await response.read()
                    failures += response.status != 204

        t0, c0 = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    if failures:
        raise RuntimeError(f"raw run: {failures} requests failed")
    return elapsed, cpu


async def run_send(base: str, bodies: list[bytes], n: int, concurrency: int) -> tuple[float, float]:
    """The real path: webhooks.send with signing per attempt, through the guard."""
    session = webhooks.make_session(outbound.Guard(["127.0.0.1/32"]), concurrency)
    counter = itertools.count()
    failures: list[str] = []
    try:

        async def worker() -> None:
            while (i := next(counter)) < n:
                delivery = webhooks.Delivery(
                    run_id=f"run{i}", url=base + "/hook", body=bodies[i % len(bodies)], keys=(KEY,)
                )
                result = await webhooks.send(session, delivery, 15.0, firehook.__version__)
                if not result.success:
                    failures.append(result.error or str(result.status))

        t0, c0 = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    finally:
        await session.close()
    if failures:
        raise RuntimeError(f"send run: {len(failures)} failed, e.g. {failures[0]}")
    return elapsed, cpu


async def bench(args: argparse.Namespace, base: str) -> dict[str, Any]:
    bodies = make_bodies(args.size)
    # A short warm-up so both runs start with the receiver's code paths hot.
    await run_raw(base, bodies, min(500, args.n), args.concurrency)
    await take_stats(base)
    raw_s, raw_cpu = await run_raw(base, bodies, args.n, args.concurrency)
    raw_counts = await take_stats(base)
    send_s, send_cpu = await run_send(base, bodies, args.n, args.concurrency)
    send_counts = await take_stats(base)
    return {
        "n": args.n,
        "body_bytes": len(bodies[0]),
        "concurrency": args.concurrency,
        "loop": "uvloop" if args.uvloop else "asyncio",
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "aiohttp": aiohttp.__version__,
        "raw_aiohttp": {
            "seconds": round(raw_s, 3),
            "deliveries_per_s": round(args.n / raw_s, 1),
            "client_cpu_us_per_delivery": round(raw_cpu / args.n * 1e6, 1),
            "receiver": raw_counts,
        },
        "webhooks_send": {
            "seconds": round(send_s, 3),
            "deliveries_per_s": round(args.n / send_s, 1),
            "client_cpu_us_per_delivery": round(send_cpu / args.n * 1e6, 1),
            "receiver": send_counts,
        },
        "send_vs_raw": round(raw_s / send_s, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--size", type=int, default=40 * 1024)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--uvloop", action="store_true", help="run the client on uvloop")
    args = parser.parse_args()

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    server = ctx.Process(target=serve, args=(sock, ready), daemon=True)
    server.start()
    try:
        if not ready.wait(20):
            raise RuntimeError("the receiver did not start")
        base = f"http://127.0.0.1:{port}"
        if args.uvloop:
            import uvloop

            report = uvloop.run(bench(args, base))
        else:
            report = asyncio.run(bench(args, base))
    finally:
        server.terminate()
        server.join(5)
        sock.close()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
