"""The wasm guest (QuickJS-ng built by ``vendor/quickjs/build.sh``) and fast calls into it.

**The guest.** ``vendor/quickjs/firehook-quickjs.wasm`` is QuickJS-ng with firehook's patch
(true error positions, callees named in "is not a function", the deadline polled while
compiling) behind a small ABI of its own (``vendor/quickjs/fh_guest.c``): strings go in
through ``fh_alloc``'d buffers and come back through a result buffer; the script's ``__fh``
reaches the host through the ``env.host_call``/``env.host_answer`` imports and the interrupt
poll through ``env.host_interrupt``. It is compiled once per process.

**Calls into the guest.** wasmtime-py's generic ``Func.__call__`` spends ~30 µs on each call
re-reading the function's type and boxing every value. The guest's exports take and return
only numbers, and their types never change, so the export table of each instance made here
holds callables that know the types in advance and go straight to ``wasmtime_func_call`` —
the same C entry point, with the same trap handling. Calls that cannot run any JavaScript
(allocate, free, read the result buffer) are made without releasing the interpreter lock;
calls that may run script code (``fh_eval``, ``fh_run_jobs``) release it.

**Calls from the guest.** The guest polls ``env.host_interrupt`` thousands of times a second
while a script runs; each poll through wasmtime-py's generic trampoline would hold the
interpreter lock for tens of microseconds. The process's linker is made with lean "unchecked"
callbacks that read and write the raw argument slots and go to the :class:`Guest` the
calling thread is running (instances are only entered through :meth:`Guest.call`).

This reaches private parts of wasmtime-py (its C API bindings), pinned in ``pyproject.toml``.
"""

from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import wasmtime
from wasmtime import _ffi as ffi  # private: the C API wasmtime-py itself uses

WASM_PATH = Path(__file__).resolve().parent / "vendor" / "quickjs" / "firehook-quickjs.wasm"

_KIND_BY_TYPE = {
    "i32": ffi.WASMTIME_I32.value,
    "i64": ffi.WASMTIME_I64.value,
    "f32": ffi.WASMTIME_F32.value,
    "f64": ffi.WASMTIME_F64.value,
}
_FIELD_BY_KIND = {kind: name for name, kind in _KIND_BY_TYPE.items()}

# Exports that never run script code and finish in microseconds: called holding the lock.
_QUICK = frozenset({"fh_alloc", "fh_free", "fh_result_ptr", "fh_result_len"})

# The same C function, bound twice: through ctypes' CDLL (releases the interpreter lock
# during the call) and through a PyDLL (keeps it).
_call_releasing = ffi.dll["wasmtime_func_call"]
_call_holding = ctypes.PyDLL(ffi.dll._name, handle=ffi.dll._handle)["wasmtime_func_call"]
for _fn in (_call_releasing, _call_holding):
    _fn.restype = ctypes.POINTER(ffi.wasmtime_error_t)
    _fn.argtypes = [
        ctypes.POINTER(ffi.wasmtime_context_t),
        ctypes.POINTER(ffi.wasmtime_func_t),
        ctypes.POINTER(ffi.wasmtime_val_t),
        ctypes.c_size_t,
        ctypes.POINTER(ffi.wasmtime_val_t),
        ctypes.c_size_t,
        ctypes.POINTER(ctypes.POINTER(ffi.wasm_trap_t)),
    ]


@dataclass(frozen=True)
class _Spec:
    call: Any
    index: int
    params: tuple[int, ...]
    fields: tuple[str, ...]
    results: tuple[int, ...]
    result_field: str | None


_specs: dict[str, _Spec] | None = None
_specs_lock = threading.Lock()


def _specs_of(module: wasmtime.Module) -> dict[str, _Spec]:
    """Index and number types of every export that takes and returns only numbers."""
    global _specs
    if _specs is None:
        with _specs_lock:
            if _specs is None:
                table: dict[str, _Spec] = {}
                for index, export in enumerate(module.exports):
                    ty = export.type
                    if not isinstance(ty, wasmtime.FuncType):
                        table[export.name] = _Spec(None, index, (), (), (), None)
                        continue
                    try:
                        params = tuple(_KIND_BY_TYPE[str(p)] for p in ty.params)
                        results = tuple(_KIND_BY_TYPE[str(r)] for r in ty.results)
                    except KeyError:
                        continue  # reference types: the guest has none
                    fields = tuple(_FIELD_BY_KIND[k] for k in params)
                    result_field = _FIELD_BY_KIND[results[0]] if len(results) == 1 else None
                    call = _call_holding if export.name in _QUICK else _call_releasing
                    table[export.name] = _Spec(call, index, params, fields, results, result_field)
                _specs = table
    return _specs


