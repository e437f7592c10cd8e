"""``storage`` (SPEC §4.4) across real runs."""

from __future__ import annotations

import json

from firehook import scripts
from tests.integration.scripts.helpers import run

COUNTER = """
var storage = require('storage');
var counter = storage.get('counter') || 0;
storage.set('counter', counter + 1);
console.log('counter', storage.get('counter'));
"""


def test_documented_counter_counts_1_2_3() -> None:
    store = scripts.MemoryStorage()
    lines = [run(COUNTER, storage=store).lines[0] for _ in range(3)]
    assert lines == ["counter 1", "counter 2", "counter 3"]
    assert store.get("counter") == "3"


def test_values_come_back_with_their_type() -> None:
    result = run(
        "storage.set('s', 'text'); storage.set('n', 1.5); storage.set('i', 42);"
        " storage.set('t', true); storage.set('f', false); storage.set('e', '');"
        "['s', 'n', 'i', 't', 'f', 'e', 'missing'].forEach(function (k) {"
        "  var v = storage.get(k); console.log(k, typeof v, JSON.stringify(v)) })"
    )
    assert result.lines == [
        's string "text"',
        "n number 1.5",
        "i number 42",
        "t boolean true",
        "f boolean false",
        'e string ""',
        "missing object null",
    ]


def test_objects_and_arrays_throw_a_type_error_saying_to_stringify() -> None:
    result = run(
        "[{a: 1}, [1, 2], null, undefined, function () {}, NaN].forEach(function (v) {"
        "  try { storage.set('k', v); console.log('stored') }"
        "  catch (e) { console.log(e.name, e.message.indexOf('JSON.stringify') >= 0 ||"
        "   e.message.indexOf('finite') >= 0) } });"
        "storage.set('k', JSON.stringify({a: 1})); console.log(storage.get('k'))"
    )
    assert result.lines == ["TypeError true"] * 6 + ['{"a":1}']


def test_remove_and_clear() -> None:
    store = scripts.MemoryStorage()
    run("storage.set('a', 1); storage.set('b', 2); storage.remove('a');", storage=store)
    assert store.items() == {"b": "2"}
    result = run("console.log(storage.get('a'), storage.get('b')); storage.clear()", storage=store)
    assert result.lines == ["null 2"]
    assert store.items() == {}


def test_quotas_throw() -> None:
    limits = scripts.ScriptLimits(
        timeout=2.0, storage_key_bytes=8, storage_value_bytes=20, storage_total_bytes=50
    )
    result = run(
        "function attempt(f) { try { f(); console.log('ok') } catch (e) { console.log(e.name, e.message) } }"
        "attempt(function () { storage.set('a-very-long-key', 1) });"
        "attempt(function () { storage.set('k', 'x'.repeat(30)) });"
        "attempt(function () { storage.set('k1', 'x'.repeat(15)) });"
        "attempt(function () { storage.set('k2', 'x'.repeat(15)) });"
        "attempt(function () { storage.set('k3', 'x'.repeat(15)) });"
        "attempt(function () { storage.set('k1', 'small') });",
        limits=limits,
    )
    assert result.lines == [
        "RangeError storage key is 15 bytes; the limit is 8 bytes",
        "RangeError storage value is 32 bytes; the limit is 20 bytes",
        "ok",
        "ok",
        "RangeError storage would hold 57 bytes; the limit per integration is 50 bytes",
        "ok",
    ]


def test_writes_made_before_a_failure_are_kept() -> None:
    store = scripts.MemoryStorage()
    result = run(
        "storage.set('before', 'yes'); throw new Error('boom'); storage.set('after', 1)",
        storage=store,
    )
    assert not result.outcome.success
    assert store.items() == {"before": '"yes"'}


def test_storage_file_round_trip(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "storage.json"
    path.write_text(json.dumps({"counter": 41, "name": "x"}))
    store = scripts.MemoryStorage.load(path)
    result = run(COUNTER + "console.log(storage.get('name'))", storage=store)
    assert result.lines == ["counter 42", "x"]
    store.save(path)
    assert json.loads(path.read_text()) == {"counter": 42, "name": "x"}


def test_a_key_with_a_nul_character_is_refused_in_the_script() -> None:
    # refused where the script can catch it, never at recording time (no database keeps NUL in text)
    store = scripts.MemoryStorage()
    result = run("try { storage.set('a\\u0000b', 1) } catch (e) { console.log(e.name, e.message) }"
                 "storage.set('ok', 1);", storage=store)
    assert result.lines == ["TypeError storage keys cannot contain NUL characters"]
    assert store.items() == {"ok": "1"}
