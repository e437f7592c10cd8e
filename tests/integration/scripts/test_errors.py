"""Failures and their reports (SPEC §4.5), and ``check_syntax``."""

from __future__ import annotations

import re

import pytest

from firehook import errors, scripts
from tests.integration.scripts.helpers import run


def test_uncaught_error_fails_with_name_message_line_and_column() -> None:
    result = run("console.log('start')\nvar x = 1\n  x()")
    assert not result.outcome.success
    assert result.outcome.limit is None
    # Node: "TypeError: x is not a function", at 3:3.
    assert result.outcome.error == "TypeError: x is not a function (line 3, column 3)"
    assert result.lines == ["start", result.outcome.error]


def test_error_thrown_inside_a_function_reports_the_innermost_script_frame() -> None:
    result = run(
        "function inner() {\n  throw new RangeError('deep')\n}\nfunction outer() { inner() }\nouter()"
    )
    assert re.fullmatch(r"RangeError: deep \(line 2, column \d+\)", result.outcome.error or "")


def test_error_thrown_by_a_host_api_points_at_the_script_call() -> None:
    result = run("\n\nstorage.set('k', {a: 1})")
    assert re.fullmatch(
        r"TypeError: storage values must be strings, numbers or booleans; "
        r"use JSON\.stringify\(value\) to store an object or an array \(line 3, column \d+\)",
        result.outcome.error or "",
    )


def test_thrown_non_errors_are_reported() -> None:
    assert run("throw 'plain string'").outcome.error == "Uncaught plain string"
    assert run("throw {code: 42}").outcome.error == 'Uncaught {"code":42}'
    assert run("throw {message: 'like an error'}").outcome.error == "Error: like an error"


def test_custom_error_subclasses_keep_their_name() -> None:
    result = run(
        "class MyError extends Error { constructor(m) { super(m); this.name = 'MyError' } }\n"
        "throw new MyError('mine')"
    )
    # The stack is captured where the error is made: inside the constructor, on line 1.
    assert re.fullmatch(r"MyError: mine \(line 1, column \d+\)", result.outcome.error or "")


def test_syntax_error_at_run_time_fails_the_run() -> None:
    result = run("var a = 1;\nvar = 2;")
    assert not result.outcome.success
    # Node points at the same token (2:5, "Unexpected token '='").
    assert result.outcome.error == "SyntaxError: variable name expected (line 2, column 5)"


def test_successful_run_reports_duration() -> None:
    outcome = run("1 + 1").outcome
    assert outcome == scripts.ScriptOutcome(True, None, None, outcome.duration_ms)
    assert outcome.duration_ms > 0


@pytest.mark.parametrize(
    ("source", "message", "line"),
    [
        ("var x = (1,\n  );", "SyntaxError: unexpected token in expression: ')'", 2),
        ("var a = 1;\nvar = 2;", "SyntaxError: variable name expected", 2),
        ("function f() {\n  return 1\n", "SyntaxError: unexpected token in expression: ''", 3),
        ("x = 'abc", "SyntaxError: unexpected end of string", 1),
        ("return 1", "SyntaxError: return not in a function", 1),
    ],
)
def test_check_syntax_reports_line_and_column(source: str, message: str, line: int) -> None:
    with pytest.raises(errors.ScriptError) as caught:
        scripts.check_syntax(source)
    error = caught.value
    assert error.line == line  # type: ignore[attr-defined]
    assert isinstance(error.column, int)  # type: ignore[attr-defined]
    assert str(error) == f"{message} (line {line}, column {error.column})"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "source",
    [
        "console.log('fine')",
        "JSON.parse('{')",  # a SyntaxError, but thrown while running: the script compiles
        "eval('(')",
        "undefinedFunction()",
        "while (true) {}",  # compiles; the checker stops it at once
        "function r() { return r() } r()",
        "'use strict'; var x = 1",
        "var storage = require('storage'); function variables() {}",
    ],
)
def test_check_syntax_accepts_scripts_that_compile(source: str) -> None:
    scripts.check_syntax(source)


def test_check_syntax_rejects_strict_mode_errors_of_strict_scripts() -> None:
    with pytest.raises(errors.ScriptError):
        scripts.check_syntax("'use strict';\nwith ({}) {}")


def test_inputs_that_are_not_json_are_the_callers_error() -> None:
    with pytest.raises(TypeError):
        run("1", project={"when": object()})


def test_replacing_the_prelude_entry_points_only_spoils_the_own_run() -> None:
    result = run("(async () => { await null; globalThis.__fh_settled = () => 5 })()")
    assert not result.outcome.success
    assert result.outcome.error == "Error: the script replaced firehook's internals"
    assert run("console.log('next')").lines == ["next"]
