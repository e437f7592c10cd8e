"""The save-time syntax check compiles without running anything (issue 12): nothing the
script does can sway the verdict, and it is bounded in time and memory."""

from __future__ import annotations

import pytest

from firehook import errors, scripts


def test_a_script_that_replaces_json_is_valid() -> None:
    # It used to make the check's own JSON answer unreadable (a 500 on save).
    scripts.check_syntax("JSON.stringify = () => '{'; x")


def test_a_forged_syntax_error_does_not_refuse_a_valid_script() -> None:
    scripts.check_syntax(
        "JSON.stringify = function () {"
        " return '{\"name\":\"SyntaxError\",\"message\":\"forged\",\"stack\":\"    at <input>:1:1\"}' };"
        "throw new SyntaxError('forged')"
    )
    scripts.check_syntax("eval('var = 1')")  # a syntax error only when run
    scripts.check_syntax("JSON.parse('{')")


def test_nothing_runs_while_checking() -> None:
    # An endless top level is a valid script: it is never run, so the check returns at once.
    scripts.check_syntax("for (;;) {}")
    scripts.check_syntax("while (true) { var s = 'x'; s += s; }")


def test_return_at_top_level_is_a_syntax_error() -> None:
    with pytest.raises(errors.ScriptError) as caught:
        scripts.check_syntax("var a = 1;\nreturn a;")
    assert caught.value.line == 2


def test_real_syntax_errors_give_line_and_column() -> None:
    with pytest.raises(errors.ScriptError) as caught:
        scripts.check_syntax("var ok = 1;\n\n  var = 2;")
    # node: "SyntaxError: Unexpected token '='" at 3:7
    assert (caught.value.line, caught.value.column) == (3, 7)
    assert str(caught.value) == "SyntaxError: variable name expected (line 3, column 7)"
