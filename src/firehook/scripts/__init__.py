"""The sandboxed JavaScript runtime of activity scripts (SPEC §4).

The worker and the CLI use exactly what is re-exported here.
"""

from __future__ import annotations

from firehook.scripts.limits import ScriptLimits
from firehook.scripts.runtime import ScriptOutcome, check_syntax, run_script
from firehook.scripts.storage import MemoryStorage, StorageBackend

__all__ = [
    "MemoryStorage",
    "ScriptLimits",
    "ScriptOutcome",
    "StorageBackend",
    "check_syntax",
    "run_script",
    "warm_up",
]


def warm_up() -> None:
    """Build the engine and the prelude's heap image now (1–3 s the first time in a process),
    so the first run's time limit is not spent on it."""
    from firehook.scripts import engine

    engine.prelude_image()
