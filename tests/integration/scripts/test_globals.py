"""The globals a script sees (SPEC §4.1–4.2), on the real engine."""

from __future__ import annotations

import json
import re

import pytest

from tests.integration.scripts.helpers import run


def test_activity_project_and_variables_are_globals() -> None:
    result = run(
        "console.log(activity.type, activity.parameters.environment, project.id, project.title,"
        " variables.TOKEN, variables.config.retries)",
        activity={"type": "environment.push", "parameters": {"environment": "main"}},
        project={"id": "abc123", "title": "Shop"},
        variables={"TOKEN": "s3cr3t", "config": {"retries": 3}},
    )
    assert result.outcome.success, result.log
    assert result.lines == ["environment.push main abc123 Shop s3cr3t 3"]


def test_activity_json_is_parsed_as_given_quirks_included() -> None:
    result = run(
        "console.log(Array.isArray(activity.timings), activity.attributes.length, activity.x)",
        activity_json='{"timings": [], "attributes": [], "x": "\\u00e9"}',
    )
    assert result.lines == ["true 0 é"]


def test_underscore_1_13_is_available() -> None:
    result = run(
        "console.log(_.VERSION.slice(0, 4), _.pluck([{a: 1}, {a: 2}], 'a'),"
        " _.template('hi <%= name %>')({name: 'you'}), _.isEmpty({}))"
    )
    assert result.outcome.success, result.log
    assert result.lines == ["1.13 [1,2] hi you true"]


def test_console_methods_join_arguments_and_render_objects_as_json() -> None:
    result = run(
        "console.log('a', 1, true, null, undefined, {x: [1, 'y']});"
        "console.info('info'); console.warn('warn'); console.error('error'); console.debug('debug');"
        "console.log(new TypeError('bad'), function named() {}, Symbol('s'));"
        "var cyclic = {}; cyclic.self = cyclic; console.log(cyclic);"
        "console.log();"
    )
    assert result.outcome.success, result.log
    assert result.lines == [
        'a 1 true null undefined {"x":[1,"y"]}',
        "info",
        "warn",
        "error",
        "debug",
        "TypeError: bad [Function: named] Symbol(s)",
        "[object Object]",
        "",
    ]


def test_require_storage_and_storage_global_are_the_same_object() -> None:
    result = run("console.log(require('storage') === storage)")
    assert result.lines == ["true"]


def test_require_of_anything_else_throws_cannot_find_module() -> None:
    result = run(
        "try { require('fs') } catch (e) { console.log(e instanceof Error, e.message) }"
        "require('child_process')"
    )
    assert result.lines[0] == "true Cannot find module 'fs'"
    assert not result.outcome.success
    assert re.fullmatch(
        r"Error: Cannot find module 'child_process' \(line 1, column \d+\)",
        result.outcome.error or "",
    )


def test_script_is_a_sloppy_mode_classic_script() -> None:
    source = """
implicitGlobal = 1
var declared = 2
function hoisted() { return 3 }
with ({ inside: 4 }) { var seen = inside }
var octal = 010
console.log(globalThis.implicitGlobal, globalThis.declared, globalThis.hoisted(), seen, octal,
            (function () { return this === globalThis })())
"""
    result = run(source)
    assert result.outcome.success, result.log
    assert result.lines == ["1 2 3 4 8 true"]


def test_script_may_declare_its_own_variables_function_and_storage() -> None:
    source = """
function variables() { return { mine: true } }
var storage = require("storage")
storage.set('k', 'v')
console.log(variables().mine, storage.get('k'))
"""
    result = run(source, variables={"theirs": 1})
    assert result.outcome.success, result.log
    assert result.lines == ["true v"]


@pytest.mark.parametrize("keyword", ["const", "let"])
def test_script_may_shadow_globals_with_lexical_declarations(keyword: str) -> None:
    result = run(
        f"{keyword} storage = require('storage'); {keyword} fetch = 1; {keyword} activity = 'mine';"
        " console.log(typeof storage.get, fetch, activity)"
    )
    assert result.outcome.success, result.log
    assert result.lines == ["function 1 mine"]


def test_automatic_semicolon_insertion() -> None:
    result = run("var a = 1\nvar b = a\n+1\nconsole.log(b)\nreturnless()\nfunction returnless() {}")
    assert result.lines == ["2"]


