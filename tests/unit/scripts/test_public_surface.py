"""The public surface of firehook.scripts, pinned; and the pure error-report helpers."""

from __future__ import annotations

import inspect

from firehook import scripts
from firehook.scripts import runtime


def test_all_is_pinned() -> None:
    assert sorted(scripts.__all__) == [
        "MemoryStorage",
        "ScriptLimits",
        "ScriptOutcome",
        "StorageBackend",
        "check_syntax",
        "run_script",
        "warm_up",
    ]


def test_run_script_signature() -> None:
    parameters = inspect.signature(scripts.run_script).parameters
    assert list(parameters) == [
        "source",
        "activity_json",
        "project",
        "variables",
        "storage",
        "limits",
        "log",
        "outbound_allow",
        "dry_fetch",
    ]
    assert parameters["outbound_allow"].default == ()
    assert parameters["dry_fetch"].default is False
    assert all(
        p.kind is inspect.Parameter.KEYWORD_ONLY
        for name, p in parameters.items()
        if name != "source"
    )


def test_outcome_is_frozen() -> None:
    outcome = scripts.ScriptOutcome(True, None, None, 1.0)
    try:
        outcome.success = False  # type: ignore[misc]
    except AttributeError:
        pass
    else:
        raise AssertionError("ScriptOutcome is mutable")


def test_script_position_takes_the_innermost_script_frame() -> None:
    stack = (
        "    at set (eval_script:120:15)\n"
        "    at helper (<input>:7:3)\n"
        "    at <eval> (<input>:12:1)\n"
        "    at eval (native)\n"
    )
    assert runtime.script_position(stack) == (7, 3)
    assert runtime.script_position("    at parse (native)\n") is None
    assert runtime.script_position(None) is None


def test_describe_error() -> None:
    assert runtime.describe_error(
        "TypeError", "x is not a function", "    at <eval> (<input>:3:5)\n"
    ) == ("TypeError: x is not a function (line 3, column 5)")
    assert runtime.describe_error(None, "plain", "") == "Uncaught plain"
