"""Building and sending one webhook delivery, and the retry policy (SPEC §5.1).

One :class:`Delivery` is the stored request of one run: the same bytes go out on every
attempt. :func:`send` makes one attempt and describes it as an :class:`AttemptResult`; it
never raises for a delivery failure (refused address, network error, timeout, bad status),
so the worker only has to record the result and ask :func:`next_delay` when to try again.
"""

from __future__ import annotations

import email.utils
import math
import os
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp

from firehook import errors, outbound, signing, timefmt

__all__ = [
    "RESPONSE_LIMIT",
    "AttemptResult",
    "Delivery",
    "headers_for",
    "make_session",
    "next_delay",
    "parse_retry_after",
    "send",
]

#: How much of a response body is kept on the attempt (SPEC §5.1: the first 4 KiB).
RESPONSE_LIMIT = 4096
JITTER = 0.2


@dataclass(frozen=True)
class Delivery:
    """What one run sends: the URL, the stored body and the key(s) that sign it."""

    run_id: str
    url: str
    body: bytes
    keys: tuple[str, ...] = ()  # shared key(s), newest first; () = unsigned
    standard_webhooks: bool = False
    # Standard Webhooks' timestamp is the time of the attempt (receivers reject old ones to
    # stop replays), so None means "now, at each attempt"; a fixed value is for tests.
    timestamp: int | None = None


@dataclass(frozen=True)
class AttemptResult:
    """One attempt, as recorded on the run."""

    started_at: str  # firehook.timefmt format
    duration_ms: float
    status: int | None
    response: str | None  # the first 4 KiB of the body, decoded with replacement
    error: str | None  # what went wrong, in words; None when nothing did
    retry_after: float | None = None  # seconds, from Retry-After (seconds or HTTP date)
    final: bool = False  # a failure retrying cannot fix: blocked address, invalid URL

    @property
    def success(self) -> bool:
        """Any 2xx."""
        return self.status is not None and 200 <= self.status < 300

    @property
    def retryable(self) -> bool:
        """Network error, timeout, 429 or 5xx; never a redirect, another 4xx or a refusal."""
        if self.success or self.final:
            return False
        if self.status is None:
            return True
        return self.status == 429 or 500 <= self.status < 600


def headers_for(delivery: Delivery, version: str) -> dict[str, str]:
    """The request headers of one attempt (SPEC §5.1–5.2)."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"firehook/{version}",
        "X-Firehook-Delivery": delivery.run_id,
    }
    if delivery.keys:
        headers["X-JWS-Signature"] = signing.signature_header(delivery.body, delivery.keys)
    if delivery.standard_webhooks:
        timestamp = delivery.timestamp if delivery.timestamp is not None else int(time.time())
        if delivery.keys:
            headers.update(
                signing.standard_webhooks_headers(
                    delivery.run_id, timestamp, delivery.body, delivery.keys
                )
            )
        else:
            # Without a key there is nothing to sign; the id and timestamp still help receivers
            # de-duplicate.
            headers["webhook-id"] = delivery.run_id
            headers["webhook-timestamp"] = str(timestamp)
    return headers


def make_session(guard: outbound.Guard, concurrency: int) -> aiohttp.ClientSession:
    """A client session for deliveries: guarded resolution, ``concurrency`` connections.

    No cookies, no proxies from the environment, no redirects (``send`` asks for none).
    Must be created, used and closed inside a running event loop.
    """
    connector = aiohttp.TCPConnector(
        limit=concurrency,
        limit_per_host=0,
        resolver=outbound.GuardedResolver(guard),
        ttl_dns_cache=10,
    )
    # Literal hosts need no DNS, so their verdict never changes: remember the ones that
    # passed (bounded) rather than parse them on every request.
    passed: set[str] = set()

    async def check_literal_host(
        request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
    ) -> aiohttp.ClientResponse:
        # aiohttp does not call the resolver for IP literals, so they are checked here,
        # before any connection is made; names are checked (and pinned) by GuardedResolver.
        # A middleware rather than a TraceConfig: tracing costs ~50 µs more per request.
        host = request.url.raw_host or ""
        if host not in passed:
            guard.check_literal(host)
            if len(passed) < 1024:
                passed.add(host)
        return await handler(request)

    return aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),
        trust_env=False,
        middlewares=(check_literal_host,),
        raise_for_status=False,
    )


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta-seconds or an HTTP date.

    None when absent or unreadable; never negative.
    """
    if not value:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if moment is None:
            return None
        seconds = moment.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


