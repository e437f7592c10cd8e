"""Webhook signatures (SPEC §5.2): JWS detached with an unencoded payload, and Standard Webhooks.

The ``X-JWS-Signature`` header is a JWS in compact serialisation (RFC 7515), HS256, with the
payload detached and unencoded (RFC 7797), byte for byte what Upsun sends::

    BASE64URL({"alg":"HS256","b64":false,"crit":["b64"]}) + ".." + BASE64URL(HMAC)

where the HMAC-SHA256 is taken, with the shared key's UTF-8 bytes, over
``BASE64URL(header) + "." + <raw body bytes>``.

Signing computes the HMAC by hand (HS256 is one HMAC-SHA256): joserfc 1.8 serialises this
header to exactly the bytes above, but it decodes the payload as UTF-8 to decide whether to
detach it and so fails on a body that is not UTF-8, and it would keep a payload made only of
URL-safe characters inline. Verification parses the header by hand first, so that each way of
being wrong gets a message a user understands, then lets joserfc recompute the HMAC and
compare it in constant time — an independent check of the signer on every verification. The
test suite cross-checks both against the SPEC vector, a hand computation and jwcrypto.

Standard Webhooks (https://www.standardwebhooks.com/) is computed by hand: it is a plain
HMAC-SHA256 over ``id.timestamp.body``, not a JWS.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import warnings
from collections.abc import Sequence

from joserfc import errors as jose_errors
from joserfc import jws
from joserfc.jwk import OctKey

from firehook import errors

__all__ = [
    "HEADER_SEGMENT",
    "PROTECTED_HEADER",
    "InvalidSignature",
    "sign_detached",
    "signature_header",
    "standard_webhooks_headers",
    "standard_webhooks_key",
    "standard_webhooks_signature",
    "verify_detached",
    "verify_standard_webhooks",
]

#: The protected header, as a mapping; its exact serialised bytes are HEADER_SEGMENT.
PROTECTED_HEADER = {"alg": "HS256", "b64": False, "crit": ["b64"]}
#: ``BASE64URL('{"alg":"HS256","b64":false,"crit":["b64"]}')`` — the first part of every header.
HEADER_SEGMENT = "eyJhbGciOiJIUzI1NiIsImI2NCI6ZmFsc2UsImNyaXQiOlsiYjY0Il19"

_ALGORITHMS = ["HS256"]
# Headers that can reasonably be large (a rotation window holds two) but a header of megabytes
# is an attack, not a signature.
_MAX_HEADER_CHARS = 8192


class InvalidSignature(errors.Unauthorized):
    """A signature did not verify; the message says why (malformed, wrong header, mismatch)."""


def _check_key(key: str) -> None:
    """Raise TypeError unless ``key`` is a str, ValueError when it is empty."""
    if not isinstance(key, str):
        raise TypeError(f"a shared key is a str, not {type(key).__name__}")
    if not key:
        raise ValueError("the shared key is empty")


def _listed(keys: str | Sequence[str], verb: str) -> list[str]:
    """``keys`` as a list (one key is a list of one); ValueError when there is none.

    ``verb`` ("sign" or "verify") completes the message.
    """
    listed = [keys] if isinstance(keys, str) else list(keys)
    if not listed:
        raise ValueError(f"no shared key given to {verb} with")
    return listed


@functools.lru_cache(maxsize=4096)
def _oct_key(key: str) -> OctKey:
    """The joserfc key for a shared key, imported once.

    Shared keys are chosen by users and Upsun accepts short ones, so joserfc's warning about
    keys under 112 bits is silenced here (it would be logged on every delivery otherwise).
    """
    _check_key(key)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jose_errors.SecurityWarning)
        return OctKey.import_key(key.encode("utf-8"))


def _key_list(keys: str | Sequence[str]) -> list[str]:
    listed = _listed(keys, "verify")
    for key in listed:
        _oct_key(key)  # validates: a str, not empty
    return listed


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    """Strict base64url without padding (RFC 7515 §2): other alphabets or padding are refused."""
    if not text or any(c not in _B64URL_ALPHABET for c in text) or len(text) % 4 == 1:
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_B64URL_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@functools.lru_cache(maxsize=4096)
def _mac_after_header(key: str) -> hmac.HMAC:
    """An HMAC for ``key`` that has already absorbed ``HEADER_SEGMENT + "."`` (copied per body)."""
    _check_key(key)
    return hmac.new(key.encode("utf-8"), _SIGNING_PREFIX, hashlib.sha256)


_SIGNING_PREFIX = HEADER_SEGMENT.encode("ascii") + b"."


def sign_detached(body: bytes, key: str) -> str:
    """The ``X-JWS-Signature`` value for ``body`` signed with one shared ``key``.

    ``header..signature``: RFC 7797 detached, unencoded payload, HS256, the key's UTF-8 bytes
    as the HMAC key.
    """
    mac = _mac_after_header(key).copy()
    mac.update(body)
    return f"{HEADER_SEGMENT}..{_b64url(mac.digest())}"


def signature_header(body: bytes, keys: Sequence[str]) -> str:
    """One signature per key, newest key first, separated by a space (key rotation)."""
    return " ".join(sign_detached(body, key) for key in _listed(keys, "sign"))


def _check_structure(token: str) -> None:
    """Raise InvalidSignature with the reason when ``token`` is not one of our JWS."""
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidSignature(
            f"malformed signature: expected three parts separated by dots "
            f"(header..signature), got {len(parts)}"
        )
    header_b64, payload_b64, signature_b64 = parts
    if payload_b64:
        raise InvalidSignature(
            "payload not detached: the signature carries a payload between the dots; "
            "it must be empty (header..signature) and the body checked is the request body"
        )
    if not header_b64:
        raise InvalidSignature("malformed signature: the protected header is empty")
    if not signature_b64:
        raise InvalidSignature("malformed signature: the signature part is empty (truncated?)")
    try:
        header = json.loads(_b64url_decode(header_b64))
    except (ValueError, UnicodeDecodeError):
        raise InvalidSignature(
            "malformed signature: the protected header is not base64url-encoded JSON"
        ) from None
    if not isinstance(header, dict):
        raise InvalidSignature("malformed signature: the protected header is not a JSON object")
    alg = header.get("alg")
    if alg != "HS256":
        raise InvalidSignature(f"wrong algorithm {alg!r} in the protected header: expected 'HS256'")
    crit = header.get("crit")
    if header.get("b64") is not False or not isinstance(crit, list) or "b64" not in crit:
        raise InvalidSignature(
            "wrong protected header: expected an unencoded payload "
            '({"alg":"HS256","b64":false,"crit":["b64"]})'
        )
    unknown = [name for name in crit if name != "b64"]
    if unknown:
        raise InvalidSignature(f"wrong protected header: unsupported critical parameters {unknown}")
    try:
        raw_signature = _b64url_decode(signature_b64)
    except ValueError:
        raise InvalidSignature(
            "malformed signature: the signature part is not valid base64url (truncated?)"
        ) from None
    if len(raw_signature) != hashlib.sha256().digest_size:
        raise InvalidSignature(
            f"malformed signature: an HS256 signature is 32 bytes, this one is "
            f"{len(raw_signature)} (truncated?)"
        )


def verify_detached(body: bytes, header_value: str, keys: str | Sequence[str]) -> None:
    """Check an ``X-JWS-Signature`` value against the raw ``body`` and the shared key(s).

    ``header_value`` may hold several space-separated signatures (key rotation); one of them
    verifying with one of ``keys`` is enough. The comparison is constant-time. Raises
    :class:`InvalidSignature` with the reason when nothing verifies, and ValueError when no
    usable key is given (a configuration error, not a bad signature).
    """
    key_list = _key_list(keys)
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise TypeError(
            "verify the raw request body as bytes; a re-serialised JSON document will not match"
        )
    body = bytes(body)
    if header_value is None or not str(header_value).strip():
        raise InvalidSignature("missing signature: the X-JWS-Signature header is empty or absent")
    if len(header_value) > _MAX_HEADER_CHARS:
        raise InvalidSignature("malformed signature: the header is too long")
    tokens = header_value.split()
    first_problem: InvalidSignature | None = None
    well_formed: list[str] = []
    for token in tokens:
        try:
            _check_structure(token)
        except InvalidSignature as exc:
            first_problem = first_problem or exc
            continue
        well_formed.append(token)
    if not well_formed:
        assert first_problem is not None
        raise first_problem
    for token in well_formed:
        for key in key_list:
            try:
                jws.deserialize_compact(token, _oct_key(key), algorithms=_ALGORITHMS, payload=body)
            except jose_errors.BadSignatureError:
                continue
            except jose_errors.JoseError as exc:  # structure was checked; keep the reason anyway
                raise InvalidSignature(f"malformed signature: {exc.description or exc}") from None
            return
    which = "any of the keys" if len(key_list) > 1 else "the key"
    raise InvalidSignature(
        f"signature mismatch: the signature does not match this body with {which}; check the "
        "shared key, and verify the raw request body exactly as received (re-serialised JSON "
        "does not match)"
    )


# -- Standard Webhooks ----------------------------------------------------------------------


def standard_webhooks_key(secret: str) -> bytes:
    """The HMAC key for a Standard Webhooks ``secret``.

    A secret written ``whsec_<base64>`` (the form Standard Webhooks libraries generate) is the
    base64-decoded rest, so receivers using those libraries verify with the same string; any
    other secret (e.g. an Upsun-style shared key reused for both headers) is its UTF-8 bytes.
    """
    if not secret:
        raise ValueError("the shared key is empty")
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret[len("whsec_") :], validate=True)
        except binascii.Error:
            raise ValueError("a whsec_ secret must be followed by base64") from None
    return secret.encode("utf-8")


def standard_webhooks_signature(msg_id: str, timestamp: int, body: bytes, secret: str) -> str:
    """``v1,<base64 HMAC-SHA256 of "id.timestamp.body">`` for one secret."""
    mac = hmac.new(
        standard_webhooks_key(secret), f"{msg_id}.{int(timestamp)}.".encode(), hashlib.sha256
    )
    mac.update(body)
    return "v1," + base64.b64encode(mac.digest()).decode("ascii")


def standard_webhooks_headers(
    msg_id: str, timestamp: int, body: bytes, secret: str | Sequence[str]
) -> dict[str, str]:
    """The ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` headers.

    ``secret`` may be several keys (rotation, newest first): the signature header then lists
    one ``v1,…`` per key, space-separated, as the specification allows.
    """
    secrets = _listed(secret, "sign")
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp)),
        "webhook-signature": " ".join(
            standard_webhooks_signature(msg_id, timestamp, body, s) for s in secrets
        ),
    }


def verify_standard_webhooks(
    msg_id: str, timestamp: str | int, body: bytes, signature: str, secrets: str | Sequence[str]
) -> int:
    """Check a ``webhook-signature`` value (one or more ``v1,…``) in constant time.

    Only the signature: the timestamp's freshness is the caller's policy (see
    ``firehook.receiver.verify_standard_webhook``). Returns the timestamp as Unix seconds.
    Raises InvalidSignature.
    """
    secret_list = _listed(secrets, "verify")
    if not msg_id or timestamp in (None, "") or not signature:
        raise InvalidSignature(
            "missing Standard Webhooks header: webhook-id, webhook-timestamp and "
            "webhook-signature are all required"
        )
    try:
        ts = int(str(timestamp).strip())
    except ValueError:
        raise InvalidSignature(
            f"malformed webhook-timestamp {timestamp!r}: expected Unix seconds"
        ) from None
    offered: list[bytes] = []
    for item in signature.split():
        version, _, value = item.partition(",")
        if version == "v1" and value:
            offered.append(value.encode("ascii", "replace"))
    if not offered:
        raise InvalidSignature("malformed webhook-signature: no 'v1,<base64>' signature in it")
    for secret in secret_list:
        expected = standard_webhooks_signature(msg_id, ts, body, secret)[3:].encode("ascii")
        for candidate in offered:
            if hmac.compare_digest(candidate, expected):
                return ts
    raise InvalidSignature(
        "signature mismatch: webhook-signature does not match this id, timestamp and body; check "
        "the secret, and verify the raw request body exactly as received"
    )
