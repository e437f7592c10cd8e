"""The host side of the script's synchronous ``fetch`` (SPEC §4.3).

Every hop (the first request and each redirect) goes through the outbound guard: the host is
resolved once, every address checked, and the connection made to a checked address (pinned)
while the ``Host`` header, TLS SNI and certificate check keep the name, so DNS rebinding cannot
swap a private address in between. Time spent here counts toward the run's wall clock: each
read waits at most ``min(fetch_timeout, time left)``.
"""

from __future__ import annotations

import concurrent.futures
import http
import ipaddress
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import urllib3

from firehook import __version__, errors, outbound

MAX_REDIRECTS = 20
# Connections are kept alive and shared between runs (per checked address, port and TLS name):
# a new TCP connection and TLS handshake per call would cost more than the rest of a run.
_MAX_POOLS = 64
_CONNECTIONS_PER_POOL = 8
_CHUNK = 64 * 1024
_DEFAULT_PORTS = {"http": 80, "https": 443}
# WHATWG fetch upper-cases these methods only; any other method is sent as written.
_NORMALISED_METHODS = {"DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"}


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
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return scheme, host, port or _DEFAULT_PORTS[scheme], path


def check_url(url: str) -> None:
    """Raise NetworkError when ``url`` is not one fetch can send (checked without a network)."""
    _target(url)


def _host_header(scheme: str, host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return shown if port == _DEFAULT_PORTS[scheme] else f"{shown}:{port}"


def _has(headers: Sequence[tuple[str, str]], name: str) -> bool:
    return any(k.lower() == name for k, _ in headers)


_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_FORBIDDEN_IN_VALUE = frozenset(chr(c) for c in (*range(0x00, 0x09), *range(0x0A, 0x20), 0x7F))


def checked_headers(headers: Sequence[tuple[str, str]], body: bytes | None) -> list[tuple[str, str]]:
    """The script's request headers, refused as a browser's fetch refuses them (RFC 9110): a
    name must be a token (no spaces, no separators), a value holds no control character but
    the tab (no NUL, no vertical tab, no line break), and spaces around it are dropped.
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
        self._guard = outbound.Guard(allow)
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._time_left = time_left

    def _wait(self) -> float:
        left = self._time_left()
        if left <= 0:
            raise OutOfTime()
        return min(self._timeout, left)

    def fetch(self, request: FetchRequest) -> FetchResponse:
        """Send ``request``, following redirects per ``request.redirect``."""
        method = normalise_method(request.method)
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
            location = {k.lower(): v for k, v in response.headers}.get("location")
            if (
                response.status not in (301, 302, 303, 307, 308)
                or location is None
                or request.redirect == "manual"
            ):
                response.redirected = hop > 0
                return response
            if request.redirect == "error":
                raise NetworkError(f"redirect to {location} refused: the redirect mode is 'error'")
            url = urljoin(url, location)
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
        sent = [(k, v) for k, v in headers if k.lower() != "host"]
        sent.insert(0, ("Host", _host_header(scheme, host, port)))
        if not _has(sent, "user-agent"):
            sent.append(("User-Agent", f"firehook/{__version__}"))
        if not _has(sent, "accept"):
            sent.append(("Accept", "*/*"))
        if body is not None and not _has(sent, "content-type"):
            sent.append(("Content-Type", "text/plain;charset=UTF-8"))
        last_error: Exception | None = None
        for address in addresses:
            try:
                return self._send_to(address, scheme, host, port, method, url, path, sent, body)
            except urllib3.exceptions.NewConnectionError as exc:
                last_error = exc
                continue
        raise NetworkError(_reason(last_error, host))

    def _resolve(self, host: str, port: int) -> list[str]:
        """The guard's checked addresses; a name lookup waits at most the time left."""
        if _is_ip(host.strip("[]")):
            return self._guard.resolve(host, port)
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
        path: str,
        headers: list[tuple[str, str]],
        body: bytes | None,
    ) -> FetchResponse:
        wait = self._wait()
        timeout = urllib3.Timeout(connect=wait, read=wait)
        pool = _POOLS.get(scheme, address, port, host)
        header_dict = urllib3.HTTPHeaderDict()
        for k, v in headers:
            header_dict.add(k, v)
        try:
            raw = pool.urlopen(
                method,
                path,
                body=body,
                headers=header_dict,
                redirect=False,
                retries=False,
                preload_content=False,
                assert_same_host=False,
                timeout=timeout,
            )
        except urllib3.exceptions.NewConnectionError:
            raise
        except urllib3.exceptions.HTTPError as exc:
            if self._time_left() <= 0:
                raise OutOfTime() from None
            raise NetworkError(_reason(exc, host)) from None
        try:
            data = self._read(raw, host)
        except BaseException:
            # A half-read response must not go back to the pool for another request.
            raw.close()
            raise
        finally:
            raw.release_conn()
        status = raw.status
        text = raw.reason or _phrase(status)
        pairs = [(k, v) for k, v in raw.headers.iteritems()]
        return FetchResponse(status, text, pairs, url, data)

    def _read(self, raw: urllib3.BaseHTTPResponse, host: str) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            # Each read waits at most the time left, so a slow drip cannot outlast the run.
            try:
                self._wait()
                # read1: one receive at most, so the clock is checked between receives (a
                # plain read would wait for a whole chunk from a server that drips).
                chunk = raw.read1(_CHUNK, decode_content=True)
            except urllib3.exceptions.HTTPError as exc:
                if self._time_left() <= 0:
                    raise OutOfTime() from None
                raise NetworkError(_reason(exc, host)) from None
            if not chunk:
                break
            size += len(chunk)
            if size > self._max_bytes:
                raise ResponseTooLarge(
                    f"response body larger than the limit of {self._max_bytes} bytes"
                )
            chunks.append(chunk)
        return b"".join(chunks)


