"""The prelude heap image: built once per process, copied into every new sandbox.

Evaluating Underscore and the prelude costs ~13 ms per run; copying the heap they leave
behind costs a fraction of that. The image is a whole-memory snapshot of a guest that ran
them, taken between two calls into it (so its stack is empty and its stack pointer, which is
not in memory, is at its start), kept whole, with the spans of 4 KiB pages where it differs
from a freshly instantiated guest: a new instance already holds the rest, so only those spans
are written into it (a used guest is restored from the whole, :mod:`recycle`).
The guest's engine state is all in its linear memory, so a copy of that memory is a copy of
the engine.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import wasmtime

_HERE = Path(__file__).resolve().parent
UNDERSCORE_PATH = _HERE / "vendor" / "underscore-umd.js"
PRELUDE_PATH = _HERE / "prelude.js"

_PAGE = 4096
_WASM_PAGE = 65536


@dataclass(frozen=True)
class HeapImage:
    """The prelude's heap: the whole memory, and where it differs from a fresh instance."""

    size: int
    heap: bytes  # the whole memory: written in part into new guests, in full to restore used ones
    spans: tuple[tuple[int, int], ...]  # (offset, length) where it differs from a fresh instance

    @property
    def address(self) -> int:
        """Where :attr:`heap`'s bytes are (they stay put: the bytes object is immutable)."""
        return ctypes.cast(ctypes.c_char_p(self.heap), ctypes.c_void_p).value or 0

    def write_into(self, store: wasmtime.Store, memory: wasmtime.Memory) -> None:
        """Make ``memory`` (of a guest never called yet) equal to the image."""
        current = memory.data_len(store)
        if self.size > current:
            memory.grow(store, (self.size - current + _WASM_PAGE - 1) // _WASM_PAGE)
        base = ctypes.cast(memory.data_ptr(store), ctypes.c_void_p).value
        if base is None:
            raise RuntimeError("guest memory has no address")
        source = self.address
        for offset, length in self.spans:
            ctypes.memmove(base + offset, source + offset, length)


def _diff_spans(image: bytes, fresh: bytes) -> tuple[tuple[int, int], ...]:
    """Runs of consecutive pages where ``image`` differs from ``fresh`` (zeros past its end)."""
    spans: list[tuple[int, int]] = []
    start: int | None = None
    zero = bytes(_PAGE)
    for offset in range(0, len(image), _PAGE):
        page = image[offset : offset + _PAGE]
        base = fresh[offset : offset + _PAGE] if offset < len(fresh) else zero[: len(page)]
        if page != base:
            if start is None:
                start = offset
        elif start is not None:
            spans.append((start, offset - start))
            start = None
    if start is not None:
        spans.append((start, len(image) - start))
    return tuple(spans)


def build(heap: bytes, fresh_memory: Callable[[], bytes]) -> HeapImage:
    """The image of ``heap`` (the whole memory of a guest that ran Underscore and the
    prelude); ``fresh_memory`` returns the memory of a newly instantiated guest."""
    fresh = fresh_memory()
    # The page diff is only sound if every fresh instance starts identical; if they do not,
    # the whole image is written.
    heap = bytes(heap)
    spans = _diff_spans(heap, fresh) if fresh_memory() == fresh else ((0, len(heap)),)
    return HeapImage(size=len(heap), heap=heap, spans=spans)


_image: HeapImage | None = None
_lock = threading.Lock()


def cached(factory: Callable[[], HeapImage]) -> HeapImage:
    """The process's image, built by ``factory`` on first use (thread-safe)."""
    global _image
    if _image is None:
        with _lock:
            if _image is None:
                _image = factory()
    return _image
