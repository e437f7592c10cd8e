"""The one timestamp format: UTC ISO-8601 with microseconds and ``+00:00``.

Receivers exist that reject any other form, so every timestamp firehook writes goes through
:func:`format_ts`.
"""

from __future__ import annotations

import datetime as dt
import time


def format_ts(moment: dt.datetime) -> str:
    """Format an aware or naive-UTC datetime as ``2025-12-14T15:41:05.821145+00:00``."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    moment = moment.astimezone(dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "+00:00"


_second: tuple[int | None, str] = (None, "")  # the last whole second formatted, and its text


def from_epoch(seconds: float) -> str:
    """Format seconds since the epoch. Every log line and run state change is stamped, so the
    text of the current second is kept and only the microseconds are formatted anew."""
    whole = int(seconds // 1)
    micros = int(round((seconds - whole) * 1_000_000))
    if micros >= 1_000_000:  # rounding reached the next second
        whole, micros = whole + 1, micros - 1_000_000
    global _second
    cached, text = _second  # one read of the pair: another thread replaces it whole, never in part
    if cached != whole:
        text = dt.datetime.fromtimestamp(whole, tz=dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        _second = (whole, text)
    return f"{text}.{micros:06d}+00:00"


def now_ts() -> str:
    """The current time, formatted."""
    return from_epoch(time.time())


def parse_ts(text: str) -> dt.datetime:
    """Parse an ISO-8601 timestamp (``Z`` accepted); naive values are taken as UTC.

    Raises ValueError with the offending text when it does not parse.
    """
    if not isinstance(text, str) or not text:
        raise ValueError(f"not a timestamp: {text!r}")
    candidate = text[:-1] + "+00:00" if text.endswith("Z") else text
    try:
        moment = dt.datetime.fromisoformat(candidate)
    except ValueError:
        raise ValueError(f"not an ISO-8601 timestamp: {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc)


def to_epoch(text: str) -> float:
    """Seconds since the epoch for an ISO-8601 timestamp."""
    return parse_ts(text).timestamp()
