"""Signing (SPEC §5.2) as properties: round trips, and any single-byte change fails."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from firehook import signing

PROPS = settings(max_examples=120, deadline=None)
bodies = st.binary(max_size=2048)
keys = st.text(min_size=1, max_size=64)


@PROPS
@given(bodies, keys)
def test_sign_then_verify_round_trips(body: bytes, key: str) -> None:
    header = signing.sign_detached(body, key)
    assert header.startswith(signing.HEADER_SEGMENT + "..")
    signing.verify_detached(body, header, key)
    signing.verify_detached(bytearray(body), header, [key])


@PROPS
@given(bodies, keys, st.data())
def test_any_single_byte_change_of_the_body_fails(body: bytes, key: str, data: st.DataObject) -> None:
    header = signing.sign_detached(body, key)
    if body:
        index = data.draw(st.integers(0, len(body) - 1))
        delta = data.draw(st.integers(1, 255))
        changed = body[:index] + bytes([(body[index] + delta) % 256]) + body[index + 1:]
    else:
        changed = data.draw(st.binary(min_size=1, max_size=1))
    with pytest.raises(signing.InvalidSignature):
        signing.verify_detached(changed, header, key)


@PROPS
@given(bodies, keys, st.binary(min_size=1, max_size=8), st.booleans())
def test_appending_or_truncating_fails(body: bytes, key: str, extra: bytes, append: bool) -> None:
    header = signing.sign_detached(body, key)
    changed = body + extra if append or not body else body[:-1]
    with pytest.raises(signing.InvalidSignature):
        signing.verify_detached(changed, header, key)


@PROPS
@given(bodies, keys, keys)
def test_another_key_fails(body: bytes, key: str, other: str) -> None:
    assume(key != other)
    with pytest.raises(signing.InvalidSignature):
        signing.verify_detached(body, signing.sign_detached(body, key), other)


@PROPS
@given(bodies, keys, st.data())
def test_any_single_character_change_of_the_signature_fails(body: bytes, key: str, data: st.DataObject) -> None:
    header = signing.sign_detached(body, key)
    index = data.draw(st.integers(0, len(header) - 1))
    replacement = data.draw(st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.= "))
    assume(replacement != header[index])
    changed = header[:index] + replacement + header[index + 1:]
    # Base64url's last character carries unused low bits: a change there may decode to the same
    # bytes (a non-canonical encoding). Those headers are the same signature; all others fail.
    try:
        signing.verify_detached(body, changed, key)
    except signing.InvalidSignature:
        return
    sig_old = header.split("..")[1]
    sig_new = changed.split("..")[1] if changed.count("..") == 1 else None
    assert sig_new is not None and index == len(header) - 1 and signing._b64url_decode(sig_new) == \
        signing._b64url_decode(sig_old), (header, changed)


@PROPS
@given(bodies, st.lists(keys, min_size=1, max_size=3, unique=True), st.data())
def test_rotation_header_verifies_with_each_key(body: bytes, key_list: list[str], data: st.DataObject) -> None:
    header = signing.signature_header(body, key_list)
    assert len(header.split(" ")) == len(key_list)
    for key in key_list:
        signing.verify_detached(body, header, key)
    outsider = data.draw(keys.filter(lambda k: k not in key_list))
    with pytest.raises(signing.InvalidSignature):
        signing.verify_detached(body, header, outsider)


@PROPS
@given(st.text(min_size=1, max_size=20), st.integers(0, 2**40), bodies, keys)
def test_standard_webhooks_round_trip_and_tamper(msg_id: str, ts: int, body: bytes, key: str) -> None:
    headers = signing.standard_webhooks_headers(msg_id, ts, body, key)
    signing.verify_standard_webhooks(headers["webhook-id"], headers["webhook-timestamp"], body,
                                     headers["webhook-signature"], key)
    with pytest.raises(signing.InvalidSignature):
        signing.verify_standard_webhooks(msg_id, ts, body + b"x", headers["webhook-signature"], key)
    with pytest.raises(signing.InvalidSignature):
        signing.verify_standard_webhooks(msg_id, ts + 1, body, headers["webhook-signature"], key)
