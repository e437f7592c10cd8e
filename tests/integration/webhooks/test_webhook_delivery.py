"""``webhooks.send`` against real receivers on 127.0.0.1 (aiohttp and http.server)."""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import socket
import struct
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any, ClassVar

from aiohttp import web

import firehook
from firehook import outbound, receiver, signing, timefmt, webhooks

KEY = "integration-shared-key"
BODY = b'{"id":"a1kz6ffxui7em","type":"environment.push","text":"Clo\xc3\xa9 pushed"}'
ALLOW = outbound.Guard(["127.0.0.1/32"])
VERSION = firehook.__version__


class Seen:
    """What a receiver got, request by request."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []


@contextlib.asynccontextmanager
async def aiohttp_receiver(seen: Seen) -> AsyncIterator[str]:
    async def record(request: web.Request) -> bytes:
        body = await request.read()
        seen.requests.append((request.path, dict(request.headers), body))
        return body

    async def ok(request: web.Request) -> web.Response:
        body = await record(request)
        try:
            receiver.verify(body, request.headers.get("X-JWS-Signature"), KEY)
        except receiver.SignatureError as exc:
            return web.Response(status=401, text=str(exc))
        return web.Response(text="verified " + "x" * 10_000)

    async def status(request: web.Request) -> web.Response:
        await record(request)
        code = int(request.match_info["code"])
        headers = {}
        if code == 429:
            headers["Retry-After"] = "7"
        if code == 503:
            headers["Retry-After"] = "Fri, 31 Dec 2100 23:59:59 GMT"
        if code == 302:
            headers["Location"] = "/ok"
        return web.Response(status=code, text=f"status {code}", headers=headers)

    async def slow(request: web.Request) -> web.Response:
        await record(request)
        await asyncio.sleep(5)
        return web.Response(text="too late")

    app = web.Application()
    app.router.add_post("/ok", ok)
    app.router.add_post("/status/{code}", status)
    app.router.add_post("/slow", slow)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def run(scenario: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    return asyncio.run(scenario())


def delivery(url: str, **changes: Any) -> webhooks.Delivery:
    fields: dict[str, Any] = {"run_id": "r1kz6ffxui7em", "url": url, "body": BODY, "keys": (KEY,)}
    fields.update(changes)
    return webhooks.Delivery(**fields)


async def send_to(path: str, guard: outbound.Guard = ALLOW, timeout: float = 5.0, **changes: Any):  # type: ignore[no-untyped-def]
    seen = Seen()
    async with aiohttp_receiver(seen) as base:
        session = webhooks.make_session(guard, 8)
        try:
            result = await webhooks.send(
                session, delivery(base + path, **changes), timeout, VERSION
            )
        finally:
            await session.close()
    return result, seen


def test_200_signed_headers_and_body() -> None:
    result, seen = run(lambda: send_to("/ok", standard_webhooks=True))
    assert result.success and not result.retryable and result.error is None
    assert result.status == 200
    assert result.response is not None and result.response.startswith("verified ")
    assert len(result.response) == webhooks.RESPONSE_LIMIT  # first 4 KiB only
    timefmt.parse_ts(result.started_at)
    assert result.started_at.endswith("+00:00") and result.duration_ms > 0
    [(_, headers, body)] = seen.requests
    assert body == BODY
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == f"firehook/{VERSION}"
    assert headers["X-Firehook-Delivery"] == "r1kz6ffxui7em"
    assert headers["X-JWS-Signature"] == signing.sign_detached(BODY, KEY)
    assert headers["webhook-id"] == "r1kz6ffxui7em"
    receiver.verify_standard_webhook(body, headers, KEY)
    assert "Cookie" not in headers


def test_500_is_retryable() -> None:
    result, _ = run(lambda: send_to("/status/500"))
    assert result.status == 500 and not result.success and result.retryable
    assert result.error == "HTTP 500 Internal Server Error"
    assert result.response == "status 500"


def test_429_with_retry_after() -> None:
    result, _ = run(lambda: send_to("/status/429"))
    assert result.status == 429 and result.retryable and result.retry_after == 7.0


def test_503_with_http_date_retry_after() -> None:
    result, _ = run(lambda: send_to("/status/503"))
    assert result.retryable and result.retry_after is not None and result.retry_after > 10**8


def test_410_is_final() -> None:
    result, _ = run(lambda: send_to("/status/410"))
    assert result.status == 410 and not result.success and not result.retryable


def test_302_is_not_followed() -> None:
    result, seen = run(lambda: send_to("/status/302"))
    assert result.status == 302 and not result.success and not result.retryable
    assert result.error is not None and "/ok" in result.error and "not followed" in result.error
    assert [path for path, _, _ in seen.requests] == ["/status/302"]


def test_slow_response_times_out() -> None:
    result, seen = run(lambda: send_to("/slow", timeout=0.5))
    assert result.status is None and result.retryable
    assert result.error == "timed out after 0.5 s"
    assert len(seen.requests) == 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_closed_port() -> None:
    async def scenario() -> webhooks.AttemptResult:
        session = webhooks.make_session(ALLOW, 2)
        try:
            url = f"http://127.0.0.1:{free_port()}/hook"
            return await webhooks.send(session, delivery(url), 5, VERSION)
        finally:
            await session.close()

    result = run(scenario)
    assert result.status is None and result.retryable
    assert result.error is not None and "cannot connect to 127.0.0.1" in result.error
    assert "refused" in result.error


@contextlib.contextmanager
def resetting_server() -> Iterator[int]:
    """Accepts, reads the request, and resets the connection (RST) without answering."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            with contextlib.suppress(OSError):
                conn.settimeout(2)
                conn.recv(65536)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join()
        listener.close()


