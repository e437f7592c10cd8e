"""fetch's Content-Encoding decoding (scripts/content_coding.py), fed as a body arrives."""

from __future__ import annotations

import gzip
import zlib

import pytest

from firehook.scripts import content_coding

TEXT = b"firehook decodes what the server encoded. " * 200


def decode(coding: str, body: bytes, limit: int = 10**7, piece: int = 0) -> bytes:
    decoder = content_coding.decoder(coding, limit)
    assert decoder is not None
    pieces = [body[i:i + piece] for i in range(0, len(body), piece)] if piece else [body]
    return b"".join(decoder.decode(p) for p in pieces) + decoder.finish()


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize("piece", [0, 1, 7, 4096])
def test_gzip_and_both_deflate_framings_in_any_pieces(piece: int) -> None:
    assert decode("gzip", gzip.compress(TEXT), piece=piece) == TEXT
    assert decode("X-GZIP", gzip.compress(TEXT), piece=piece) == TEXT
    assert decode("deflate", zlib.compress(TEXT), piece=piece) == TEXT
    assert decode("deflate", raw_deflate(TEXT), piece=piece) == TEXT


def test_gzip_members_are_joined_and_garbage_after_a_member_ignored() -> None:
    assert decode("gzip", gzip.compress(b"one ") + gzip.compress(b"two")) == b"one two"
    assert decode("gzip", gzip.compress(b"one") + b"\x00garbage") == b"one"


def test_a_list_of_codings_is_undone_last_first() -> None:
    body = gzip.compress(zlib.compress(TEXT))  # deflate applied first, then gzip
    assert decode("deflate, gzip", body) == TEXT
    assert decode("identity, gzip", gzip.compress(TEXT)) == TEXT


@pytest.mark.parametrize("coding", ["", "identity", "compress", "gzip, snappy", "  "])
def test_unknown_codings_leave_the_body_as_it_came(coding: str) -> None:
    assert content_coding.decoder(coding, 100) is None


def test_br_and_zstd_only_with_their_library() -> None:
    assert (content_coding.decoder("br", 10) is None) == (not content_coding.BROTLI_BOUNDED)
    assert (content_coding.decoder("zstd", 10) is None) == (content_coding.zstd is None)


def test_a_decompression_bomb_stops_at_the_limit() -> None:
    bomb = gzip.compress(b"\0" * 50_000_000)
    decoder = content_coding.decoder("gzip", 1_000_000)
    assert decoder is not None
    with pytest.raises(content_coding.TooLarge):
        decoder.decode(bomb)  # one piece: the stage still stops at the limit and a byte
    (stage,) = decoder._stages
    assert stage.total == 1_000_001
    exact = content_coding.decoder("gzip", len(TEXT))
    assert exact is not None and exact.decode(gzip.compress(TEXT)) == TEXT


def test_corrupt_bodies_are_undecodable() -> None:
    with pytest.raises(content_coding.Undecodable, match="the gzip body is corrupt"):
        decode("gzip", b"plain text, not gzip")
    with pytest.raises(content_coding.Undecodable, match="the deflate body is corrupt"):
        decode("deflate", b"\xff" * 64)


def test_a_brotli_library_that_cannot_bound_its_output_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    class Unbounded:  # brotlicffi and Brotli < 1.2: process() takes no output_buffer_limit
        class Decompressor:
            def process(self, data: bytes) -> bytes:
                return data

    monkeypatch.setattr(content_coding, "brotli", Unbounded)
    assert content_coding._brotli_bounded() is False
    monkeypatch.setattr(content_coding, "brotli", None)
    assert content_coding._brotli_bounded() is False
