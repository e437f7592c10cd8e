"""The durable run queue: enqueue, claim with a lease, renew, complete, retry at a time.

A job is one run waiting to execute. Workers claim jobs with a lease (``FOR UPDATE SKIP
LOCKED`` on PostgreSQL; under the single writer on SQLite), renew it while they work, and
release it with the outcome. A job whose lease expired is claimable again: a worker that
died leaves its jobs to the others (at-least-once).

Fairness: jobs are claimed in the order of a fair-queueing tag (start-time fair queueing).
A project's jobs get consecutive tags starting from the later of the queue's head and the
project's last tag, so a project that queues ten thousand runs does not make another wait
behind all of them: their jobs interleave one for one.

Retries: a job given back for a later attempt is parked until then, out of the claim's index,
and woken by the first claim after its time; it keeps its tag, so it goes first once due.

Ordering: a job is claimable only when no earlier job with the same ordering key is still
queued (parked or not). Runs of one integration for one activity share a key, so they
execute in the order the states were reached; an ``ordered`` integration uses one key per
environment, so its runs execute strictly in activity order per environment.

The SQL is in ``store/jobs.py``, which also says what a claim costs and which shapes of queue
still make it pass over extra rows.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence

import sqlalchemy as sa

from firehook import model
from firehook.store import db as dbmod
from firehook.store import jobs as store

# Parked jobs woken per claim: a receiver back after an outage may have thousands due at once;
# they wake over a few claims instead of in one long write (those still parked meanwhile keep
# their tags and go first once awake).
WAKE_LIMIT = 1000


def ordering_key(integration: model.Integration, source_pk: int, environments: Sequence[str]) -> str:
    if integration.ordered:
        return f"{integration.id}:env:{environments[0] if environments else ''}"
    return f"{integration.id}:activity:{source_pk}"


class FairClock:
    """The fair-queueing tags of one transaction. A project's clock is read (and locked, on
    PostgreSQL) the first time the transaction queues a job for it, advanced in memory for
    every job after, and written back once by :meth:`flush` — a batch of a thousand activities
    reads and writes it once, not a thousand times."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self._last: dict[str, int] = {}
        self._dirty: set[str] = set()

    def tags(self, project_id: str, count: int) -> range:
        if project_id not in self._last:
            last = store.clock(self.conn, project_id)
            # The queue's head: jobs due (a parked job waiting hours for its next attempt does not
            # hold the head back, or a newly busy project could jump ahead of everyone by that much).
            head = store.head(self.conn)
            if head is None:
                # Nothing is due: the virtual time is where service stopped, the highest tag
                # handed out, so a project with a long history and a new one start level.
                head = store.latest_tag(self.conn)
            self._last[project_id] = max(head, last)
        start = self._last[project_id]
        self._last[project_id] = start + count
        self._dirty.add(project_id)
        return range(start + 1, start + count + 1)

    def flush(self) -> None:
        # Sorted: two transactions upserting several clocks lock them in one order.
        store.save_clocks(self.conn, [(p, self._last[p]) for p in sorted(self._dirty)])
        self._dirty.clear()


def enqueue_many(conn: sa.Connection, rows: list[dict[str, object]], clock: FairClock | None = None) -> None:
    """Queue jobs (``run_pk, project_id, kind, ordering_key, run_at`` each) of one project,
    tagged for fair claiming. Without a ``clock`` (one per transaction), the project's clock is
    read and written for these jobs alone."""
    if not rows:
        return
    own = clock is None
    clock = clock or FairClock(conn)
    run_ats = [float(row["run_at"]) for row in rows]  # type: ignore[arg-type]
    tags = clock.tags(str(rows[0]["project_id"]), len(rows))
    wall = time.time()  # a job queued for later is parked until then, like a retry
    store.insert(conn, [
        (row["run_pk"], row["project_id"], row["kind"], row["ordering_key"], run_at, tag, run_at > wall)
        for tag, row, run_at in zip(tags, rows, run_ats, strict=True)
    ])
    if own:
        clock.flush()


