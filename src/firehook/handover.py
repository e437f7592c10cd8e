"""Storage writes of script runs handed to the recorder and not committed yet, per integration.

Runs of one script integration take turns (:mod:`firehook.turns`), and a run's storage writes
are recorded with its outcome. A run keeps its turn only until its outcome is handed to the
recorder, not until that is committed: the next run of the integration reads the earlier
runs' writes from here (the database does not have them yet), so the documented
read-modify-write still never loses an update, and the outcomes of consecutive runs of one
integration are committed a group per transaction instead of one transaction each.

A run that read through writes not committed yet depends on them: it is recorded only if they
are, in an earlier transaction or earlier in the same one (``recording.finish_many_on`` checks
:attr:`Entry.state`). If one is not recorded (its lease was lost, or its write failed), the
runs that depend on it are not recorded either and go back to the queue, so no run's outcome
ever builds on writes that did not happen.

Event loop only: entries are added when an outcome is handed over, and settled by the recorder
after each of its writes (before the next one starts).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

from firehook.store import kv

PENDING, RECORDED, REFUSED = "pending", "recorded", "refused"


@dataclasses.dataclass(eq=False)
class Entry:
    """One run's storage writes, handed over and not settled yet."""

    integration_id: str
    job_id: int
    ops: tuple[kv.Op, ...]
    total: int  # the bytes stored after these writes (the quota's base for the next run)
    state: str = PENDING  # RECORDED or REFUSED once the recorder's write ended


@dataclasses.dataclass
class _Chain:
    entries: list[Entry]
    view: dict[str, str | None] | None = None  # the entries' writes composed (None: to compute)
    cleared: bool = False


def _compose(view: dict[str, str | None], cleared: bool, ops: Iterable[kv.Op]) -> tuple[dict[str, str | None], bool]:
    for op in ops:
        if op[0] == "clear":
            view, cleared = {}, True
        elif op[0] == "set":
            view[op[1]] = op[2]
        else:
            view[op[1]] = None
    return view, cleared


class Handover:
    """One worker's storage writes in flight to the database, per integration."""

    def __init__(self) -> None:
        self._chains: dict[str, _Chain] = {}

    def base(self, integration_id: str) -> tuple[kv.Base | None, tuple[Entry, ...]]:
        """What a run starting now reads before the database, and the entries it depends on."""
        chain = self._chains.get(integration_id)
        if chain is None:
            return None, ()
        if chain.view is None:
            view: dict[str, str | None] = {}
            cleared = False
            for entry in chain.entries:
                view, cleared = _compose(view, cleared, entry.ops)
            chain.view, chain.cleared = view, cleared
        # The view is replaced, never changed, once handed out (a run reads it from a thread).
        return kv.Base(chain.view, chain.cleared, chain.entries[-1].total), tuple(chain.entries)

    def add(self, integration_id: str, job_id: int, ops: Sequence[kv.Op], total: int) -> Entry:
        """A run's writes, handed over with its outcome (before its turn ends)."""
        entry = Entry(integration_id, job_id, tuple(ops), total)
        chain = self._chains.get(integration_id)
        if chain is None:
            chain = self._chains[integration_id] = _Chain([])
        chain.entries.append(entry)
        if chain.view is not None:
            chain.view, chain.cleared = _compose(dict(chain.view), chain.cleared, entry.ops)
        return entry

    def settle(self, entry: Entry, recorded: bool) -> None:
        """The recorder wrote (or refused) the entry's outcome: later runs read the database."""
        entry.state = RECORDED if recorded else REFUSED
        chain = self._chains.get(entry.integration_id)
        if chain is None:
            return
        try:
            chain.entries.remove(entry)
        except ValueError:
            return
        if chain.entries:
            chain.view = None
        else:
            del self._chains[entry.integration_id]

    def pending(self) -> int:
        """Entries not settled yet (for tests)."""
        return sum(len(chain.entries) for chain in self._chains.values())


def may_record(requires: Sequence[Entry], recorded_here: set[int]) -> bool:
    """Whether a run that depends on ``requires`` may be recorded in a transaction that has
    recorded the jobs of ``recorded_here`` so far."""
    for entry in requires:
        if entry.state == RECORDED:
            continue
        if entry.state == PENDING and entry.job_id in recorded_here:
            continue
        return False
    return True
