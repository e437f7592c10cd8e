"""Runs of one script integration take turns (SPEC §4.4): they never overlap, so a script's
read-modify-write of its storage never loses an update, while different integrations run in
parallel.

Two layers, because a run's storage writes are recorded with its outcome, after it ran:

- **Across workers**, a lease per integration (``integration_leases``): a worker takes it in
  the transaction that claims a run of the integration and keeps it while it holds any run
  of it (renewed with its job leases, expiring with them if the worker dies); it gives it
  back in the transaction that records the last of them. A claimed run whose integration's
  lease another worker holds is parked for :data:`RETRY_SECONDS` and claimed again later.
  How many runs of each integration this worker holds is only read and changed inside its
  writer's transactions (one thread, in commit order), so a lease is never given back while a
  claim that just took one of its runs is committed.
- **Within the worker**, an asyncio lock per integration: the runs it holds execute one after
  the other, in claim order (which is queue order), and each keeps its turn until its outcome
  and storage writes are handed to the recorder; the next run reads those writes from
  :mod:`firehook.handover` until they are committed (a run whose writes cannot be handed over
  keeps its turn until they are).
"""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import Iterable, Sequence

import sqlalchemy as sa

from firehook import model
from firehook.store import jobs as job_store
from firehook.store import turns as store

RETRY_SECONDS = 1.0


class Turns:
    """One worker's turns."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        # integration → the runs of it this worker holds. Changed in the writer's transactions
        # (and runs are forgotten from the loop once done), so under a lock. Removals are
        # idempotent: the writer runs a group's writes again after a failed one.
        self._held: dict[str, set[int]] = {}
        self._turn_of: dict[int, str] = {}  # job → the integration it holds a turn of
        self._lost: set[str] = set()  # leases whose renewal found them gone
        self._lock = threading.Lock()
        self.parked = 0  # runs the last claim parked (their integration's turn is elsewhere)
        self._locks: dict[str, asyncio.Lock] = {}
        self._waiting: collections.Counter[str] = collections.Counter()  # event loop only

    # --- inside the writer's transactions -------------------------------------------------------

    def claimed(self, conn: sa.Connection, jobs: Sequence[model.Job], now: float,
                until: float) -> tuple[list[model.Job], dict[int, str]]:
        """Of freshly claimed ``jobs``, those this worker may run (their integration's lease
        taken) and the integration of each script job; the others are parked again."""
        scripts = [job for job in jobs if job.kind == "script"]
        if not scripts:
            return list(jobs), {}
        integration_of = store.integrations_of(conn, [job.run_pk for job in scripts])
        wanted = sorted({integration_of[job.run_pk] for job in scripts if job.run_pk in integration_of})
        taken = store.take(conn, self.owner, wanted, now, until)
        kept: list[model.Job] = []
        turn_of: dict[int, str] = {}
        parked: list[int] = []
        for job in jobs:
            integration = integration_of.get(job.run_pk) if job.kind == "script" else None
            if integration is not None and integration not in taken:
                parked.append(job.id)
                continue
            if integration is not None:
                turn_of[job.id] = integration
            kept.append(job)
        for job_id in parked:
            job_store.park(conn, self.owner, job_id, now + RETRY_SECONDS)
        self.parked = len(parked)
        with self._lock:
            for job_id, integration in turn_of.items():
                self._held.setdefault(integration, set()).add(job_id)
                self._turn_of[job_id] = integration
            self._lost.difference_update(taken)
        return kept, turn_of

    def integration_of(self, job_id: int) -> str | None:
        """The integration whose turn a claimed script run takes (even if it was deleted since)."""
        with self._lock:
            return self._turn_of.get(job_id)

    def lost(self, integration: str) -> bool:
        """Whether this worker's lease on the integration lapsed (another worker may hold it)."""
        with self._lock:
            return integration in self._lost

    def retake(self, conn: sa.Connection, integration: str, now: float, until: float) -> bool:
        """Take a lapsed lease again; False when another worker holds it now."""
        ok = integration in store.take(conn, self.owner, [integration], now, until)
        if ok:
            with self._lock:
                self._lost.discard(integration)
        return ok

    def finished(self, conn: sa.Connection, runs: Iterable[tuple[str, int]]) -> None:
        """These ``(integration, job id)`` are recorded (or given up): the leases no held run
        needs any more are given back."""
        idle: set[str] = set()
        with self._lock:
            for integration, job_id in runs:
                held = self._held.get(integration)
                if held is not None:
                    held.discard(job_id)
                if not held:
                    self._held.pop(integration, None)
                    idle.add(integration)
        store.give_back(conn, self.owner, idle)

    def forget(self, integration: str, job_id: int) -> None:
        """A run is done with, recorded or not (its lease, if still held, expires or is given
        back with the integration's next finished run)."""
        with self._lock:
            self._turn_of.pop(job_id, None)
            held = self._held.get(integration)
            if held is not None:
                held.discard(job_id)
                if not held:
                    del self._held[integration]

    def renew(self, conn: sa.Connection, until: float) -> None:
        """Extend the leases of the integrations held; those found gone are lost (a run of one
        takes it again, or gives its run back, before it executes)."""
        with self._lock:
            integrations = sorted(self._held)
        renewed = store.renew(conn, self.owner, integrations, until)
        with self._lock:
            self._lost.update(set(integrations) - renewed)

    def give_back_all(self, conn: sa.Connection) -> None:
        with self._lock:
            self._held.clear()
        store.give_back_all(conn, self.owner)

    # --- on the event loop ----------------------------------------------------------------------

    async def take(self, integration_id: str) -> None:
        """Wait for the integration's earlier runs in this worker, and hold the turn until
        :meth:`end` (called exactly once after this returns)."""
        lock = self._locks.get(integration_id)
        if lock is None:
            lock = self._locks[integration_id] = asyncio.Lock()
        self._waiting[integration_id] += 1
        try:
            await lock.acquire()
        except BaseException:
            self._leave(integration_id)
            raise

    def end(self, integration_id: str) -> None:
        """End the turn taken by :meth:`take`."""
        self._locks[integration_id].release()
        self._leave(integration_id)

    def _leave(self, integration_id: str) -> None:
        self._waiting[integration_id] -= 1
        if self._waiting[integration_id] <= 0:
            del self._waiting[integration_id]
            self._locks.pop(integration_id, None)

    def busy(self, integration_id: str) -> bool:
        """Whether a run of the integration holds (or waits for) its turn in this worker."""
        return self._waiting.get(integration_id, 0) > 0
