"""The one JSON serialisation used for stored documents and webhook bodies."""

from __future__ import annotations

import json
from typing import Any


def dumps(value: Any) -> str:
    """Compact JSON, UTF-8 characters kept as they are (the bytes receivers verify)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def loads(text: str | bytes) -> Any:
    return json.loads(text)
