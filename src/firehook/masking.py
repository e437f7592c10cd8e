"""Masking secrets in text that leaves firehook: run logs and dry-run answers.

Scripts get the values of sensitive variables, and may print them or put them in a URL they
fetch (a Slack webhook URL is a secret). The log that is stored and shown replaces every
occurrence of a sensitive value with ``******`` — in the forms firehook itself writes too: URL-
encoded (firehook's ``HTTP request:`` line shows the URL as fetched), JSON-escaped (``console.log``
renders objects as JSON), and a secret's beginning at the end of a line (the log limit cuts a
line where it falls, which may be inside a secret). Sensitive values shorter than
:data:`MIN_LENGTH` are refused when saved (``validation.maskable``).

What masking cannot do: a script holds its secrets and can always transform one (reverse it,
encode it in base64, print it a character at a time) so that no mask recognises it, as CI
systems say of theirs. Masking protects against accidents, not against the script's author.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote, quote_plus

from firehook import model

MIN_LENGTH = 4  # shorter values ("1", "yes") would mask ordinary words


def forms(secret: str) -> set[str]:
    """``secret`` as it may appear in a log firehook writes: as it is, URL-encoded (every way
    a URL or a form quotes it) and JSON-escaped (with and without ASCII escapes)."""
    out = {secret, quote(secret, safe=""), quote(secret, safe="/:"), quote_plus(secret),
           json.dumps(secret, ensure_ascii=False)[1:-1], json.dumps(secret)[1:-1]}
    return {form for form in out if len(form) >= MIN_LENGTH}


class Masker:
    def __init__(self, secrets: Iterable[str]) -> None:
        found = {form for s in secrets if len(s) >= MIN_LENGTH for form in forms(s)}
        # Longest first, so a secret that contains another is masked whole.
        self.secrets = sorted(found, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, model.SECRET_MASK)
        return self._cut_tail(text)

    def _cut_tail(self, text: str) -> str:
        """A line that ends with the beginning of a secret (at least MIN_LENGTH characters of
        it) ends with the mask instead: the log limit cuts a line wherever it falls."""
        for secret in self.secrets:
            head = secret[:MIN_LENGTH]
            start = text.find(head, max(0, len(text) - len(secret) + 1))
            while start >= 0:
                if secret.startswith(text[start:]):
                    return text[:start] + model.SECRET_MASK
                start = text.find(head, start + 1)
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
