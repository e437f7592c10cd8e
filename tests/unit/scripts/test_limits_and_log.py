"""ScriptLimits and the run log's byte budget."""

from __future__ import annotations

from types import SimpleNamespace

from firehook import settings
from firehook.scripts import limits
from firehook.scripts.limits import RunLog, ScriptLimits


def test_defaults_match_the_spec() -> None:
    assert ScriptLimits() == ScriptLimits(
        timeout=30.0,
        memory_mb=128,
        log_bytes=1024 * 1024,
        fetch_limit=100,
        fetch_timeout=30.0,
        fetch_max_bytes=10 * 1024 * 1024,
        storage_key_bytes=256,
        storage_value_bytes=64 * 1024,
        storage_total_bytes=1024 * 1024,
    )
    assert ScriptLimits().memory_bytes == 128 * 1024 * 1024


def test_from_settings() -> None:
    configured = SimpleNamespace(
        script_timeout=5,
        script_memory_mb=64,
        script_log_bytes=1000,
        script_fetch_limit=7,
        script_fetch_timeout=2.5,
        script_fetch_max_bytes=2048,
        storage_key_bytes=10,
        storage_value_bytes=20,
        storage_total_bytes=30,
    )
    assert ScriptLimits.from_settings(configured) == ScriptLimits(
        5.0, 64, 1000, 7, 2.5, 2048, 10, 20, 30
    )


def test_from_settings_defaults_agree_with_the_settings_registry() -> None:
    defaults = {s.name: s.parse(s.default) for s in settings.REGISTRY}
    assert ScriptLimits.from_settings(SimpleNamespace(**defaults)) == ScriptLimits()


def test_log_keeps_lines_until_the_budget_then_cuts_once() -> None:
    lines: list[str] = []
    log = RunLog(lines.append, 10)
    log.write("12345")
    log.write("67890")
    log.write("abc")
    log.write("def")
    assert lines == ["12345", "67890", "Log limit of 10 bytes reached: the rest of the log is cut."]
    assert log.cut


def test_line_crossing_the_budget_is_cut_to_fit_on_a_character_boundary() -> None:
    lines: list[str] = []
    log = RunLog(lines.append, 6)
    log.write("abcd")
    log.write("é✓xyz")  # é is 2 bytes: fits; ✓ (3 bytes) does not
    assert lines[:2] == ["abcd", "é"]
    assert lines[2].startswith("Log limit of 6 bytes")


def test_forced_lines_bypass_the_budget() -> None:
    lines: list[str] = []
    log = RunLog(lines.append, 3)
    log.write("toolong")
    log.write("TypeError: boom (line 1, column 1)", force=True)
    assert lines[-1] == "TypeError: boom (line 1, column 1)"


def test_limit_names() -> None:
    assert (
        limits.TIMEOUT,
        limits.MEMORY,
        limits.STACK,
        limits.FETCH_LIMIT,
        limits.FETCH_MAX_BYTES,
    ) == ("timeout", "memory", "stack", "fetch_limit", "fetch_max_bytes")
    assert limits.describe_seconds(30.0) == "30"
    assert limits.describe_seconds(0.5) == "0.5"