class _Pools:
    """Process-wide keep-alive connection pools, least recently used evicted first."""

    def __init__(self) -> None:
        self._pools: OrderedDict[tuple[str, str, int, str], urllib3.HTTPConnectionPool] = (
            OrderedDict()
        )
        self._lock = threading.Lock()

    def get(self, scheme: str, address: str, port: int, host: str) -> urllib3.HTTPConnectionPool:
        """The pool for ``address`` (a checked IP) reached as ``host``."""
        key = (scheme, address, port, host if scheme == "https" else "")
        with self._lock:
            pool = self._pools.get(key)
            if pool is not None:
                self._pools.move_to_end(key)
                return pool
            pool = self._new(scheme, address, port, host)
            self._pools[key] = pool
            while len(self._pools) > _MAX_POOLS:
                _, oldest = self._pools.popitem(last=False)
                oldest.close()
            return pool

    @staticmethod
    def _new(scheme: str, address: str, port: int, host: str) -> urllib3.HTTPConnectionPool:
        if scheme == "https":
            # Connect to the checked address; SNI and the certificate check use the name.
            return urllib3.HTTPSConnectionPool(
                address,
                port,
                maxsize=_CONNECTIONS_PER_POOL,
                retries=False,
                server_hostname=None if _is_ip(host) else host,
                assert_hostname=host,
                cert_reqs="CERT_REQUIRED",
            )
        return urllib3.HTTPConnectionPool(
            address, port, maxsize=_CONNECTIONS_PER_POOL, retries=False
        )


_POOLS = _Pools()
_RESOLVER = concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="firehook-dns")


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


def _reason(exc: BaseException | None, host: str) -> str:
    """A short, user-readable reason for a network failure."""
    if exc is None:
        return f"cannot connect to {host}"
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        inner = str(exc).split(": ", 1)[-1]
        return f"cannot connect to {host}: {inner}"
    if isinstance(exc, urllib3.exceptions.ConnectTimeoutError):
        return f"timed out connecting to {host}"
    if isinstance(exc, urllib3.exceptions.ReadTimeoutError):
        return f"timed out waiting for {host}"
    if isinstance(exc, urllib3.exceptions.SSLError):
        return f"TLS error with {host}: {exc}"
    if isinstance(exc, urllib3.exceptions.ProtocolError):
        return f"connection to {host} failed: {exc.args[0] if exc.args else exc}"
    return f"request to {host} failed: {exc}"
