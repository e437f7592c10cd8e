"""A script pool's child process: ``python -m firehook.scripts.child``.

It builds the engine and the prelude's heap image once, says ``ready``, then runs one script
at a time as its parent asks (:mod:`firehook.scripts.protocol`): each run starts from the
pristine image (a fresh sandbox), its log lines go to the parent as they are written, and its
storage calls are answered by the parent, which holds the run's storage. The child knows no
database, no token and no other run: it has the run's inputs and nothing else.

It dies with its parent (``PR_SET_PDEATHSIG``), stops when its input closes, and runs at a
lower CPU priority than its parent (``nice`` 10), so that runaway scripts on every core still
leave the API and the worker the CPU they need to answer.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
from typing import Any, BinaryIO

from firehook.scripts import protocol

PARENT_ENV = "FIREHOOK_INTERNAL_POOL_PARENT"


class RemoteStorage:
    """The run's storage, held by the parent: every operation is a call and its reply."""

    def __init__(self, conversation: _Conversation) -> None:
        self._talk = conversation

    def get(self, key: str) -> str | None:
        value = self._talk.call("get", key)
        return value if isinstance(value, str) else None

    def set(self, key: str, encoded: str) -> None:
        self._talk.call("set", key, encoded)

    def remove(self, key: str) -> None:
        self._talk.call("remove", key)

    def clear(self) -> None:
        self._talk.call("clear")

    def total_bytes(self) -> int:
        return int(self._talk.call("total_bytes") or 0)


class StorageCallFailed(Exception):
    """The parent could not perform a storage operation (its database failed)."""


class _Conversation:
    def __init__(self, inp: BinaryIO, out: BinaryIO) -> None:
        self.inp = inp
        self.out = out
        self.run: Any = None  # the number of the run in progress, in every message about it

    def send(self, message: dict[str, Any]) -> None:
        if self.run is not None:
            message["n"] = self.run
        self.out.write(protocol.encode(message))
        self.out.flush()

    def call(self, op: str, *args: Any) -> Any:
        self.send({"t": "call", "op": op, "args": list(args)})
        reply, _ = protocol.read_blocking(self.inp)
        if reply.get("t") != "reply":
            raise protocol.Closed(f"expected a reply, got {reply.get('t')!r}")
        if reply.get("error"):
            raise StorageCallFailed(str(reply["error"]))
        return reply.get("value")


def _run(talk: _Conversation, message: dict[str, Any], activity: bytes) -> None:
    from firehook import scripts

    limits = scripts.ScriptLimits(**message["limits"])
    outcome = scripts.run_script(
        message["source"],
        activity_json=activity.decode("utf-8", "surrogatepass"),
        project=message["project"],
        variables=message["variables"],
        storage=RemoteStorage(talk),
        limits=limits,
        log=lambda line: talk.send({"t": "log", "line": line}),
        outbound_allow=tuple(message.get("outbound_allow") or ()),
        dry_fetch=bool(message.get("dry_fetch")),
    )
    talk.send({"t": "done", "success": outcome.success, "error": outcome.error, "limit": outcome.limit,
               "duration_ms": outcome.duration_ms})


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    parent = os.environ.get(PARENT_ENV)
    if parent and os.getppid() != int(parent):
        raise SystemExit(0)  # the parent died before prctl: nobody will ever ask anything


NICENESS = 10  # scripts yield the CPU to the API and the worker: a runaway never slows them


def main() -> None:
    _die_with_parent()
    with contextlib.suppress(OSError):
        os.nice(NICENESS)
    # SIGINT (a terminal's ^C to the whole group) is the parent's business: it stops us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The protocol owns the original standard output; anything printed goes to stderr.
    out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    inp = sys.stdin.buffer
    talk = _Conversation(inp, out)  # type: ignore[arg-type]
    from firehook import scripts

    scripts.warm_up()
    talk.send({"t": "ready", "pid": os.getpid()})
    while True:
        try:
            message, blob = protocol.read_blocking(inp)
        except protocol.Closed:
            return
        if message.get("t") == "run":
            talk.run = message.get("n")
            try:
                _run(talk, message, blob)
            finally:
                talk.run = None


if __name__ == "__main__":
    main()
