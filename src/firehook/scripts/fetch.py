"""The host side of the script's synchronous ``fetch`` (SPEC §4.3).

Every hop (the first request and each redirect) goes through the outbound guard: the host is
resolved once, every address checked, and the connection made to a checked address (pinned)
while the ``Host`` header, TLS SNI and certificate check keep the name, so DNS rebinding cannot
swap a private address in between. Time spent here counts toward the run's wall clock: each
connect, send and read waits at most until the call's own limit (``fetch_timeout`` from the
call's start, redirects included) or the run's end, whichever comes first.

The wire is ``http_client``'s (HTTP/1.1, one ``sendall`` per request), the body's
``Content-Encoding`` ``content_coding``'s; ``fetch_max_bytes`` bounds the decoded body.
Connections are kept alive and shared between the runs of a process (``_Idle``); a request
that fails on a kept-alive connection before any byte of its response is sent once more on a
new connection when its method is idempotent (RFC 9110 §9.2.2), never otherwise.
"""

from __future__ import annotations

import concurrent.futures
import http
import ipaddress
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote, urljoin, urlsplit

from firehook import __version__, errors, outbound
from firehook.scripts import content_coding, http_client

MAX_REDIRECTS = 20
# Connections are kept alive and shared between runs (per checked address, port and TLS name):
# a new TCP connection and TLS handshake per call would cost more than the rest of a run.
_MAX_KEYS = 64
_IDLE_PER_KEY = 8
_KEEPALIVE = 15.0  # seconds an idle connection may wait for reuse (aiohttp's default, as deliveries)
_DEFAULT_PORTS = {"http": 80, "https": 443}
# WHATWG fetch upper-cases these methods only; any other method is sent as written.
_NORMALISED_METHODS = {"DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"}
# RFC 9110 §9.2.2: safe to send again when a kept-alive connection failed before any answer.
_IDEMPOTENT = {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"}
# Methods that carry no body unless given one: no ``Content-Length: 0`` for them (as urllib3).
_BODILESS = {"GET", "HEAD", "DELETE", "TRACE", "OPTIONS", "CONNECT"}
# A request target of these characters is sent as it is; any other (spaces, quotes, non-ASCII)
# is percent-encoded as UTF-8, existing escapes kept (as urllib3 did).
_TARGET_AS_IS = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@/?%]*")
_PATH_SAFE = "/%!$&'()*+,;=:@-._~"


@dataclass
class FetchRequest:
    url: str
    method: str = "GET"
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | None = None
    redirect: str = "follow"


@dataclass
class FetchResponse:
    status: int
    status_text: str
    headers: list[tuple[str, str]]
    url: str
    body: bytes
    redirected: bool = False


class NetworkError(Exception):
    """The request did not get a response; the script sees a ``TypeError`` with this reason."""


class ResponseTooLarge(Exception):
    """The response body passed ``fetch_max_bytes``; this ends the run."""


class OutOfTime(Exception):
    """The run's wall clock ran out while waiting on the network; this ends the run."""


def normalise_method(method: str) -> str:
    upper = method.upper()
    return upper if upper in _NORMALISED_METHODS else method


