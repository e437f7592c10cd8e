"""Masking secrets in text that leaves firehook: run logs and dry-run answers.

Scripts get the values of sensitive variables, and may print them or put them in a URL they
fetch (a Slack webhook URL is a secret). The log that is stored and shown replaces every
occurrence of a sensitive value with ``******``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from firehook import model

MIN_LENGTH = 4  # shorter values ("1", "yes") would mask ordinary words


class Masker:
    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first, so a secret that contains another is masked whole.
        self.secrets = sorted({s for s in secrets if len(s) >= MIN_LENGTH}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, model.SECRET_MASK)
        return text

    def wrap(self, log: Callable[[str], None]) -> Callable[[str], None]:
        """``log`` with every message masked (``log`` itself when there is nothing to mask)."""
        if not self.secrets:
            return log
        return lambda message: log(self(message))


def sensitive_values(variables: Iterable[model.Variable]) -> list[str]:
    """The texts to mask for these variables. A sensitive JSON variable reaches the script
    parsed: it may print it re-serialised, or one part of it, so those are masked too."""
    out: list[str] = []
    for var in variables:
        if not var.is_sensitive:
            continue
        out.append(var.value)
        if var.is_json:
            try:
                parsed = json.loads(var.value)
            except ValueError:
                continue
            out.append(json.dumps(parsed, separators=(",", ":"), ensure_ascii=False))  # JSON.stringify's form
            out.extend(_leaves(parsed))
    return out


def _leaves(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in _leaves(item)]
    if isinstance(value, list):
        return [leaf for item in value for leaf in _leaves(item)]
    if isinstance(value, (int, float)) and not isinstance(value, bool) and len(str(value)) >= MIN_LENGTH:
        return [str(value)]
    return []
