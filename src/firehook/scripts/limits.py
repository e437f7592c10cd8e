"""Per-run limits of an activity script (SPEC §4.5) and the log that enforces ``log_bytes``.

The limit names below are what ``ScriptOutcome.limit`` reports; each one that ends a run also
ends the run's log with a line that names it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

TIMEOUT = "timeout"
MEMORY = "memory"
STACK = "stack"
FETCH_LIMIT = "fetch_limit"
FETCH_MAX_BYTES = "fetch_max_bytes"
LOG = "log"


@dataclass(frozen=True)
class ScriptLimits:
    """What one script run may use. Defaults are the server settings' defaults."""

    timeout: float = 30.0
    memory_mb: int = 128
    log_bytes: int = 1024 * 1024
    fetch_limit: int = 100
    fetch_timeout: float = 30.0
    fetch_max_bytes: int = 10 * 1024 * 1024
    storage_key_bytes: int = 256
    storage_value_bytes: int = 64 * 1024
    storage_total_bytes: int = 1024 * 1024

    @classmethod
    def from_settings(cls, settings: Any) -> ScriptLimits:
        """Build the limits from a ``firehook.settings`` object (``script_*``, ``storage_*``)."""
        return cls(
            timeout=float(settings.script_timeout),
            memory_mb=int(settings.script_memory_mb),
            log_bytes=int(settings.script_log_bytes),
            fetch_limit=int(settings.script_fetch_limit),
            fetch_timeout=float(settings.script_fetch_timeout),
            fetch_max_bytes=int(settings.script_fetch_max_bytes),
            storage_key_bytes=int(settings.storage_key_bytes),
            storage_value_bytes=int(settings.storage_value_bytes),
            storage_total_bytes=int(settings.storage_total_bytes),
        )

    @property
    def memory_bytes(self) -> int:
        return self.memory_mb * 1024 * 1024


def describe_seconds(seconds: float) -> str:
    """``30`` for whole numbers, ``1.5`` otherwise — as a user wrote the setting."""
    return f"{seconds:g}"


class RunLog:
    """Forwards a run's log lines to ``sink`` and cuts the log at ``limit`` bytes.

    The line that crosses the limit is cut to fit and followed by one line saying the log was
    cut; later lines are dropped, except the final error lines (``force=True``), which the
    user needs most and which are small.
    """

    def __init__(self, sink: Callable[[str], None], limit: int) -> None:
        self._sink = sink
        self._limit = max(0, limit)
        self._used = 0
        self.cut = False

    def write(self, line: str, *, force: bool = False) -> None:
        """Log one line (no trailing newline), within the byte budget unless ``force``."""
        if force:
            self._sink(line)
            return
        if self.cut:
            return
        size = len(line.encode("utf-8", "surrogatepass"))
        if self._used + size <= self._limit:
            self._used += size
            self._sink(line)
            return
        room = self._limit - self._used
        if room > 0:
            kept = line.encode("utf-8", "surrogatepass")[:room].decode("utf-8", "ignore")
            if kept:
                self._sink(kept)
        self._used = self._limit
        self.cut = True
        self._sink(f"Log limit of {self._limit} bytes reached: the rest of the log is cut.")
