"""Verify webhooks on the receiving side (SPEC §5.3) — firehook's and Upsun's alike.

    from firehook import receiver

    try:
        receiver.verify(raw_body, request.headers["X-JWS-Signature"], SHARED_KEY)
    except receiver.SignatureError as exc:
        return 401, str(exc)

Always verify the **raw body bytes** exactly as received. Parsing the JSON and serialising it
again changes the bytes (spacing, key order, escapes) and the signature will not match.
Framework helpers: ``firehook.contrib.starlette`` (also FastAPI), ``firehook.contrib.flask``,
``firehook.contrib.django``. See docs/receiving.md.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

from firehook import signing

__all__ = [
    "SIGNATURE_HEADER",
    "SignatureError",
    "verify",
    "verify_standard_webhook",
    "webhook_verify_main",
]

#: The header that carries the signature (firehook and Upsun).
SIGNATURE_HEADER = "X-JWS-Signature"
#: Standard Webhooks' recommended tolerance for ``webhook-timestamp``, seconds.
DEFAULT_TOLERANCE = 300


class SignatureError(signing.InvalidSignature):
    """The request is not signed with the expected key; ``str(exc)`` says why."""


def verify(body: bytes, signature: str | None, key: str | Sequence[str]) -> None:
    """Check the ``X-JWS-Signature`` value ``signature`` against the raw ``body``.

    ``key`` is the shared key, or several (newest first) while rotating keys; a header with
    several signatures verifies when any of them matches any key. Constant-time. Raises
    :class:`SignatureError` when it does not verify, and ValueError when no key is given.
    """
    if signature is None:
        raise SignatureError(f"missing signature: no {SIGNATURE_HEADER} header")
    try:
        signing.verify_detached(body, signature, key)
    except signing.InvalidSignature as exc:
        raise SignatureError(exc.message) from None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    # Framework header objects are case-insensitive; plain dicts are not.
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        for candidate, found in headers.items():
            if candidate.lower() == lowered:
                return found
    return value


def verify_standard_webhook(
    body: bytes,
    headers: Mapping[str, str],
    secret: str | Sequence[str],
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> None:
    """Check Standard Webhooks headers (``webhook-id``, ``-timestamp``, ``-signature``).

    ``secret`` is a ``whsec_…`` secret (base64 key) or any other string (its UTF-8 bytes),
    the same rule firehook signs with. The timestamp must be within ``tolerance`` seconds of
    ``now``, which stops replays of old requests. Raises :class:`SignatureError`.
    """
    msg_id = _header(headers, "webhook-id")
    timestamp = _header(headers, "webhook-timestamp")
    signature = _header(headers, "webhook-signature")
    try:
        moment = signing.verify_standard_webhooks(
            msg_id or "", timestamp or "", body, signature or "", secret
        )
    except signing.InvalidSignature as exc:
        raise SignatureError(exc.message) from None
    current = time.time() if now is None else now
    if abs(current - moment) > tolerance:
        raise SignatureError(
            f"stale webhook-timestamp: {moment} is {abs(current - moment):.0f} s away from now "
            f"(tolerance {tolerance:g} s)"
        )


def _diagnose(body: bytes, signature: str, key: str) -> str | None:
    """A likelier cause for a mismatch in a saved body file: a trailing newline added."""
    stripped = body.rstrip(b"\r\n")
    if stripped != body:
        try:
            signing.verify_detached(stripped, signature, key)
        except (signing.InvalidSignature, ValueError):
            return None
        return (
            "the signature matches the body without its final newline: the file has a "
            "newline the request did not have (save the body with printf or the raw bytes)"
        )
    return None


def webhook_verify_main(
    key: str,
    signature: str,
    body_path: str,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """``firehook webhook:verify --key K --signature S BODY_FILE``: 0 when it verifies, else 1.

    Prints ``Signature verified.`` on ``out``, or the reason on ``err``. ``BODY_FILE`` ``-``
    reads standard input.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        body = sys.stdin.buffer.read() if body_path == "-" else Path(body_path).read_bytes()
    except OSError as exc:
        print(f"Cannot read the body file {body_path}: {exc.strerror or exc}", file=err)
        return 1
    try:
        verify(body, signature, key)
    except SignatureError as exc:
        print(f"Signature does not verify: {exc}", file=err)
        hint = _diagnose(body, signature, key)
        if hint:
            print(f"Hint: {hint}.", file=err)
        return 1
    except (ValueError, TypeError) as exc:
        print(f"Cannot verify: {exc}", file=err)
        return 1
    print("Signature verified.", file=out)
    return 0
