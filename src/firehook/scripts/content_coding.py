"""The ``Content-Encoding`` of a ``fetch`` response, decoded as its body arrives.

The codings are urllib3's (what ``fetch`` decoded before it had its own client): ``gzip``
(``x-gzip``; several members, trailing garbage after the first ignored), ``deflate`` (zlib
framing, or raw deflate as some servers send), and ``br`` or ``zstd`` only when their library is
installed (``brotli`` 1.2 or later, which can bound its output; ``backports.zstd``/
``compression.zstd``). A list of codings
(``gzip, br``) is undone last first; when one of them is not known the body is left as it came.

No stage produces more than ``limit`` bytes in all (a decompression bomb stops at the limit,
never holding more than the limit and a byte): past it, :class:`TooLarge`.
"""

from __future__ import annotations

import sys
import zlib
from typing import Any

brotli: Any
try:
    import brotlicffi as brotli  # type: ignore[import-not-found, no-redef]
except ImportError:
    try:
        import brotli  # type: ignore[import-not-found, no-redef]
    except ImportError:
        brotli = None
zstd: Any
try:
    if sys.version_info >= (3, 14):
        from compression import zstd  # type: ignore[import-not-found, no-redef]
    else:
        from backports import zstd  # type: ignore[import-not-found, no-redef]
except ImportError:
    zstd = None


class TooLarge(Exception):
    """A stage decoded more than the limit."""


class Undecodable(Exception):
    """The body is not in the coding its header names; the message says why."""


class _Stage:
    """One coding undone, its output counted against the limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.total = 0

    def _count(self, out: bytes) -> bytes:
        self.total += len(out)
        if self.total > self.limit:
            raise TooLarge()
        return out

    def room(self) -> int:
        """At most this many bytes per call: one more than is left shows the limit passed."""
        return self.limit - self.total + 1

    def decode(self, data: bytes) -> bytes:
        raise NotImplementedError

    def finish(self) -> bytes:
        return b""


class _Gzip(_Stage):
    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self._obj = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._later_member = False
        self._swallow = False

    def decode(self, data: bytes) -> bytes:
        out: list[bytes] = []
        while data and not self._swallow:
            try:
                piece = self._obj.decompress(data, self.room())
            except zlib.error as exc:
                if not self._later_member:
                    raise Undecodable(f"the gzip body is corrupt ({exc})") from None
                self._swallow = True  # garbage after a complete member, as other clients allow
                break
            out.append(self._count(piece))
            if not self._obj.eof:
                break  # all of data went in (room was not reached: _count would have raised)
            data = self._obj.unused_data
            if data:
                self._obj = zlib.decompressobj(16 + zlib.MAX_WBITS)
                self._later_member = True
        return b"".join(out)


class _Deflate(_Stage):
    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self._obj = zlib.decompressobj()
        self._first: bytes | None = b""  # input kept until the framing is known

    def decode(self, data: bytes) -> bytes:
        if self._obj.eof:
            return b""
        if self._first is None:
            return self._inflate(data)
        self._first += data
        try:
            out = self._inflate(data)
        except Undecodable:
            # Not zlib-framed: raw deflate (RFC 1951), as some servers send it.
            self._obj = zlib.decompressobj(-zlib.MAX_WBITS)
            first, self._first = self._first, None
            return self._inflate(first)
        if out:
            self._first = None
        return out

    def _inflate(self, data: bytes) -> bytes:
        try:
            return self._count(self._obj.decompress(data, self.room()))
        except zlib.error as exc:
            raise Undecodable(f"the deflate body is corrupt ({exc})") from None

    def finish(self) -> bytes:
        return self._count(self._obj.flush())


def _brotli_bounded() -> bool:
    """Whether the installed brotli library can bound what one call decodes (Brotli 1.2 and
    later). Without that bound a few kilobytes of ``br`` could expand to gigabytes before they
    were counted, so such a library is not used and ``br`` bodies are kept as they came."""
    if brotli is None:
        return False
    try:
        brotli.Decompressor().process(b"", output_buffer_limit=1)
    except Exception:  # noqa: BLE001 - TypeError (no such keyword), no process(), anything else
        return False
    return True


class _Brotli(_Stage):
    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self._obj = brotli.Decompressor()

    def decode(self, data: bytes) -> bytes:
        try:
            out = self._obj.process(data, output_buffer_limit=self.room())
        except brotli.error as exc:
            raise Undecodable(f"the br body is corrupt ({exc})") from None
        return self._count(out)


class _Zstd(_Stage):
    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self._obj = zstd.ZstdDecompressor()

    def decode(self, data: bytes) -> bytes:
        out: list[bytes] = []
        try:
            while data:
                if self._obj.eof:
                    self._obj = zstd.ZstdDecompressor()  # the next frame
                out.append(self._count(self._obj.decompress(data, max_length=self.room())))
                data = self._obj.unused_data if self._obj.eof else b""
        except zstd.ZstdError as exc:
            raise Undecodable(f"the zstd body is corrupt ({exc})") from None
        return b"".join(out)


_STAGES: dict[str, type[_Stage]] = {"gzip": _Gzip, "x-gzip": _Gzip, "deflate": _Deflate}
BROTLI_BOUNDED = _brotli_bounded()
if BROTLI_BOUNDED:
    _STAGES["br"] = _Brotli
if zstd is not None:
    _STAGES["zstd"] = _Zstd


class Decoder:
    """Undoes the codings of one response body, piece by piece."""

    def __init__(self, stages: list[_Stage]) -> None:
        self._stages = stages  # in the order they are undone

    def decode(self, data: bytes) -> bytes:
        for stage in self._stages:
            data = stage.decode(data)
        return data

    def finish(self) -> bytes:
        """What the stages still hold once the body has ended."""
        data = b""
        for stage in self._stages:
            data = stage.decode(data) + stage.finish() if data else stage.finish()
        return data


def decoder(content_encoding: str, limit: int) -> Decoder | None:
    """The decoder for a ``Content-Encoding`` value, or None when the body is to be kept as it is."""
    codings = [c.strip() for c in content_encoding.lower().split(",")]
    codings = [c for c in codings if c and c != "identity"]
    if not codings or any(c not in _STAGES for c in codings):
        return None
    return Decoder([_STAGES[c](limit) for c in reversed(codings)])

