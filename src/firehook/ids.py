"""Identifiers: 13 random characters from ``[a-z0-9]``, like Upsun's."""

from __future__ import annotations

import os
import re

ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
LENGTH = 13
# Ids given by clients (activity ids, project ids chosen at creation) may be longer or use
# capitals, dots, dashes and underscores, but nothing that would need escaping in a URL.
GIVEN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

# One random byte → one character: the 252 byte values below 7 × 36 map onto the alphabet
# seven times each (uniform); the four above are dropped, so no character is favoured.
_ACCEPTED = 7 * len(ALPHABET)
_TO_ALPHABET = bytes((ALPHABET * 8)[b].encode()[0] if b < _ACCEPTED else 0 for b in range(256))
_REJECTED = bytes(range(_ACCEPTED, 256))
_DRAW = 20  # bytes per read: fewer than 13 survive about once in 10⁹ draws, and then it reads again


def new_id() -> str:
    """Return a fresh random id of 13 lowercase alphanumerics (one read of the OS random source)."""
    while True:
        chars = os.urandom(_DRAW).translate(_TO_ALPHABET, _REJECTED)
        if len(chars) >= LENGTH:
            return chars[:LENGTH].decode("ascii")


def is_valid_given_id(value: object) -> bool:
    """True when ``value`` can serve as a client-chosen id."""
    return isinstance(value, str) and GIVEN_ID.match(value) is not None