class _FastFunc:
    __slots__ = ("_func", "_spec")

    def __init__(self, func: Any, spec: _Spec) -> None:
        self._func = func  # a wasmtime_func_t
        self._spec = spec

    def __call__(self, store: wasmtime.Store, *args: Any) -> Any:
        spec = self._spec
        count = len(args)
        if count != len(spec.params):
            raise wasmtime.WasmtimeError(
                f"wrong number of parameters: given {count}, expected {len(spec.params)}"
            )
        params = (ffi.wasmtime_val_t * count)()
        for i in range(count):
            slot = params[i]
            slot.kind = spec.params[i]  # type: ignore[assignment]
            setattr(slot.of, spec.fields[i], args[i])
        nresults = len(spec.results)
        results = (ffi.wasmtime_val_t * nresults)()
        # What wasmtime-py's enter_wasm does, inline; the host imports here never leave a
        # Python exception behind for it to re-raise (they catch everything).
        trap = ctypes.POINTER(ffi.wasm_trap_t)()
        error = spec.call(
            store._context(),
            ctypes.byref(self._func),
            params,
            count,
            results,
            nresults,
            ctypes.byref(trap),
        )
        if error:
            raise wasmtime.WasmtimeError._from_ptr(error)
        if trap:
            raise wasmtime.Trap._from_ptr(trap)
        if spec.result_field is not None:
            return getattr(results[0].of, spec.result_field)
        if nresults == 0:
            return None
        return [getattr(results[i].of, _FIELD_BY_KIND[k]) for i, k in enumerate(spec.results)]


class _Exports(dict):  # type: ignore[type-arg]
    """An instance's exports by name, each read from the C API the first time it is used."""

    def __init__(self, instance: wasmtime.Instance, store: wasmtime.Store, specs: dict[str, _Spec]):
        super().__init__()
        self._instance = instance
        self._store = store
        self._specs = specs

    def __missing__(self, name: str) -> Any:
        spec = self._specs[name]
        item = ffi.wasmtime_extern_t()
        name_ptr = ctypes.POINTER(ctypes.c_char)()
        name_len = ctypes.c_size_t(0)
        found = ffi.wasmtime_instance_export_nth(
            self._store._context(),
            ctypes.byref(self._instance._instance),
            spec.index,
            ctypes.byref(name_ptr),
            ctypes.byref(name_len),
            ctypes.byref(item),
        )
        if not found or ctypes.string_at(name_ptr, name_len.value).decode() != name:
            raise RuntimeError(f"guest export {name!r} is not at index {spec.index}")
        value: Any
        if item.kind == ffi.WASMTIME_EXTERN_FUNC.value:
            value = _FastFunc(item.of.func, spec)
        elif item.kind == ffi.WASMTIME_EXTERN_MEMORY.value:
            value = wasmtime.Memory._from_raw(item.of.memory)
        elif item.kind == ffi.WASMTIME_EXTERN_GLOBAL.value:
            value = wasmtime.Global._from_raw(item.of.global_)
        else:
            raise RuntimeError(f"guest export {name!r} is of an unexpected kind")
        self[name] = value
        return value


# ---- the module and its imports ------------------------------------------------------------

_engine: wasmtime.Engine | None = None
_module: wasmtime.Module | None = None
_module_lock = threading.Lock()


def module() -> wasmtime.Module:
    """The guest, compiled once per process."""
    global _engine, _module
    if _module is None:
        with _module_lock:
            if _module is None:
                _engine = wasmtime.Engine()
                _module = wasmtime.Module(_engine, WASM_PATH.read_bytes())
    return _module


_current = threading.local()

_Callback = ffi.wasmtime_func_unchecked_callback_t


