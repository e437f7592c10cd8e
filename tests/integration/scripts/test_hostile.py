"""Hostile scripts end cleanly, with the limit named, while a well-behaved run carries on."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable

import pytest

from firehook import scripts
from tests.integration.scripts.helpers import Run, Server, run

HOSTILE_LIMITS = scripts.ScriptLimits(timeout=1.0, memory_mb=64, log_bytes=4096, fetch_limit=20)
# Where the memory limit (or the stack) must be what stops the script, the clock is generous:
# allocating 64 MiB takes a while on a busy machine.
SLOW_LIMITS = scripts.ScriptLimits(timeout=20.0, memory_mb=64, log_bytes=4096)
# The well-behaved runs assert success, not speed.
GOOD_LIMITS = scripts.ScriptLimits(timeout=20.0)

WELL_BEHAVED = """
var seen = _.map(activity.items, function (x) { return x * 2; });
var r = fetch(variables.url);
storage.set('n', (storage.get('n') || 0) + 1);
console.log('ok', seen.length, r.status, r.json().hello, variables.secret);
"""


def _alongside(server: Server, hostile: Callable[[], Run]) -> Run:
    """Run ``hostile`` in one thread while well-behaved runs repeat in another."""
    done = threading.Event()
    good: list[Run] = []
    errors: list[BaseException] = []

    def well_behaved() -> None:
        try:
            while not done.is_set() or not good:
                good.append(
                    run(
                        WELL_BEHAVED,
                        activity={"items": list(range(100))},
                        variables={"url": server.url("/json"), "secret": "good-secret"},
                        limits=GOOD_LIMITS,
                    )
                )
        except BaseException as exc:  # noqa: BLE001 - surfaced in the test thread
            errors.append(exc)

    thread = threading.Thread(target=well_behaved)
    thread.start()
    try:
        result = hostile()
    finally:
        done.set()
        thread.join(timeout=30)
    assert not errors, errors
    assert good, "no well-behaved run completed"
    for other in good:
        assert other.outcome.success, other.log
        assert other.lines[-1] == "ok 100 200 world good-secret"
    return result


def _hostile(source: str, **kwargs: object) -> Callable[[], Run]:
    kwargs.setdefault("limits", HOSTILE_LIMITS)
    kwargs.setdefault("variables", {"secret": "hostile-secret"})
    return lambda: run(source, **kwargs)  # type: ignore[arg-type]


def test_infinite_loop_stops_at_the_deadline(server: Server) -> None:
    result = _alongside(server, _hostile("while (true) {}"))
    assert result.outcome.limit == "timeout"
    assert result.outcome.error == "time limit of 1 s exceeded"
    assert result.lines[-1] == "time limit of 1 s exceeded"
    assert 900 <= result.outcome.duration_ms < 3000


def test_infinite_loop_that_catches_everything_still_stops(server: Server) -> None:
    result = _alongside(
        server,
        _hostile("while (true) { try { while (true) {} } catch (e) {} finally { continue } }"),
    )
    assert result.outcome.limit == "timeout"


def test_fetch_loop_stops_at_the_fetch_limit(server: Server) -> None:
    url = server.url("/json")
    result = _alongside(
        server, _hostile(f"while (true) {{ try {{ fetch('{url}') }} catch (e) {{}} }}")
    )
    assert result.outcome.limit == "fetch_limit"
    assert result.lines[-1] == "fetch limit of 20 calls per run exceeded"


def test_fetch_loop_to_a_slow_server_stops_at_the_deadline(server: Server) -> None:
    url = server.url("/slow?s=0.3")
    result = _alongside(
        server, _hostile(f"while (true) {{ try {{ fetch('{url}') }} catch (e) {{}} }}")
    )
    assert result.outcome.limit == "timeout"
    assert result.outcome.duration_ms < 3000


def test_catastrophic_regex_stops_at_the_deadline(server: Server) -> None:
    result = _alongside(server, _hostile("/(a+)+$/.test('a'.repeat(40) + 'b')"))
    assert result.outcome.limit == "timeout"
    assert result.outcome.duration_ms < 3000


@pytest.mark.parametrize(
    "source",
    [
        "var a = []; while (true) a.push({x: a.length, s: 'abc' + a.length})",
        "var a = []; while (true) a.push(new Array(100000).fill(1.5))",
        "var a = []; while (true) a.push(new ArrayBuffer(1024 * 1024))",
        "try { var a = []; while (true) a.push([a.length]) } catch (e) { console.log('caught') }",
    ],
)
def test_unbounded_allocation_ends_with_the_memory_limit(server: Server, source: str) -> None:
    result = _alongside(server, _hostile(source, limits=SLOW_LIMITS))
    assert result.outcome.limit == "memory", result.log
    assert result.outcome.error is not None
    assert result.outcome.error.startswith("memory limit of 64 MiB exceeded")
    assert result.lines[-1] == result.outcome.error


@pytest.mark.parametrize(
    "source",
    [
        "var s = 'x'.repeat(1024 * 1024 * 1023)",  # 1 GB, under the engine's length limit
        "var s = 'x'.repeat(1024 * 1024 * 1024)",  # 1 GiB, at the engine's length limit
        "var s = 'x'; while (true) s += s",
        "var b = new ArrayBuffer(1024 * 1024 * 1024)",
    ],
)
def test_a_1_gb_value_ends_with_the_memory_limit(server: Server, source: str) -> None:
    result = _alongside(server, _hostile(source, limits=SLOW_LIMITS))
    assert result.outcome.limit == "memory", result.log
    assert "memory limit" in (result.outcome.error or "")


def test_memory_cap_holds_in_the_wasm_store() -> None:
    from firehook.scripts import engine

    sandbox = engine.Sandbox(
        memory_bytes=32 * 1024 * 1024, should_interrupt=lambda: False, host=lambda op, arg: ""
    )
    try:
        with pytest.raises(engine.EngineFailure):
            sandbox.eval("var a = []; while (true) a.push('x' + a.length)")
        assert sandbox.memory_size() <= 32 * 1024 * 1024
    finally:
        sandbox.close()


def test_deep_recursion_ends_with_a_stack_overflow(server: Server) -> None:
    result = _alongside(
        server, _hostile("function down(n) { return down(n + 1) + 1 }\ndown(0)", limits=SLOW_LIMITS)
    )
    assert result.outcome.limit == "stack"
    assert result.outcome.error == "RangeError: Maximum call stack size exceeded (stack overflow)"


def test_deep_recursion_through_json_ends_cleanly(server: Server) -> None:
    source = "var a = []; for (var i = 0; i < 1e5; i++) a = [a]; JSON.stringify(a)"
    result = _alongside(server, _hostile(source, limits=SLOW_LIMITS))
    assert not result.outcome.success
    assert result.outcome.limit in ("stack", "memory")


def test_log_flood_is_cut_and_the_run_still_stops(server: Server) -> None:
    result = _alongside(server, _hostile("while (true) console.log('flood '.repeat(100))"))
    assert result.outcome.limit == "timeout"
    assert result.lines[-2] == "Log limit of 4096 bytes reached: the rest of the log is cut."
    assert result.lines[-1] == "time limit of 1 s exceeded"
    assert sum(len(line) for line in result.lines[:-2]) <= 4096


def test_finite_log_flood_is_cut_and_the_run_succeeds(server: Server) -> None:
    result = _alongside(
        server,
        _hostile(
            "for (var i = 0; i < 200000; i++) console.log('line ' + i); console.log('end')",
            limits=SLOW_LIMITS,
        ),
    )
    assert result.outcome.success, result.log
    assert result.lines[-1] == "Log limit of 4096 bytes reached: the rest of the log is cut."


def test_one_huge_log_line_is_cut(server: Server) -> None:
    result = _alongside(
        server, _hostile("console.log('y'.repeat(50 * 1024 * 1024))", limits=SLOW_LIMITS)
    )
    assert result.outcome.success or result.outcome.limit == "memory"
    assert len(result.lines[0]) <= 4096


def test_no_file_system_environment_or_process() -> None:
    result = run(
        "console.log(typeof process, typeof std, typeof os, typeof Deno, typeof Bun,"
        " typeof require('storage'), typeof XMLHttpRequest, typeof WebAssembly);"
        "['fs', 'child_process', 'os', 'std', 'process', 'net', 'path'].forEach(function (m) {"
        "  try { require(m); console.log('loaded', m) } catch (e) { console.log(e.message) } })"
    )
    assert result.outcome.success, result.log
    assert (
        result.lines[0]
        == "undefined undefined undefined undefined undefined object undefined undefined"
    )
    assert result.lines[1:] == [
        f"Cannot find module '{m}'"
        for m in ["fs", "child_process", "os", "std", "process", "net", "path"]
    ]


def test_dynamic_import_cannot_load_anything() -> None:
    result = run(
        "async function main() {"
        "  for (const name of ['fs', 'std', 'os', 'storage', './x.js', 'data:text/javascript,1']) {"
        "    try { await import(name); console.log('imported', name) }"
        "    catch (e) { console.log('refused', name) } } }\nmain()"
    )
    assert result.outcome.success, result.log
    assert all(line.startswith("refused ") for line in result.lines), result.lines


def test_eval_and_function_cannot_reach_host_internals() -> None:
    result = run(
        "console.log(typeof __fh, eval('typeof __fh'), (0, eval)('typeof __fh'),"
        " Function('return typeof __fh')(), typeof globalThis.__fh,"
        " Object.getOwnPropertyNames(globalThis).filter(function (n) { return /^__fh/.test(n) }).join());"
        "console.log(Object.getOwnPropertyNames(fetch).join(), fetch.toString().length > 0)"
    )
    assert result.outcome.success, result.log
    assert result.lines[0] == "undefined undefined undefined undefined undefined "


def test_guessing_host_operations_gets_nothing() -> None:
    # Even the captured host function, if a script could reach it, answers only run-scoped ops.
    from firehook.scripts.host import HostSession
    from firehook.scripts.limits import RunLog

    session = HostSession(
        source="",
        activity_json="{}",
        project={},
        variables={},
        storage=scripts.MemoryStorage(),
        script_limits=scripts.ScriptLimits(),
        log=RunLog(lambda line: None, 100),
    )
    assert '"e"' in session.dispatch("open", "/etc/passwd")
    assert '"e"' in session.dispatch("env", "")


def test_environment_of_the_host_is_not_visible(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIREHOOK_TEST_SECRET", "do-not-leak")
    result = run("console.log(JSON.stringify(globalThis).indexOf('do-not-leak'), typeof environ)")
    assert result.lines == ["-1 undefined"]


def test_prototype_pollution_does_not_reach_other_runs(server: Server) -> None:
    polluter = """
