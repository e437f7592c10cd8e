"""Async runaways stopped at the deadline are failures with the time-limit message (issue 12).

The guest runs promise jobs in batches and swallows each job's exception (the interrupt's too),
and a chain of jobs with no loop in it is never polled by the engine: these runs used to end
as ``success`` (or not at all). A short deadline hit by a script that never ends is
deterministic in outcome, whatever the machine's speed.
"""

from __future__ import annotations

import pytest

from firehook import scripts
from firehook.scripts import limits
from tests.integration.scripts.helpers import run

SHORT = scripts.ScriptLimits(timeout=0.3, memory_mb=64)
MESSAGE = "time limit of 0.3 s exceeded"

RUNAWAYS = {
    "endless await loop": "(async function f() { for (;;) await null; })()",
    "endless then chain": "function f() { return Promise.resolve().then(f); } f()",
    "then chain not awaited": "function f() { Promise.resolve().then(f); } f(); 2",
    "loop in a promise job": "Promise.resolve().then(() => { for (;;) {} })",
    "loop in a job, completion not a promise": "Promise.resolve().then(() => { for (;;) {} }); 1",
    "await loop that catches": (
        "async function main() { for (;;) { try { await null; } catch (e) {} } } main()"
    ),
    "loop after an await": "(async () => { await null; while (true) {} })()",
}


# Each link of this chain waits on the next, so it also holds more memory with every job:
# room enough that only the deadline can end it within 0.3 s (it grows by ~64 MiB in 0.3 s).
ROOMY = scripts.ScriptLimits(timeout=0.3, memory_mb=2048)


@pytest.mark.parametrize("source", RUNAWAYS.values(), ids=RUNAWAYS.keys())
def test_async_runaway_fails_on_the_time_limit(source: str) -> None:
    result = run(source, limits=ROOMY if "return Promise" in source else SHORT)
    assert not result.outcome.success, result.log
    assert result.outcome.limit == limits.TIMEOUT
    assert result.outcome.error == MESSAGE
    assert result.lines[-1] == MESSAGE


def test_jobs_run_after_the_top_level_whatever_its_value() -> None:
    result = run("(async () => { await null; console.log('after'); })(); console.log('top'); 1")
    assert result.outcome.success, result.log
    assert result.lines == ["top", "after"]


def test_an_async_main_that_finishes_is_a_success() -> None:
    result = run(
        "async function main() { for (var i = 0; i < 1000; i++) await null; console.log(i); }"
        " main()"
    )
    assert result.outcome.success, result.log
    assert result.lines == ["1000"]


def test_an_async_main_that_rejects_is_its_error() -> None:
    result = run("(async () => { await null; throw new TypeError('late'); })()")
    assert not result.outcome.success
    assert result.outcome.limit is None
    assert result.outcome.error is not None and result.outcome.error.startswith("TypeError: late")
