"""``firehook.delivery_http`` against scripted servers on loopback, in the test's event loop.

Each server reads every request whole and answers what the test's handler writes, byte for
byte, so keep-alive, framing and failures are exact; assertions are on what the server saw
(connections, requests, who closed) and on the client's words, never on durations.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import select
import socket
import ssl
import struct
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import firehook
from firehook import delivery_http, errors, outbound, webhooks

BODY = b'{"id":"a1kz6ffxui7em","type":"environment.push"}'
HEADERS = {"Content-Type": "application/json", "X-Firehook-Delivery": "r1"}
ALLOW = outbound.Guard(["127.0.0.1/32"])
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
BOUND = 10  # seconds: a safety bound on waits for the server's side, never asserted


@dataclass
class Request:
    conn: int
    line: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Exchange:
    """One request as a handler sees it, and the connection to answer on."""

    request: Request
    number: int  # 1-based, across the server
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def client_closed(self) -> None:
        """Wait until the client closes (or resets) this connection."""
        with contextlib.suppress(ConnectionError):
            await asyncio.wait_for(self.reader.read(), BOUND)

    def reset(self) -> None:
        sock = self.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()


# A handler answers one exchange and says whether the connection stays open for another.
Handler = Callable[[Exchange], Awaitable[bool]]


@dataclass
class Server:
    handler: Handler
    requests: list[Request] = field(default_factory=list)
    connections: int = 0
    closed: list[int] = field(default_factory=list)  # connections the server side has finished
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    port: int = 0

    def url(self, path: str = "/hook", host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    async def wait(self, condition: Callable[[], bool]) -> None:
        async def until() -> None:
            while not condition():
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(until(), BOUND)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        conn = self.connections
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    break
                line, *rest = head.decode("latin-1").split("\r\n")
                headers = {k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in rest if h)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                request = Request(conn, line, headers, body)
                self.requests.append(request)
                self.changed.set()
                if not await self.handler(Exchange(request, len(self.requests), reader, writer)):
                    break
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            self.closed.append(conn)
            self.changed.set()


@contextlib.asynccontextmanager
async def serving(handler: Handler, host: str = "127.0.0.1",
                  tls: ssl.SSLContext | None = None) -> AsyncIterator[Server]:
    server = Server(handler)
    listener = await asyncio.start_server(server.serve, host, 0, ssl=tls)
    server.port = listener.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        listener.close()
        await listener.wait_closed()


async def answer_ok(ex: Exchange) -> bool:
    ex.writer.write(OK)
    await ex.writer.drain()
    return True


def run(scenario: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    return asyncio.run(scenario())


@contextlib.asynccontextmanager
async def client(guard: outbound.Guard = ALLOW, limit: int = 4, **kw: Any) -> AsyncIterator[delivery_http.Client]:
    c = delivery_http.Client(guard, limit, **kw)
    try:
        yield c
    finally:
        await c.close()


def test_keep_alive_reuses_one_connection_and_sends_the_request_exactly() -> None:
    async def scenario() -> None:
        async with serving(answer_ok) as server, client() as c:
            for _ in range(5):
                response = await c.post(server.url("/hooks/in box?a=1&b=%2F"), BODY, HEADERS, 5)
                assert (response.status, response.reason, response.head, response.failure) == (200, "OK", b"ok", None)
            assert server.connections == 1 and c.opened == 1
            assert len(server.requests) == 5
            request = server.requests[0]
            assert request.line == "POST /hooks/in%20box?a=1&b=%2F HTTP/1.1"
            assert request.headers["host"] == f"127.0.0.1:{server.port}"
            assert request.headers["content-length"] == str(len(BODY))
            assert request.headers["content-type"] == "application/json"
            assert request.headers["x-firehook-delivery"] == "r1"
            assert request.body == BODY

    run(scenario)


def test_a_connection_the_server_closed_while_idle_is_replaced_before_sending() -> None:
    async def answer_then_close(ex: Exchange) -> bool:
        ex.writer.write(OK)  # keep-alive by HTTP/1.1 rules, then closed as an idle timeout would
        await ex.writer.drain()
        return False

    async def scenario() -> None:
        async with serving(answer_then_close) as server, client() as c:
            assert (await c.post(server.url(), BODY, HEADERS, 5)).status == 200
            await server.wait(lambda: server.closed == [1])
            # The FIN is on the client's socket; the pooled connection must not carry the next
            # request, which goes out once, on a fresh connection.
            assert (await c.post(server.url(), BODY, HEADERS, 5)).status == 200
            assert server.connections == 2 and len(server.requests) == 2
            assert [r.conn for r in server.requests] == [1, 2]

    run(scenario)


def test_a_stale_connection_is_seen_even_before_the_event_loop_has_read_its_close() -> None:
    """The server closes while the loop is not running: only the check before sending sees it."""
    may_close, closed = threading.Event(), threading.Event()
    connections: list[int] = []
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        for number in (1, 2):
            conn, _ = listener.accept()
            connections.append(number)
            with conn:
                conn.recv(65536)
                conn.sendall(OK)
                if number == 1:
                    may_close.wait(BOUND)
        closed.set()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()

    async def scenario() -> None:
        async with client() as c:
            url = f"http://127.0.0.1:{port}/hook"
            assert (await c.post(url, BODY, HEADERS, 5)).status == 200
            [conn] = [conn for stack in c._idle.values() for conn in stack]
            may_close.set()
            # Blocking on purpose: the event loop must not run until the FIN is on the socket.
            if not select.select([conn.sock], [], [], BOUND)[0]:
                raise AssertionError("the server's close never arrived")
            assert not conn.closed  # the loop has not seen it
            assert (await c.post(url, BODY, HEADERS, 5)).status == 200
            assert c.opened == 2

    try:
        run(scenario)
    finally:
        may_close.set()
        thread.join(BOUND)
        listener.close()
    assert connections == [1, 2]


def test_a_post_is_not_resent_when_a_reused_connection_closes_without_answering() -> None:
    async def second_unanswered(ex: Exchange) -> bool:
        if ex.number == 2:
            return False  # read, then closed without a word: the server may have acted on it
        return await answer_ok(ex)

    async def scenario() -> None:
        async with serving(second_unanswered) as server, client() as c:
            assert (await c.post(server.url(), BODY, HEADERS, 5)).status == 200
            with pytest.raises(delivery_http.Disconnected, match="closed the connection without answering"):
                await c.post(server.url(), BODY, HEADERS, 5)
            assert len(server.requests) == 2 and server.connections == 1  # not sent again
            assert (await c.post(server.url(), BODY, HEADERS, 5)).status == 200
            assert [r.conn for r in server.requests] == [1, 1, 2]

    run(scenario)


def test_chunked_answer_is_read_and_the_connection_reused() -> None:
    async def chunked(ex: Exchange) -> bool:
        ex.writer.write(b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        await ex.writer.drain()
        ex.writer.write(b"6\r\n world\r\n0\r\n\r\n")
        await ex.writer.drain()
        return True

    async def scenario() -> None:
        async with serving(chunked) as server, client() as c:
            for _ in range(2):
                response = await c.post(server.url(), BODY, HEADERS, 5)
                assert (response.status, response.reason, response.head) == (201, "Created", b"hello world")
            assert server.connections == 1

    run(scenario)


def test_an_answer_over_the_limit_is_kept_in_part_and_its_connection_not_reused() -> None:
    big = bytes(range(256)) * 40  # 10,240 bytes

    async def long_answer(ex: Exchange) -> bool:
        if ex.request.conn > 1:
            return await answer_ok(ex)
        ex.writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(big) + big[:6000])
        await ex.writer.drain()
        await ex.client_closed()  # the rest is never asked for: the client hangs up
        return False

    async def scenario() -> None:
        async with serving(long_answer) as server, client() as c:
            response = await c.post(server.url(), BODY, HEADERS, 5)
            assert response.status == 200 and response.failure is None
            assert response.head == big[:4096]
            await server.wait(lambda: 1 in server.closed)
            assert (await c.post(server.url(), BODY, HEADERS, 5)).head == b"ok"
            assert server.connections == 2

    run(scenario)


def test_connection_close_is_honoured_by_the_client() -> None:
    async def close_asked(ex: Exchange) -> bool:
        ex.writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")
        await ex.writer.drain()
        await ex.client_closed()  # the server leaves the closing to the client
        return False

    async def scenario() -> None:
        async with serving(close_asked) as server, client() as c:
            assert (await c.post(server.url(), BODY, HEADERS, 5)).head == b"ok"
            await server.wait(lambda: server.closed == [1])
            assert (await c.post(server.url(), BODY, HEADERS, 5)).head == b"ok"
            assert server.connections == 2

    run(scenario)


def test_a_body_without_length_ends_with_the_connection() -> None:
    async def until_close(ex: Exchange) -> bool:
        ex.writer.write(b"HTTP/1.1 202 Accepted\r\n\r\nuntil ")
        await ex.writer.drain()
        ex.writer.write(b"the end")
        return False

    async def scenario() -> None:
        async with serving(until_close) as server, client() as c:
            for _ in range(2):
                response = await c.post(server.url(), BODY, HEADERS, 5)
                assert (response.status, response.head, response.failure) == (202, b"until the end", None)
            assert server.connections == 2

    run(scenario)


def test_a_body_cut_short_by_a_clean_close_is_a_failure_with_its_status() -> None:
    async def short_body(ex: Exchange) -> bool:
        ex.writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
        return False

    async def scenario() -> None:
        async with serving(short_body) as server, client() as c:
            response = await c.post(server.url(), BODY, HEADERS, 5)
            assert (response.status, response.head) == (200, b"0123456789")
            assert isinstance(response.failure, delivery_http.CutShort)
            assert str(response.failure) == "the response was cut short: the server closed the connection"

    run(scenario)


def test_redirect_status_and_retry_after_are_reported_not_followed() -> None:
    async def redirect(ex: Exchange) -> bool:
        ex.writer.write(b"HTTP/1.1 307 Temporary Redirect\r\nLocation: /elsewhere\r\nRetry-After: 9\r\n"
                        b"Content-Length: 0\r\n\r\n")
        return True

    async def scenario() -> None:
        async with serving(redirect) as server, client() as c:
            response = await c.post(server.url(), BODY, HEADERS, 5)
            assert (response.status, response.location, response.retry_after) == (307, "/elsewhere", "9")
            assert len(server.requests) == 1

    run(scenario)


def test_a_silent_server_times_out_and_a_stalled_body_keeps_its_status() -> None:
    async def silent(ex: Exchange) -> bool:
        if ex.number == 2:
            ex.writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
            await ex.writer.drain()
        await ex.client_closed()
        return False

    async def scenario() -> None:
        async with serving(silent) as server, client() as c:
            with pytest.raises(delivery_http.TimedOut, match=r"^timed out after 0.2 s$"):
                await c.post(server.url(), BODY, HEADERS, 0.2)
            response = await c.post(server.url(), BODY, HEADERS, 0.2)
            assert (response.status, response.head) == (200, b"0123456789")
            assert isinstance(response.failure, delivery_http.TimedOut)
            await server.wait(lambda: sorted(server.closed) == [1, 2])  # the client gave both up

    run(scenario)


def test_a_refused_port() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    async def scenario() -> None:
        async with client() as c:
            with pytest.raises(delivery_http.ConnectFailed) as caught:
                await c.post(f"http://127.0.0.1:{port}/hook", BODY, HEADERS, 5)
            assert str(caught.value) == f"cannot connect to 127.0.0.1:{port}: Connection refused"

    run(scenario)


def test_a_reset_in_the_middle_of_the_answer() -> None:
    async def reset_mid_body(ex: Exchange) -> bool:
        ex.writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
        await ex.writer.drain()
        ex.reset()
        return False

    async def scenario() -> None:
        async with serving(reset_mid_body) as server:
            c = webhooks.make_session(ALLOW, 2)
            try:
                delivery = webhooks.Delivery(run_id="r1", url=server.url(), body=BODY)
                result = await webhooks.send(c, delivery, 5, firehook.__version__)
            finally:
                await c.close()
        assert result.status == 200 and result.response == "0123456789"
        assert result.error == "HTTP 200, then the response was cut short: Connection reset by peer"

    run(scenario)


def test_the_limit_holds_across_concurrent_posts_and_hosts() -> None:
    async def scenario() -> None:
        async with serving(answer_ok) as first, serving(answer_ok) as second, client(limit=1) as c:
            responses = await asyncio.gather(*(c.post(first.url(), BODY, HEADERS, 5) for _ in range(3)))
            assert [r.status for r in responses] == [200, 200, 200]
            assert first.connections == 1
            # A new target while the one allowed connection is idle elsewhere: that one is closed.
            assert (await c.post(second.url(), BODY, HEADERS, 5)).status == 200
            await first.wait(lambda: first.closed == [1])
            assert (first.connections, second.connections) == (1, 1)

    run(scenario)


def test_a_cancelled_post_gives_up_its_connection_and_slot() -> None:
    async def first_hangs(ex: Exchange) -> bool:
        if ex.number == 1:
            await ex.client_closed()
            return False
        return await answer_ok(ex)

    async def scenario() -> None:
        async with serving(first_hangs) as server, client(limit=1) as c:
            task = asyncio.ensure_future(c.post(server.url(), BODY, HEADERS, 30))
            await server.wait(lambda: len(server.requests) == 1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert (await c.post(server.url(), BODY, HEADERS, 5)).status == 200
            await server.wait(lambda: 1 in server.closed)
            assert server.connections == 2

    run(scenario)


def test_garbage_is_not_http() -> None:
    async def garbage(ex: Exchange) -> bool:
        ex.writer.write(b"\x00\xffNOT HTTP\r\n\r\n")
        return False

    async def scenario() -> None:
        async with serving(garbage) as server, client() as c:
            with pytest.raises(delivery_http.BadResponse, match="not valid HTTP"):
                await c.post(server.url(), BODY, HEADERS, 5)

    run(scenario)


# -- the outbound guard -------------------------------------------------------------------------


def test_the_guard_blocks_a_literal_before_any_connection() -> None:
    async def scenario() -> None:
        async with serving(answer_ok) as server, client(outbound.Guard()) as c:
            for host in ("127.0.0.1", "[::ffff:127.0.0.1]", "2130706433", "localhost"):
                with pytest.raises(errors.OutboundBlocked, match="is a loopback address"):
                    await c.post(server.url(host=host), BODY, HEADERS, 5)
            assert server.connections == 0

    run(scenario)


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``hooks.example.test`` resolves to 127.0.0.1 (for the guard, which resolves names)."""
    asked: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "hooks.example.test":
            asked.append(host)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", int(port)))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


