"""One HTTP/1.1 exchange on one connection: the request's bytes, the answer parsed as it comes.

    DeliveryHTTPError                 what went wrong, already in the words of the attempt log
    ├── InvalidRequest                final: retrying cannot fix the request
    │   └── InvalidURL
    ├── Unresolvable                  the name did not resolve
    ├── ConnectFailed                 refused, unreachable, TLS handshake failed
    ├── CertificateRejected           the server's certificate did not verify
    ├── TimedOut                      the attempt's total time ran out
    ├── Disconnected                  the server closed the connection without answering
    ├── ConnectionBroken              the connection failed (reset) before the answer began
    ├── BadResponse                   the answer is not HTTP
    └── CutShort                      the answer began, then the connection ended early

httptools (llhttp) parses the answer straight into what an attempt records: status, reason,
``Retry-After``, ``Location`` and the first ``keep`` bytes of the body (decompressed when the
server compressed it). The pool, the guard and the deadlines are ``delivery_http``'s.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import socket
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

import httptools

_PEEK = socket.MSG_PEEK | socket.MSG_DONTWAIT
# RFC 3986 characters that may stay as they are in a path or query; everything else (spaces,
# non-ASCII) is percent-encoded, and existing escapes are kept.
_PATH_SAFE = "/%!$&'()*+,;=:@-._~"
_QUERY_SAFE = _PATH_SAFE + "?"
_NAME = re.compile(r"[a-z0-9_.-]+")  # a host name (urlsplit lower-cases it); IPv6 has colons


class DeliveryHTTPError(Exception):
    """Base of the client's errors; ``str()`` is the sentence for the attempt log."""

    final = False


class InvalidRequest(DeliveryHTTPError):
    final = True


class InvalidURL(InvalidRequest):
    pass


class Unresolvable(DeliveryHTTPError):
    pass


class ConnectFailed(DeliveryHTTPError):
    pass


class CertificateRejected(DeliveryHTTPError):
    pass


class TimedOut(DeliveryHTTPError):
    pass


class Disconnected(DeliveryHTTPError):
    pass


class ConnectionBroken(DeliveryHTTPError):
    pass


class BadResponse(DeliveryHTTPError):
    pass


class CutShort(DeliveryHTTPError):
    pass


@dataclass(slots=True)
class Response:
    """What an attempt records of an answer. ``failure`` is set when the answer began (the
    status is known) but reading the kept part of its body failed."""

    status: int
    reason: str
    head: bytes
    retry_after: str | None = None
    location: str | None = None
    failure: DeliveryHTTPError | None = None


def os_words(exc: BaseException) -> str:
    """An OS error in words: the errno's text when there is one."""
    # asyncio words a refusal "Connect call failed (…)"; the errno says it better.
    errno = getattr(exc, "errno", None)
    return os.strerror(errno) if errno else (str(exc) or type(exc).__name__)


