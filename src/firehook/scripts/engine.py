"""Adapter over quickjs-rs (QuickJS-ng compiled to WebAssembly, run by wasmtime).

Everything that knows quickjs-rs lives here and in :mod:`fastpath` / :mod:`image`. Each
:class:`Sandbox` is its own wasm instance (its own linear memory), so nothing leaks between
runs. What the library does not do for us is done here, reaching some of its private
attributes (it is pinned to 0.2.x in ``pyproject.toml``; the tests pin what is relied on):

* **Memory.** The library's memory limit is not enforced in 0.2.x, so the wasm store's linear
  memory is capped through wasmtime's store limiter; ``memory.grow`` past the cap fails, the
  engine's allocator fails, and the script ends with an out-of-memory error or a trap.
* **One deadline per run.** The library puts a deadline on each ``eval``; a run is several
  calls (and time spent in ``fetch``), so the interrupt poll is replaced by the run's own.
* **Start-up cost.** Evaluating Underscore and the prelude takes ~13 ms; instead, they are
  evaluated once per process and every sandbox starts from a copy of that heap
  (:mod:`image`), and instances are made and called through leaner paths (:mod:`fastpath`).
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Any, Self

import quickjs_rs
import wasmtime
from quickjs_rs import _engine as qjs_engine  # private: the shared compiled guest module

from firehook.scripts import fastpath, image

# The run's own interrupt poll enforces the deadline; the library's per-eval one must never
# fire first, so it is set far away.
_NO_LIBRARY_TIMEOUT = 10.0 * 365 * 24 * 3600
# How close to the memory cap counts as "the cap was hit" when the engine reports a failure
# that does not say so itself (an allocation that failed while building the error object).
_CAP_SLACK = 4 * 1024 * 1024

HostFunction = Callable[[Any, Any], str]


class EngineFailure(Exception):
    """The engine stopped a call.

    ``kind`` is ``"js"`` (an uncaught JavaScript exception: ``name``, ``message``, ``stack``),
    ``"interrupted"`` (the interrupt poll said stop), ``"memory"``, ``"stack"`` (the wasm call
    stack overflowed) or ``"fault"`` (any other trap; the sandbox is unusable afterwards).
    """

    def __init__(
        self, kind: str, message: str, *, name: str | None = None, stack: str | None = None
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.name = name
        self.message = message
        self.stack = stack


_HOST_NAME = "__fh"


def _unused_host(op: Any, arg: Any) -> str:
    raise RuntimeError("the host function is not callable while the image is built")


def _new_context(should_interrupt: Callable[[], bool]) -> tuple[quickjs_rs.Runtime, Any]:
    """A runtime and context whose guest has not been called yet (no limits set through it)."""
    runtime = quickjs_rs.Runtime(memory_limit=None, stack_limit=None)
    engine_runtime = runtime._engine_rt
    # Private: the run's deadline (and limits that end the run) replace the per-eval one.
    engine_runtime.set_interrupt_handler(should_interrupt)
    engine_runtime._new_instance = lambda: fastpath.new_instance(engine_runtime)  # type: ignore[method-assign]
    ctx = runtime.new_context(timeout=_NO_LIBRARY_TIMEOUT)
    return runtime, ctx


def _split(text: str) -> tuple[str, str]:
    op, _, arg = text.partition("\n")
    return op, arg


def _lean_host_call(instance: Any, host: HostFunction) -> Callable[[int, int, int, int, int], int]:
    """The guest's ``host_call`` import for a prelude sandbox, leaner than the library's.

    The prelude only ever calls ``__fh`` with one string (operation, newline, argument) and
    expects a string back, so the name lookup and the generic argument marshalling (a type
    probe and a dozen guest calls per argument) are skipped, and strings are copied in and out
    of guest memory directly (bounds-checked against its size, as the library does — its size
    *after* each guest call, since any of them may grow it). Any failure returns the library's
    error sentinel, which the guest turns into a sanitized ``HostError`` without host details.
    """
    call, store, memory = instance.c, instance.store, instance.mem
    # The prelude passes a string primitive, so reading it runs no script code: no need to
    # release the interpreter lock (and hand it over to another thread) for it.
    get_string = fastpath.holding(instance._exports["get_string"])

    def base() -> int:
        # Read each time: the memory moves when it grows.
        return ctypes.cast(memory.data_ptr(store), ctypes.c_void_p).value or 0

    def host_call(name_ptr: int, name_len: int, this: int, argc: int, argv_ptr: int) -> int:
        try:
            size = memory.data_len(store)
            if argc != 1 or not 0 <= argv_ptr <= size - 4:
                return qjs_engine.HOST_CALL_ERROR
            handle = ctypes.c_int32.from_address(base() + argv_ptr).value
            if get_string(store, handle) != qjs_engine.STATUS_OK:
                return qjs_engine.HOST_CALL_ERROR
            length, pointer = call("qjs_last_len"), call("qjs_last_ptr")
            # Read again: copying the string out may have grown the memory.
            if not (0 <= length and 0 <= pointer and pointer + length <= memory.data_len(store)):
                return qjs_engine.HOST_CALL_ERROR
            text = ctypes.string_at(base() + pointer, length).decode("utf-8", "surrogatepass")
            call("qjs_result_free")
            answer = host(*_split(text)).encode("utf-8", "surrogatepass")
            # At least one byte, so the guest never sees a null pointer.
            reserved = max(len(answer), 1)
            target = call("qjs_alloc", reserved)
            if target <= 0 or target + reserved > memory.data_len(store):
                return qjs_engine.HOST_CALL_ERROR
            try:
                ctypes.memmove(base() + target, answer, len(answer))
                return int(call("new_string", target, len(answer)))
            finally:
                call("qjs_free", target, reserved)
        except Exception:  # noqa: BLE001 - nothing may propagate into the guest
            return qjs_engine.HOST_CALL_ERROR

    return host_call


def _fresh_memory() -> bytes:
    runtime, ctx = _new_context(lambda: False)
    try:
        inst = ctx._engine_ctx._inst
        return bytes(inst.mem.read(inst.store, 0, inst.mem.data_len(inst.store)))
    finally:
        ctx.close()
        runtime.close()


def _build_image() -> image.HeapImage:
    def register(ctx: quickjs_rs.Context) -> None:
        # Creates the JS function object __fh; in sandboxes, calls to it reach the run's host
        # through the lean host_call import, whatever the library's id for it.
        ctx.register(_HOST_NAME, _unused_host, is_async=False)

    return image.build(register, _fresh_memory)


def prelude_image() -> image.HeapImage:
    """The heap after Underscore and the prelude ran, built once per process."""
    return image.cached(_build_image)


class Sandbox:
    """One fresh, isolated JavaScript instance.

    With ``prelude=True`` it starts from the prelude image (globals, Underscore, the host
    wrappers) and ``host(op, arg)`` answers the prelude's ``__fh`` (called with the operation,
    a newline and the argument as one string); without, it is a bare engine whose ``__fh``
    reaches ``host`` too (used to check syntax).
    """

    def __init__(
        self,
        *,
        memory_bytes: int,
        should_interrupt: Callable[[], bool],
        host: HostFunction,
        prelude: bool = True,
    ) -> None:
        self._memory_bytes = memory_bytes
        self._runtime, self._ctx = _new_context(should_interrupt)
        try:
            self._setup(host, prelude)
        except BaseException:
            self.close()
            raise

    def _setup(self, host: HostFunction, prelude: bool) -> None:
        instance = self._ctx._engine_ctx._inst  # private: the wasm store and memory
        self._store: wasmtime.Store = instance.store
        self._memory: wasmtime.Memory = instance.mem
        if prelude:
            # The image already holds the JS side of __fh; only the Python side is bound here
            # (registering through the library would first boot a guest runtime, then be
            # overwritten by the image).
            instance._host_call = _lean_host_call(instance, host)
            prelude_image().write_into(self._store, self._memory, instance.sp)
        else:
            self._ctx.register(_HOST_NAME, lambda text="": host(*_split(text)), is_async=False)
        self._store.set_limits(memory_size=self._memory_bytes)

    def memory_size(self) -> int:
        """Bytes of linear memory the instance holds now."""
        try:
            return int(self._memory.data_len(self._store))
        except Exception:  # noqa: BLE001 - a closed or broken store has no memory to report
            return 0

    def near_memory_cap(self) -> bool:
        """Whether the memory is (about) as large as the cap allows."""
        slack = min(_CAP_SLACK, self._memory_bytes // 8)
        return self.memory_size() >= self._memory_bytes - slack

    def eval(self, code: str) -> Any:
        """Evaluate ``code`` (strict global code) and return its value as Python."""
        try:
            return self._ctx.eval(code)
        except BaseException as exc:  # noqa: BLE001 - _failure re-raises what is not ours
            raise self._failure(exc) from None

    def run_jobs(self, stop: Callable[[], bool]) -> None:
        """Run queued promise jobs until none is left or ``stop()`` says so.

        The guest runs jobs in batches and swallows a job's exception — the interrupt poll's
        too — so a job stopped at the deadline does not end the drain by itself, and a chain
        of jobs with no loop in them is never polled at all: ``stop`` is asked between batches.
        """
        try:
            # private: no public drain
            while not stop() and self._ctx._engine_ctx.run_pending_jobs() > 0:
                pass
        except BaseException as exc:  # noqa: BLE001 - _failure re-raises what is not ours
            raise self._failure(exc) from None

    def _failure(self, exc: BaseException) -> BaseException:
        if isinstance(exc, quickjs_rs.InterruptError):
            return EngineFailure("interrupted", "interrupted")
        if isinstance(exc, quickjs_rs.MemoryLimitError):
            return EngineFailure("memory", "out of memory")
        if isinstance(exc, quickjs_rs.JSError):
            name, message, stack = exc.name, exc.message, exc.stack
            if (name, message) == ("InternalError", "out of memory"):
                return EngineFailure("memory", "out of memory")
            if name == "InternalError" and "interrupted" in message:
                return EngineFailure("interrupted", "interrupted")
            # When even the error object cannot be allocated, the engine throws null.
            if message in ("null", "") and self.near_memory_cap():
                return EngineFailure("memory", "out of memory")
            return EngineFailure("js", message, name=name, stack=stack)
        if isinstance(exc, wasmtime.Trap | wasmtime.WasmtimeError):
            text = str(exc)
            if "call stack exhausted" in text:
                return EngineFailure("stack", "maximum call stack size exceeded")
            if self.near_memory_cap():
                return EngineFailure("memory", "out of memory")
            return EngineFailure("fault", text.split("\n", 1)[0])
        if isinstance(exc, quickjs_rs.QuickJSError):
            if self.near_memory_cap():
                return EngineFailure("memory", "out of memory")
            return EngineFailure("fault", str(exc))
        if isinstance(exc, Exception):
            return EngineFailure("fault", f"{type(exc).__name__}: {exc}")
        return exc  # KeyboardInterrupt and the like are not ours to swallow

    def close(self) -> None:
        """Release the wasm instance (its memory goes back at once)."""
        try:
            self._ctx.close()
        finally:
            self._runtime.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
