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
]
