"""Used guests restored to the prelude's image and run again (scripts/recycle.py), on the real
engine: nothing of one run reaches the next, the memory is the image byte for byte, and what
cannot be restored is not reused."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from firehook.scripts import engine, recycle
from tests.integration.scripts.helpers import run

# Touches the globals, Underscore, the built-in prototypes and the prelude's helpers, leaving
# well under recycle.HEADROOM of new memory behind.
MUTATE = """
globalThis.leak = 'secret of the first run';
var declared = 'also the first run';
_.map = function () { return ['hijacked']; };
Array.prototype.evil = 1;
Object.prototype.polluted = 'yes';
JSON.stringify = function () { return 'forged'; };
console.log = function () {};
storage.set = function () {};
var kept = []; for (var i = 0; i < 2000; i++) kept.push({i: i, s: 'x' + i});
"""

# What a later run sees of all that, through intact built-ins of its own.
OBSERVE = """
console.log(typeof leak, typeof declared, _.map([1, 2], function (x) { return x * 2; }).join(','),
            [].evil, ({}).polluted, JSON.stringify({a: 1}), typeof kept,
            Object.getOwnPropertyNames(globalThis).length);
"""


@pytest.fixture()
def recycler() -> Iterator[recycle.Recycler]:
    """The process's recycler, emptied before and after (other tests leave guests in it)."""
    used = engine._recycler()
    used.close()
    yield used
    used.close()


def _observe_on_new_instance(recycler: recycle.Recycler) -> list[str]:
    recycler.close()  # nothing ready: the run gets a new instance
    before = recycler.reused
    lines = run(OBSERVE).lines
    assert recycler.reused == before
    return lines


def test_nothing_of_a_run_reaches_the_next_on_a_reused_guest(recycler: recycle.Recycler) -> None:
    pristine = _observe_on_new_instance(recycler)
    assert pristine[0].startswith("undefined undefined 2,4 undefined undefined {\"a\":1} undefined ")

    assert run(MUTATE).outcome.success
    before = recycler.reused
    second = run(OBSERVE)
    assert recycler.reused == before + 1  # the second run did get the first run's guest
    assert second.outcome.success
    assert second.lines == pristine


def test_a_restored_guest_holds_the_image_byte_for_byte(recycler: recycle.Recycler) -> None:
    image = engine.prelude_image()
    assert run(MUTATE).outcome.success
    guest = recycler.take()
    assert guest is not None
    try:
        memory = guest.read(0, guest.size())
        assert guest.size() > image.size  # the run grew the memory: the grown part is zeroed
        assert memory[: image.size] == image.heap
        assert memory[image.size:] == bytes(guest.size() - image.size)
    finally:
        guest.close()


def test_the_same_script_gives_the_same_output_on_new_and_reused_guests(recycler: recycle.Recycler) -> None:
    script = ("var s = _.chain([3, 1, 2]).sortBy(_.identity).map(function (x) { return x * 10; }).value();"
              "console.log(JSON.stringify(s), typeof fetch, Object.keys(activity).join('|'), 1e21, [1,,3]);")
    on_new = _observe_on_new_instance(recycler)  # leaves one guest ready
    assert on_new
    outputs = [run(script, activity={"id": "a1", "type": "environment.push"}).lines for _ in range(6)]
    assert recycler.reused >= 5
    recycler.close()
    fresh = run(script, activity={"id": "a1", "type": "environment.push"}).lines
    assert all(lines == fresh for lines in outputs)
    assert fresh == ['[10,20,30] function id|type 1e+21 [1,null,3]']


def test_a_guest_whose_memory_grew_past_the_headroom_is_not_reused(recycler: recycle.Recycler) -> None:
    grow = f"var big = 'y'.repeat({recycle.HEADROOM * 2}); console.log(big.length);"
    assert run(grow).outcome.success
    assert recycler.take() is None


def test_a_guest_that_trapped_is_not_reused(recycler: recycle.Recycler) -> None:
    sandbox = engine.Sandbox(memory_bytes=64 << 20, should_interrupt=lambda: False, host=lambda op, arg: "")
    guest = sandbox._guest
    # A pointer far outside linear memory: the guest's read of it traps.
    guest.put_string = lambda data: 0x7FFFFFF0  # type: ignore[method-assign]
    with pytest.raises(engine.EngineFailure) as failure:
        sandbox.eval("1 + 1")
    assert failure.value.kind == "fault"
    sandbox.close()
    assert recycler.take() is None
    assert run("console.log('after the trap')").lines == ["after the trap"]


def test_a_reused_guest_gives_the_script_the_same_room_under_the_cap(recycler: recycle.Recycler) -> None:
    assert run(MUTATE).outcome.success
    image = engine.prelude_image()
    sandbox = engine.Sandbox(memory_bytes=32 << 20, should_interrupt=lambda: False, host=lambda op, arg: "")
    try:
        grown = sandbox.memory_size() - image.size
        assert grown > 0  # a reused guest, larger than a new one
        assert sandbox._memory_bytes == (32 << 20) + grown
    finally:
        sandbox.close()


def test_without_page_reports_every_run_gets_a_new_instance(monkeypatch: pytest.MonkeyPatch) -> None:
    image = engine.prelude_image()
    blind = recycle.Recycler(image)
    monkeypatch.setattr(engine, "_recyclers", [blind])
    # A kernel that reports no page as present: nothing can be restored safely.
    monkeypatch.setattr(blind, "_pagemap", -1)
    monkeypatch.setattr(recycle.os, "pread", lambda fd, size, offset: bytes(size))
    for _ in range(3):
        assert run("console.log('fine')").lines == ["fine"]
    assert blind.reused == 0
    assert blind.take() is None
