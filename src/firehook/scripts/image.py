"""The prelude heap image: built once per process, copied into every new sandbox.

Evaluating Underscore and the prelude costs ~13 ms per run; copying the heap they leave
behind costs a fraction of that. The image is a whole-memory snapshot of a sandbox that ran
them (taken with quickjs-rs's own snapshot, so its format and build check apply), stored as
the 4 KiB pages that differ from a freshly instantiated guest: a new instance already holds
the rest, so only those pages are written (about a third of them).
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import quickjs_rs
import wasmtime
from quickjs_rs import _engine as qjs_engine  # private: snapshot header layout

_HERE = Path(__file__).resolve().parent
UNDERSCORE_PATH = _HERE / "vendor" / "underscore-umd.js"
PRELUDE_PATH = _HERE / "prelude.js"

_PAGE = 4096
_WASM_PAGE = 65536


@dataclass(frozen=True)
class HeapImage:
    """What to write into a fresh instance's linear memory to give it the prelude's heap."""

    size: int
    stack_pointer: int
    runs: tuple[tuple[int, bytes], ...]  # (offset, bytes) that differ from a fresh instance

    def write_into(
        self, store: wasmtime.Store, memory: wasmtime.Memory, sp: wasmtime.Global
    ) -> None:
        """Make ``memory`` (of a guest never called yet) equal to the image."""
        current = memory.data_len(store)
        if self.size > current:
            memory.grow(store, (self.size - current + _WASM_PAGE - 1) // _WASM_PAGE)
        base = ctypes.cast(memory.data_ptr(store), ctypes.c_void_p).value
        if base is None:
            raise RuntimeError("guest memory has no address")
        for offset, data in self.runs:
            ctypes.memmove(base + offset, data, len(data))
        sp.set_value(store, self.stack_pointer)


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


def build(
    register: Callable[[quickjs_rs.Context], None],
    fresh_memory: Callable[[], bytes],
) -> HeapImage:
    """Run Underscore and the prelude in a new context and capture the resulting heap.

    ``register`` installs the host function on the context (before the prelude takes it);
    ``fresh_memory`` returns the memory of an instance made exactly as sandboxes start.
    """
    runtime = quickjs_rs.Runtime(memory_limit=None, stack_limit=None)
    try:
        ctx = runtime.new_context(timeout=60.0)
        register(ctx)
        ctx.eval(UNDERSCORE_PATH.read_text(encoding="utf-8"))
        ctx.eval(PRELUDE_PATH.read_text(encoding="utf-8"))
        runtime.run_gc()
        snapshot = ctx.create_snapshot().to_bytes()
        ctx.close()
    finally:
        runtime.close()
    header = qjs_engine._SNAP_HEADER
    _magic, _version, _build, size, stack_pointer = header.unpack_from(snapshot, 0)
    image = snapshot[header.size :]
    if len(image) != size:
        raise RuntimeError("malformed prelude snapshot")
    fresh = fresh_memory()
    # The page diff is only sound if every fresh instance starts identical; if they do not,
    # the whole image is written.
    runs = _diff_runs(image, fresh) if fresh_memory() == fresh else ((0, image),)
    return HeapImage(size=size, stack_pointer=stack_pointer, runs=runs)


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
