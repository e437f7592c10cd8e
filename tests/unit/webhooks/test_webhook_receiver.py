"""The receiver library (SPEC §5.3), cross-checked against jwcrypto, an independent JOSE."""

from __future__ import annotations

import base64
import json

import pytest
from jwcrypto import jwk, jws
from jwcrypto.common import base64url_encode

from firehook import receiver, signing

# jwcrypto insists on HS256 keys of at least 256 bits.
KEY = "4f1a2b3c-shared-key-long-enough-for-jwcrypto"
BODY = json.dumps(
    {"id": "a1kz6ffxui7em", "type": "environment.push", "text": "Cloé Weber pushed to Main"},
    ensure_ascii=False,
).encode()
VECTOR_BODY = b'{"id":"a1kz6ffxui7em","type":"environment.push"}'
VECTOR_SIGNATURE = (
    "eyJhbGciOiJIUzI1NiIsImI2NCI6ZmFsc2UsImNyaXQiOlsiYjY0Il19"
    "..fMecJGDXl2UnXzve9C6qIb_66xthvEOchvfbgNW4qYI"
)


def jwcrypto_key(key: str) -> jwk.JWK:
    return jwk.JWK(kty="oct", k=base64url_encode(key.encode()))


def jwcrypto_sign(body: bytes, key: str, header: dict[str, object] | None = None) -> str:
    token = jws.JWS(body)
    token.add_signature(
        jwcrypto_key(key),
        None,
        json.dumps(header or {"alg": "HS256", "b64": False, "crit": ["b64"]}),
    )
    token.detach_payload()
    return str(token.serialize(compact=True))


def test_public_surface_is_pinned() -> None:
    assert sorted(receiver.__all__) == [
        "SIGNATURE_HEADER",
        "SignatureError",
        "verify",
        "verify_standard_webhook",
        "webhook_verify_main",
    ]
    assert issubclass(receiver.SignatureError, signing.InvalidSignature)


def test_spec_vector_verifies() -> None:
    receiver.verify(VECTOR_BODY, VECTOR_SIGNATURE, "my-shared-key")


def test_jwcrypto_verifies_our_signatures() -> None:
    value = signing.sign_detached(BODY, KEY)
    token = jws.JWS()
    token.deserialize(value)
    token.verify(jwcrypto_key(KEY), detached_payload=BODY)
    assert token.jose_header == {"alg": "HS256", "b64": False, "crit": ["b64"]}
    with pytest.raises(jws.InvalidJWSSignature):
        other = jws.JWS()
        other.deserialize(value)
        other.verify(jwcrypto_key(KEY), detached_payload=BODY + b" ")


def test_jwcrypto_verifies_each_signature_of_a_rotation_header() -> None:
    value = signing.signature_header(BODY, [KEY, KEY[::-1]])
    for part, key in zip(value.split(" "), [KEY, KEY[::-1]], strict=False):
        token = jws.JWS()
        token.deserialize(part)
        token.verify(jwcrypto_key(key), detached_payload=BODY)


def test_signatures_made_by_jwcrypto_verify() -> None:
    value = jwcrypto_sign(BODY, KEY)
    receiver.verify(BODY, value, KEY)
    receiver.verify(BODY, value, ["another-key-that-is-long-enough-too!!", KEY])
    # jwcrypto, given the compact header, produces our exact bytes.
    compact = {"alg": "HS256", "b64": False, "crit": ["b64"]}
    token = jws.JWS(BODY)
    token.add_signature(jwcrypto_key(KEY), None, json.dumps(compact, separators=(",", ":")))
    token.detach_payload()
    assert token.serialize(compact=True) == signing.sign_detached(BODY, KEY)


def one_byte_changed(body: bytes) -> bytes:
    return body[:10] + bytes([body[10] ^ 0x01]) + body[11:]


@pytest.mark.parametrize(
    ("body", "signature", "key", "reason"),
    [
        (one_byte_changed(BODY), "ours", KEY, "mismatch"),
        (json.dumps(json.loads(BODY)).encode(), "ours", KEY, "re-serialised"),
        (json.dumps(json.loads(BODY), separators=(",", ":")).encode(), "ours", KEY, "mismatch"),
        (BODY, "ours", "the-wrong-key-but-long-enough-anyway!!", "mismatch"),
        (BODY, "truncated", KEY, "truncated"),
        (BODY, "payload-inserted", KEY, "payload not detached"),
        (BODY, "wrong-alg", KEY, "wrong algorithm 'HS384'"),
        (BODY, "encoded-payload", KEY, "unencoded payload"),
        (BODY, None, KEY, "missing"),
        (BODY, "", KEY, "missing"),
    ],
)
def test_refused(body: bytes, signature: str | None, key: str, reason: str) -> None:
    good = signing.sign_detached(BODY, KEY)
    forms = {
        "ours": good,
        "truncated": good[: len(good) - 5],
        "payload-inserted": good.replace("..", "." + base64url_encode(BODY) + "."),
        "wrong-alg": jwcrypto_sign(
            BODY, KEY + KEY, {"alg": "HS384", "b64": False, "crit": ["b64"]}
        ),
        "encoded-payload": jwcrypto_sign(BODY, KEY, {"alg": "HS256"}),
    }
    value = forms.get(signature, signature) if signature else signature
    with pytest.raises(receiver.SignatureError, match=reason):
        receiver.verify(body, value, key)


def test_verify_standard_webhook() -> None:
    body = b'{"test": 2432232314}'
    headers = {
        "Webhook-Id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "Webhook-Timestamp": "1614265330",
        "Webhook-Signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    receiver.verify_standard_webhook(body, headers, secret, now=1614265330 + 10)
    with pytest.raises(receiver.SignatureError, match="stale"):
        receiver.verify_standard_webhook(body, headers, secret, now=1614265330 + 3600)
    with pytest.raises(receiver.SignatureError, match="mismatch"):
        receiver.verify_standard_webhook(body + b" ", headers, secret, now=1614265330)
    with pytest.raises(receiver.SignatureError, match="required"):
        receiver.verify_standard_webhook(body, {}, secret, now=1614265330)


def test_standard_webhook_headers_we_send_verify() -> None:
    headers = signing.standard_webhooks_headers("run1", 1700000000, BODY, [KEY, "older"])
    receiver.verify_standard_webhook(BODY, headers, "older", now=1700000000)


def test_header_segment_decodes_to_the_spec_header() -> None:
    assert base64.urlsafe_b64decode(VECTOR_SIGNATURE.split("..")[0] + "==") == (
        b'{"alg":"HS256","b64":false,"crit":["b64"]}'
    )
