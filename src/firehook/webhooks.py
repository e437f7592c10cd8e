"""Building and sending one webhook delivery, and the retry policy (SPEC §5.1).

One :class:`Delivery` is the stored request of one run: the same bytes go out on every
attempt. :func:`send` makes one attempt and describes it as an :class:`AttemptResult`; it
never raises for a delivery failure (refused address, network error, timeout, bad status),
so the worker only has to record the result and ask :func:`next_delay` when to try again.
"""

from __future__ import annotations

import email.utils
import math
import random
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass

from firehook import delivery_http, errors, outbound, signing, timefmt

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


def make_session(
    guard: outbound.Guard, concurrency: int, *, ssl_context: ssl.SSLContext | None = None
) -> delivery_http.Client:
    """A client for deliveries: guarded and pinned connections, ``concurrency`` of them at most.

    No cookies, no proxies from the environment, no redirects: it sends one POST per call.
    Must be used and closed inside one running event loop.
    """
    return delivery_http.Client(guard, concurrency, keep=RESPONSE_LIMIT, ssl_context=ssl_context)


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


def _describe(exc: BaseException) -> tuple[str, bool]:
    """An exception as (words for the attempt log, final?)."""
    if isinstance(exc, delivery_http.DeliveryHTTPError):
        return str(exc), exc.final
    if isinstance(exc, errors.OutboundBlocked):
        return exc.message, True
    if isinstance(exc, errors.InvalidInput):
        return f"invalid URL: {exc.message}", True
    if isinstance(exc, OSError):
        return f"connection error: {exc.strerror or exc}", False
    return f"{type(exc).__name__}: {exc}", False


async def send(
    session: delivery_http.Client, delivery: Delivery, timeout: float, version: str
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
        response = await session.post(delivery.url, delivery.body, headers, timeout)
        status = response.status
        retry_after = parse_retry_after(response.retry_after)
        head = response.head
        if response.failure is not None:
            described, final = _describe(response.failure)
            error = f"HTTP {status}, then {described}"
        elif 300 <= status < 400:
            target = f" to {response.location}" if response.location else ""
            error = f"redirect ({status}){target} not followed: redirects count as failures"
        elif not 200 <= status < 300:
            error = f"HTTP {status} {response.reason}".rstrip()
    except (delivery_http.DeliveryHTTPError, OSError, errors.FirehookError) as exc:
        error, final = _describe(exc)
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
