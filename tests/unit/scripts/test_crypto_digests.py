"""The host side of ``crypto``."""

from __future__ import annotations

import pytest

from firehook.scripts import crypto


def _chain(secret: str) -> str:
    key = crypto.hmac_digest("sha256", ["utf8", "AWS4" + secret], [["utf8", "20120215"]], "")
    for part in ("us-east-1", "iam"):
        key = crypto.hmac_digest("sha256", ["latin1", key], [["utf8", part]], "")
    return crypto.hmac_digest("sha256", ["latin1", key], [["utf8", "aws4_request"]], "hex")


def test_aws_sigv4_known_answer() -> None:
    assert _chain("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY") == (
        "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
    )


def test_formats() -> None:
    parts = [["utf8", "The quick brown fox jumps over the lazy dog"]]
    assert (
        crypto.hmac_digest("md5", ["utf8", "key"], parts, "hex")
        == "80070713463e7749b90c2dc24911e275"
    )
    assert (
        crypto.hmac_digest("sha1", ["utf8", "key"], parts, "base64")
        == "3nybhbi3iqa8ino29wqQcBydtNk="
    )
    binary = crypto.hmac_digest("sha256", ["utf8", "key"], parts, None)
    assert len(binary) == 32 and all(ord(c) < 256 for c in binary)
    assert crypto.hash_digest("sha256", [["utf8", "abc"]], "hex").startswith("ba7816bf")


def test_utf8_and_latin1_differ_for_non_ascii() -> None:
    assert crypto.to_bytes(["utf8", "é"]) == b"\xc3\xa9"
    assert crypto.to_bytes(["latin1", "é"]) == b"\xe9"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: crypto.hmac_digest("sha3", ["utf8", "k"], [], "hex"),
            "Digest method not supported",
        ),
        (
            lambda: crypto.hmac_digest("sha256", ["utf8", "k"], [], "rot13"),
            "unknown digest encoding",
        ),
        (lambda: crypto.to_bytes(["latin1", "✓"]), "invalid binary string"),
        (lambda: crypto.to_bytes(["utf16", "x"]), "invalid data encoding"),
        (lambda: crypto.to_bytes("x"), "invalid data"),
    ],
)
def test_errors(call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(crypto.CryptoError, match=message):
        call()
