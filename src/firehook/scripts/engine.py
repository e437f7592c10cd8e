"""The engine adapter: one :class:`Sandbox` per run, over an instance of the wasm guest of its own.

The guest is QuickJS-ng compiled to WebAssembly with firehook's patch and ABI
(:mod:`fastpath`, ``vendor/quickjs/``), run by wasmtime. A sandbox has its instance (and its
linear memory) to itself for its run; an instance serves another run only once it is
restored to the prelude's image byte for byte, so nothing leaks between runs.

* **Memory.** The store's linear memory is capped through wasmtime's store limiter;
  ``memory.grow`` past the cap fails, the engine's allocator fails, and the script ends with
  an out-of-memory error or a trap.
* **One deadline per run.** The guest's interrupt poll (also polled while compiling) asks the
  run's ``should_interrupt``.
* **Start-up cost.** Evaluating Underscore and the prelude takes ~13 ms; instead, they are
  evaluated once per process and every sandbox starts from a copy of that heap (:mod:`image`):
  a new instance, or a used one given back that heap byte for byte (:mod:`recycle`).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any, Self

import wasmtime

from firehook.scripts import fastpath, image, recycle

# How close to the memory cap counts as "the cap was hit" when the engine reports a failure
# that does not say so itself (an allocation that failed while building the error object).
_CAP_SLACK = 4 * 1024 * 1024
# QuickJS's own stack limit, below the guest's 2 MiB shadow stack (vendor/quickjs/build.sh).
_JS_STACK_BYTES = 1024 * 1024
# How many promise jobs run between two looks at the run's deadline.
_JOB_BATCH = 1000

# fh_eval's status codes and flags (vendor/quickjs/fh_guest.c).
_OK, _JS_ERROR, _INTERRUPTED, _NO_MEMORY = 0, 1, 2, 3
_COMPILE_ONLY, _SCRIPT_NAME = 1, 2

HostFunction = Callable[[str, str], str]


class EngineFailure(Exception):
    """The engine stopped a call.

    ``kind`` is ``"js"`` (an uncaught JavaScript exception: ``name``, ``message``, ``stack``),
    ``"interrupted"`` (the interrupt poll said stop), ``"memory"``, ``"stack"`` (the stack
    overflowed) or ``"fault"`` (any other trap; the sandbox is unusable afterwards).
    """

    def __init__(
        self, kind: str, message: str, *, name: str | None = None, stack: str | None = None
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.name = name
        self.message = message
        self.stack = stack


def _split(text: str) -> tuple[str, str]:
    op, _, arg = text.partition("\n")
    return op, arg


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogatepass")


def _bare_guest() -> fastpath.Guest:
    """A guest whose engine is initialised and holds nothing else."""
    guest = fastpath.Guest()
    guest.call("_initialize")
    if guest.call("fh_init", _JS_STACK_BYTES) != _OK:
        guest.close()
        raise MemoryError("the script engine could not start")
    return guest


def _fresh_memory() -> bytes:
    guest = fastpath.Guest()
    try:
        return guest.read(0, guest.size())
    finally:
        guest.close()


def _build_image() -> image.HeapImage:
    def evaluate(sandbox_eval: Callable[[str], Any]) -> None:
        sandbox_eval(image.UNDERSCORE_PATH.read_text(encoding="utf-8"))
        sandbox_eval(image.PRELUDE_PATH.read_text(encoding="utf-8"))

    sandbox = Sandbox(
        memory_bytes=1 << 30,
        should_interrupt=lambda: False,
        host=_unused_host,
        prelude=False,
    )
    try:
        evaluate(sandbox.eval)
        sandbox._guest.call("fh_gc")
        heap = sandbox._guest.read(0, sandbox._guest.size())
    finally:
        sandbox.close()
    return image.build(heap, _fresh_memory)


def _unused_host(op: str, arg: str) -> str:
    raise RuntimeError("the host function is not callable while the image is built")


def prelude_image() -> image.HeapImage:
    """The heap after Underscore and the prelude ran, built once per process."""
    return image.cached(_build_image)


_recyclers: list[recycle.Recycler] = []
_recyclers_lock = threading.Lock()


def _recycler() -> recycle.Recycler:
    """The process's used guests, ready for another run (:mod:`recycle`)."""
    if not _recyclers:
        heap = prelude_image()
        with _recyclers_lock:
            if not _recyclers:
                _recyclers.append(recycle.Recycler(heap))
    return _recyclers[0]


