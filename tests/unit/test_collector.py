"""The garbage-collector settings of long-running processes (firehook.collector)."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import gc, json
before = gc.get_threshold(), gc.get_freeze_count()
from firehook import collector
collector.settle()
print(json.dumps({"before": before, "after": [gc.get_threshold(), gc.get_freeze_count()], "young": collector.YOUNG}))
"""


def test_settle_freezes_what_is_alive_and_spaces_young_collections() -> None:
    # In a process of its own: freezing is for the life of a process, not of a test.
    out = subprocess.run([sys.executable, "-c", PROBE], check=True, capture_output=True, text=True).stdout
    seen = json.loads(out)
    (threshold_before, frozen_before), (threshold_after, frozen_after) = seen["before"], seen["after"]
    assert frozen_before == 0
    assert frozen_after > 1000  # the interpreter's and firehook's modules at least
    assert threshold_after[0] == seen["young"] > threshold_before[0]
    assert threshold_after[1:] == threshold_before[1:]  # the older generations keep Python's ratios

