"""The pure parts of the CLI's Upsun fidelity (issue 14): PHP date formats, ``--start`` as
strtotime reads it, ``-c/--columns`` and the activity type filters."""

from __future__ import annotations

import datetime as dt

import pytest

from firehook.cli import activity_types, dates, output
from firehook.cli.client import CliError

PARIS_WINTER = dt.timezone(dt.timedelta(hours=1))
NOW = dt.datetime(2025, 12, 14, 16, 30, 15, tzinfo=PARIS_WINTER)


@pytest.mark.parametrize(("fmt", "expected"), [
    ("c", "2025-12-14T16:30:15+01:00"),
    ("Y-m-d H:i:s", "2025-12-14 16:30:15"),
    ("D, d M Y", "Sun, 14 Dec 2025"),
    ("jS F y, g:i a", "14th December 25, 4:30 pm"),
    ("U", str(int(NOW.timestamp()))),
    ("O|P|Z", "+0100|+01:00|3600"),
    (r"\Y\-m", "Y-12"),
    ("r", "Sun, 14 Dec 2025 16:30:15 +0100"),
])
def test_php_date_formats(fmt: str, expected: str) -> None:
    assert dates.php_format(NOW, fmt) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("now", NOW),
    ("yesterday", dt.datetime(2025, 12, 13, tzinfo=PARIS_WINTER)),
    ("today", dt.datetime(2025, 12, 14, tzinfo=PARIS_WINTER)),
    ("tomorrow", dt.datetime(2025, 12, 15, tzinfo=PARIS_WINTER)),
    ("-2 hours", NOW - dt.timedelta(hours=2)),
    ("+1 week 2 days", NOW + dt.timedelta(days=9)),
    ("3 days ago", NOW - dt.timedelta(days=3)),
    ("last month", NOW.replace(month=11)),
    ("yesterday 14:00", dt.datetime(2025, 12, 13, 14, 0, tzinfo=PARIS_WINTER)),
    ("2025-12-01T10:00:00+00:00", dt.datetime(2025, 12, 1, 10, tzinfo=dt.timezone.utc)),
    ("2025-12-01T10:00:00Z", dt.datetime(2025, 12, 1, 10, tzinfo=dt.timezone.utc)),
    ("20251201T100000Z", dt.datetime(2025, 12, 1, 10, tzinfo=dt.timezone.utc)),
    ("@0", dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)),
])
def test_start_reads_what_strtotime_reads(text: str, expected: dt.datetime) -> None:
    assert dates.parse_start(text, now=NOW) == expected


@pytest.mark.parametrize("text", ["someday", "", "3 fortnights later", "2025-13-45"])
def test_start_refuses_what_it_cannot_read(text: str) -> None:
    with pytest.raises(ValueError, match="not a date"):
        dates.parse_start(text, now=NOW)


KEYS = ["id", "created", "completed", "description", "progress", "type", "state", "result", "time_execute",
        "time_wait"]
DEFAULT = ["id", "created", "description", "type", "state", "result"]


@pytest.mark.parametrize(("given", "expected"), [
    ((), DEFAULT),
    (("+",), DEFAULT),
    (("ID,Type",), ["id", "type"]),
    (("id", "type state"), ["id", "type", "state"]),
    (("+completed",), [*DEFAULT, "completed"]),
    (("completed+",), ["completed", *DEFAULT]),
    (("time_*",), ["time_execute", "time_wait"]),
    (("%e%",), ["created", "completed", "description", "progress", "type", "state", "result", "time_execute",
                "time_wait"]),
])
def test_columns_as_upsun_reads_them(given: tuple[str, ...], expected: list[str]) -> None:
    assert [KEYS[i] for i in output.columns_to_display(KEYS, DEFAULT, given)] == expected


def test_an_unknown_column_names_the_available_ones() -> None:
    with pytest.raises(CliError, match=r"^Column not found: nope \(available columns: id\*, created\*"):
        output.columns_to_display(KEYS, DEFAULT, ("nope",))


def test_activity_type_short_forms_wildcards_and_exclusions() -> None:
    warnings: list[str] = []
    assert activity_types.resolve(["script"], [], warnings.append) == ["integration.script"]
    # The first part optional, as Upsun matches it: `webhook` is every type ending in `.webhook`.
    assert activity_types.resolve(["webhook", "push"], [], warnings.append) == [
        "integration.health.webhook", "integration.webhook", "environment.push"]
    pushes = activity_types.resolve(["environment.variable.*"], [], warnings.append)
    assert pushes == ["environment.variable.create", "environment.variable.delete", "environment.variable.update"]
    everything_but = activity_types.resolve([], ["environment.*", "project.*"], warnings.append)
    assert "integration.script" in everything_but and not [t for t in everything_but if t.startswith("environment.")]
    assert warnings == []
    assert activity_types.resolve(["custom.thing"], [], warnings.append) == ["custom.thing"]
    assert warnings == ["Unrecognized activity type to include: custom.thing"]
    activity_types.resolve(["push"], ["push"], warnings.append)
    assert warnings[-1] == "The --exclude-type and --type options conflict."