def _route(handler: str, nargs: int, returns: bool, failed: int) -> Any:
    """An unchecked callback handing ``nargs`` i32 slots to the running guest's ``handler``."""

    def callback(env: Any, caller: Any, slots: Any, count: int) -> int:
        try:
            guest = _current.guest
            value = getattr(guest, handler)(*[slots[i].i32 for i in range(nargs)])
            if returns:
                slots[0].i32 = int(value)
        except BaseException:  # noqa: BLE001 - nothing may propagate into the guest
            if returns:
                slots[0].i32 = failed  # fail closed
        return 0

    return _Callback(callback)


# Kept referenced for the life of the process: the linker holds raw pointers to them.
_CALLBACKS = {
    "host_call": (_route("host_call", 2, True, -1), 2, True),
    "host_answer": (_route("host_answer", 1, False, 0), 1, False),
    "host_interrupt": (_route("host_interrupt", 0, True, 1), 0, True),
}

_linker: wasmtime.Linker | None = None
_linker_lock = threading.Lock()


def _lean_linker() -> wasmtime.Linker:
    """The process's linker: WASI, and the guest's ``env`` imports as lean callbacks."""
    global _linker
    if _linker is None:
        module()
        with _linker_lock:
            if _linker is None:
                linker = wasmtime.Linker(_engine)  # type: ignore[arg-type]
                linker.define_wasi()
                i32 = wasmtime.ValType.i32()
                for name, (callback, nargs, returns) in _CALLBACKS.items():
                    ty = wasmtime.FuncType([i32] * nargs, [i32] if returns else [])
                    module_name, import_name = b"env", name.encode()
                    error = ffi.wasmtime_linker_define_func_unchecked(
                        linker.ptr(),
                        ctypes.create_string_buffer(module_name),
                        len(module_name),
                        ctypes.create_string_buffer(import_name),
                        len(import_name),
                        ty.ptr(),
                        callback,
                        None,
                        ctypes.CFUNCTYPE(None, ctypes.c_void_p)(),
                    )
                    if error:
                        raise wasmtime.WasmtimeError._from_ptr(error)
                _linker = linker
    return _linker


class Guest:
    """One instance of the guest: its own store and linear memory.

    ``host_call``/``host_answer``/``host_interrupt`` are the imports' Python side, set by the
    owner before the first call.
    """

    def __init__(self) -> None:
        guest_module = module()
        self.store = wasmtime.Store(_engine)  # type: ignore[arg-type]
        # A WASI context with nothing in it: no environment, no files, no inherited stdout.
        self.store.set_wasi(wasmtime.WasiConfig())
        self.instance = _lean_linker().instantiate(self.store, guest_module)
        self.exports = _Exports(self.instance, self.store, _specs_of(guest_module))
        self.memory: wasmtime.Memory = self.exports["memory"]

    def call(self, name: str, *args: int) -> Any:
        """Call export ``name``; imports it reaches go to this guest."""
        previous = getattr(_current, "guest", None)
        _current.guest = self
        try:
            return self.exports[name](self.store, *args)
        finally:
            _current.guest = previous

    def base(self) -> int:
        """The address of linear memory now (it moves when the memory grows)."""
        return ctypes.cast(self.memory.data_ptr(self.store), ctypes.c_void_p).value or 0

    def size(self) -> int:
        return int(self.memory.data_len(self.store))

    def read(self, pointer: int, length: int) -> bytes:
        """``length`` bytes at ``pointer``, bounds-checked against the memory's size now."""
        if not (0 <= pointer and 0 <= length and pointer + length <= self.size()):
            raise ValueError("guest pointer out of bounds")
        return ctypes.string_at(self.base() + pointer, length)

    def write(self, pointer: int, data: bytes) -> None:
        if not (0 < pointer and pointer + len(data) <= self.size()):
            raise ValueError("guest pointer out of bounds")
        ctypes.memmove(self.base() + pointer, data, len(data))

    def put_string(self, data: bytes) -> int:
        """A NUL-terminated copy of ``data`` in guest memory (free it with ``fh_free``)."""
        pointer = int(self.call("fh_alloc", len(data) + 1))
        if pointer <= 0:
            raise MemoryError("the guest could not allocate")
        self.write(pointer, data + b"\0")
        return pointer

    def result(self) -> bytes:
        return self.read(int(self.call("fh_result_ptr")), int(self.call("fh_result_len")))

    def close(self) -> None:
        self.store.close()
