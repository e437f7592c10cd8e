"""Faster paths through quickjs-rs and wasmtime-py for the per-run hot spots.

**Calls into the guest.** quickjs-rs drives the engine through many small calls into the wasm guest (allocate, write,
evaluate, read back, free: a dozen per ``eval``, more per host call), and wasmtime-py's
generic ``Func.__call__`` spends ~30 µs on each re-reading the function's type and boxing
every value. The guest's exports take and return only numbers, and their types never change,
so the export table of each instance made here holds callables that know the types in
advance and go straight to ``wasmtime_func_call`` — the same C entry point, with the same
trap handling.

Calls that cannot run any JavaScript (allocate, free, read a result buffer, make a string)
are made without releasing the interpreter lock: each release and re-acquisition is a chance
for another thread to take the lock, and with ~100 such calls per run, concurrent runs spent
more time handing the lock over than working. Calls that may run script code (``eval_code``,
property reads that may hit getters, ``call_function``…) still release it.

**Creating an instance.** quickjs-rs builds wasmtime-py's export map of every new instance,
which wraps all ~55 exports one by one (~1 ms); :func:`new_instance` builds the same
``_Instance`` with the export table above, read straight from the C API by index.

**Calls from the guest.** The guest polls ``env.host_interrupt`` thousands of times a second
while a script runs, and each poll through wasmtime-py's generic trampoline holds the
interpreter lock for tens of microseconds: a runaway script in one thread slowed the runs of
other threads down by half. Instances made here are linked (once per process, like the
library's own linker) with lean "unchecked" callbacks for the guest's imports, which read
and write the raw argument slots directly and go to the same quickjs-rs handlers.

Both reach private parts of quickjs-rs 0.2.x and wasmtime-py; ``tests/unit/scripts`` pins
that the instances made here carry exactly the attributes the library's own carry.
"""

from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass
from typing import Any

import wasmtime
from quickjs_rs import _engine as qjs_engine  # private: the instance class and shared module
from quickjs_rs._transform import SourceTransformer
from quickjs_rs._wasmtime import shared_wasmtime_engine
from wasmtime import _ffi as ffi  # private: the C API wasmtime-py itself uses

_KIND_BY_TYPE = {
    "i32": ffi.WASMTIME_I32.value,
    "i64": ffi.WASMTIME_I64.value,
    "f32": ffi.WASMTIME_F32.value,
    "f64": ffi.WASMTIME_F64.value,
}
_FIELD_BY_KIND = {kind: name for name, kind in _KIND_BY_TYPE.items()}

# Exports that never run script code and finish in microseconds: called holding the lock.
_QUICK = frozenset(
    {
        "qjs_alloc",
        "qjs_free",
        "qjs_last_len",
        "qjs_last_ptr",
        "qjs_result_free",
        "new_string",
        "new_number",
        "new_bool",
        "new_null",
        "new_undefined",
        "new_object",
        "new_array",
        "new_function",
        "free_value",
        "dup_handle",
        "type_of",
        "global_object",
        "is_promise",
        "set_max_stack_size",
        "set_memory_limit",
    }
)

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
                        continue  # reference types: not used by quickjs-rs
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


def holding(func: Any) -> Any:
    """The same export, called without releasing the interpreter lock.

    Only for calls known not to run script code — e.g. ``get_string`` on a handle that is
    known to be a string (it would call ``toString`` on an object).
    """
    if not isinstance(func, _FastFunc):
        return func
    spec = func._spec
    return _FastFunc(
        func._func,
        _Spec(_call_holding, spec.index, spec.params, spec.fields, spec.results, spec.result_field),
    )


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


# ---- host imports ------------------------------------------------------------------------

_Callback = ffi.wasmtime_func_unchecked_callback_t


def _route(handler: str, nargs: int) -> Any:
    """An unchecked callback that hands ``nargs`` i32 slots to ``_CUR.inst.<handler>``."""

    def callback(env: Any, caller: Any, slots: Any, count: int) -> int:
        try:
            instance = qjs_engine._CUR.inst
            args = [slots[i].i32 for i in range(nargs)]
            slots[0].i32 = int(getattr(instance, handler)(*args))
        except BaseException:  # noqa: BLE001 - nothing may propagate into the guest
            slots[0].i32 = -1 if handler != "_host_interrupt" else 1  # fail closed
        return 0

    return _Callback(callback)


# Kept referenced for the life of the process: the linker holds raw pointers to them.
_CALLBACKS = {
    "host_call": (_route("_host_call", 5), 5),
    "host_interrupt": (_route("_host_interrupt", 0), 0),
    "host_module_normalize": (_route("_host_module_normalize", 5), 5),
    "host_module_load": (_route("_host_module_load", 3), 3),
}

_linker: wasmtime.Linker | None = None
_linker_lock = threading.Lock()


def _lean_linker() -> wasmtime.Linker:
    """The process's linker: WASI, and the guest's four ``env`` imports as lean callbacks."""
    global _linker
    if _linker is None:
        with _linker_lock:
            if _linker is None:
                linker = wasmtime.Linker(shared_wasmtime_engine())
                linker.define_wasi()
                i32 = wasmtime.ValType.i32()
                for name, (callback, nargs) in _CALLBACKS.items():
                    ty = wasmtime.FuncType([i32] * nargs, [i32])
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


def new_instance(runtime: Any) -> Any:
    """A quickjs-rs ``_Instance`` for ``runtime`` (a ``QjsRuntime``), made without the
    library's slow export map; mirrors ``_Instance.__init__`` + ``QjsRuntime._new_instance``
    for a runtime with no memory or stack limit set through the guest."""
    artifact = qjs_engine._quickjs_artifact()
    inst = qjs_engine._Instance.__new__(qjs_engine._Instance)
    inst.build_id = artifact.build_id
    inst.store = wasmtime.Store(shared_wasmtime_engine())
    # A WASI context with nothing in it: no environment, no files, no inherited stdout.
    inst.store.set_wasi(wasmtime.WasiConfig())
    inst.interrupt_handler = None
    inst.inst = _lean_linker().instantiate(inst.store, artifact.module)
    table = _Exports(inst.inst, inst.store, _specs_of(artifact.module))
    inst.mem = table["memory"]
    inst.sp = table["__stack_pointer"]
    inst._exports = table  # type: ignore[assignment]
    inst.module_touched = False
    inst.sync_dispatch = None
    inst.async_dispatch = None
    inst.name_to_fn_id = {}
    inst.async_names = set()
    inst.in_sync_eval = False
    inst.sync_eval_hit_async = False
    inst.module_normalize = runtime._module_normalize
    inst.module_load = runtime._module_load
    inst.runtime_transform_flags = runtime._transform_flags
    inst.module_transform_flags = runtime._module_transform_flags
    inst.source_transformer = SourceTransformer()
    inst._closed = False
    inst.interrupt_handler = runtime._interrupt_handler
    runtime._instances.add(inst)
    return inst