Object.prototype.polluted = 'yes';
Array.prototype.map = function () { return ['hijacked'] };
JSON.parse = function () { return {hijacked: true} };
JSON.stringify = function () { return 'hijacked' };
_.map = function () { return ['hijacked'] };
console.log = function () {};
storage.get = function () { return 'hijacked' };
globalThis.stolen = variables.secret;
var spin = Date.now() + 300; while (Date.now() < spin) {}
"""
    result = _alongside(server, _hostile(polluter))
    assert result.outcome.success, result.log
    after = run(
        "console.log(({}).polluted, [1].map(function (x) { return x + 1 }), JSON.parse('{\"a\":1}').a,"
        " _.map([1], function (x) { return x }), typeof stolen, storage.get('missing'))"
    )
    assert after.lines == ["undefined [2] 1 [1] undefined null"]


def test_runs_cannot_read_each_others_variables(server: Server) -> None:
    snooper = """
var found = [];
var spin = Date.now() + 500;
while (Date.now() < spin) {
  Object.getOwnPropertyNames(globalThis).forEach(function (n) {
    try { if (JSON.stringify(globalThis[n]).indexOf('good-secret') >= 0) found.push(n) } catch (e) {}
  });
}
console.log('found', found.length);
"""
    result = _alongside(server, _hostile(snooper))
    assert result.outcome.success, result.log
    assert result.lines[-1] == "found 0"


def test_stack_of_errors_names_no_host_paths() -> None:
    result = run("try { storage.set('k', {}) } catch (e) { console.log(e.stack) }")
    assert "/" not in result.log.replace("</", "")  # no file-system paths of the host
    assert not re.search(r"\.py\b", result.log)
