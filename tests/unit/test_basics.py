from __future__ import annotations

import datetime as dt
import re

import pytest

from firehook import errors, ids, settings, timefmt


def test_new_id_shape_and_uniqueness() -> None:
    made = {ids.new_id() for _ in range(2000)}
    assert len(made) == 2000
    assert all(re.fullmatch(r"[a-z0-9]{13}", i) for i in made)


@pytest.mark.parametrize("value, ok", [
    ("a1kz6ffxui7em", True), ("My-Project_1.x", True), ("", False), ("-lead", False), ("a/b", False),
    ("a b", False), ("x" * 64, True), ("x" * 65, False), (12, False), (None, False),
])
def test_given_ids(value: object, ok: bool) -> None:
    assert ids.is_valid_given_id(value) is ok


def test_timestamp_format_is_the_one_receivers_expect() -> None:
    moment = dt.datetime(2025, 12, 14, 15, 41, 5, 821145, tzinfo=dt.timezone.utc)
    assert timefmt.format_ts(moment) == "2025-12-14T15:41:05.821145+00:00"
    assert timefmt.format_ts(dt.datetime(2025, 1, 2, 3, 4, 5)) == "2025-01-02T03:04:05.000000+00:00"
    paris = dt.timezone(dt.timedelta(hours=1))
    assert timefmt.format_ts(dt.datetime(2025, 1, 2, 4, 4, 5, tzinfo=paris)) == "2025-01-02T03:04:05.000000+00:00"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00", timefmt.now_ts())


def test_timestamp_round_trip_and_errors() -> None:
    text = "2024-04-12T20:41:52.677478+00:00"
    assert timefmt.from_epoch(timefmt.to_epoch(text)) == text
    assert timefmt.format_ts(timefmt.parse_ts("2024-04-12T20:41:52Z")) == "2024-04-12T20:41:52.000000+00:00"
    with pytest.raises(ValueError, match="not an ISO-8601"):
        timefmt.parse_ts("yesterday")


def test_error_body_format() -> None:
    assert errors.error_body(400, "Bad Request", {"type": "is required"}) == {
        "status": "error", "code": 400, "title": "Bad Request", "detail": {"type": "is required"}}
    exc = errors.InvalidInput.field("url", "must be http")
    assert exc.status == 400 and exc.detail == {"url": "must be http"}
    assert issubclass(errors.OutboundBlocked, errors.FirehookError)


def test_settings_precedence_and_errors() -> None:
    loaded = settings.load({"port": "9000"}, environ={"FIREHOOK_PORT": "8000", "FIREHOOK_SCRIPT_TIMEOUT": "5"})
    assert loaded.port == 9000 and loaded.script_timeout == 5.0
    assert settings.load({}, environ={}).retry_schedule == (5, 300, 1800, 7200, 18000, 36000, 36000)
    assert settings.load({}, environ={"FIREHOOK_OUTBOUND_ALLOW": "127.0.0.1/32, localhost"}).outbound_allow == (
        "127.0.0.1/32", "localhost")
    with pytest.raises(errors.InvalidInput) as info:
        settings.load({}, environ={"FIREHOOK_PORT": "eighty"})
    assert "port" in info.value.detail and "FIREHOOK_PORT" in info.value.detail["port"]
    with pytest.raises(errors.InvalidInput):
        settings.load({}, environ={"FIREHOOK_RETRY_SCHEDULE": "5,-1"})
    assert settings.load({}, environ={"FIREHOOK_LOG_LEVEL": "DEBUG"}).log_level == "debug"
    with pytest.raises(errors.InvalidInput) as loud:
        settings.load({}, environ={"FIREHOOK_LOG_LEVEL": "loud"})
    assert "debug, info, warning, error" in loud.value.detail["log_level"]


def test_settings_survive_the_trip_to_a_child_process() -> None:
    # serve hands every resolved setting to its worker child as FIREHOOK_* variables
    given = settings.load({"port": "9001", "outbound_allow": "127.0.0.1/32,localhost",
                           "retry_schedule": "1.5,60", "log_level": "warning"}, environ={})
    assert settings.load({}, environ=given.to_environ()).values == given.values


def test_settings_database_url_defaults_to_sqlite_in_data_dir(tmp_path) -> None:  # type: ignore[no-untyped-def]
    loaded = settings.load({"data_dir": str(tmp_path)}, environ={})
    assert loaded.resolved_database_url == f"sqlite:///{tmp_path}/firehook.db"
    assert loaded.resolved_public_url == "http://127.0.0.1:8780"


def test_every_fixed_environment_name_exists() -> None:
    names = {s.env for s in settings.REGISTRY}
    for fixed in ("FIREHOOK_DATA_DIR", "FIREHOOK_DATABASE_URL", "FIREHOOK_TOKEN", "FIREHOOK_SERVER",
                  "FIREHOOK_PROJECT", "FIREHOOK_OUTBOUND_ALLOW", "FIREHOOK_SCRIPT_TIMEOUT",
                  "FIREHOOK_SCRIPT_MEMORY_MB", "FIREHOOK_WEBHOOK_TIMEOUT", "FIREHOOK_RETRY_SCHEDULE",
                  "FIREHOOK_WORKERS"):
        assert fixed in names


def test_settings_doc_is_generated_from_the_registry() -> None:
    from tests.support import REPO

    on_disk = (REPO / "docs" / "settings.md").read_text(encoding="utf-8")
    assert on_disk == settings.markdown_document(), (
        "docs/settings.md is out of date: regenerate it with "
        "python -c 'from firehook import settings; print(settings.markdown_document(), end=\"\")' > docs/settings.md")
