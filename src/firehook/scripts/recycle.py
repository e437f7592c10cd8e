"""Used guests made pristine again, so that a run need not pay for a new instance.

A new instance costs ~0.35 ms of CPU per run: the store and instance are built, the prelude's
heap image is written into fresh memory (about 150 page faults), and the instance and its
memory are torn down afterwards. A guest whose run ended cleanly is instead given back its
pristine heap and kept for the next run (measured: 1.28 → 0.95 ms of CPU per run of the
benchmark script; the restore itself ~0.09 ms).

**What is restored.** Every page of linear memory that may differ from the image: the kernel
says which pages of the memory's mapping are present or swapped (``/proc/self/pagemap``,
bits 63 and 62 of each entry, readable by the process itself). A page that is neither was never
touched since the instance was made, so it still holds what instantiation put there: the
module's data or zeros, which is what the image holds too, since every page where the image
differs from a new instance was written when the image was copied in. Present pages are
copied back from the image, and present pages past the image's end (memory the run grew) are
zeroed. After that, memory is byte for byte the image up to its end, and zeros beyond.

**What is not reused.** A guest that trapped (its stack pointer, a wasm global, is not restored
by a trap), whose run failed inside the engine, or whose memory grew more than
:data:`HEADROOM` past the image (wasm memory cannot shrink): those are closed as before. The
guest's allocator takes new memory at the end of linear memory, whatever it held before, so a
reused guest's memory is up to ``HEADROOM`` larger than a new one's; its store's memory cap is
raised by that much, so that a script has the same room either way.

Where the kernel does not report pages (no ``/proc``, or a pagemap without the present bit),
nothing is recycled and every run gets a new instance.
"""

from __future__ import annotations

import ctypes
import os
import re
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from firehook.scripts import fastpath
    from firehook.scripts.image import HeapImage

PAGE = 4096
# How far past the image a guest's memory may have grown and the guest still be reused.
HEADROOM = 1 << 20
# Guests kept ready per process (a child process runs one script at a time; threads of a
# runner may run a few).
KEEP = 4
# A pagemap entry is a little-endian u64: its last byte holds bit 63 (present) and 62 (swapped).
_TOUCHED = bytes(0x31 if b & 0xC0 else 0x30 for b in range(256))
_RUNS = re.compile(b"1+")


class Recycler:
    """The guests of one process that are ready for another run."""

    def __init__(self, image: HeapImage) -> None:
        self._image = image
        self._heap_address = image.address  # the image keeps its bytes alive
        self._ready: list[fastpath.Guest] = []
        self._lock = threading.Lock()
        self._pagemap: int | None = None
        self._enabled = True
        self.reused = 0  # runs that got a recycled guest (for tests and the benchmark)

    def take(self) -> fastpath.Guest | None:
        """A pristine guest, if one is ready."""
        with self._lock:
            if self._ready:
                self.reused += 1
                return self._ready.pop()
        return None

    def give(self, guest: fastpath.Guest) -> bool:
        """Restore ``guest`` to the image and keep it; False when it cannot be (the caller
        closes it)."""
        if not self._enabled:
            return False
        with self._lock:
            if len(self._ready) >= KEEP:
                return False
        if not self._restore(guest):
            return False
        with self._lock:
            if len(self._ready) >= KEEP:
                return False
            self._ready.append(guest)
        return True

    def extra_bytes(self, guest: fastpath.Guest) -> int:
        """How much larger than a new instance's this guest's memory is."""
        return max(0, guest.size() - self._image.size)

    def close(self) -> None:
        with self._lock:
            ready, self._ready = self._ready, []
        for guest in ready:
            guest.close()

    def _restore(self, guest: fastpath.Guest) -> bool:
        size, image_size = guest.size(), self._image.size
        base = guest.base()
        if size > image_size + HEADROOM or size < image_size or size % PAGE or not base or base % PAGE:
            return False
        flags = self._touched(base, size)
        if flags is None:
            return False
        heap = self._heap_address
        for match in _RUNS.finditer(flags):
            start, end = match.start() * PAGE, match.end() * PAGE
            if start < image_size:
                copied = min(end, image_size)
                ctypes.memmove(base + start, heap + start, copied - start)
                start = copied
            if end > start:
                ctypes.memset(base + start, 0, end - start)
        return True

    def _touched(self, base: int, size: int) -> bytes | None:
        """One byte per page of ``[base, base + size)``: ``1`` if present or swapped."""
        try:
            if self._pagemap is None:
                with self._lock:  # two threads' first restores would open it twice
                    if self._pagemap is None:
                        self._pagemap = os.open("/proc/self/pagemap", os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            pages = size // PAGE
            entries = os.pread(self._pagemap, pages * 8, (base // PAGE) * 8)
        except OSError:
            self._enabled = False
            return None
        if len(entries) != pages * 8:
            self._enabled = False
            return None
        flags = entries[7::8].translate(_TOUCHED)
        # The image's own pages were all written into this guest: if none shows, the kernel
        # does not report presence here, and nothing can be restored safely.
        if b"1" not in flags:
            self._enabled = False
            return None
        return flags
