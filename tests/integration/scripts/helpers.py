"""Helpers for runs on the real engine: a loopback HTTP server, a run helper, the fixtures."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from firehook import scripts

LOOPBACK = ("127.0.0.1/32", "localhost")


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Server:
    """A threaded HTTP server on 127.0.0.1 that records what it receives."""

    port: int
    requests: list[Recorded] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base + path


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Buffer each response into one write: headers and body as two small writes on a
    # kept-alive connection meet Nagle's algorithm and delayed ACKs (40 ms stalls).
    wbufsize = 64 * 1024
    server_state: Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(
        self,
        status: int,
        body: bytes,
        headers: dict[str, str] | None = None,
        reason: str | None = None,
    ) -> None:
        self.send_response(status, reason)
        for name, value in (headers or {"Content-Type": "application/json"}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        self.server_state.requests.append(
            Recorded(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        )
        path = parts.path
        if path == "/json":
            self._answer(
                200,
                json.dumps({"hello": "world", "n": 42}).encode(),
                {"Content-Type": "application/json", "X-Custom": "yes"},
            )
        elif path == "/echo":
            answer = {
                "method": self.command,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode("utf-8", "replace"),
                "path": self.path,
            }
            self._answer(200, json.dumps(answer).encode())
        elif path == "/status":
            code = int(query.get("code", "200"))
            self._answer(
                code,
                query.get("body", "").encode(),
                {"Content-Type": "text/plain"},
                reason=query.get("reason"),
            )
        elif path == "/redirect":
            code = int(query.get("code", "302"))
            self._answer(code, b"", {"Location": query.get("to", "/json")})
        elif path == "/big":
            size = int(query.get("n", "0"))
            self._answer(200, b"x" * size, {"Content-Type": "text/plain"})
        elif path == "/slow":
            time.sleep(float(query.get("s", "1")))
            self._answer(200, b"late", {"Content-Type": "text/plain"})
        elif path == "/drip":
            count, gap = int(query.get("n", "20")), float(query.get("gap", "0.1"))
            self.send_response(200)
            self.send_header("Content-Length", str(count))
            self.end_headers()
            self.wfile.flush()
            for _ in range(count):
                time.sleep(gap)
                self.wfile.write(b"x")
                self.wfile.flush()
        elif path == "/multi":
            self.send_response(200)
            self.send_header("Set-Cookie", "a=1")
            self.send_header("Set-Cookie", "b=2")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
        elif path == "/utf8":
            self._answer(200, "héllo ✓".encode(), {"Content-Type": "text/plain; charset=utf-8"})
        else:
            self._answer(404, b"not found", {"Content-Type": "text/plain"})

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # do not wait for /slow handlers still sleeping

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that give up early (timeouts under test) are expected


def start_server() -> tuple[Server, ThreadingHTTPServer]:
    """Start a loopback server on a free port; the caller shuts it down."""
    state = Server(port=0)
    handler = type("Handler", (_Handler,), {"server_state": state})
    httpd = _QuietServer(("127.0.0.1", 0), handler)
    state.port = httpd.server_address[1]
    threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    ).start()
    return state, httpd


@dataclass
class Run:
    outcome: scripts.ScriptOutcome
    lines: list[str]
    storage: scripts.MemoryStorage

    @property
    def log(self) -> str:
        return "\n".join(self.lines)


FAST = scripts.ScriptLimits(timeout=2.0, memory_mb=64)


def run(
    source: str,
    *,
    activity: Any = None,
    activity_json: str | None = None,
    project: dict[str, Any] | None = None,
    variables: dict[str, Any] | None = None,
    storage: scripts.MemoryStorage | None = None,
    limits: scripts.ScriptLimits = FAST,
    allow: tuple[str, ...] = LOOPBACK,
    dry_fetch: bool = False,
) -> Run:
    """Run ``source`` once and collect its outcome and log."""
    lines: list[str] = []
    store = storage if storage is not None else scripts.MemoryStorage()
    if activity_json is None:
        activity_json = json.dumps(activity if activity is not None else {"type": "test"})
    outcome = scripts.run_script(
        source,
        activity_json=activity_json,
        project=project if project is not None else {"id": "proj1", "title": "Project"},
        variables=variables if variables is not None else {},
        storage=store,
        limits=limits,
        log=lines.append,
        outbound_allow=allow,
        dry_fetch=dry_fetch,
    )
    return Run(outcome, lines, store)


def shared_fixtures() -> Path:
    """``shared/fixtures/upsun``, found by walking up from this file."""
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "fixtures" / "upsun"
        if candidate.is_dir():
            return candidate
    pytest.skip("shared/fixtures/upsun not found above the repository")


def fixture_json(name: str) -> str:
    return (shared_fixtures() / name).read_text(encoding="utf-8")
