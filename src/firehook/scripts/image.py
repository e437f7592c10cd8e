"""The prelude heap image: built once per process, copied into every new sandbox.

Evaluating Underscore and the prelude costs ~13 ms per run; copying the heap they leave
behind costs a fraction of that. The image is a whole-memory snapshot of a guest that ran
them, taken between two calls into it (so its stack is empty and its stack pointer, which is
not in memory, is at its start), stored as the 4 KiB pages that differ from a freshly
instantiated guest: a new instance already holds the rest, so only those pages are written.
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
    """What to write into a fresh instance's linear memory to give it the prelude's heap."""

    size: int
    runs: tuple[tuple[int, bytes], ...]  # (offset, bytes) that differ from a fresh instance
    heap: bytes  # the whole memory: what a used guest is restored to (:mod:`recycle`)

    def write_into(self, store: wasmtime.Store, memory: wasmtime.Memory) -> None:
        """Make ``memory`` (of a guest never called yet) equal to the image."""
        current = memory.data_len(store)
        if self.size > current:
            memory.grow(store, (self.size - current + _WASM_PAGE - 1) // _WASM_PAGE)
        base = ctypes.cast(memory.data_ptr(store), ctypes.c_void_p).value
        if base is None:
            raise RuntimeError("guest memory has no address")
        for offset, data in self.runs:
            ctypes.memmove(base + offset, data, len(data))


def _diff_runs(image: bytes, fresh: bytes) -> tuple[tuple[int, bytes], ...]:
    """Runs of consecutive pages where ``image`` differs from ``fresh`` (zeros past its end)."""
    runs: list[tuple[int, bytes]] = []
    start: int | None = None
    zero = bytes(_PAGE)
    for offset in range(0, len(image), _PAGE):
        page = image[offset : offset + _PAGE]
        base = fresh[offset : offset + _PAGE] if offset < len(fresh) else zero[: len(page)]
        if page != base:
            if start is None:
                start = offset
        elif start is not None:
            runs.append((start, image[start:offset]))
            start = None
    if start is not None:
        runs.append((start, image[start:]))
    return tuple(runs)


def build(heap: bytes, fresh_memory: Callable[[], bytes]) -> HeapImage:
    """The image of ``heap`` (the whole memory of a guest that ran Underscore and the
    prelude); ``fresh_memory`` returns the memory of a newly instantiated guest."""
    fresh = fresh_memory()
    # The page diff is only sound if every fresh instance starts identical; if they do not,
    # the whole image is written.
    runs = _diff_runs(heap, fresh) if fresh_memory() == fresh else ((0, heap),)
    return HeapImage(size=len(heap), runs=runs, heap=bytes(heap))


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
