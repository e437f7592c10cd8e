"""fetch's own HTTP/1.1 client (scripts/http_client.py) against loopback servers that answer
with exactly the bytes each test scripts: framing, keep-alive, limits, errors and TLS."""

from __future__ import annotations

import gzip
import ssl
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from firehook.scripts import fetch, http_client
from tests.integration.scripts.wire import (
    Handler,
    Peer,
    RawServer,
    answering,
    certificate,
    ok,
    server_tls,
)

ALLOW = ("127.0.0.1/32", "localhost")


Serve = Callable[..., RawServer]


@pytest.fixture()
def serve() -> Iterator[Serve]:
    started: list[RawServer] = []

    def start(handler: Handler, tls: ssl.SSLContext | None = None) -> RawServer:
        server = RawServer(handler, tls)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


def fetcher(max_bytes: int = 10**6, timeout: float = 5.0, seconds: float = 10.0) -> fetch.Fetcher:
    deadline = time.monotonic() + seconds
    return fetch.Fetcher(
        allow=ALLOW, timeout=timeout, max_bytes=max_bytes, time_left=lambda: deadline - time.monotonic()
    )


def get(url: str, method: str = "GET", body: bytes | None = None, **kw: float) -> fetch.FetchResponse:
    return fetcher(**kw).fetch(fetch.FetchRequest(url, method, body=body))  # type: ignore[arg-type]


def wait_until(condition: object, what: str) -> None:
    """Wait (at most 5 s) for ``condition()``: an event the test needs, not a timing guess."""
    deadline = time.monotonic() + 5
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.005)


# -- framing ---------------------------------------------------------------------------------------


def test_chunked_bodies_are_joined_and_the_connection_kept(serve: Serve) -> None:
    pieces = [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;name=value\r\nhe",
        b"llo\r\n6\r\n world\r",
        b"\n0\r\nX-Trailer: t\r\n\r\n",
    ]

    def handle(peer: Peer) -> None:
        while peer.request() is not None:
            for piece in pieces:
                peer.send(piece)

    server = serve(handle)
    for _ in range(3):
        response = get(server.url("/c"))
        assert (response.status, response.body) == (200, b"hello world")
    assert server.connections == 1
    assert len(server.requests) == 3


def test_invalid_chunk_sizes_are_malformed_responses(serve: Serve) -> None:
    for size_line in (b"+5", b"0x5", b"5_0", b"zz", b""):
        server = serve(answering(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + size_line + b"\r\nhello\r\n0\r\n\r\n"))
        with pytest.raises(fetch.NetworkError, match="invalid response from 127.0.0.1: invalid chunk size line"):
            get(server.url())


def test_transfer_encoding_wins_over_content_length_and_the_connection_is_not_reused(serve: Serve) -> None:
    server = serve(answering(
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
    ))
    assert get(server.url()).body == b"ok"
    assert get(server.url()).body == b"ok"
    assert server.connections == 2


def test_gzip_and_deflate_bodies_are_decoded_and_the_limit_counts_decoded_bytes(serve: Serve) -> None:
    text = b"firehook " * 1000
    raw_deflate = zlib.compressobj(wbits=-15)
    raw = raw_deflate.compress(text) + raw_deflate.flush()
    for coding, body in (("gzip", gzip.compress(text)), ("deflate", zlib.compress(text)), ("deflate", raw)):
        server = serve(answering(ok(body, f"Content-Encoding: {coding}\r\n")))
        response = get(server.url())
        assert response.body == text, coding
        # The header is kept as the server sent it, as browsers do.
        assert ("Content-Encoding", coding) in response.headers
        with pytest.raises(fetch.ResponseTooLarge):
            get(server.url(), max_bytes=len(text) - 1)
    bomb = gzip.compress(b"\0" * 50_000_000)
    server = serve(answering(ok(bomb, "Content-Encoding: gzip\r\n")))
    assert len(bomb) < 100_000
    with pytest.raises(fetch.ResponseTooLarge):
        get(server.url(), max_bytes=1_000_000)


def test_a_corrupt_gzip_body_is_a_network_error(serve: Serve) -> None:
    server = serve(answering(ok(b"not gzip at all", "Content-Encoding: gzip\r\n")))
    with pytest.raises(fetch.NetworkError, match="invalid response from 127.0.0.1: the gzip body is corrupt"):
        get(server.url())