def test_modern_syntax_is_supported() -> None:
    source = """
const {a, ...rest} = {a: 1, b: 2, c: 3};
class Point { #x = 1; get x() { return this.#x } }
const tagged = (s, ...v) => s.raw.join('|') + v.join(',');
console.log(a, Object.keys(rest).join(''), new Point().x, 2n ** 64n, [1, [2, [3]]].flat(2).length,
            null ?? 'dflt', ({})?.missing?.deep, tagged`x${1}y${2}z`, 'aXbX'.replaceAll('X', '-'))
"""
    result = run(source)
    assert result.outcome.success, result.log
    assert result.lines == ["1 bc 1 18446744073709551616 3 dflt undefined x|y|z1,2 a-b-"]


def test_crypto_hmac_hex_base64_and_chains() -> None:
    source = """
console.log(crypto.createHmac('sha256', 'key').update('The quick brown fox ').update('jumps over the lazy dog').digest('hex'));
console.log(crypto.createHmac('sha1', 'key').update('The quick brown fox jumps over the lazy dog').digest('base64'));
console.log(crypto.createHmac('md5', 'key').update('The quick brown fox jumps over the lazy dog').digest('hex'));
console.log(crypto.createHash('sha256').update('abc').digest('hex'));
"""
    result = run(source)
    assert result.outcome.success, result.log
    assert result.lines == [
        "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8",
        "3nybhbi3iqa8ino29wqQcBydtNk=",
        "80070713463e7749b90c2dc24911e275",
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    ]


def test_crypto_aws_sigv4_known_answer() -> None:
    source = """
function hmac(key, data, enc) { return crypto.createHmac('sha256', key).update(data).digest(enc); }
var kDate = hmac('AWS4' + 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', '20120215');
var kRegion = hmac(kDate, 'us-east-1');
var kService = hmac(kRegion, 'iam');
console.log(hmac(kService, 'aws4_request', 'hex'));
"""
    result = run(source)
    assert result.outcome.success, result.log
    assert result.lines == ["f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"]


def test_crypto_errors() -> None:
    result = run(
        "try { crypto.createHmac('sha3', 'k') } catch (e) { console.log(e.message) }"
        "var h = crypto.createHmac('sha256', 'k'); h.digest('hex');"
        "try { h.digest('hex') } catch (e) { console.log(e.message) }"
        "try { crypto.createHmac('sha256', 'k').digest('rot13') } catch (e) { console.log(e.message) }"
    )
    assert result.lines == [
        "Digest method not supported: sha3",
        "Digest already called",
        "unknown digest encoding: rot13",
    ]


def test_crypto_accepts_typed_arrays() -> None:
    result = run(
        "console.log(crypto.createHmac('sha256', new Uint8Array([107, 101, 121]))"
        ".update(new Uint8Array([97, 98, 99]).buffer).digest('hex') ==="
        " crypto.createHmac('sha256', 'key').update('abc').digest('hex'))"
    )
    assert result.lines == ["true"]


def test_math_random_differs_between_runs() -> None:
    first = run("console.log(Math.random(), Math.random())").lines[0]
    second = run("console.log(Math.random(), Math.random())").lines[0]
    assert first != second
    values = [float(v) for v in first.split()]
    assert all(0 <= v < 1 for v in values)


def test_async_main_is_awaited() -> None:
    result = run("async function main() { await null; console.log('after'); return 1 }\nmain()")
    assert result.outcome.success, result.log
    assert result.lines == ["after"]


def test_async_main_rejection_fails_the_run() -> None:
    result = run("(async () => {\n  await null;\n  throw new RangeError('late');\n})()")
    assert not result.outcome.success
    assert re.fullmatch(r"RangeError: late \(line 3, column \d+\)", result.outcome.error or "")


def test_date_and_json_work() -> None:
    result = run("console.log(typeof Date.now(), JSON.stringify({a: new Date(0)}))")
    assert result.lines == ['number {"a":"1970-01-01T00:00:00.000Z"}']


def test_large_activity_document() -> None:
    activity = {"type": "big", "log": "x" * 200_000, "items": list(range(5000))}
    result = run(
        "console.log(activity.log.length, _.reduce(activity.items, (a, b) => a + b, 0))",
        activity_json=json.dumps(activity),
    )
    assert result.lines == [f"200000 {sum(range(5000))}"]