def test_the_guard_blocks_a_name_that_resolves_to_a_refused_address(fake_dns: list[str]) -> None:
    async def scenario() -> None:
        async with serving(answer_ok) as server, client(outbound.Guard()) as c:
            with pytest.raises(errors.OutboundBlocked) as caught:
                await c.post(server.url(host="hooks.example.test"), BODY, HEADERS, 5)
            assert server.connections == 0
        assert "127.0.0.1 is a loopback address" in caught.value.message
        assert "(or hooks.example.test)" in caught.value.message

    run(scenario)
    assert fake_dns == ["hooks.example.test"]


def test_an_allowed_name_connects_to_the_checked_address(fake_dns: list[str]) -> None:
    async def scenario() -> None:
        async with serving(answer_ok) as server, client() as c:
            url = server.url(host="hooks.example.test")
            assert (await c.post(url, BODY, HEADERS, 5)).status == 200
            assert server.requests[0].headers["host"] == f"hooks.example.test:{server.port}"

    run(scenario)
    # One resolution, by the guard: the connection was made to its answer, not resolved again.
    assert fake_dns == ["hooks.example.test"]


def test_ipv6_literal_host_header() -> None:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")

    async def scenario() -> None:
        async with serving(answer_ok, host="::1") as server, client(outbound.Guard(["::1/128"])) as c:
            assert (await c.post(server.url(host="[::1]"), BODY, HEADERS, 5)).status == 200
            assert server.requests[0].headers["host"] == f"[::1]:{server.port}"

    run(scenario)


