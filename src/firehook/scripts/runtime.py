"""Running an activity script (SPEC §4): :func:`run_script` and :func:`check_syntax`.

A run is: a fresh sandbox restored from the prelude snapshot, one call into the prelude's
``__fh_main`` (which reads the run's inputs through the host, defines the globals and
evaluates the script as a classic sloppy-mode global script with an indirect ``eval``), then a
drain of the job queue (its outcome is the run's when the script's completion value is a
promise). A run still going at its deadline — in its top level or in a promise job — fails on
the time limit. Whatever happens, the run ends with a :class:`ScriptOutcome`; the log's last
line says why a run failed.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from firehook import errors
from firehook.scripts import engine, limits
from firehook.scripts.host import HostSession
from firehook.scripts.limits import RunLog, ScriptLimits
from firehook.scripts.storage import StorageBackend

# Frames of the script itself: the prelude evaluates it with an indirect eval, which QuickJS
# names "<input>"; the prelude's own frames are "eval_script".
_SCRIPT_FRAME = re.compile(r"<input>:(\d+):(\d+)")
_COMPILE_FRAME = re.compile(r"^\s*at <input>:(\d+):(\d+)\s*$")
# Strings longer than the engine allows (2^30 - 1 characters) fail with these; for the user
# they are a memory limit.
_STRING_TOO_LONG = {("RangeError", "invalid string length"), ("InternalError", "string too long")}

# The save-time check's bounds: compiling a script of the largest size allowed takes well
# under a second; a budget of the default run's time limit and memory keeps a hostile source
# from holding the API.
_CHECK_SECONDS = ScriptLimits().timeout
_CHECK_MEMORY = ScriptLimits().memory_bytes
_STACK_OVERFLOW = ("RangeError", "Maximum call stack size exceeded")


@dataclass(frozen=True)
class ScriptOutcome:
    """How a run ended. ``limit`` names the limit that ended it (``limits.*``), if one did."""

    success: bool
    error: str | None
    limit: str | None
    duration_ms: float


def script_position(stack: str | None, source: str | None = None) -> tuple[int, int] | None:
    """The line and column of the innermost frame of the script itself in a JS stack; with
    the script's ``source``, the column as Node counts it (:func:`node_column`)."""
    if not stack:
        return None
    match = _SCRIPT_FRAME.search(stack)
    if not match:
        return None
    line, column = int(match.group(1)), int(match.group(2))
    return line, node_column(source, line, column) if source is not None else column


def node_column(source: str, line: int, byte_column: int) -> int:
    """The engine counts a column in UTF-8 bytes from the start of its line; Node (and an
    editor) in UTF-16 code units: ``é`` is two bytes but one unit, an emoji four bytes but
    two units. Lines are split where the engine counts them, at ``\n``."""
    if byte_column <= 1 or line < 1:
        return byte_column
    start = 0
    for _ in range(line - 1):
        start = source.find("\n", start) + 1
        if start == 0:
            return byte_column  # not a line of this source
    end = source.find("\n", start)
    text = source[start:] if end < 0 else source[start:end]
    if text.isascii():
        return byte_column
    before = text.encode("utf-8", "surrogatepass")[: byte_column - 1].decode("utf-8", "ignore")
    return len(before.encode("utf-16-le", "surrogatepass")) // 2 + 1


def _at(message: str, position: tuple[int, int] | None) -> str:
    """``message`` followed by `` (line L, column C)`` when the position is known."""
    return message if position is None else f"{message} (line {position[0]}, column {position[1]})"


def describe_error(name: str | None, message: str, stack: str | None, source: str | None = None) -> str:
    """``"TypeError: x is not a function (line 3, column 5)"``; thrown non-errors as such."""
    text = f"{name}: {message}" if name else f"Uncaught {message}"
    return _at(text, script_position(stack, source))


def check_syntax(source: str) -> None:
    """Raise :class:`firehook.errors.ScriptError` (with ``.line``, ``.column``) when ``source``
    does not compile as a classic script.

    The source is only compiled — none of it runs, so nothing in it can sway the verdict — in
    a bare, throw-away sandbox, bounded in memory and time (the engine polls the deadline
    while it compiles).
    """
    deadline = time.monotonic() + _CHECK_SECONDS
    sandbox = engine.Sandbox(
        memory_bytes=_CHECK_MEMORY,
        should_interrupt=lambda: time.monotonic() >= deadline,
        host=_no_host,
        prelude=False,
    )
    try:
        sandbox.compile(source)
    except engine.EngineFailure as failure:
        if failure.kind == "memory":
            raise _script_error("the script is too large to compile", None) from None
        if failure.kind == "interrupted":
            raise _script_error(
                f"the script took longer than {limits.describe_seconds(_CHECK_SECONDS)} s "
                "to compile", None
            ) from None
        if failure.kind == "stack":
            raise _script_error("the script is nested too deeply to compile", None) from None
        if failure.kind != "js":
            raise
        first = _COMPILE_FRAME.match((failure.stack or "").split("\n", 1)[0])
        position = None
        if first:
            line = int(first.group(1))
            position = (line, node_column(source, line, int(first.group(2))))
        raise _script_error(f"{failure.name}: {failure.message}", position) from None
    finally:
        sandbox.close()