def test_reset_connection() -> None:
    with resetting_server() as port:

        async def scenario() -> webhooks.AttemptResult:
            session = webhooks.make_session(ALLOW, 2)
            try:
                return await webhooks.send(
                    session, delivery(f"http://127.0.0.1:{port}/"), 5, VERSION
                )
            finally:
                await session.close()

        result = run(scenario)
    assert result.status is None and result.retryable and not result.final
    assert result.error is not None
    assert "reset" in result.error.lower() or "closed the connection" in result.error


def test_blocked_without_allow_list() -> None:
    result, seen = run(lambda: send_to("/ok", guard=outbound.Guard()))
    assert result.status is None and result.final and not result.retryable
    assert result.error is not None
    assert "127.0.0.1 is a loopback address" in result.error
    assert "FIREHOOK_OUTBOUND_ALLOW" in result.error
    assert seen.requests == []  # nothing reached the receiver


def test_blocked_names_and_spellings_never_connect() -> None:
    async def scenario() -> list[webhooks.AttemptResult]:
        seen = Seen()
        async with aiohttp_receiver(seen) as base:
            port = base.rsplit(":", 1)[1]
            session = webhooks.make_session(outbound.Guard(), 4)
            try:
                results = []
                for host in ("localhost", "[::ffff:127.0.0.1]", "2130706433", "0x7f.1", "127.1"):
                    url = f"http://{host}:{port}/ok"
                    results.append(await webhooks.send(session, delivery(url), 5, VERSION))
            finally:
                await session.close()
        assert seen.requests == []
        return results

    for result in run(scenario):
        assert result.final and "blocked" in (result.error or "")


def test_allowed_name_is_resolved_and_pinned() -> None:
    async def scenario() -> tuple[webhooks.AttemptResult, Seen, str]:
        seen = Seen()
        async with aiohttp_receiver(seen) as base:
            port = base.rsplit(":", 1)[1]
            session = webhooks.make_session(ALLOW, 4)
            try:
                url = f"http://localhost:{port}/ok"
                return await webhooks.send(session, delivery(url), 5, VERSION), seen, port
            finally:
                await session.close()

    # localhost is 127.0.0.1 and ::1; only 127.0.0.1 is allowed, and the connection is made
    # to it while the request still names the host it was addressed to.
    result, seen, port = run(scenario)
    assert result.success
    assert seen.requests[0][1]["Host"] == f"localhost:{port}"


class FlakyHandler(http.server.BaseHTTPRequestHandler):
    """Fails twice with 503, then answers 204 once the signature verifies."""

    received: ClassVar[list[tuple[dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((dict(self.headers), body))
        if len(self.received) <= 2:
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        try:
            receiver.verify(body, self.headers.get("X-JWS-Signature"), ["newer-key", KEY])
        except receiver.SignatureError:
            self.send_response(401)
        else:
            self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_identical_bytes_across_attempts_on_http_server() -> None:
    FlakyHandler.received = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FlakyHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hooks/firehook"
    item = delivery(url, keys=(KEY, "older-key"))

    async def scenario() -> list[webhooks.AttemptResult]:
        session = webhooks.make_session(ALLOW, 2)
        try:
            return [await webhooks.send(session, item, 5, VERSION) for _ in range(3)]
        finally:
            await session.close()

    try:
        results = run(scenario)
    finally:
        server.shutdown()
        server.server_close()
    assert [r.status for r in results] == [503, 503, 204]
    assert [r.retryable for r in results] == [True, True, False]
    assert results[-1].success
    bodies = {body for _, body in FlakyHandler.received}
    assert bodies == {BODY}
    signatures = {h["X-JWS-Signature"] for h, _ in FlakyHandler.received}
    deliveries = {h["X-Firehook-Delivery"] for h, _ in FlakyHandler.received}
    assert signatures == {signing.signature_header(BODY, [KEY, "older-key"])}
    assert deliveries == {"r1kz6ffxui7em"}
