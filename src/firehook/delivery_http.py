"""A lean HTTP/1.1 client for webhook deliveries: one POST, the head of the answer kept.

The errors it raises (``DeliveryHTTPError`` and its subclasses, each worded for the attempt
log), ``Response`` and the exchange on one connection live in ``firehook.http_exchange``;
they are re-exported here, the client's public surface.

Why not aiohttp: a delivery is one POST of bytes already in memory and at most 4 KiB of the
answer, yet aiohttp's general request path (middlewares, ``ClientRequest``, payload registry,
timeout objects, connector bookkeeping) cost ~150–200 µs of CPU per delivery in the worker.
Here a request is one ``transport.write`` of a joined head, and httptools (llhttp) parses the
answer straight into the few fields an attempt records (bench/webhooks_client.py measures it).

Behaviour, matching aiohttp's where it had one:
- keep-alive pools per (scheme, host, port), at most ``limit`` open connections in all; a
  connection is reused only when its answer was parsed to the end and the server did not ask
  to close; an answer longer than what is kept is not drained: its connection is closed;
- every address is the guard's (``outbound.Guard``): literals through ``check_literal``, names
  through ``resolve_async`` (cached 10 s), and the socket connects to a checked address
  (pinned); https verifies the certificate and sends SNI for the URL's host all the same;
- one deadline per attempt covers the wait for a slot, connecting, sending, the answer's
  head and the kept part of its body;
- a POST is never sent twice in one attempt: aiohttp 3.14 resends on a fresh connection after
  a kept-alive one fails only for idempotent methods, since the server may have acted on the
  request. A pooled connection is checked just before use instead (a non-blocking peek sees a
  FIN or stray bytes the event loop has not read yet) and replaced before anything is written.
"""

from __future__ import annotations

import asyncio
import collections
import math
import socket
import ssl
from collections.abc import Mapping

import aiohappyeyeballs

from firehook import outbound
from firehook.http_exchange import (
    BadResponse,
    CertificateRejected,
    ConnectFailed,
    Connection,
    ConnectionBroken,
    CutShort,
    DeliveryHTTPError,
    Disconnected,
    InvalidRequest,
    InvalidURL,
    Response,
    Target,
    TimedOut,
    Unresolvable,
    os_words,
    parse_target,
    request_bytes,
)

__all__ = [
    "BadResponse", "CertificateRejected", "Client", "ConnectFailed", "ConnectionBroken", "CutShort",
    "DeliveryHTTPError", "Disconnected", "InvalidRequest", "InvalidURL", "Response", "TimedOut", "Unresolvable",
    "parse_target",
]

DEFAULT_KEEP = 4096
KEEPALIVE = 15.0  # seconds an idle connection is kept: aiohttp's default
DNS_TTL = 10.0
HAPPY_EYEBALLS_DELAY = 0.25  # aiohttp's default
_BUCKETS_PER_S = 20
_READ_SIZE = 64 * 1024
_TARGETS_KEPT = 1024