def _no_host(op: str, arg: str) -> str:
    raise RuntimeError("nothing runs while a script is only compiled")


def _script_error(message: str, position: tuple[int, int] | None) -> errors.ScriptError:
    return errors.ScriptError(_at(message, position), line=position[0] if position else None,
                              column=position[1] if position else None)


def run_script(
    source: str,
    *,
    activity_json: str,
    project: Mapping[str, Any],
    variables: Mapping[str, Any],
    storage: StorageBackend,
    limits: ScriptLimits,
    log: Callable[[str], None],
    outbound_allow: Sequence[str] = (),
    dry_fetch: bool = False,
) -> ScriptOutcome:
    """Run ``source`` once in a fresh isolated sandbox; never raises for the script's faults.

    ``log`` receives each log line. Safe to call from many threads at once.
    """
    # The first run of a process compiles the engine and builds the prelude image (a second
    # or so); that is not the script's time, so it happens before its clock starts.
    engine.prelude_image()
    started = time.perf_counter()
    run_log = RunLog(log, limits.log_bytes)
    session = HostSession(
        source=source,
        activity_json=activity_json,
        project=project,
        variables=variables,
        storage=storage,
        script_limits=limits,
        log=run_log,
        outbound_allow=outbound_allow,
        dry_fetch=dry_fetch,
    )
    error, limit = _execute(session, limits)
    if error is not None:
        run_log.write(error, force=True)
    return ScriptOutcome(
        success=error is None,
        error=error,
        limit=limit,
        duration_ms=(time.perf_counter() - started) * 1000,
    )


def _execute(session: HostSession, script_limits: ScriptLimits) -> tuple[str | None, str | None]:
    """Run the script; return (error, limit) — both None on success."""
    sandbox = engine.Sandbox(
        memory_bytes=script_limits.memory_bytes,
        should_interrupt=session.should_interrupt,
        host=session.dispatch,
    )
    try:
        result = _answer(sandbox.eval("__fh_main()"))
        # Jobs the script queued run after its top level, as in Node, whatever its completion
        # value; when that value is a promise, its outcome is the run's.
        sandbox.run_jobs(session.should_interrupt)
        if session.abort is None and session.should_interrupt():
            raise engine.EngineFailure("interrupted", "interrupted")
        if result.get("pending"):
            result = _answer(sandbox.eval("__fh_settled()"))
        near_cap = sandbox.near_memory_cap()
    except engine.EngineFailure as failure:
        return _engine_failure(failure, session, script_limits)
    finally:
        sandbox.close()
    if session.abort is not None:
        # The script caught the error a limit threw; the run still ends on that limit.
        return _with_position(session.abort.message, result, session.source), session.abort.limit
    if result.get("ok"):
        if result.get("unsettled"):
            session.log.write("The script's promise had not settled when its jobs ran out.")
        return None, None
    name, message, stack = result.get("name"), result.get("message", ""), result.get("stack")
    if (name, message) == ("InternalError", "out of memory") or (
        # Allocations that fail at the cap can surface as these instead.
        near_cap and (message in ("null", "") or name == "HostError")
    ):
        return _with_position(_memory_message(script_limits), result, session.source), limits.MEMORY
    if (name, message) == _STACK_OVERFLOW:
        return "RangeError: Maximum call stack size exceeded (stack overflow)", limits.STACK
    text = describe_error(name, message, stack, session.source)
    if (name, message) in _STRING_TOO_LONG:
        return f"{text}: the string is larger than the memory limit allows", limits.MEMORY
    return text, None


def _answer(value: Any) -> dict[str, Any]:
    """The prelude's JSON answer; anything else means the script replaced the prelude's entry
    points, which only spoils its own run."""
    try:
        answer = json.loads(value) if isinstance(value, str) else None
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        return {"ok": False, "name": "Error", "message": "the script replaced firehook's internals"}
    return answer


def _memory_message(script_limits: ScriptLimits) -> str:
    return f"memory limit of {script_limits.memory_mb} MiB exceeded"


def _with_position(message: str, result: Mapping[str, Any], source: str) -> str:
    position = script_position(result.get("stack"), source) if not result.get("ok") else None
    return _at(message, position)


def _engine_failure(
    failure: engine.EngineFailure, session: HostSession, script_limits: ScriptLimits
) -> tuple[str, str | None]:
    if session.abort is not None:
        return session.abort.message, session.abort.limit
    if failure.kind == "interrupted":
        return session.timeout_message(), limits.TIMEOUT
    if failure.kind == "memory":
        return _memory_message(script_limits), limits.MEMORY
    if failure.kind == "stack":
        return "RangeError: Maximum call stack size exceeded (stack overflow)", limits.STACK
    if failure.kind == "js":
        return describe_error(failure.name, failure.message, failure.stack, session.source), None
    return f"the script engine stopped the script: {failure.message}", None
