"""The retry policy, the attempt verdicts and the request headers (SPEC §5.1)."""

from __future__ import annotations

import random

import pytest

from firehook import signing, webhooks

SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 36000)


def result(
    status: int | None, error: str | None = None, final: bool = False
) -> webhooks.AttemptResult:
    return webhooks.AttemptResult(
        started_at="2025-12-14T15:41:05.821145+00:00",
        duration_ms=1.0,
        status=status,
        response=None,
        error=error,
        final=final,
    )


@pytest.mark.parametrize("attempts_made", range(1, len(SCHEDULE) + 1))
def test_delay_follows_schedule_within_jitter(attempts_made: int) -> None:
    base = SCHEDULE[attempts_made - 1]
    rng = random.Random(attempts_made)
    delays = [webhooks.next_delay(SCHEDULE, attempts_made, None, rng) for _ in range(500)]
    assert all(d is not None and 0.8 * base <= d <= 1.2 * base for d in delays)
    # The jitter actually spreads the retries.
    assert max(d for d in delays if d) - min(d for d in delays if d) > 0.2 * base


def test_jitter_extremes() -> None:
    class Fixed(random.Random):
        def __init__(self, value: float) -> None:
            super().__init__()
            self.value = value

        def uniform(self, a: float, b: float) -> float:
            return a if self.value == 0 else b

    assert webhooks.next_delay(SCHEDULE, 2, None, Fixed(0)) == pytest.approx(240)
    assert webhooks.next_delay(SCHEDULE, 2, None, Fixed(1)) == pytest.approx(360)


def test_exhausted_after_one_plus_len_schedule_attempts() -> None:
    assert webhooks.next_delay(SCHEDULE, len(SCHEDULE) + 1, None) is None
    assert webhooks.next_delay(SCHEDULE, len(SCHEDULE) + 5, 10) is None
    assert webhooks.next_delay((), 1, None) is None
    with pytest.raises(ValueError):
        webhooks.next_delay(SCHEDULE, 0, None)


def test_retry_after_lengthens_up_to_the_following_step() -> None:
    rng = random.Random(1)
    # After attempt 1 (5 s step): a Retry-After of 60 s is honoured…
    assert webhooks.next_delay(SCHEDULE, 1, 60, rng) == 60
    # …and capped at the following step's delay (300 s).
    assert webhooks.next_delay(SCHEDULE, 1, 10_000, rng) == 300
    # On the last step there is no following one: capped at the step itself (at least).
    last = webhooks.next_delay(SCHEDULE, len(SCHEDULE), 10**9, rng)
    assert last is not None and 36000 * 0.8 <= last <= 36000 * 1.2


def test_retry_after_never_shortens_the_wait() -> None:
    rng = random.Random(2)
    for retry_after in (0, 1, 100):
        delay = webhooks.next_delay(SCHEDULE, 2, retry_after, rng)
        assert delay is not None and delay >= 240


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("1.5", 1.5),
        ("-3", 0.0),
        ("soon", None),
        ("", None),
        (None, None),
        ("nan", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 60.0),
        ("Wed, 21 Oct 2015 07:26:00 GMT", 0.0),  # in the past
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    now = 1445412420.0  # Wed, 21 Oct 2015 07:27:00 GMT
    assert webhooks.parse_retry_after(value, now=now) == expected


@pytest.mark.parametrize(
    ("status", "final", "success", "retryable"),
    [
        (200, False, True, False),
        (204, False, True, False),
        (299, False, True, False),
        (301, False, False, False),
        (302, False, False, False),
        (304, False, False, False),
        (400, False, False, False),
        (404, False, False, False),
        (410, False, False, False),
        (429, False, False, True),
        (500, False, False, True),
        (503, False, False, True),
        (None, False, False, True),  # network error or timeout
        (None, True, False, False),  # outbound-blocked
    ],
)
def test_attempt_verdicts(status: int | None, final: bool, success: bool, retryable: bool) -> None:
    attempt = result(status, None if success else "x", final)
    assert attempt.success is success
    assert attempt.retryable is retryable


def test_headers_unsigned() -> None:
    delivery = webhooks.Delivery(run_id="r1abc", url="https://example.com/", body=b"{}")
    assert webhooks.headers_for(delivery, "1.2.3") == {
        "Content-Type": "application/json",
        "User-Agent": "firehook/1.2.3",
        "X-Firehook-Delivery": "r1abc",
    }


def test_headers_signed_with_rotation_and_standard_webhooks() -> None:
    body = b'{"id":"a1kz6ffxui7em","type":"environment.push"}'
    delivery = webhooks.Delivery(
        run_id="r1abc",
        url="https://example.com/",
        body=body,
        keys=("my-shared-key", "old-key"),
        standard_webhooks=True,
        timestamp=1700000000,
    )
    headers = webhooks.headers_for(delivery, "0.1.0")
    assert headers["X-JWS-Signature"] == signing.signature_header(
        body, ["my-shared-key", "old-key"]
    )
    assert headers["X-JWS-Signature"].split(" ")[0] == signing.sign_detached(body, "my-shared-key")
    assert headers["webhook-id"] == "r1abc"
    assert headers["webhook-timestamp"] == "1700000000"
    assert headers["webhook-signature"] == " ".join(
        signing.standard_webhooks_signature("r1abc", 1700000000, body, k)
        for k in ("my-shared-key", "old-key")
    )
    # Same delivery, same headers: every attempt is identical (timestamp fixed here).
    assert webhooks.headers_for(delivery, "0.1.0") == headers


def test_standard_webhooks_without_key_sends_id_and_time_only() -> None:
    delivery = webhooks.Delivery("r1", "https://example.com/", b"{}", standard_webhooks=True)
    headers = webhooks.headers_for(delivery, "0.1.0")
    assert headers["webhook-id"] == "r1"
    assert int(headers["webhook-timestamp"]) > 1_700_000_000
    assert "webhook-signature" not in headers and "X-JWS-Signature" not in headers