def test_a_body_until_the_connection_closes(serve: Serve) -> None:
    def handle(peer: Peer) -> None:
        peer.request()
        peer.send(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall of ")
        peer.send(b"it")

    server = serve(handle)
    assert get(server.url()).body == b"all of it"
    assert get(server.url()).body == b"all of it"
    assert server.connections == 2


def test_head_204_and_304_have_no_body_and_keep_the_connection(serve: Serve) -> None:
    server = serve(answering(
        b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n",  # HEAD: the length of a GET's body
        b"HTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.1 304 Not Modified\r\nContent-Length: 55\r\n\r\n",
        ok(b"after"),
    ))
    head = get(server.url(), "HEAD")
    assert (head.status, head.body, head.headers) == (200, b"", [("Content-Length", "1000")])
    assert (get(server.url()).status, get(server.url()).status) == (204, 304)
    assert get(server.url()).body == b"after"
    assert server.connections == 1


def test_interim_responses_are_skipped(serve: Serve) -> None:
    server = serve(answering(
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
        + ok(b"final", "X-Final: yes\r\n")
    ))
    response = get(server.url(), "POST", b"x")
    assert (response.status, response.body, dict(response.headers)["X-Final"]) == (200, b"final", "yes")
    assert get(server.url()).body == b"final"
    assert server.connections == 1


def test_status_text_and_header_lines(serve: Serve) -> None:
    server = serve(answering(
        b"HTTP/1.1 418 Short And Stout\r\nX-Folded: one\r\n two\r\nnot a header line\r\n"
        b"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok",  # bare line feeds, as some servers send
    ))
    teapot = get(server.url())
    assert (teapot.status, teapot.status_text) == (418, "Short And Stout")
    assert teapot.headers == [
        ("X-Folded", "one two"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"), ("Content-Length", "0")
    ]
    assert get(server.url()).status_text == "Not Found"
    assert get(server.url()).body == b"ok"


# -- malformed and oversized responses ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        (b"HTPT/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "the status line is not HTTP/1.x: 'HTPT/1.1 200 OK'"),
        (b"HTTP/1.1 20 OK\r\n\r\n", "the status line is not HTTP/1.x"),
        (b"HTTP/2 200\r\n\r\n", "the status line is not HTTP/1.x"),
        (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", "the status line is not HTTP/1.x"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\nok", "conflicting Content-Length values"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nok", "invalid Content-Length '-1'"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "unsupported Transfer-Encoding"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", "unsupported Transfer-Encoding"),
        (b"HTTP/1.1 101 Switching Protocols\r\n\r\n", "101 Switching Protocols"),
        (b"HTTP/1.1 200 OK\r\nX-Big: " + b"x" * 70_000 + b"\r\n\r\n", "the header section is larger than 64 KiB"),
        (b"HTTP/1.1 200 OK\r\n" + b"X-Many: 1\r\n" * 101 + b"\r\n", "more than 100 header lines"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "closed the connection before the end of the response body"),
        (b"HTTP/1.1 200 OK\r\nContent", "the connection closed in the middle of the header section"),
    ],
)
def test_malformed_responses_are_network_errors_with_the_reason(serve: Serve, answer: bytes, why: str) -> None:
    def handle(peer: Peer) -> None:
        peer.request()
        peer.send(answer)

    server = serve(handle)
    with pytest.raises(fetch.NetworkError) as caught:
        get(server.url())
    assert why in str(caught.value)
    assert "127.0.0.1" in str(caught.value)


def test_an_endless_header_section_is_cut_at_its_limit(serve: Serve) -> None:
    def handle(peer: Peer) -> None:
        peer.request()
        peer.send(b"HTTP/1.1 200 OK\r\n")
        while True:
            peer.send(b"X-More: " + b"y" * 1000 + b"\r\n")

    server = serve(handle)
    with pytest.raises(fetch.NetworkError, match="the header section is larger than 64 KiB"):
        get(server.url())


def test_a_server_that_closes_without_answering(serve: Serve) -> None:
    server = serve(lambda peer: peer.request() and None)
    with pytest.raises(fetch.NetworkError, match="^127.0.0.1 closed the connection without a response$"):
        get(server.url())


# -- keep-alive --------------------------------------------------------------------------------------


def test_connections_are_shared_between_runs(serve: Serve) -> None:
    server = serve(answering(ok(b"shared")))
    for _ in range(5):
        assert get(server.url(), "POST", b"{}").body == b"shared"  # a new Fetcher: a new run
    assert server.connections == 1 and len(server.requests) == 5


