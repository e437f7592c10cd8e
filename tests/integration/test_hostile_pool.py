"""Hostile scripts in the script pool: each ends on its limit with the limit's message, the
child is replaced when it had to be killed, and meanwhile a trivial run of another project
gets a process at once and completes — with a pool of one process, so the other run gets the
spare on standby, not a free slot."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from firehook.scripts import MemoryStorage, ScriptLimits, limits, pool

HOSTILE = ScriptLimits(timeout=3.0, memory_mb=64, log_bytes=4096)
SLOW = ScriptLimits(timeout=20.0, memory_mb=64, log_bytes=4096)  # the memory or stack must stop it
BIG_SCRIPT = "".join(f"var v{n} = {n};\n" for n in range(200_000))  # ~3 MB of declarations

CASES: list[tuple[str, str, ScriptLimits, str | None, str]] = [
    ("loop", "while (true) {}", HOSTILE, limits.TIMEOUT, "time limit of 3 s exceeded"),
    ("loop catching everything", "for (;;) { try { for (;;) {} } catch (e) {} }", HOSTILE, limits.TIMEOUT,
     "time limit of 3 s exceeded"),
    ("async chain", "(async function f() { for (;;) { await null; } })();", HOSTILE, limits.TIMEOUT,
     "time limit of 3 s exceeded"),
    ("loop in a promise job", "Promise.resolve().then(function () { for (;;) {} });", HOSTILE, limits.TIMEOUT,
     "time limit of 3 s exceeded"),
    ("log flood", "for (;;) { console.log('spam spam spam spam'); }", HOSTILE, limits.TIMEOUT,
     "time limit of 3 s exceeded"),
    ("memory", "var keep = []; for (;;) { keep.push(new Array(100000).join('x')); }", SLOW, limits.MEMORY,
     "memory limit of 64 MiB exceeded"),
    ("stack", "function f(n) { return f(n + 1) + 1; } f(0);", SLOW, limits.STACK,
     "RangeError: Maximum call stack size exceeded (stack overflow)"),
    ("huge script", BIG_SCRIPT, HOSTILE, limits.TIMEOUT, "time limit of 3 s exceeded"),
]


def _request(project: str, source: str, script_limits: ScriptLimits, lines: list[str]) -> pool.Request:
    return pool.Request(project_id=project, source=source, activity_json='{"type":"environment.push"}',
                        project={"id": project}, variables={}, storage=MemoryStorage(), limits=script_limits,
                        log=lines.append)


@pytest.mark.parametrize(("source", "script_limits", "limit", "message"),
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_a_hostile_script_ends_on_its_limit_while_another_project_runs(
        source: str, script_limits: ScriptLimits, limit: str | None, message: str) -> None:
    async def main() -> tuple[Any, Any, list[str], list[str]]:
        the_pool = pool.ScriptPool(1, kill_grace=0.5)
        hostile_lines: list[str] = []
        good_lines: list[str] = []
        try:
            await the_pool.run(_request("warm", "1", HOSTILE, []))  # the regular child is up
            while len(the_pool.pids()) < 2:  # and the spare on standby (slow to start when busy)
                await asyncio.sleep(0.01)
            hostile = asyncio.create_task(the_pool.run(_request("a", source, script_limits, hostile_lines)))
            await asyncio.sleep(0)  # A's script has the only regular process
            good_task = asyncio.create_task(the_pool.run(_request("b", "console.log('b', 1 + 1)",
                                                                  ScriptLimits(timeout=20.0), good_lines)))
            await asyncio.sleep(0)
            if limit == limits.TIMEOUT:
                # B got a process at once, while A's script still holds the regular one (B's
                # run itself may be slow on a busy machine: script processes are niced).
                assert the_pool.holding() == {"a": 1, "b": 1} and not hostile.done()
            good = await good_task
            bad = await hostile
            return bad, good, hostile_lines, good_lines
        finally:
            await the_pool.aclose()

    bad, good, hostile_lines, good_lines = asyncio.run(main())
    assert not bad.success
    assert bad.limit == limit
    assert bad.error == message and hostile_lines[-1] == message
    assert good.success and good_lines == ["b 2"]
