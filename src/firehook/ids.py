"""Identifiers: 13 random characters from ``[a-z0-9]``, like Upsun's."""

from __future__ import annotations

import re
import secrets

ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
LENGTH = 13
# Ids given by clients (activity ids, project ids chosen at creation) may be longer or use
# capitals, dots, dashes and underscores, but nothing that would need escaping in a URL.
GIVEN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def new_id() -> str:
    """Return a fresh random id of 13 lowercase alphanumerics."""
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def is_valid_given_id(value: object) -> bool:
    """True when ``value`` can serve as a client-chosen id."""
    return isinstance(value, str) and GIVEN_ID.match(value) is not None