# -- TLS ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for the name ``localhost`` only (no IP address in it)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    assert ipaddress.ip_address("127.0.0.1")  # the certificate deliberately does not name it
    return cert_path, key_path


def server_context(certificate: tuple[Path, Path], names: list[str | None]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)

    def remember(sslobj: Any, server_name: str | None, ctx: Any) -> None:
        names.append(server_name)

    context.sni_callback = remember
    return context


def test_tls_verifies_the_urls_host_while_connecting_to_the_checked_address(
    certificate: tuple[Path, Path], fake_dns: list[str]
) -> None:
    names: list[str | None] = []
    trusting = ssl.create_default_context(cafile=str(certificate[0]))

    async def scenario() -> None:
        async with serving(answer_ok, tls=server_context(certificate, names)) as server, \
                client(outbound.Guard(["127.0.0.1/32"]), ssl_context=trusting) as c:
            for _ in range(2):
                response = await c.post(server.url(host="localhost", scheme="https"), BODY, HEADERS, 5)
                assert (response.status, response.head) == (200, b"ok")
            assert server.connections == 1 and names == ["localhost"]
            assert server.requests[0].headers["host"] == f"localhost:{server.port}"
            # The certificate names localhost, not 127.0.0.1: the same server is refused there.
            with pytest.raises(delivery_http.CertificateRejected, match="^TLS certificate not accepted: .*mismatch"):
                await c.post(server.url(host="127.0.0.1", scheme="https"), BODY, HEADERS, 5)

    run(scenario)


def test_tls_refuses_an_untrusted_certificate(certificate: tuple[Path, Path]) -> None:
    names: list[str | None] = []

    async def scenario() -> None:
        async with serving(answer_ok, tls=server_context(certificate, names)) as server, client() as c:
            with pytest.raises(delivery_http.CertificateRejected) as caught:
                await c.post(server.url(host="localhost", scheme="https"), BODY, HEADERS, 5)
            assert server.requests == []
        assert str(caught.value).startswith("TLS certificate not accepted: ")
        assert "certificate verify failed" in str(caught.value)

    run(scenario)