def test_an_idle_connection_the_server_closed_is_not_used(serve: Serve) -> None:
    def handle(peer: Peer) -> None:
        peer.request()
        peer.send(ok(b"once"))  # then the handler returns: the server closes the connection

    server = serve(handle)
    assert get(server.url(), "POST", b"1").body == b"once"
    wait_until(lambda: 1 in server.closed, "the server closed its first connection")
    idle = fetch._IDLE._idle[("http", "127.0.0.1", server.port, "")]
    wait_until(lambda: idle[0].dropped(), "the FIN reached the client")
    # Not idempotent, so it must never be sent twice: the closed connection is seen before
    # anything is written to it, and the request goes on a new one.
    assert get(server.url(), "POST", b"2").body == b"once"
    assert [number for number, _ in server.requests] == [1, 2]


def test_a_kept_alive_connection_closed_under_a_request_retries_only_idempotent_methods(serve: Serve) -> None:
    def handle(peer: Peer) -> None:
        if peer.request() is None:
            return
        peer.send(ok(b"first"))
        if peer.number == 1:
            peer.request()  # the second request arrives: the server closes instead of answering
        else:
            while peer.request() is not None:
                peer.send(ok(b"fresh"))

    server = serve(handle)
    assert get(server.url()).body == b"first"
    assert get(server.url(), "PUT", b"p").body == b"first"  # sent again on connection 2
    assert [number for number, _ in server.requests] == [1, 1, 2]

    post_server = serve(handle)
    assert get(post_server.url()).body == b"first"
    with pytest.raises(fetch.NetworkError, match="closed the connection without a response"):
        get(post_server.url(), "POST", b"once")
    assert [number for number, _ in post_server.requests] == [1, 1]
    assert post_server.connections == 1


def test_a_half_read_response_does_not_leave_its_connection_for_another_request(serve: Serve) -> None:
    def handle(peer: Peer) -> None:
        while peer.request() is not None:
            peer.send(ok(b"x" * 5000) if peer.number == 1 else ok(b"small"))

    server = serve(handle)
    with pytest.raises(fetch.ResponseTooLarge):
        get(server.url(), max_bytes=1000)
    assert get(server.url(), max_bytes=1000).body == b"small"
    assert server.connections == 2


def test_a_connection_close_response_is_not_reused(serve: Serve) -> None:
    server = serve(answering(ok(b"bye", "Connection: close\r\n")))
    get(server.url())
    get(server.url())
    assert server.connections == 2


def test_the_idle_connections_are_bounded_least_recently_used_first(monkeypatch) -> None:
    import socket

    idle = fetch._Idle()
    monkeypatch.setattr(fetch, "_MAX_KEYS", 3)
    monkeypatch.setattr(fetch, "_IDLE_PER_KEY", 2)
    made: list[tuple[http_client.Connection, socket.socket]] = []

    def connection() -> http_client.Connection:
        ours, theirs = socket.socketpair()
        conn = http_client.Connection(ours, "h")
        made.append((conn, theirs))
        return conn

    for key in ("a", "b", "c"):
        idle.put(("http", key, 80, ""), connection())
    assert idle.take(("http", "a", 80, "")) is made[0][0]  # "a" is now the most recent
    idle.put(("http", "a", 80, ""), made[0][0])
    idle.put(("http", "d", 80, ""), connection())  # evicts "b", the least recently used
    assert made[1][0].sock.fileno() == -1
    assert idle.take(("http", "b", 80, "")) is None
    for _ in range(3):
        idle.put(("http", "d", 80, ""), connection())
    assert made[-1][0].sock.fileno() == -1  # a third idle connection for one key is closed
    made[2][1].close()  # the server side of "c" goes away: not handed out again
    assert idle.take(("http", "c", 80, "")) is None


def test_connections_idle_past_the_keep_alive_are_closed_whatever_their_key(monkeypatch) -> None:
    import socket

    clock = [1000.0]
    monkeypatch.setattr(fetch.time, "monotonic", lambda: clock[0])
    idle = fetch._Idle()
    ours, theirs = socket.socketpair()
    old = http_client.Connection(ours, "h")
    idle.put(("http", "a", 80, ""), old)  # a key nobody asks for again
    clock[0] += fetch._KEEPALIVE + 1
    ours2, theirs2 = socket.socketpair()
    idle.put(("http", "b", 80, ""), http_client.Connection(ours2, "h"))  # another key's put sweeps
    assert old.sock.fileno() == -1
    assert idle.take(("http", "a", 80, "")) is None
    assert idle.take(("http", "b", 80, "")) is not None
    for sock in (theirs, theirs2, ours2):
        sock.close()


