"""The one timestamp format, and its cached-second fast path against datetime's own."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from firehook import timefmt


def reference(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, tz=dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f") + "+00:00"


@given(st.floats(min_value=-1e9, max_value=4e9, allow_nan=False))
def test_from_epoch_matches_datetime(seconds: float) -> None:
    assert timefmt.from_epoch(seconds) == reference(seconds)


def test_from_epoch_across_a_second_boundary() -> None:
    # The cached second must not leak into the next one (or back into the previous one).
    for seconds in (1700000000.999999, 1700000001.000001, 1700000000.5, 1.9999996, 2.0000004):
        assert timefmt.from_epoch(seconds) == reference(seconds)
    assert timefmt.from_epoch(1733011200.25) == "2024-12-01T00:00:00.250000+00:00"
