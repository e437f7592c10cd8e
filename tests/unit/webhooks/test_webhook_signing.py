"""Signing (SPEC §5.2): the test vector, a hand computation, rotation, Standard Webhooks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc import jws
from joserfc.jwk import OctKey

from firehook import errors, signing

VECTOR_KEY = "my-shared-key"
VECTOR_BODY = b'{"id":"a1kz6ffxui7em","type":"environment.push"}'
VECTOR_SIGNATURE = (
    "eyJhbGciOiJIUzI1NiIsImI2NCI6ZmFsc2UsImNyaXQiOlsiYjY0Il19"
    "..fMecJGDXl2UnXzve9C6qIb_66xthvEOchvfbgNW4qYI"
)


def hand_sign(body: bytes, key: str) -> str:
    """RFC 7797 detached by hand, straight from SPEC §5.2."""
    header = b'{"alg":"HS256","b64":false,"crit":["b64"]}'
    header_b64 = base64.urlsafe_b64encode(header).rstrip(b"=")
    mac = hmac.new(key.encode("utf-8"), header_b64 + b"." + body, hashlib.sha256).digest()
    return header_b64.decode() + ".." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def test_spec_test_vector() -> None:
    assert signing.sign_detached(VECTOR_BODY, VECTOR_KEY) == VECTOR_SIGNATURE
    signing.verify_detached(VECTOR_BODY, VECTOR_SIGNATURE, VECTOR_KEY)


def test_header_segment_is_the_exact_header_bytes() -> None:
    decoded = base64.urlsafe_b64decode(signing.HEADER_SEGMENT + "==")
    assert decoded == b'{"alg":"HS256","b64":false,"crit":["b64"]}'


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"abc",  # URL-safe characters only: joserfc would keep such a payload inline
        b'{"a": "\xc3\xa9t\xc3\xa9", "b": [1, 2]}\n',
        bytes(range(256)),
        b"x" * 100_000,
    ],
)
@pytest.mark.parametrize("key", ["k", "une clé ünïcode", "s" * 200])
def test_matches_hand_computation(body: bytes, key: str) -> None:
    value = signing.sign_detached(body, key)
    assert value == hand_sign(body, key)
    signing.verify_detached(body, value, key)


def test_joserfc_itself_verifies_our_signature() -> None:
    key = "0123456789abcdef0123456789abcdef"
    value = signing.sign_detached(VECTOR_BODY, key)
    result = jws.deserialize_compact(
        value, OctKey.import_key(key.encode()), algorithms=["HS256"], payload=VECTOR_BODY
    )
    assert result.payload == VECTOR_BODY


@pytest.mark.parametrize("body", [VECTOR_BODY, b'{"a": [1, 2, {"b": "\xc3\xa9"}]}'])
def test_joserfc_signs_json_bodies_identically(body: bytes) -> None:
    # joserfc cannot sign every body (see signing's docstring) but where it can, it agrees.
    with pytest.warns(Warning):  # joserfc warns about keys under 112 bits
        key = OctKey.import_key(VECTOR_KEY.encode())
    expected = jws.serialize_compact(signing.PROTECTED_HEADER, body, key, algorithms=["HS256"])
    assert signing.sign_detached(body, VECTOR_KEY) == expected


def test_rotation_header_has_one_signature_per_key_newest_first() -> None:
    value = signing.signature_header(VECTOR_BODY, ["new-key", "old-key"])
    first, second = value.split(" ")
    assert first == hand_sign(VECTOR_BODY, "new-key")
    assert second == hand_sign(VECTOR_BODY, "old-key")
    # A receiver that knows either key accepts it.
    signing.verify_detached(VECTOR_BODY, value, "new-key")
    signing.verify_detached(VECTOR_BODY, value, "old-key")
    signing.verify_detached(VECTOR_BODY, value, ["unrelated", "old-key"])
    with pytest.raises(signing.InvalidSignature, match="mismatch"):
        signing.verify_detached(VECTOR_BODY, value, "third-key")


def test_single_key_header_is_one_signature() -> None:
    assert signing.signature_header(VECTOR_BODY, ["my-shared-key"]) == VECTOR_SIGNATURE
    with pytest.raises(ValueError):
        signing.signature_header(VECTOR_BODY, [])


def test_invalid_signature_is_a_firehook_error_answered_401() -> None:
    assert issubclass(signing.InvalidSignature, errors.FirehookError)
    assert signing.InvalidSignature.status == 401


def test_empty_key_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="empty"):
        signing.sign_detached(VECTOR_BODY, "")
    with pytest.raises(ValueError):
        signing.verify_detached(VECTOR_BODY, VECTOR_SIGNATURE, [])


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def with_header(header: dict[str, object], body: bytes = VECTOR_BODY, key: str = VECTOR_KEY) -> str:
    head = b64url(json.dumps(header).encode())
    mac = hmac.new(key.encode(), head.encode() + b"." + body, hashlib.sha256).digest()
    return f"{head}..{b64url(mac)}"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "missing"),
        ("   ", "missing"),
        ("not-a-jws", "three parts"),
        (VECTOR_SIGNATURE[:40], "three parts"),  # truncated inside the header
        (VECTOR_SIGNATURE[:-10], "base64url \\(truncated"),  # truncated signature
        (VECTOR_SIGNATURE[:-11], "32 bytes"),  # truncated on a base64 boundary
        (VECTOR_SIGNATURE.split("..")[0] + "..", "signature part is empty"),
        (
            VECTOR_SIGNATURE.replace("..", "." + b64url(VECTOR_BODY) + "."),
            "payload not detached",
        ),
        (VECTOR_SIGNATURE.replace("..", "." + VECTOR_BODY.decode() + "."), "three parts"),
        ("!!!!.." + VECTOR_SIGNATURE.split("..")[1], "base64url"),
        (with_header({"alg": "HS512", "b64": False, "crit": ["b64"]}), "wrong algorithm 'HS512'"),
        (with_header({"alg": "none", "b64": False, "crit": ["b64"]}), "wrong algorithm 'none'"),
        (with_header({"alg": "HS256"}), "unencoded payload"),
        (with_header({"alg": "HS256", "b64": True, "crit": ["b64"]}), "unencoded payload"),
        (with_header({"alg": "HS256", "b64": False}), "unencoded payload"),
        (with_header({"alg": "HS256", "b64": False, "crit": ["b64", "exp"]}), "critical"),
        (b64url(b"[1]") + ".." + VECTOR_SIGNATURE.split("..")[1], "not a JSON object"),
    ],
)
def test_refusals_say_why(value: str, reason: str) -> None:
    with pytest.raises(signing.InvalidSignature, match=reason):
        signing.verify_detached(VECTOR_BODY, value, VECTOR_KEY)


def test_a_correct_mac_under_another_header_form_still_verifies() -> None:
    # jwcrypto and others serialise the same header with spaces: the HMAC covers the header
    # segment as sent, so such signatures are valid RFC 7797 and verify.
    spaced = with_header({"alg": "HS256", "b64": False, "crit": ["b64"]})
    assert spaced.split("..")[0] != signing.HEADER_SEGMENT
    signing.verify_detached(VECTOR_BODY, spaced, VECTOR_KEY)


def test_mismatch_messages() -> None:
    with pytest.raises(signing.InvalidSignature, match="the key"):
        signing.verify_detached(VECTOR_BODY + b" ", VECTOR_SIGNATURE, VECTOR_KEY)
    with pytest.raises(signing.InvalidSignature, match="any of the keys"):
        signing.verify_detached(VECTOR_BODY, VECTOR_SIGNATURE, ["a", "b"])


def test_one_good_signature_among_malformed_ones_is_enough() -> None:
    signing.verify_detached(VECTOR_BODY, "garbage " + VECTOR_SIGNATURE, VECTOR_KEY)


def test_body_must_be_bytes() -> None:
    with pytest.raises(TypeError, match="raw request body"):
        signing.verify_detached(VECTOR_BODY.decode(), VECTOR_SIGNATURE, VECTOR_KEY)  # type: ignore[arg-type]


# -- Standard Webhooks ---------------------------------------------------------------------

# The example of the Standard Webhooks reference libraries' test suites.
SW_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SW_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SW_TIMESTAMP = 1614265330
SW_BODY = b'{"test": 2432232314}'
SW_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_standard_webhooks_known_value() -> None:
    headers = signing.standard_webhooks_headers(SW_ID, SW_TIMESTAMP, SW_BODY, SW_SECRET)
    assert headers == {
        "webhook-id": SW_ID,
        "webhook-timestamp": "1614265330",
        "webhook-signature": SW_SIGNATURE,
    }
    signing.verify_standard_webhooks(SW_ID, "1614265330", SW_BODY, SW_SIGNATURE, SW_SECRET)


def test_standard_webhooks_key_rules() -> None:
    assert signing.standard_webhooks_key(SW_SECRET) == base64.b64decode(SW_SECRET[6:])
    assert signing.standard_webhooks_key("plain-key") == b"plain-key"
    mac = hmac.new(b"plain-key", b"id.5.body", hashlib.sha256).digest()
    assert signing.standard_webhooks_signature("id", 5, b"body", "plain-key") == (
        "v1," + base64.b64encode(mac).decode()
    )
    with pytest.raises(ValueError, match="base64"):
        signing.standard_webhooks_key("whsec_not base64!")


def test_standard_webhooks_rotation_and_refusals() -> None:
    value = signing.standard_webhooks_headers("id", 7, b"b", ["new", "old"])["webhook-signature"]
    assert len(value.split(" ")) == 2
    signing.verify_standard_webhooks("id", 7, b"b", value, "old")
    with pytest.raises(signing.InvalidSignature, match="mismatch"):
        signing.verify_standard_webhooks("id", 7, b"b!", value, "old")
    with pytest.raises(signing.InvalidSignature, match="v1"):
        signing.verify_standard_webhooks("id", 7, b"b", "v2,abc", "old")
    with pytest.raises(signing.InvalidSignature, match="timestamp"):
        signing.verify_standard_webhooks("id", "soon", b"b", value, "old")
    with pytest.raises(signing.InvalidSignature, match="required"):
        signing.verify_standard_webhooks("", 7, b"b", value, "old")


@settings(max_examples=200, deadline=None)
@given(
    body=st.binary(max_size=2048),
    key=st.text(min_size=1, max_size=64),
    flip=st.integers(min_value=0),
)
def test_property_round_trip_and_any_change_is_refused(body: bytes, key: str, flip: int) -> None:
    value = signing.sign_detached(body, key)
    assert value == hand_sign(body, key)
    signing.verify_detached(body, value, key)
    if body:
        index = flip % len(body)
        changed = body[:index] + bytes([body[index] ^ 0x01]) + body[index + 1 :]
        with pytest.raises(signing.InvalidSignature, match="mismatch"):
            signing.verify_detached(changed, value, key)
