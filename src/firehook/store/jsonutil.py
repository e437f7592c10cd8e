"""The one JSON serialisation used for stored documents and webhook bodies."""

from __future__ import annotations

import json
import math
from typing import Any


def dumps(value: Any) -> str:
    """Compact JSON, UTF-8 characters kept as they are (the bytes receivers verify). Never
    writes NaN or Infinity, which are not JSON."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def loads(text: str | bytes) -> Any:
    return json.loads(text)


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
    return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)


def encode_utf8(text: str) -> bytes:
    """UTF-8 bytes of a serialised document; ValueError when it holds a lone surrogate
    (``"\\ud800"`` is valid JSON but not Unicode text, and no database or receiver takes it)."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = text[exc.start:exc.end].encode("unicode_escape").decode("ascii")
        raise ValueError(f"a string holds a lone UTF-16 surrogate ({bad}), which is not Unicode text") from None
