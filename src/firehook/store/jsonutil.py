"""The one JSON serialisation used for stored documents, webhook bodies and answers.

orjson does the work (3–14× the stdlib on firehook's documents); the stdlib takes over
wherever orjson would answer differently, so the contract is the stdlib's as it always was:

- orjson reads an integer beyond 64 bits as a float, losing digits, and cannot write one: a
  text with a run of 19 digits or more is read by the stdlib, and a value orjson refuses to
  write is written by the stdlib;
- orjson refuses lone surrogates, NaN and Infinity with messages of its own: whatever it
  refuses to read is read again by the stdlib, whose verdict (and words) clients have seen;
- orjson writes at most 254 levels of nesting: that is the documented depth limit of a stored
  document (:data:`MAX_DEPTH`), checked in the stdlib path too.
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson

MAX_DEPTH = 254  # nested objects and arrays in a stored document (what orjson writes)

# A run of 19 digits may be an integer beyond 64 bits (a negative one of 19 digits may be):
# found with one translate and one substring search, about 0.6 ns per byte.
_DIGITS = bytes(48 if 48 <= b <= 57 else 120 for b in range(256))  # digits → "0", the rest → "x"
_LONG_RUN = b"0" * 19


def _may_hold_big_int(raw: bytes) -> bool:
    return _LONG_RUN in raw.translate(_DIGITS)


def _as_bytes(text: str | bytes) -> bytes:
    return text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")


def _stdlib_dumps(value: Any) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except RecursionError:
        raise ValueError(_too_deep()) from None


def dumps(value: Any) -> str:
    """Compact JSON, UTF-8 characters kept as they are (the bytes receivers verify). Never
    writes NaN or Infinity, which are not JSON (ValueError)."""
    try:
        out = orjson.dumps(value)
    except orjson.JSONEncodeError:  # a big integer, a lone surrogate, a type orjson lacks, depth
        return _stdlib_dumps(value)
    # orjson writes NaN and Infinity as null: only a text with a null can hide one.
    if b"null" in out and _has_non_finite(value):
        raise ValueError("Out of range float values are not JSON compliant")
    return out.decode("utf-8")


def document(doc: Any) -> tuple[str, bytes]:
    """A document serialised once: its stored text and that text's UTF-8 bytes. ValueError
    (worded for the client) when it holds a lone surrogate or nests deeper than
    :data:`MAX_DEPTH`. For documents read by :func:`loads_strict` or built by firehook, which
    hold no NaN or Infinity (so, unlike :func:`dumps`, nothing is checked for them)."""
    try:
        raw = orjson.dumps(doc)
    except orjson.JSONEncodeError:
        if _deeper_than(doc, MAX_DEPTH):
            raise ValueError(_too_deep()) from None
        text = _stdlib_dumps(doc)
        return text, encode_utf8(text)
    return raw.decode("utf-8"), raw


def answer(value: Any) -> bytes:
    """The UTF-8 JSON of an API answer; what orjson cannot write (a lone surrogate quoted in an
    error message) is escaped by the stdlib, so an answer is always valid UTF-8."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def loads(text: str | bytes) -> Any:
    """Parse JSON that firehook wrote (a stored document)."""
    raw = _as_bytes(text)
    if not _may_hold_big_int(raw):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass  # the stdlib's verdict, as always
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError(_too_deep()) from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number (NaN and Infinity are refused)")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text} is out of range for a JSON number")
    return value


def loads_strict(text: str | bytes) -> Any:
    """Parse what a client sent: standard JSON only — no NaN, no Infinity, no numbers that
    overflow — so that everything stored can be sent on as JSON that any receiver parses."""
    raw = _as_bytes(text)
    if not _may_hold_big_int(raw):
        try:
            return orjson.loads(raw)  # refuses NaN, Infinity and overflowing numbers itself
        except orjson.JSONDecodeError:
            pass  # read again below: the stdlib accepts some of it, and words the rest as always
    return _stdlib_strict(text)


def _stdlib_strict(text: str | bytes) -> Any:
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise ValueError(_too_deep()) from None


class StrictBuffer:
    """:func:`loads_strict` for many texts in one buffer (the lines of an NDJSON body), read
    in place: no copy per text, and the big-integer check done once for the whole buffer."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self._view = memoryview(data)
        self._digits = data.translate(_DIGITS)

    def loads(self, start: int, end: int) -> Any:
        """The JSON text ``data[start:end]``, parsed as :func:`loads_strict` would."""
        if self._digits.find(_LONG_RUN, start, end) < 0:
            try:
                return orjson.loads(self._view[start:end])
            except orjson.JSONDecodeError:
                pass
        return _stdlib_strict(self.data[start:end])


def encode_utf8(text: str) -> bytes:
    """UTF-8 bytes of a serialised document; ValueError when it holds a lone surrogate
    (``"\\ud800"`` is valid JSON but not Unicode text, and no database or receiver takes it)."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = text[exc.start:exc.end].encode("unicode_escape").decode("ascii")
        raise ValueError(f"a string holds a lone UTF-16 surrogate ({bad}), which is not Unicode text") from None


def _too_deep() -> str:
    return f"nests objects and arrays deeper than {MAX_DEPTH} levels"


def _has_non_finite(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return False


def _deeper_than(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, (list, tuple)) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False
