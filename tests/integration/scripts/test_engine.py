"""The engine adapter: isolation of sandboxes, the prelude image, the fast paths, threads."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import wasmtime

from firehook import errors, scripts
from firehook.scripts import engine, fastpath
from tests.integration.scripts.helpers import run


def _memory(sandbox: engine.Sandbox) -> bytes:
    return sandbox._guest.read(0, sandbox.memory_size())


def test_prelude_image_gives_every_sandbox_the_same_heap() -> None:
    image = engine.prelude_image()
    expected = bytearray(engine._fresh_memory())
    expected.extend(bytes(image.size - len(expected)))
    for offset, length in image.spans:
        expected[offset : offset + length] = image.heap[offset : offset + length]
    first = engine.Sandbox(
        memory_bytes=64 << 20, should_interrupt=lambda: False, host=lambda op, arg: ""
    )
    second = engine.Sandbox(
        memory_bytes=64 << 20, should_interrupt=lambda: False, host=lambda op, arg: ""
    )
    try:
        assert _memory(first) == bytes(expected)
        first.eval("globalThis.leak = 'x'.repeat(100000); Object.prototype.p = 1")
        assert _memory(second) == bytes(expected)
        assert second.eval("typeof leak + typeof ({}).p") == "undefinedundefined"
    finally:
        first.close()
        second.close()


def test_sandbox_from_the_image_has_the_prelude() -> None:
    sandbox = engine.Sandbox(
        memory_bytes=64 << 20, should_interrupt=lambda: False, host=lambda op, arg: ""
    )
    try:
        assert sandbox.eval("_.VERSION") == "1.13.8"
        assert sandbox.eval("typeof fetch + typeof crypto.createHmac + typeof require") == (
            "functionfunctionfunction"
        )
    finally:
        sandbox.close()


def test_the_guest_is_the_vendored_build() -> None:
    assert fastpath.WASM_PATH.name == "firehook-quickjs.wasm"
    names = {export.name for export in fastpath.module().exports}
    assert {"fh_init", "fh_eval", "fh_run_jobs", "fh_alloc", "fh_free", "fh_oom"} <= names
    # The guest imports nothing beyond its three host functions and WASI.
    imports = {(item.module, item.name) for item in fastpath.module().imports}
    assert {name for module, name in imports if module == "env"} == {
        "host_call", "host_answer", "host_interrupt"
    }
    assert {module for module, _ in imports} == {"env", "wasi_snapshot_preview1"}


def test_fast_calls_agree_with_wasmtime_calls() -> None:
    sandbox = engine.Sandbox(
        memory_bytes=64 << 20, should_interrupt=lambda: False, host=lambda op, arg: ""
    )
    try:
        guest = sandbox._guest
        assert isinstance(guest.exports["fh_alloc"], fastpath._FastFunc)
        pointer = guest.call("fh_alloc", 16)
        assert isinstance(pointer, int) and pointer > 0
        guest.call("fh_free", pointer)
        # The same export through wasmtime-py's generic call path gives the same answer.
        generic = guest.instance.exports(guest.store)["fh_result_len"]
        assert generic(guest.store) == guest.call("fh_result_len")
        assert sandbox.eval("[1, 2.5, 'x', true, null]") == [1, 2.5, "x", True, None]
        assert sandbox.eval("undefined") is None
        assert sandbox.eval("'a' + 'b'") == "ab"
    finally:
        sandbox.close()


def test_compile_runs_nothing() -> None:
    calls: list[str] = []
    sandbox = engine.Sandbox(
        memory_bytes=64 << 20,
        should_interrupt=lambda: False,
        host=lambda op, arg: calls.append(op) or "",
        prelude=False,
    )
    try:
        sandbox.compile("__fh('ran'); globalThis.marker = 1; for (;;) {}")
        assert calls == []
        assert sandbox.eval("typeof marker") == "undefined"
    finally:
        sandbox.close()


def test_a_trap_inside_the_guest_is_contained() -> None:
    broken = engine.Sandbox(
        memory_bytes=64 << 20, should_interrupt=lambda: False, host=lambda op, arg: ""
    )
    healthy = engine.Sandbox(
        memory_bytes=64 << 20, should_interrupt=lambda: False, host=lambda op, arg: ""
    )
    try:
        # A source pointer past the end of the memory: the guest's read traps.
        with pytest.raises(wasmtime.Trap):
            broken._guest.call("fh_eval", (1 << 31) - 16, 8, 0)
        assert healthy.eval("1 + 1") == 2
    finally:
        broken.close()
        healthy.close()


def test_traps_in_one_sandbox_leave_others_working() -> None:
    broken = engine.Sandbox(
        memory_bytes=64 << 20, should_interrupt=lambda: False, host=lambda op, arg: ""
    )
    healthy = engine.Sandbox(
        memory_bytes=64 << 20, should_interrupt=lambda: False, host=lambda op, arg: ""
    )
    try:
        with pytest.raises(engine.EngineFailure) as caught:
            broken.eval("function r() { return r() } r()")
        assert caught.value.kind == "stack"
        assert healthy.eval("1 + 1") == 2
    finally:
        broken.close()
        healthy.close()


def test_many_concurrent_runs_each_see_only_their_own_inputs() -> None:
    source = """
var mine = variables.n;
var spin = 0; for (var i = 0; i < 20000; i++) spin += i;
storage.set('seen', mine);
console.log(mine, activity.n, project.id, storage.get('seen'));
"""

    def one(n: int) -> tuple[int, list[str]]:
        result = run(
            source,
            activity_json=json.dumps({"n": n}),
            project={"id": f"p{n}"},
            variables={"n": n},
            limits=scripts.ScriptLimits(timeout=20.0),
        )
        assert result.outcome.success, result.log
        return n, result.lines

    with ThreadPoolExecutor(max_workers=8) as pool:
        for n, lines in pool.map(one, range(64)):
            assert lines == [f"{n} {n} p{n} {n}"]


def test_check_syntax_is_thread_safe_alongside_runs() -> None:
    failures: list[BaseException] = []

    def check() -> None:
        try:
            for _ in range(10):
                with pytest.raises(errors.ScriptError):
                    scripts.check_syntax("var = 1")
                scripts.check_syntax("var ok = 1")
        except BaseException as exc:  # noqa: BLE001 - surfaced in the test thread
            failures.append(exc)

    threads = [threading.Thread(target=check) for _ in range(3)]
    for thread in threads:
        thread.start()
    for _ in range(10):
        assert run("console.log(1)").lines == ["1"]
    for thread in threads:
        thread.join()
    assert not failures


def test_small_memory_limits_still_run_small_scripts_and_stop_big_ones() -> None:
    small = scripts.ScriptLimits(timeout=20.0, memory_mb=8)
    assert run("console.log(_.range(10).length)", limits=small).lines == ["10"]
    result = run("var a = []; while (true) a.push('x' + a.length)", limits=small)
    assert result.outcome.limit == "memory", result.log
    assert result.outcome.error == "memory limit of 8 MiB exceeded" or (
        result.outcome.error or ""
    ).startswith("memory limit of 8 MiB exceeded (line 1")