class Sandbox:
    """One fresh, isolated JavaScript instance.

    With ``prelude=True`` it starts from the prelude image (globals, Underscore, the host
    wrappers) and ``host(op, arg)`` answers the prelude's ``__fh`` (called with the operation,
    a newline and the argument as one string); without, it is a bare engine whose ``__fh``
    reaches ``host`` too.
    """

    def __init__(
        self,
        *,
        memory_bytes: int,
        should_interrupt: Callable[[], bool],
        host: HostFunction,
        prelude: bool = True,
    ) -> None:
        self._should_interrupt = should_interrupt
        self._host = host
        self._answer = b""
        # Whether the guest may serve another run once this one ends (recycle.py): only a
        # prelude guest whose calls all returned normally.
        self._recyclable = prelude
        guest: fastpath.Guest | None = None
        if prelude:
            heap = prelude_image()
            guest = _recycler().take()
            if guest is None:
                guest = fastpath.Guest()
                try:
                    heap.write_into(guest.store, guest.memory)
                except BaseException:
                    guest.close()
                    raise
            # A recycled guest's memory can be larger than a new one's: the cap grows with it,
            # so that the script has the same room.
            memory_bytes += _recycler().extra_bytes(guest)
        else:
            guest = _bare_guest()
        self._guest = guest
        self._memory_bytes = memory_bytes
        guest.host_call = self._host_call  # type: ignore[attr-defined]
        guest.host_answer = self._host_answer  # type: ignore[attr-defined]
        guest.host_interrupt = self._host_interrupt  # type: ignore[attr-defined]
        try:
            guest.store.set_limits(memory_size=memory_bytes)
        except BaseException:
            guest.close()
            raise

    # ---- the guest's imports (never raise into it: fastpath's callbacks fail closed) -------

    def _host_call(self, pointer: int, length: int) -> int:
        text = _decode(self._guest.read(pointer, length))
        self._answer = self._host(*_split(text)).encode("utf-8", "surrogatepass")
        return len(self._answer)

    def _host_answer(self, target: int) -> None:
        answer, self._answer = self._answer, b""
        self._guest.write(target, answer)

    def _host_interrupt(self) -> int:
        return 1 if self._should_interrupt() else 0

    # ---- calls -------------------------------------------------------------------------

    def memory_size(self) -> int:
        """Bytes of linear memory the instance holds now."""
        try:
            return self._guest.size()
        except Exception:  # noqa: BLE001 - a closed or broken store has no memory to report
            return 0

    def near_memory_cap(self) -> bool:
        """Whether the memory is (about) as large as the cap allows."""
        slack = min(_CAP_SLACK, self._memory_bytes // 8)
        return self.memory_size() >= self._memory_bytes - slack

    def eval(self, code: str, *, script: bool = False) -> Any:
        """Evaluate ``code`` as global code and return its value as Python (strings as they
        are, other values through JSON, ``undefined`` as None). ``script=True`` names the
        code ``<input>`` in stack traces, as the user's script is named."""
        return self._eval(code, _SCRIPT_NAME if script else 0)

    def compile(self, code: str) -> None:
        """Compile ``code`` as the user's script without running any of it; raise
        :class:`EngineFailure` (``"js"``, a SyntaxError) if it does not compile."""
        self._eval(code, _COMPILE_ONLY | _SCRIPT_NAME)

    def _eval(self, code: str, flags: int) -> Any:
        guest = self._guest
        try:
            data = code.encode("utf-8", "surrogatepass")
            pointer = guest.put_string(data)
            try:
                status = guest.call("fh_eval", pointer, len(data), flags)
            finally:
                guest.call("fh_free", pointer)
            if status != _OK:
                raise self._status_failure(status)
            if flags & _COMPILE_ONLY:
                return None
            result = guest.result()
        except EngineFailure:
            raise
        except BaseException as exc:  # noqa: BLE001 - _failure re-raises what is not ours
            raise self._failure(exc) from None
        tag, text = result[:1], _decode(result[1:])
        if tag == b"s":
            return text
        if tag == b"j":
            return json.loads(text)
        return None

    def run_jobs(self, stop: Callable[[], bool]) -> None:
        """Run queued promise jobs until none is left or ``stop()`` says so.

        A job's uncaught exception is dropped (as an unhandled rejection is), except the
        interrupt poll's and running out of memory, which end the drain. A chain of jobs with
        no loop in it is never polled by the engine, so ``stop`` is asked between batches.
        """
        try:
            while not stop():
                count = int(self._guest.call("fh_run_jobs", _JOB_BATCH))
                if count < 0:
                    raise self._status_failure(-count)
                if count == 0:
                    return
        except EngineFailure:
            raise
        except BaseException as exc:  # noqa: BLE001 - _failure re-raises what is not ours
            raise self._failure(exc) from None

    def _status_failure(self, status: int) -> EngineFailure:
        if status == _INTERRUPTED:
            return EngineFailure("interrupted", "interrupted")
        if status == _NO_MEMORY:
            return EngineFailure("memory", "out of memory")
        if status != _JS_ERROR:
            self._recyclable = False
            return EngineFailure("fault", f"the script engine failed (status {status})")
        parts = _decode(self._guest.result()).split("\0")
        name, message, stack = (parts + ["", "", ""])[:3]
        if (name, message) == ("InternalError", "out of memory"):
            return EngineFailure("memory", "out of memory")
        if (name, message) == ("RangeError", "Maximum call stack size exceeded"):
            return EngineFailure("stack", "maximum call stack size exceeded")
        # When even the error object cannot be allocated, the engine throws null.
        if message in ("null", "") and self.near_memory_cap():
            return EngineFailure("memory", "out of memory")
        return EngineFailure("js", message, name=name or None, stack=stack)

    def _failure(self, exc: BaseException) -> BaseException:
        self._recyclable = False  # a trap leaves the guest's stack pointer where it was
        if isinstance(exc, wasmtime.Trap | wasmtime.WasmtimeError):
            text = str(exc)
            if "call stack exhausted" in text:
                return EngineFailure("stack", "maximum call stack size exceeded")
            if self.near_memory_cap():
                return EngineFailure("memory", "out of memory")
            return EngineFailure("fault", text.split("\n", 1)[0])
        if isinstance(exc, MemoryError):
            return EngineFailure("memory", "out of memory")
        if isinstance(exc, Exception):
            return EngineFailure("fault", f"{type(exc).__name__}: {exc}")
        return exc  # KeyboardInterrupt and the like are not ours to swallow

    def close(self) -> None:
        """Release the wasm instance: back to the process's recycler, restored to the image,
        when its run ended cleanly; closed otherwise (its memory goes back at once)."""
        guest = self._guest
        if self._recyclable:
            self._recyclable = False
            guest.host_call = guest.host_answer = guest.host_interrupt = None  # type: ignore[attr-defined]
            if _recycler().give(guest):
                return
        guest.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
