"""The NDJSON batch parser (SPEC §2.3, ``intake.parse_ndjson``): whatever garbage is interleaved,
every good line comes back once, with its line number and its document; nothing is lost or
duplicated; every bad line is reported with its number."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from firehook.service import intake

PROPS = settings(max_examples=150, deadline=None)
LIMIT = 4096

good_docs = st.fixed_dictionaries(
    {"type": st.sampled_from(["environment.push", "environment.deploy", "project.create", "x.y"])},
    optional={
        "id": st.from_regex(r"\A[a-z0-9]{13}\Z"),
        "environments": st.lists(st.text("abcmain-", min_size=1, max_size=6), max_size=2),
        "text": st.text(max_size=30),
        "state": st.sampled_from(["pending", "in_progress", "complete"]),
        "payload": st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    },
)
garbage = st.one_of(
    st.binary(max_size=40).filter(lambda b: b"\n" not in b),
    st.sampled_from([b"{", b"}", b"[]", b"null", b"42", b'"text"', b"{'single': 1}", b'{"type": 3}',
                     b'{"no_type": true}', b"\xff\xfe", b'{"type": "environment.push"', b"\r", b" \t "]),
)


def encode(doc: dict[str, object], style: int) -> bytes:
    text = json.dumps(doc, ensure_ascii=style % 2 == 0)
    return (text + ("\r" if style % 3 == 0 else "")).encode()


@PROPS
@given(st.lists(st.one_of(st.tuples(st.just("good"), good_docs, st.integers(0, 5)),
                          st.tuples(st.just("bad"), garbage, st.just(0))), min_size=1, max_size=40),
       st.booleans())
def test_good_lines_come_back_with_their_numbers_whatever_the_garbage(items: list[tuple[str, object, int]],
                                                                       trailing_newline: bool) -> None:
    lines = [encode(x, style) if kind == "good" else x for kind, x, style in items]  # type: ignore[arg-type]
    data = b"\n".join(lines) + (b"\n" if trailing_newline else b"")
    parsed = intake.parse_ndjson(data, LIMIT)
    numbers = [n for n, _, _ in parsed]
    assert numbers == sorted(set(numbers)), "a line is reported twice or out of order"
    by_number = {n: (doc, err) for n, doc, err in parsed}
    for number, (kind, value, _style) in enumerate(items, start=1):
        if kind == "good":
            assert number in by_number, f"good line {number} lost"
            doc, err = by_number[number]
            assert err is None and doc is not None, (number, err)
            assert doc["type"] == value["type"]  # type: ignore[index]
            for key, v in value.items():  # type: ignore[union-attr]
                assert doc[key] == v
        else:
            raw = lines[number - 1]
            if not raw.strip():
                assert number not in by_number  # blank lines are skipped, not errors
                continue
            # Garbage may happen to be a valid activity ({"type": "..."}), otherwise an error.
            if number in by_number and by_number[number][1] is not None:
                err = by_number[number][1]
                assert err["line"] == number and err["code"] in (400, 413)
    # every reported line is a line of the input, each exactly once
    assert set(by_number) <= set(range(1, len(lines) + 2))
    assert len(parsed) == sum(1 for raw in data.split(b"\n") if raw.strip())


@PROPS
@given(st.lists(good_docs, min_size=1, max_size=20), st.integers(1, 3))
def test_oversized_lines_are_refused_alone(docs: list[dict[str, object]], which: int) -> None:
    big = {"type": "environment.push", "text": "x" * LIMIT}
    lines = [json.dumps(d).encode() for d in docs]
    at = min(which, len(lines))
    lines.insert(at, json.dumps(big).encode())
    parsed = intake.parse_ndjson(b"\n".join(lines), LIMIT)
    assert len(parsed) == len(lines)
    for number, doc, err in parsed:
        if number == at + 1:
            assert doc is None and err is not None and err["code"] == 413 and err["line"] == number
        else:
            assert err is None and doc is not None