def claim_on(conn: sa.Connection, owner: str, kinds: Collection[str], limit: int, lease_seconds: float,
             now: float) -> list[model.Job]:
    """Claim up to ``limit`` ready jobs of the given kinds for ``owner`` in the caller's write
    transaction, in fair order; the leases run ``lease_seconds`` from ``now``."""
    if limit <= 0 or not kinds:
        return []
    # On PostgreSQL two round trips: waking, the settings and the walks; the leases and the
    # settings put back.
    with store.walk_plans(conn):
        store.wake(conn, now, WAKE_LIMIT)
        # One walk per kind, each on its own range of the claim index, merged in claim order.
        found = [(c, kind) for kind in sorted(kinds) for c in store.candidates(conn, kind, limit, now)]
        if len(kinds) > 1:
            found = sorted(found, key=lambda item: (item[0].fair_tag, item[0].pk))[:limit]
        if found:
            store.lease(conn, owner, [c.pk for c, _kind in found], now + lease_seconds)
    if not found:
        return []
    return [model.Job(id=c.pk, run_pk=c.run_pk, run_id=c.run_id, project=c.project_id, kind=kind,
                      attempts=c.attempts, lease_owner=owner) for c, kind in found]


def claim(database: dbmod.Database, owner: str, kinds: Collection[str], limit: int,
          lease_seconds: float) -> list[model.Job]:
    """Claim up to ``limit`` ready jobs of the given kinds for ``owner``, in a transaction of its own."""
    if limit <= 0 or not kinds:
        return []
    with database.write() as conn:
        return claim_on(conn, owner, kinds, limit, lease_seconds, time.time())


def renew(database: dbmod.Database, owner: str, job_pks: Collection[int], lease_seconds: float) -> set[int]:
    """Extend the leases ``owner`` still holds; returns the pks it still holds."""
    if not job_pks:
        return set()
    with database.write() as conn:
        return store.renew(conn, owner, job_pks, time.time() + lease_seconds)


def complete(conn: sa.Connection, job_pk: int, owner: str) -> bool:
    """Remove a finished job; False when ``owner`` no longer holds it (it must not record)."""
    return bool(store.delete_held(conn, owner, [job_pk]))


def held(conn: sa.Connection, job_pks: Collection[int], owner: str, *, lock: bool = False) -> set[int]:
    """Of ``job_pks``, those ``owner`` still holds (with ``lock``: and keeps until the transaction ends)."""
    if not job_pks:
        return set()
    return store.held(conn, owner, job_pks, lock=lock)


def complete_many(conn: sa.Connection, job_pks: Collection[int], owner: str) -> set[int]:
    """Remove finished jobs ``owner`` still holds; returns those removed (only they may record)."""
    if not job_pks:
        return set()
    # One statement: checking and deleting apart would let a lease change hands in between.
    return store.delete_held(conn, owner, job_pks)


def retry_at(conn: sa.Connection, job_pk: int, owner: str, when: float) -> bool:
    """Release the job to be claimed again at ``when`` (parked until then, see store/jobs.py)."""
    return store.park(conn, owner, job_pk, when)


def release(database: dbmod.Database, owner: str, job_pks: Collection[int]) -> int:
    """Give back leases without an outcome (clean shutdown): claimable again at once."""
    if not job_pks:
        return 0
    with database.write() as conn:
        return release_on(conn, owner, job_pks)


def release_on(conn: sa.Connection, owner: str, job_pks: Collection[int]) -> int:
    """:func:`release` in the caller's write transaction."""
    if not job_pks:
        return 0
    return store.release(conn, owner, job_pks)


def cancel(conn: sa.Connection, run_pk: int, now: float) -> bool:
    """Remove the job of a run that nobody is executing; False when it is leased or gone."""
    return store.delete_unleased(conn, run_pk, now)


def depth(database: dbmod.Database) -> dict[str, int]:
    """Jobs queued per kind."""
    with database.read() as conn:
        return store.depth(conn)
