"""True error positions and messages (SPEC §4.5, issue 12), on the real engine.

Each expected line, column and message is what Node v20 reports for the same script (run as
a file with ``node``, the top frame of ``error.stack``), hard-coded here. Node's wording for a
property read of undefined ("Cannot read properties of undefined (reading 'x')") differs
from the engine's ("cannot read property 'x' of undefined"); the property is named in both.
"""

from __future__ import annotations

import pytest

from firehook import errors, scripts
from tests.integration.scripts.helpers import run

CASES = {
    # node: TypeError: Cannot read properties of undefined (reading 'x') at 2:21
    "read in a function": (
        "function g() { var a = 1;\n  var b = undefined.x; }\ng();",
        "TypeError: cannot read property 'x' of undefined (line 2, column 21)",
    ),
    # node: ReferenceError: fetch2 is not defined at 3:1
    "undefined name at top level": (
        "var a = 1;\nvar u = 2;\nfetch2(SLACK_URL);",
        "ReferenceError: fetch2 is not defined (line 3, column 1)",
    ),
    # node: TypeError: o.shift is not a function at 3:5
    "method on an object": (
        "var o = {};\nvar x = 1;\n  o.shift();",
        "TypeError: o.shift is not a function (line 3, column 5)",
    ),
    # node: TypeError: Cannot read properties of undefined (reading 'variables') at 3:17
    "multi-line member chain": (
        "function f(a) {\n  return a.payload\n    .deployment.variables;\n}\nf({payload: {}});",
        "TypeError: cannot read property 'variables' of undefined (line 3, column 17)",
    ),
    # node: TypeError: Cannot read properties of undefined (reading 'items') at 5:17
    "read in a nested call": (
        "function outer(e) {\n  return inner(e);\n}\nfunction inner(e) {\n"
        "  return e.data.items.length;\n}\nouter({});",
        "TypeError: cannot read property 'items' of undefined (line 5, column 17)",
    ),
    # node: ReferenceError: notDefinedThing is not defined at 3:5
    "undefined name nested": (
        "function handler() {\n  if (true) {\n    notDefinedThing.call();\n  }\n}\nhandler();",
        "ReferenceError: notDefinedThing is not defined (line 3, column 5)",
    ),
    # node: TypeError: activity2.branches.shift is not a function at 3:30
    "member chain call in a function": (
        "var activity2 = {branches: {}};\nfunction f() {\n"
        "  var b = activity2.branches.shift();\n}\nf();",
        "TypeError: activity2.branches.shift is not a function (line 3, column 30)",
    ),
    # node: TypeError: g(...).run is not a function at 2:5
    "method of a call's result": (
        "function g() { return {}; }\ng().run();",
        "TypeError: g(...).run is not a function (line 2, column 5)",
    ),
    # node: TypeError: Cannot read properties of undefined (reading 'name') at 3:21
    "read in a callback": (
        "var items = [1, 2];\nitems.forEach(function (i) {\n  var name = i.meta.name;\n});",
        "TypeError: cannot read property 'name' of undefined (line 3, column 21)",
    ),
    # node: TypeError: count is not a function at 3:12
    "plain call of a number": (
        "var count = 3;\nfunction go() {\n    return count(1);\n}\ngo();",
        "TypeError: count is not a function (line 3, column 12)",
    ),
    # The first line has no line terminator before it: the engine counted its columns one
    # short (fh_token_col in vendor/quickjs/quickjs-ng-firehook.patch).
    # node: TypeError: Cannot read properties of undefined (reading 'x') at 1:33
    "read on the first line": (
        'var s = "ab"; var u = undefined.x;',
        "TypeError: cannot read property 'x' of undefined (line 1, column 33)",
    ),
    # node: TypeError: o.notify is not a function at 1:28
    "call on the first line after a non-ASCII letter": (
        'var s = "é"; var o = {}; o.notify();',
        "TypeError: o.notify is not a function (line 1, column 28)",
    ),
    # Columns count UTF-16 code units, as Node's do, not the engine's UTF-8 bytes.
    # node: TypeError: Cannot read properties of undefined (reading 'x') at 1:42
    "accented letters before the error": (
        'var s = "héllo wörld"; var u = undefined.x;',
        "TypeError: cannot read property 'x' of undefined (line 1, column 42)",
    ),
    # node: TypeError: Cannot read properties of undefined (reading 'x') at 1:35
    "emoji (two units each) before the error": (
        'var s = "\U0001F600\U0001F600"; var u = undefined.x;',
        "TypeError: cannot read property 'x' of undefined (line 1, column 35)",
    ),
    # node: TypeError: Cannot read properties of null (reading 'y') at 2:22
    "CJK before the error in a function": (
        'function f() {\n  var s = "\u65e5\u672c"; null.y;\n}\nf();',
        "TypeError: cannot read property 'y' of null (line 2, column 22)",
    ),
    # node: ReferenceError: sendSlack is not defined at 1:35
    "undefined name after accented text": (
        'var title = "D\u00e9ploiement r\u00e9ussi"; sendSlack(title);',
        "ReferenceError: sendSlack is not defined (line 1, column 35)",
    ),
}


@pytest.mark.parametrize(("source", "expected"), CASES.values(), ids=CASES.keys())
def test_error_position_and_message_are_nodes(source: str, expected: str) -> None:
    result = run(source)
    assert not result.outcome.success
    assert result.outcome.limit is None
    assert result.outcome.error == expected
    assert result.lines[-1] == expected


def test_a_function_still_runs_through_the_call_check() -> None:
    result = run(
        "var o = {n: 0, inc: function (k) { this.n += k; return this; }};"
        "o.inc(1).inc(2)['inc'](3); var f = o.inc.bind(o); f(4);"
        "console.log(o.n, [3, 1, 2].sort().join(), Math.max(1, 5), new Date(0).getTime())"
    )
    assert result.outcome.success, result.log
    assert result.lines == ["10 1,2,3 5 0"]


def test_a_caught_call_error_names_the_callee_too() -> None:
    result = run("try { activity.payload.run(); } catch (e) { console.log(e.message) }",
                 activity={"payload": {}})
    assert result.outcome.success, result.log
    # node: activity.payload.run is not a function
    assert result.lines == ["activity.payload.run is not a function"]


def test_syntax_errors_at_save_time_give_line_and_column() -> None:
    with pytest.raises(errors.ScriptError) as caught:
        scripts.check_syntax("var a = 1;\nvar b = ;")
    # node: "SyntaxError: Unexpected token ';'", its caret under 2:9
    assert (caught.value.line, caught.value.column) == (2, 9)
    assert str(caught.value).startswith("SyntaxError: ")


def test_syntax_errors_on_the_first_line_after_non_ascii_text() -> None:
    with pytest.raises(errors.ScriptError) as caught:
        scripts.check_syntax('var s = "\u65e5\u672c"; var = 1;')
    # node: its caret under 1:19 (the '='), counting each CJK character as one column
    assert (caught.value.line, caught.value.column) == (1, 19)