async def _read_head(response: aiohttp.ClientResponse) -> bytes:
    """Up to RESPONSE_LIMIT bytes of the body; the rest is not read (the connection is then
    closed rather than reused, which is cheaper than draining an unbounded body)."""
    chunks: list[bytes] = []
    size = 0
    while size < RESPONSE_LIMIT:
        chunk = await response.content.read(RESPONSE_LIMIT - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _describe(exc: BaseException, timeout: float) -> tuple[str, bool]:
    """An exception as (words for the attempt log, final?)."""
    if isinstance(exc, errors.OutboundBlocked):
        return exc.message, True
    if isinstance(exc, errors.InvalidInput):
        return f"invalid URL: {exc.message}", True
    if isinstance(exc, (TimeoutError, aiohttp.ServerTimeoutError)):
        return f"timed out after {timeout:g} s", False
    if isinstance(exc, aiohttp.InvalidURL):
        return f"invalid URL: {exc}", True
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        words = str(exc.os_error)
        # The guard's resolver already says "cannot resolve <host>: why".
        return (
            words if words.startswith("cannot resolve") else f"cannot resolve {exc.host}: {words}"
        ), False
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return f"TLS certificate not accepted: {exc.certificate_error}", False
    if isinstance(exc, aiohttp.ClientConnectorError):
        # asyncio words a refusal "Connect call failed (…)"; the errno says it better.
        why = os.strerror(exc.errno) if exc.errno else (exc.strerror or str(exc.os_error))
        return f"cannot connect to {exc.host}:{exc.port}: {why}", False
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the server closed the connection without answering", False
    if isinstance(exc, aiohttp.ClientOSError):
        return f"connection error: {exc.strerror or exc}", False
    if isinstance(exc, aiohttp.ClientPayloadError):
        return f"the response was cut short: {exc}", False
    return f"{type(exc).__name__}: {exc}", False


async def send(
    session: aiohttp.ClientSession, delivery: Delivery, timeout: float, version: str
) -> AttemptResult:
    """Make one attempt: POST the delivery's bytes and describe what happened.

    Never raises for a delivery failure; cancellation still propagates.
    """
    started_at = timefmt.now_ts()
    t0 = time.perf_counter()
    status: int | None = None
    retry_after: float | None = None
    head: bytes | None = None
    error: str | None = None
    final = False
    try:
        headers = headers_for(delivery, version)
        async with session.post(
            delivery.url,
            data=delivery.body,
            headers=headers,
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as response:
            status = response.status
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            head = await _read_head(response)
            if 300 <= status < 400:
                location = response.headers.get("Location")
                target = f" to {location}" if location else ""
                error = f"redirect ({status}){target} not followed: redirects count as failures"
            elif not 200 <= status < 300:
                error = f"HTTP {status} {response.reason or ''}".rstrip()
    except (aiohttp.ClientError, TimeoutError, OSError, errors.FirehookError) as exc:
        described, final = _describe(exc, timeout)
        error = described if status is None else f"HTTP {status}, then {described}"
    duration_ms = (time.perf_counter() - t0) * 1000.0
    return AttemptResult(
        started_at=started_at,
        duration_ms=round(duration_ms, 3),
        status=status,
        response=head.decode("utf-8", "replace") if head is not None else None,
        error=error,
        retry_after=retry_after,
        final=final,
    )


def next_delay(
    schedule: Sequence[float],
    attempts_made: int,
    retry_after: float | None,
    rng: random.Random | None = None,
) -> float | None:
    """Seconds until the next attempt, or None when the attempts are exhausted.

    ``schedule[i]`` is the delay after attempt ``i + 1``; there are ``1 + len(schedule)``
    attempts in all. The delay is jittered by ±20 % so that a receiver that was down for
    everyone is not hit by every retry at the same instant.

    ``Retry-After`` (when the receiver sent one) can lengthen the wait, up to the delay of
    the step after this one (for the last step, this step's own delay): the receiver is
    listened to, but cannot push a delivery out by more than one step of the schedule. It
    never shortens the wait below the jittered delay, so a receiver answering
    ``Retry-After: 0`` cannot make firehook retry in a tight loop.
    """
    if attempts_made < 1:
        raise ValueError("attempts_made counts attempts already made: at least 1")
    if attempts_made > len(schedule):
        return None
    uniform = rng.uniform if rng is not None else random.uniform
    base = float(schedule[attempts_made - 1])
    delay = base * uniform(1.0 - JITTER, 1.0 + JITTER)
    if retry_after is not None and retry_after > delay:
        following = float(schedule[attempts_made]) if attempts_made < len(schedule) else base
        delay = min(retry_after, max(following, delay))
    return delay
