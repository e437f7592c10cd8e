"""The host side of the script's ``crypto`` global: HMAC and hashes (SPEC §4.2).

Byte strings cross from JavaScript as ``[encoding, text]`` pairs: ``"utf8"`` for ordinary
strings (Node's default), ``"latin1"`` for the binary strings a previous ``digest()`` returned
(each character one byte), so that AWS SigV4 key derivation chains digest into key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence

ALGORITHMS = ("sha256", "sha1", "md5", "sha512", "sha384", "sha224")


class CryptoError(Exception):
    """Bad input to ``crypto``; the script sees an ``Error`` with this message."""


def to_bytes(part: object) -> bytes:
    """Decode one ``[encoding, text]`` pair from the prelude."""
    if not isinstance(part, Sequence) or isinstance(part, str) or len(part) != 2:
        raise CryptoError("invalid data")
    encoding, text = part
    if not isinstance(text, str):
        raise CryptoError("invalid data")
    if encoding == "latin1":
        try:
            return text.encode("latin-1")
        except UnicodeEncodeError:
            raise CryptoError("invalid binary string") from None
    if encoding == "utf8":
        return text.encode("utf-8", "surrogatepass")
    raise CryptoError("invalid data encoding")


def _algorithm(name: object) -> str:
    alg = str(name).lower().replace("-", "")
    if alg not in ALGORITHMS:
        raise CryptoError(f"Digest method not supported: {name}")
    return alg


def encode_digest(raw: bytes, fmt: object) -> str:
    """Render a digest as ``hex``, ``base64``, or a binary string (empty or absent format)."""
    if fmt == "hex":
        return raw.hex()
    if fmt == "base64":
        return base64.b64encode(raw).decode("ascii")
    if fmt == "base64url":
        return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")
    if fmt in (None, "", "binary", "latin1"):
        return raw.decode("latin-1")
    raise CryptoError(f"unknown digest encoding: {fmt}")


def hmac_digest(alg: object, key: object, parts: Sequence[object], fmt: object) -> str:
    """HMAC of the concatenated ``parts`` under ``key``, rendered per ``fmt``."""
    mac = hmac.new(to_bytes(key), digestmod=_algorithm(alg))
    for part in parts:
        mac.update(to_bytes(part))
    return encode_digest(mac.digest(), fmt)


def hash_digest(alg: object, parts: Sequence[object], fmt: object) -> str:
    """Plain hash of the concatenated ``parts``, rendered per ``fmt``."""
    digest = hashlib.new(_algorithm(alg))
    for part in parts:
        digest.update(to_bytes(part))
    return encode_digest(digest.digest(), fmt)