# -- time ----------------------------------------------------------------------------------------------


def _drip_head(peer: Peer) -> None:
    peer.request()
    for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"s" * 10_000:
        peer.send(bytes([byte]))
        time.sleep(0.02)


def _drip_body(peer: Peer) -> None:
    peer.request()
    peer.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    for _ in range(10_000):
        peer.send(b"1\r\nx\r\n")
        time.sleep(0.02)


def test_a_dripping_server_cannot_outlast_the_run(serve: Serve) -> None:
    for handle in (_drip_head, _drip_body):
        server = serve(handle)
        # Each read alone is quick, far under the 30 s per call: only the run's clock stops it.
        with pytest.raises(fetch.OutOfTime):
            get(server.url(), timeout=30.0, seconds=0.5)


def test_a_dripping_server_cannot_outlast_the_limit_per_call(serve: Serve) -> None:
    server = serve(_drip_body)
    # Each receive is quick; the call as a whole passes its limit long before the run's 30 s.
    with pytest.raises(fetch.NetworkError, match="^timed out"):  # a receive or the call's own limit
        get(server.url(), timeout=0.3, seconds=30.0)


def test_a_redirect_to_an_invalid_url_is_the_servers_fault(serve: Serve) -> None:
    server = serve(answering(b"HTTP/1.1 302 Found\r\nLocation: http://[bad\r\nContent-Length: 0\r\n\r\n"))
    with pytest.raises(fetch.NetworkError, match="redirected to an invalid URL 'http://\\[bad'"):
        get(server.url())


def test_a_silent_server_times_the_call_out(serve: Serve) -> None:
    server = serve(lambda peer: peer.request() and time.sleep(5))
    with pytest.raises(fetch.NetworkError, match="^timed out waiting for 127.0.0.1$"):
        get(server.url(), timeout=0.2)


# -- TLS -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return certificate(tmp_path_factory.mktemp("tls"))


def test_tls_refuses_a_self_signed_certificate(serve: Serve, cert: tuple[Path, Path]) -> None:
    server = serve(answering(ok()), tls=server_tls(cert))
    with pytest.raises(fetch.NetworkError) as caught:
        get(server.url(host="localhost", scheme="https"))
    assert str(caught.value) == "TLS error with localhost: certificate verify failed: self-signed certificate"
    assert server.requests == []


def test_tls_checks_the_name_while_connecting_to_the_checked_address(
    serve: Serve, cert: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http_client, "_tls", ssl.create_default_context(cafile=str(cert[0])))
    server = serve(answering(ok(b"secure")), tls=server_tls(cert))
    for _ in range(2):
        assert get(server.url(host="localhost", scheme="https")).body == b"secure"
    assert server.connections == 1 and server.server_names == ["localhost"]
    assert b"\r\nHost: localhost:%d\r\n" % server.port in server.requests[0][1]
    # The certificate names localhost, not 127.0.0.1: the same server is refused as 127.0.0.1
    # (an IP address is matched against the certificate's addresses, and sent without SNI).
    with pytest.raises(fetch.NetworkError, match="^TLS error with 127.0.0.1: certificate verify failed: IP address mismatch"):
        get(server.url(host="127.0.0.1", scheme="https"))
    assert server.server_names == ["localhost", None]


def test_tls_to_a_plain_http_server_is_a_tls_error(serve: Serve) -> None:
    def handle(peer: Peer) -> None:
        peer.sock.recv(1)  # the ClientHello, which an HTTP server answers as a bad request
        peer.send(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    server = serve(handle)
    with pytest.raises(fetch.NetworkError, match="^TLS error with localhost: "):
        get(server.url(host="localhost", scheme="https"))


def test_a_literal_allowed_under_one_allow_list_is_still_refused_under_another(serve: Serve) -> None:
    server = serve(answering(ok(b"allowed")))
    assert get(server.url()).body == b"allowed"
    refusing = fetch.Fetcher(allow=("127.0.0.2/32",), timeout=1, max_bytes=100, time_left=lambda: 5.0)
    with pytest.raises(fetch.NetworkError, match="^outbound request to 127.0.0.1 blocked"):
        refusing.fetch(fetch.FetchRequest(server.url()))
    assert len(server.requests) == 1
