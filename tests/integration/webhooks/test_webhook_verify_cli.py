"""``receiver.webhook_verify_main``, the body of ``firehook webhook:verify``, on real files."""

from __future__ import annotations

import io
from pathlib import Path

from firehook import receiver

VECTOR_BODY = b'{"id":"a1kz6ffxui7em","type":"environment.push"}'
VECTOR_SIGNATURE = (
    "eyJhbGciOiJIUzI1NiIsImI2NCI6ZmFsc2UsImNyaXQiOlsiYjY0Il19"
    "..fMecJGDXl2UnXzve9C6qIb_66xthvEOchvfbgNW4qYI"
)


def run_main(tmp_path: Path, body: bytes, signature: str, key: str) -> tuple[int, str, str]:
    path = tmp_path / "body.json"
    path.write_bytes(body)
    out, err = io.StringIO(), io.StringIO()
    code = receiver.webhook_verify_main(key, signature, str(path), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_verified(tmp_path: Path) -> None:
    assert run_main(tmp_path, VECTOR_BODY, VECTOR_SIGNATURE, "my-shared-key") == (
        0,
        "Signature verified.\n",
        "",
    )


def test_wrong_key(tmp_path: Path) -> None:
    code, out, err = run_main(tmp_path, VECTOR_BODY, VECTOR_SIGNATURE, "other")
    assert (code, out) == (1, "")
    assert err.startswith("Signature does not verify: signature mismatch")


def test_trailing_newline_is_diagnosed(tmp_path: Path) -> None:
    code, _, err = run_main(tmp_path, VECTOR_BODY + b"\n", VECTOR_SIGNATURE, "my-shared-key")
    assert code == 1 and "final newline" in err


def test_malformed_signature_and_empty_key(tmp_path: Path) -> None:
    code, _, err = run_main(tmp_path, VECTOR_BODY, "junk", "my-shared-key")
    assert code == 1 and "three parts" in err
    code, _, err = run_main(tmp_path, VECTOR_BODY, VECTOR_SIGNATURE, "")
    assert code == 1 and "empty" in err


def test_missing_file(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    path = str(tmp_path / "nope")
    assert receiver.webhook_verify_main("k", VECTOR_SIGNATURE, path, out, err) == 1
    assert "Cannot read" in err.getvalue() and out.getvalue() == ""