@dataclass(frozen=True, slots=True)
class Target:
    """One URL, parsed once: where to connect and the fixed start of every request's head."""

    key: tuple[str, str, int]
    host: str  # ASCII, lower case, no brackets: what the guard, SNI and error words see
    port: int
    tls: bool
    start: str  # request line, Host and (from the URL's user info) Authorization

    @property
    def shown(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_target(url: str) -> Target:
    """Parse a delivery URL; raises InvalidURL (without echoing the URL, which may hold
    credentials)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise InvalidURL(f"invalid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise InvalidURL("invalid URL: the scheme must be http or https")
    host = parts.hostname or ""
    if not host:
        raise InvalidURL("invalid URL: no host")
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise InvalidURL(f"invalid URL: the host cannot be encoded ({exc})") from None
    if ":" not in host and not _NAME.fullmatch(host):
        raise InvalidURL("invalid URL: the host is not a valid host name")
    tls = scheme == "https"
    default = 443 if tls else 80
    port = default if port is None else port
    named = f"[{host}]" if ":" in host else host
    host_header = named if port == default else f"{named}:{port}"
    target = quote(parts.path or "/", safe=_PATH_SAFE)
    if parts.query:
        target += "?" + quote(parts.query, safe=_QUERY_SAFE)
    start = f"POST {target} HTTP/1.1\r\nHost: {host_header}\r\n"
    if parts.username is not None or parts.password is not None:
        # As aiohttp does: credentials in the URL become Basic authentication.
        pair = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
        try:
            raw = pair.encode("latin-1")
        except UnicodeEncodeError:
            raw = pair.encode("utf-8")
        start += f"Authorization: Basic {base64.b64encode(raw).decode('ascii')}\r\n"
    return Target((scheme, host, port), host, port, tls, start)


def request_bytes(target: Target, headers: Mapping[str, str], body: bytes) -> bytes:
    """The whole request: ``target``'s start, ``headers``, Content-Length and ``body``."""
    lines = "".join([f"{name}: {value}\r\n" for name, value in headers.items()])
    # Each line ends in the one CR LF added here: a name or value holding CR, LF or NUL
    # would let it write lines of its own (header injection).
    if lines.count("\n") != len(headers) or lines.count("\r") != len(headers) or "\0" in lines:
        raise InvalidRequest("invalid request: a header holds a line break or NUL")
    return f"{target.start}{lines}Content-Length: {len(body)}\r\n\r\n".encode() + body


class Connection(asyncio.BufferedProtocol):
    """One socket and its response parser; answers one request at a time.

    A buffered protocol: the event loop reads into ``buffer``, one for all of a client's
    connections, instead of allocating 256 KiB per read (a mmap, a mremap and a munmap per
    answer, and their page faults, were most of the system time of a delivery). ``conns`` is
    the owner's set of open connections: each is in it from connection_made to connection_lost.
    """

    __slots__ = (
        "key", "buffer", "conns", "sock", "transport", "parser", "closed", "idle_since", "waiter", "bucket",
        "timeout", "keep", "status", "reason", "retry_after", "location", "framed", "decoder",
        "chunks", "kept", "headers_done", "message_done", "keep_alive", "interim", "started",
    )

    def __init__(self, key: tuple[str, str, int], sock: socket.socket, keep: int, buffer: memoryview,
                 conns: set[Connection]) -> None:
        self.key = key
        self.buffer = buffer
        self.conns = conns
        self.sock = sock
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        self.waiter: asyncio.Future[Response] | None = None
        self.bucket: set[Connection] | None = None  # the owner's deadline bucket while a request is out
        self.timeout = 0.0
        self.keep = keep
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.reason = b""
        self.retry_after: str | None = None
        self.location: str | None = None
        self.framed = False
        self.decoder: zlib._Decompress | None = None
        self.chunks: list[bytes] = []
        self.kept = 0
        self.headers_done = False
        self.message_done = False
        self.keep_alive = False
        self.interim = False
        self.started = False

    # -- the request ---------------------------------------------------------------------------

    def send(self, data: bytes, loop: asyncio.AbstractEventLoop, bucket: set[Connection],
             timeout: float) -> asyncio.Future[Response]:
        """Write one request; the future settles with its answer. ``bucket`` is the set of
        requests sharing a deadline timer: its owner calls :meth:`expired` when it fires."""
        self._reset()
        self.timeout = timeout
        waiter = self.waiter = loop.create_future()
        self.bucket = bucket
        bucket.add(self)
        assert self.transport is not None
        self.transport.write(data)
        return waiter

    def alive(self) -> bool:
        """True when nothing arrived on the idle socket: no FIN, no stray bytes, no error."""
        try:
            self.sock.recv(1, _PEEK)
        except BlockingIOError:
            return True
        except OSError:
            return False
        return False

    def shut(self, abort: bool = False) -> None:
        self.closed = True
        if self.transport is not None:
            if abort:
                self.transport.abort()
            else:
                self.transport.close()

    def _settle(self, failure: DeliveryHTTPError | None = None) -> None:
        """Hand the answer, or the failure, to the waiting request; close unless reusable."""
        waiter, self.waiter = self.waiter, None
        if self.bucket is not None:
            self.bucket.discard(self)
            self.bucket = None
        if waiter is not None and not waiter.done():
            if failure is not None and not self.headers_done:
                waiter.set_exception(failure)
            else:  # the status is known: the attempt records it, with the failure if any
                waiter.set_result(Response(self.status, self.reason.decode("latin-1"), b"".join(self.chunks),
                                           self.retry_after, self.location, failure))
        if failure is not None:
            self.shut(abort=True)
        elif not (self.message_done and self.keep_alive):
            self.shut()

    def expired(self) -> None:
        self._settle(TimedOut(f"timed out after {self.timeout:g} s"))

    def _ended(self, exc: BaseException | None) -> None:
        """The server's side is gone (FIN, reset, TLS close): settle a pending answer."""
        if self.waiter is None:
            return
        if self.headers_done and not self.framed and not self.message_done and exc is None:
            self.message_done = True  # a body without length or chunks ends with the connection
            self._settle()
        elif self.headers_done:
            why = os_words(exc) if exc is not None else "the server closed the connection"
            self._settle(CutShort(f"the response was cut short: {why}"))
        elif exc is not None:
            self._settle(ConnectionBroken(f"connection error: {os_words(exc)}"))
        elif self.started:
            self._settle(BadResponse("the server closed the connection in the middle of its answer's head"))
        else:
            self._settle(Disconnected("the server closed the connection without answering"))

    # -- asyncio.Protocol --------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.conns.add(self)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.buffer

    def buffer_updated(self, nbytes: int) -> None:
        # The buffer is shared: the parser copies what it keeps before this returns, and the
        # loop reads into one buffer at a time.
        self._received(self.buffer[:nbytes])

    def _received(self, data: memoryview) -> None:
        if self.waiter is None:
            # Bytes nobody asked for (on an idle connection, or after the answer): this
            # connection is out of step with its server and must not carry another request.
            self.shut(abort=True)
            return
        self.started = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if self.message_done:
                self.keep_alive = False  # a complete answer followed by more than it said
            else:
                # A callback's own error (an undecodable body) says more than the parser's.
                cause = exc.__context__
                if not isinstance(cause, DeliveryHTTPError):
                    cause = BadResponse(f"the server's answer is not valid HTTP: {str(exc) or type(exc).__name__}")
                self._settle(cause)
                return
        if self.message_done or (self.headers_done and self.kept >= self.keep):
            self._settle()

    def eof_received(self) -> bool | None:
        self.closed = True
        self._ended(None)
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.conns.discard(self)
        self._ended(exc)

    # -- httptools callbacks -------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.message_done:
            raise BadResponse("more than one answer to one request")

    def on_status(self, reason: bytes) -> None:
        self.reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"content-length":
            self.framed = True
        elif name == b"transfer-encoding":
            self.framed = self.framed or b"chunked" in value.lower()
        elif name == b"retry-after":
            self.retry_after = value.decode("latin-1")
        elif name == b"location":
            self.location = value.decode("latin-1")
        elif name == b"content-encoding":
            coding = value.strip().lower()
            if coding in (b"gzip", b"x-gzip", b"deflate"):
                # 47: zlib or gzip framing, detected from the header bytes
                self.decoder = zlib.decompressobj(47)

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        if self.status < 200:
            self.interim = True  # 1xx: informational, the real answer follows
        else:
            self.headers_done = True

    def on_body(self, body: bytes) -> None:
        room = self.keep - self.kept
        if room <= 0 or self.interim:
            return
        if self.decoder is not None:
            try:
                body = self.decoder.decompress(body, room)
            except zlib.error as exc:
                raise BadResponse(f"the response body cannot be decompressed: {exc}") from None
        piece = body[:room]
        self.chunks.append(piece)
        self.kept += len(piece)

    def on_message_complete(self) -> None:
        if self.interim:
            self._reset()
            self.started = True
            return
        self.message_done = True
        # Asked here: llhttp forgets the message's Connection header once this returns.
        self.keep_alive = self.parser.should_keep_alive()