def _target(url: str) -> tuple[str, str, int, str]:
    """Split ``url`` into (scheme, host, port, path+query), refusing what fetch cannot send."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise NetworkError(f"invalid URL {url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise NetworkError(f"invalid URL {url!r}: only http and https URLs can be fetched")
    host = parts.hostname
    if not host:
        raise NetworkError(f"invalid URL {url!r}: no host")
    if parts.username is not None or parts.password is not None:
        raise NetworkError(f"invalid URL {url!r}: credentials in URLs are not supported")
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise NetworkError(f"invalid URL {url!r}: the host cannot be encoded ({exc})") from None
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    if not _TARGET_AS_IS.fullmatch(path):
        path, _, query = path.partition("?")
        path = quote(path, safe=_PATH_SAFE, errors="surrogatepass")
        if parts.query:
            path += "?" + quote(query, safe=_PATH_SAFE + "?", errors="surrogatepass")
    return scheme, host, port or _DEFAULT_PORTS[scheme], path


def check_url(url: str) -> None:
    """Raise NetworkError when ``url`` is not one fetch can send (checked without a network)."""
    _target(url)


def _host_header(scheme: str, host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return shown if port == _DEFAULT_PORTS[scheme] else f"{shown}:{port}"


_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_FORBIDDEN_IN_VALUE = frozenset(chr(c) for c in (*range(0x00, 0x09), *range(0x0A, 0x20), 0x7F))


def checked_headers(headers: Sequence[tuple[str, str]], body: bytes | None) -> list[tuple[str, str]]:
    """The script's request headers, refused as a browser's fetch refuses them (RFC 9110): a
    name must be a token (no spaces, no separators), a value holds no control character but
    the tab (no NUL, no vertical tab, no line break) and no character past U+00FF (a header
    is bytes: a browser refuses those too), and spaces around it are dropped.
    Framing is firehook's: ``Transfer-Encoding`` is refused, and a ``Content-Length`` must be
    the body's length (a request with both is how requests are smuggled)."""
    out: list[tuple[str, str]] = []
    for name, value in headers:
        if not name or not set(name) <= _TOKEN:
            raise NetworkError(f"invalid header name {name!r}: a name is letters, digits and !#$%&'*+-.^_`|~ only")
        value = value.strip(" \t")
        bad = next((c for c in value if c in _FORBIDDEN_IN_VALUE), None)
        if bad is not None:
            raise NetworkError(f"invalid value of header {name}: it holds the control character {bad!r}")
        if not value.isascii() and max(value) > "\xff":
            raise NetworkError(f"invalid value of header {name}: it holds {max(value)!r}, not a Latin-1 character")
        lower = name.lower()
        if lower == "transfer-encoding":
            raise NetworkError("the Transfer-Encoding header cannot be set: firehook frames the body itself")
        if lower == "content-length" and value != str(len(body or b"")):
            raise NetworkError(f"Content-Length {value!r} is not the body's length ({len(body or b'')} bytes)")
        out.append((name, value))
    return out


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class Fetcher:
    """Performs the fetch calls of one run.

    ``time_left`` returns the seconds left on the run's wall clock.
    """

    def __init__(
        self,
        *,
        allow: Sequence[str],
        timeout: float,
        max_bytes: int,
        time_left: Callable[[], float],
    ) -> None:
        self._allow = tuple(allow)
        self._made_guard: outbound.Guard | None = None
        self._timeout = timeout
        self._call_deadline = 0.0  # set by each fetch call
        self._max_bytes = max_bytes
        self._time_left = time_left

    @property
    def _guard(self) -> outbound.Guard:
        # Made on first use: a run whose fetch calls go to IP literals already checked (under
        # the same allow-list) never parses the allow-list.
        if self._made_guard is None:
            self._made_guard = outbound.Guard(self._allow)
        return self._made_guard

    def _wait(self) -> float:
        """How long the next connect, send or receive may wait: until the call's own limit
        (``fetch_timeout`` from the call's start, redirects included) or the run's, whichever
        comes first."""
        left = self._time_left()
        if left <= 0:
            raise OutOfTime()
        call_left = self._call_deadline - time.monotonic()
        if call_left <= 0:
            raise NetworkError(f"timed out: the call took longer than {self._timeout:g} s")
        return min(call_left, left)

    def fetch(self, request: FetchRequest) -> FetchResponse:
        """Send ``request``, following redirects per ``request.redirect``."""
        self._call_deadline = time.monotonic() + self._timeout
        method = normalise_method(request.method)
        if not method or not set(method) <= _TOKEN:
            raise NetworkError(f"invalid method {method!r}: a method is letters, digits and !#$%&'*+-.^_`|~ only")
        headers = checked_headers(request.headers, request.body)
        body = request.body
        if body is not None and method in ("GET", "HEAD"):
            raise NetworkError(f"a {method} request cannot have a body")
        if request.redirect not in ("follow", "manual", "error"):
            raise NetworkError(f"invalid redirect mode {request.redirect!r}")
        url = request.url
        origin = urlsplit(url)[:2]
        for hop in range(MAX_REDIRECTS + 1):
            response = self._send(method, url, headers, body)
            location = None
            if response.status in (301, 302, 303, 307, 308):
                location = {k.lower(): v for k, v in response.headers}.get("location")
            if location is None or request.redirect == "manual":
                response.redirected = hop > 0
                return response
            if request.redirect == "error":
                raise NetworkError(f"redirect to {location} refused: the redirect mode is 'error'")
            try:
                url = urljoin(url, location)
                urlsplit(url).port  # noqa: B018 - a port out of range raises here
            except ValueError:
                raise NetworkError(f"the server redirected to an invalid URL {location[:200]!r}") from None
            # Per WHATWG fetch: 303 turns any method but HEAD into GET; 301/302 turn POST into GET.
            if (response.status == 303 and method != "HEAD") or (
                response.status in (301, 302) and method == "POST"
            ):
                method = "GET"
                body = None
                headers = [
                    (k, v)
                    for k, v in headers
                    if k.lower() not in ("content-type", "content-length", "content-encoding")
                ]
            new_origin = urlsplit(url)[:2]
            if new_origin != origin:
                # Credentials meant for one origin are not sent to another.
                headers = [
                    (k, v) for k, v in headers if k.lower() not in ("authorization", "cookie")
                ]
                origin = new_origin
        raise NetworkError(f"too many redirects (more than {MAX_REDIRECTS})")

    def _send(
        self, method: str, url: str, headers: list[tuple[str, str]], body: bytes | None
    ) -> FetchResponse:
        scheme, host, port, path = _target(url)
        try:
            addresses = self._resolve(host, port)
        except errors.OutboundBlocked as exc:
            raise NetworkError(exc.message) from None
        except OSError as exc:
            raise NetworkError(str(exc)) from None
        data = _request_bytes(method, path, _host_header(scheme, host, port), headers, body)
        close_after = any(k.lower() == "connection" and "close" in v.lower() for k, v in headers)
        last: http_client.HTTPError | None = None
        for address in addresses:
            try:
                return self._send_to(address, scheme, host, port, method, url, data, close_after)
            except http_client.ConnectFailed as exc:
                last = exc  # the host's next address, if any
            except http_client.HTTPError as exc:
                if self._time_left() <= 0:
                    raise OutOfTime() from None
                raise NetworkError(str(exc)) from None
        raise NetworkError(str(last) if last is not None else f"cannot connect to {host}")

    def _resolve(self, host: str, port: int) -> list[str]:
        """The guard's checked addresses; a name lookup waits at most the time left."""
        key = (self._allow, host, port)
        known = _LITERALS.get(key)
        if known is not None:
            return known
        if _is_ip(host.strip("[]")):
            # An IP literal's verdict depends on the allow-list alone (no DNS): an allowed
            # one is remembered; a refused one is checked, and refused, every time.
            addresses = self._guard.resolve(host, port)
            if len(_LITERALS) >= _LITERALS_KEPT:
                _LITERALS.clear()
            _LITERALS[key] = addresses
            return addresses
        # A resolver can hang for many seconds; the lookup runs on a helper thread so the
        # script's clock still rules (a lookup that outlives its run finishes unobserved).
        future = _RESOLVER.submit(self._guard.resolve, host, port)
        try:
            return future.result(timeout=self._wait())
        except concurrent.futures.TimeoutError:
            if self._time_left() <= 0:
                raise OutOfTime() from None
            raise NetworkError(f"timed out resolving {host}") from None

    def _send_to(
        self,
        address: str,
        scheme: str,
        host: str,
        port: int,
        method: str,
        url: str,
        data: bytes,
        close_after: bool,
    ) -> FetchResponse:
        tls = scheme == "https"
        key = (scheme, address, port, host if tls else "")
        conn = _IDLE.take(key)
        retried = False
        while True:
            if conn is None:
                conn = http_client.connect(address, port, host, tls, self._wait)
            try:
                head = conn.request(data, method == "HEAD", self._wait)
                body = self._read(conn, head)
            except http_client.HTTPError as exc:
                conn.close()
                if exc.stale and not retried and method in _IDEMPOTENT:
                    # The server had closed the kept-alive connection: nothing was processed.
                    retried, conn = True, None
                    continue
                raise
            except BaseException:
                conn.close()  # half-read, or out of time: never reused
                raise
            if conn.clean and head.keep_alive and not close_after:
                _IDLE.put(key, conn)
            else:
                conn.close()
            return FetchResponse(
                head.status, head.reason or _phrase(head.status), head.headers, url, body
            )

    def _read(self, conn: http_client.Connection, head: http_client.Head) -> bytes:
        limit = self._max_bytes
        decoder = None
        if head.content_encoding and head.framing != http_client.NO_BODY:
            decoder = content_coding.decoder(head.content_encoding, limit)
        if decoder is None and head.framing == http_client.SIZED and head.length > limit:
            raise ResponseTooLarge(f"response body larger than the limit of {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        try:
            # Each receive waits at most the time left, so a slow drip cannot outlast the run.
            for piece in conn.body(head, self._wait):
                if decoder is not None:
                    piece = decoder.decode(piece)
                size += len(piece)
                if size > limit:
                    raise content_coding.TooLarge()
                chunks.append(piece)
            if decoder is not None:
                piece = decoder.finish()
                size += len(piece)
                if size > limit:
                    raise content_coding.TooLarge()
                chunks.append(piece)
        except content_coding.TooLarge:
            raise ResponseTooLarge(f"response body larger than the limit of {limit} bytes") from None
        except content_coding.Undecodable as exc:
            raise http_client.HTTPError(f"invalid response from {conn.host}: {exc}") from None
        return b"".join(chunks)


def _request_bytes(
    method: str, target: str, host: str, headers: list[tuple[str, str]], body: bytes | None
) -> bytes:
    """The whole request, head and body: what one ``sendall`` sends.

    ``headers`` passed ``checked_headers``: tokens for names, no line breaks or characters
    past Latin-1 in values, so each is one line of the head."""
    sent = [f"{method} {target} HTTP/1.1\r\nHost: {host}\r\n"]
    names = set()
    for k, v in headers:
        lower = k.lower()
        if lower != "host":
            names.add(lower)
            sent.append(f"{k}: {v}\r\n")
    if "user-agent" not in names:
        sent.append(f"User-Agent: firehook/{__version__}\r\n")
    if "accept" not in names:
        sent.append("Accept: */*\r\n")
    if "accept-encoding" not in names:
        sent.append("Accept-Encoding: identity\r\n")
    if body is not None and "content-type" not in names:
        sent.append("Content-Type: text/plain;charset=UTF-8\r\n")
    if "content-length" not in names and (body is not None or method not in _BODILESS):
        sent.append(f"Content-Length: {len(body or b'')}\r\n")
    sent.append("\r\n")
    head = "".join(sent).encode("latin-1")
    return head + body if body else head


class _Idle:
    """Kept-alive connections shared by the runs of a process, per (scheme, checked address,
    port, TLS name): at most ``_IDLE_PER_KEY`` each and ``_MAX_KEYS`` keys, the least recently
    used key evicted first. A connection is checked just before reuse: one that the server
    closed (or sent anything on) since, or idle for more than ``_KEEPALIVE`` s, is closed."""

    def __init__(self) -> None:
        self._idle: OrderedDict[tuple[str, str, int, str], list[http_client.Connection]] = (
            OrderedDict()
        )
        self._lock = threading.Lock()
        self._swept = time.monotonic()

    def _sweep(self, oldest: float) -> None:
        """Close the connections idle since before ``oldest``, whatever their key (a key that
        is never asked for again would keep its sockets open otherwise). Under the lock."""
        for key in list(self._idle):
            stack = self._idle[key]
            kept = [c for c in stack if c.idle_since >= oldest]
            for conn in stack:
                if conn.idle_since < oldest:
                    conn.close()
            if kept:
                self._idle[key] = kept
            else:
                del self._idle[key]

    def take(self, key: tuple[str, str, int, str]) -> http_client.Connection | None:
        oldest = time.monotonic() - _KEEPALIVE
        with self._lock:
            stack = self._idle.get(key)
            if stack:
                self._idle.move_to_end(key)
            while stack:
                conn = stack.pop()
                if conn.idle_since < oldest or conn.dropped():
                    conn.close()
                    continue
                conn.reused = True
                return conn
        return None

    def put(self, key: tuple[str, str, int, str], conn: http_client.Connection) -> None:
        conn.idle_since = now = time.monotonic()
        with self._lock:
            if now - self._swept > _KEEPALIVE:
                self._sweep(now - _KEEPALIVE)
                self._swept = now
            stack = self._idle.get(key)
            if stack is None:
                stack = self._idle[key] = []
            else:
                self._idle.move_to_end(key)
            if len(stack) >= _IDLE_PER_KEY:
                conn.close()
            else:
                stack.append(conn)
            while len(self._idle) > _MAX_KEYS:
                _, evicted = self._idle.popitem(last=False)
                for old in evicted:
                    old.close()


_IDLE = _Idle()
_LITERALS: dict[tuple[tuple[str, ...], str, int], list[str]] = {}
_LITERALS_KEPT = 1024
_RESOLVER = concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="firehook-dns")


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""
