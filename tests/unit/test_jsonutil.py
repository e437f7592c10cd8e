"""The JSON contract (store.jsonutil) on orjson: the stdlib's verdicts and words wherever
orjson would differ, and a documented depth limit; and ids from one read of the OS source."""

from __future__ import annotations

import json
from typing import Any

import pytest

from firehook import ids
from firehook.store import jsonutil

BIG = 123456789012345678901234567890


def nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize("parse", [jsonutil.loads, jsonutil.loads_strict])
def test_integers_beyond_64_bits_are_read_exactly(parse: Any) -> None:
    # orjson alone would read these as floats and lose digits.
    for number in (BIG, -BIG, 2**64, -(2**63) - 1, 10**19):
        text = json.dumps({"payload": {"n": number, "list": [number]}})
        assert parse(text) == {"payload": {"n": number, "list": [number]}}
        assert parse(text.encode()) == parse(text)
    assert parse(b'{"sha": "1234567890123456789012", "n": 1.5}') == {"sha": "1234567890123456789012", "n": 1.5}


@pytest.mark.parametrize("literal, message", [
    ("NaN", "NaN is not a JSON number (NaN and Infinity are refused)"),
    ("-Infinity", "-Infinity is not a JSON number (NaN and Infinity are refused)"),
    ("1e400", "1e400 is out of range for a JSON number"),
])
def test_what_is_not_json_is_refused_in_the_words_clients_know(literal: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        jsonutil.loads_strict(f'{{"v": {literal}}}'.encode())


def test_a_lone_surrogate_is_read_then_refused_when_stored_with_the_same_message() -> None:
    doc = jsonutil.loads_strict(b'{"text": "\\ud800 alone"}')
    with pytest.raises(ValueError) as stored:
        jsonutil.document(doc)
    with pytest.raises(ValueError) as encoded:
        jsonutil.encode_utf8(json.dumps(doc, ensure_ascii=False))
    assert str(stored.value) == str(encoded.value) == (
        "a string holds a lone UTF-16 surrogate (\\ud800), which is not Unicode text")
    assert json.loads(jsonutil.answer({"detail": "\ud800"})) == {"detail": "\ud800"}  # an answer stays UTF-8


def test_the_depth_limit_is_the_same_whichever_library_writes() -> None:
    text, raw = jsonutil.document({"deep": nested(jsonutil.MAX_DEPTH - 1)})
    assert jsonutil.loads(raw) == jsonutil.loads(text) == {"deep": nested(jsonutil.MAX_DEPTH - 1)}
    for doc in ({"deep": nested(jsonutil.MAX_DEPTH)}, {"big": BIG, "deep": nested(jsonutil.MAX_DEPTH)}):
        with pytest.raises(ValueError, match="deeper than 254 levels"):
            jsonutil.document(doc)
    with pytest.raises(ValueError, match="deeper than"):  # not a RecursionError, not a 500
        jsonutil.loads_strict(b"[" * 100_000 + b"]" * 100_000)


def test_dumps_is_compact_keeps_utf8_and_refuses_nan() -> None:
    assert jsonutil.dumps({"a": [1, None], "é": "Cloé 🔥", "big": BIG}) == (
        '{"a":[1,null],"é":"Cloé 🔥","big":123456789012345678901234567890}')
    for value in (float("nan"), float("inf")):
        with pytest.raises(ValueError):
            jsonutil.dumps({"v": [None, value]})
    text, raw = jsonutil.document({"id": "x", "n": 1.5, "t": "ü"})
    assert raw == text.encode() == '{"id":"x","n":1.5,"t":"ü"}'.encode()


def test_new_id_reads_the_os_source_once_and_is_uniform(monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[int] = []
    every_byte = bytes(range(256))

    def urandom(n: int) -> bytes:
        reads.append(n)
        return (every_byte * 2)[len(reads) * 7 % 256:][:n]

    monkeypatch.setattr(ids.os, "urandom", urandom)
    made = ids.new_id()
    assert len(made) == ids.LENGTH and set(made) <= set(ids.ALPHABET) and len(reads) == 1
    # Each of the 36 characters comes from exactly 7 of the 256 byte values; the other 4 are dropped.
    mapped = every_byte.translate(ids._TO_ALPHABET, ids._REJECTED).decode()
    assert len(mapped) == 252 and {mapped.count(c) for c in ids.ALPHABET} == {7}