class Client:
    """A pool of keep-alive connections for deliveries, ``limit`` open connections at most.

    Create, use and close it inside one running event loop. ``ssl_context`` defaults to
    ``ssl.create_default_context()``, made on the first https request.
    """

    def __init__(self, guard: outbound.Guard, limit: int, *, keep: int = DEFAULT_KEEP,
                 ssl_context: ssl.SSLContext | None = None, keepalive: float = KEEPALIVE) -> None:
        self.guard = guard
        self.limit = max(1, limit)
        self.keep = keep
        self.keepalive = keepalive
        self._ssl = ssl_context
        self._loop: asyncio.AbstractEventLoop | None = None
        self._targets: dict[str, Target] = {}
        self._dns: dict[tuple[str, int], tuple[float, list[str]]] = {}
        self._idle: dict[tuple[str, str, int], list[Connection]] = {}
        self._conns: set[Connection] = set()  # open (connection_made, not yet lost)
        self._connecting = 0
        self._active = 0  # requests holding a slot
        self._slot_waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._sweeper: asyncio.TimerHandle | None = None
        self._buckets: dict[float, set[Connection]] = {}
        self._buffer = memoryview(bytearray(_READ_SIZE))
        self._closed = False
        #: Connections opened so far (for tests and benchmarks).
        self.opened = 0

    @property
    def closed(self) -> bool:
        return self._closed

    async def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> Response:
        """POST ``body`` to ``url`` with ``headers`` (not Host, Content-Length or Connection:
        those are the client's) and return the answer's status, reason and kept body.

        Raises a DeliveryHTTPError when no answer began, OutboundBlocked or InvalidInput
        (``firehook.errors``) when the guard refuses the target.
        """
        if self._closed:
            raise RuntimeError("the delivery client is closed")
        target = self._targets.get(url)
        if target is None:
            target = self._target(url)
        data = request_bytes(target, headers, body)

        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if self._active < self.limit and not self._slot_waiters:
            self._active += 1
        else:
            await self._wait_for_slot(loop, deadline, timeout)
        try:
            conn = self._pooled(target.key, loop)
            if conn is None:
                try:
                    async with asyncio.timeout_at(deadline):
                        conn = await self._connect(target, loop)
                except TimeoutError:
                    raise TimedOut(f"timed out after {timeout:g} s") from None
            waiter = conn.send(data, loop, self._deadline_bucket(loop, deadline), timeout)
            try:
                response = await waiter
            except BaseException:
                conn.shut(abort=True)  # cancelled mid-exchange: the connection's state is unknown
                raise
            if not conn.closed and not self._closed:
                conn.idle_since = loop.time()
                self._idle.setdefault(target.key, []).append(conn)
                if self._sweeper is None:
                    self._sweeper = loop.call_later(self.keepalive, self._sweep)
            return response
        finally:
            self._release_slot()

    def _target(self, url: str) -> Target:
        target = parse_target(url)
        # Literals need no DNS, so their verdict is checked once per URL; a refused one is
        # not remembered, so it is refused again on every attempt.
        self.guard.check_literal(target.host)
        if len(self._targets) >= _TARGETS_KEPT:
            self._targets.clear()
        self._targets[url] = target
        return target

    def _deadline_bucket(self, loop: asyncio.AbstractEventLoop, deadline: float) -> set[Connection]:
        """The set of requests whose deadline falls in the same 1/20 s, with one timer for all.

        A timer per request cost more than the rest of the request's bookkeeping (a heap push
        of Python-compared handles, then a cancel); a deadline may now fire up to 50 ms late.
        """
        at = math.ceil(deadline * _BUCKETS_PER_S) / _BUCKETS_PER_S
        bucket = self._buckets.get(at)
        if bucket is None:
            bucket = self._buckets[at] = set()
            loop.call_at(at, self._expire, at)
        return bucket

    def _expire(self, at: float) -> None:
        for conn in list(self._buckets.pop(at, ())):
            conn.expired()

    # -- slots -----------------------------------------------------------------------------------

    async def _wait_for_slot(self, loop: asyncio.AbstractEventLoop, deadline: float, timeout: float) -> None:
        waiter: asyncio.Future[None] = loop.create_future()
        self._slot_waiters.append(waiter)
        try:
            async with asyncio.timeout_at(deadline):
                await waiter  # _release_slot hands its slot over: _active is unchanged
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled():
                self._release_slot()  # handed a slot while leaving: pass it on
            else:
                waiter.cancel()
            if isinstance(exc, TimeoutError):
                raise TimedOut(f"timed out after {timeout:g} s") from None
            raise

    def _release_slot(self) -> None:
        while self._slot_waiters:
            waiter = self._slot_waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._active -= 1

    # -- connections -------------------------------------------------------------------------------

    def _pooled(self, key: tuple[str, str, int], loop: asyncio.AbstractEventLoop) -> Connection | None:
        stack = self._idle.get(key)
        if not stack:
            return None
        oldest = loop.time() - self.keepalive
        while stack:
            conn = stack.pop()
            if conn.closed:
                continue
            if conn.idle_since < oldest or not conn.alive():
                conn.shut()
                continue
            return conn
        return None

    def _evict_idle(self) -> None:
        """Close the longest-idle connection, to stay within the limit of open connections."""
        oldest: Connection | None = None
        for stack in self._idle.values():
            for conn in stack:
                if not conn.closed and (oldest is None or conn.idle_since < oldest.idle_since):
                    oldest = conn
        if oldest is not None:
            self._idle[oldest.key].remove(oldest)
            oldest.shut()

    def _sweep(self) -> None:
        """Close connections idle for longer than ``keepalive`` (as aiohttp does), and look again later."""
        self._sweeper = None
        assert self._loop is not None
        oldest = self._loop.time() - self.keepalive
        for key, stack in list(self._idle.items()):
            for conn in stack:
                if conn.idle_since < oldest:
                    conn.shut()
            stack[:] = [conn for conn in stack if not conn.closed]
            if not stack:
                del self._idle[key]
        if self._idle:
            self._sweeper = self._loop.call_later(self.keepalive, self._sweep)

    async def _addresses(self, target: Target, loop: asyncio.AbstractEventLoop) -> list[str]:
        cache_key = (target.host, target.port)
        cached = self._dns.get(cache_key)
        now = loop.time()
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            addresses = await self.guard.resolve_async(target.host, target.port)
        except OSError as exc:
            # The guard already words it "cannot resolve <host>: why".
            words = str(exc)
            if not words.startswith("cannot resolve"):
                words = f"cannot resolve {target.host}: {words}"
            raise Unresolvable(words) from None
        if len(self._dns) >= _TARGETS_KEPT:
            self._dns.clear()
        self._dns[cache_key] = (now + DNS_TTL, addresses)
        return addresses

    async def _connect(self, target: Target, loop: asyncio.AbstractEventLoop) -> Connection:
        if len(self._conns) + self._connecting >= self.limit:
            self._evict_idle()
        self._connecting += 1
        try:
            addresses = await self._addresses(target, loop)
            infos = [
                (socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "",
                 (address, target.port))
                for address in addresses
            ]
            try:
                # To the addresses the guard checked (pinned: nothing resolves the name again),
                # racing them as aiohttp does, so a dead IPv6 route cannot eat the whole timeout.
                sock = await aiohappyeyeballs.start_connection(infos, happy_eyeballs_delay=HAPPY_EYEBALLS_DELAY)
            except (OSError, RuntimeError) as exc:  # uvloop may raise RuntimeError
                raise ConnectFailed(f"cannot connect to {target.shown}: {os_words(exc)}") from None
            return await self._wrap(target, sock, loop)
        finally:
            self._connecting -= 1

    async def _wrap(self, target: Target, sock: socket.socket, loop: asyncio.AbstractEventLoop) -> Connection:
        """The connected socket as a transport with its protocol, after TLS's handshake for https."""
        context = None
        if target.tls:
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            context = self._ssl
        conn = Connection(target.key, sock, self.keep, self._buffer, self._conns)
        try:
            await loop.create_connection(lambda: conn, sock=sock, ssl=context,
                                         server_hostname=target.host if context is not None else None)
        except BaseException as exc:
            sock.close()
            shown = f"cannot connect to {target.shown}"
            if isinstance(exc, ssl.SSLCertVerificationError):
                raise CertificateRejected(f"TLS certificate not accepted: {exc}") from None
            if isinstance(exc, ssl.SSLError):
                raise ConnectFailed(f"{shown}: TLS handshake failed: {exc.reason or exc}") from None
            if isinstance(exc, OSError):
                raise ConnectFailed(f"{shown}: {os_words(exc)}") from None
            raise
        self.opened += 1
        return conn

    async def close(self) -> None:
        """Close every connection; requests still in flight fail."""
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        self._idle.clear()
        for conn in list(self._conns):
            conn.shut()
        for waiter in self._slot_waiters:
            waiter.cancel()
        self._slot_waiters.clear()
        # Let the transports' connection_lost callbacks run before the loop may close.
        await asyncio.sleep(0)
