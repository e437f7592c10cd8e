"""The benchmark's webhook receiver: a fast loopback aiohttp server in its own process.

    python -m bench.receiver --key KEY        # prints "port N", then serves until killed

``POST /hook`` reads the raw body, verifies ``X-JWS-Signature`` with ``firehook.receiver``
against the key, and records the first arrival time (``time.monotonic()``, the system-wide
CLOCK_MONOTONIC, so it compares with the harness's clock) per ``X-Firehook-Delivery``. A
delivery that does not verify is answered 401 and counted as refused, never as received.

``GET /stats`` gives the counts; ``GET /arrivals`` the first-arrival time of each delivery
id; ``POST /reset`` starts over. :class:`ReceiverProcess` starts and stops it from the harness.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from typing import Any

import aiohttp
from aiohttp import web

from bench import procs
from firehook import receiver

MAX_ERRORS_KEPT = 5


class _State:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.verified = 0
        self.refused = 0
        self.missing_id = 0
        self.bytes = 0
        self.arrivals: dict[str, float] = {}
        self.duplicates = 0
        self.errors: list[str] = []
        self.first: float | None = None
        self.last: float | None = None

    def stats(self) -> dict[str, Any]:
        return {
            "verified": self.verified,
            "refused": self.refused,
            "missing_id": self.missing_id,
            "unique": len(self.arrivals),
            "duplicates": self.duplicates,
            "bytes": self.bytes,
            "errors": self.errors,
            "first_arrival": self.first,
            "last_arrival": self.last,
        }


def make_app(key: str) -> web.Application:
    state = _State()

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        now = time.monotonic()
        try:
            receiver.verify(body, request.headers.get("X-JWS-Signature"), key)
        except receiver.SignatureError as exc:
            state.refused += 1
            if len(state.errors) < MAX_ERRORS_KEPT:
                state.errors.append(str(exc))
            return web.Response(status=401, text=str(exc))
        delivery = request.headers.get("X-Firehook-Delivery")
        if not delivery:
            state.missing_id += 1
            return web.Response(status=400, text="no X-Firehook-Delivery")
        state.verified += 1
        state.bytes += len(body)
        if state.first is None:
            state.first = now
        state.last = now
        if delivery in state.arrivals:
            state.duplicates += 1
        else:
            state.arrivals[delivery] = now
        return web.Response(status=204)

    async def stats(_request: web.Request) -> web.Response:
        return web.json_response(state.stats())

    async def arrivals(_request: web.Request) -> web.Response:
        return web.Response(body=json.dumps(state.arrivals).encode(), content_type="application/json")

    async def reset(_request: web.Request) -> web.Response:
        state.reset()
        return web.json_response({"ok": True})

    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_post("/hook", hook)
    app.router.add_get("/stats", stats)
    app.router.add_get("/arrivals", arrivals)
    app.router.add_post("/reset", reset)
    return app


async def _serve(key: str, port: int) -> None:
    runner = web.AppRunner(make_app(key), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=4096)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(f"port {bound}", flush=True)
    await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="the benchmark's verifying webhook receiver")
    parser.add_argument("--key", required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        import uvloop

        uvloop.run(_serve(args.key, args.port))
    except ImportError:
        asyncio.run(_serve(args.key, args.port))


class ReceiverProcess:
    """``python -m bench.receiver`` as a child process, stopped by its PID."""

    def __init__(self, key: str) -> None:
        # stderr to a file, not a pipe nobody reads: a chatty receiver must never block on it.
        self._stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.receiver", "--key", key],
                                     stdout=subprocess.PIPE, stderr=self._stderr, text=True)
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line.startswith("port "):
            self.stop()
            self._stderr.seek(0)
            err = self._stderr.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"the receiver did not start: {line}{err}")
        self.port = int(line.split()[1])
        self.base = f"http://127.0.0.1:{self.port}"
        self.url = self.base + "/hook"

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def _get(self, path: str, method: str = "GET") -> Any:
        async with aiohttp.ClientSession() as session, session.request(method, self.base + path) as response:
            return json.loads(await response.read())

    async def stats(self) -> dict[str, Any]:
        return dict(await self._get("/stats"))

    async def arrivals(self) -> dict[str, float]:
        return dict(await self._get("/arrivals"))

    async def reset(self) -> None:
        await self._get("/reset", "POST")

    def stop(self) -> None:
        procs.stop_process(self.proc)
        self._stderr.close()

    def __enter__(self) -> ReceiverProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":
    main()
