"""The durable run queue: enqueue, claim with a lease, renew, complete, retry at a time.

A job is one run waiting to execute. Workers claim jobs with a lease (``FOR UPDATE SKIP
LOCKED`` on PostgreSQL; under the single writer on SQLite), renew it while they work, and
release it with the outcome. A job whose lease expired is claimable again: a worker that
died leaves its jobs to the others (at-least-once).

Fairness: jobs are claimed in the order of a fair-queueing tag (start-time fair queueing).
A project's jobs get consecutive tags starting from the later of the queue's head and the
project's last tag, so a project that queues ten thousand runs does not make another wait
behind all of them: their jobs interleave one for one.

Ordering: a job is claimable only when no earlier job with the same ordering key is still
queued. Runs of one integration for one activity share a key, so they execute in the order
the states were reached; an ``ordered`` integration uses one key per environment, so its runs
execute strictly in activity order per environment.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from firehook import model
from firehook.store import db as dbmod
from firehook.store.schema import activities, jobs, project_clocks, runs

J = jobs.c


def ordering_key(integration: model.Integration, source_pk: int, environments: Sequence[str]) -> str:
    if integration.ordered:
        return f"{integration.id}:env:{environments[0] if environments else ''}"
    return f"{integration.id}:activity:{source_pk}"


_INSERT = jobs.insert()
# The queue's head: jobs due now (a job waiting hours for its next attempt does not hold the
# head back, or a newly busy project could jump ahead of everyone by that much).
_HEAD = sa.select(sa.func.min(J.fair_tag)).where(J.run_at <= sa.bindparam("now"))
_LATEST = sa.select(sa.func.max(project_clocks.c.last_tag))
_CLOCK = sa.select(project_clocks.c.last_tag).where(project_clocks.c.project_id == sa.bindparam("p"))


def _upsert_clock(conn: sa.Connection, project_id: str, tag: int) -> None:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(project_clocks).values(project_id=project_id, last_tag=tag)
    conn.execute(stmt.on_conflict_do_update(index_elements=["project_id"], set_={"last_tag": tag}))


class FairClock:
    """The fair-queueing tags of one transaction. A project's clock is read (and locked, on
    PostgreSQL) the first time the transaction queues a job for it, advanced in memory for
    every job after, and written back once by :meth:`flush` — a batch of a thousand activities
    reads and writes it once, not a thousand times."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self._last: dict[str, int] = {}
        self._dirty: set[str] = set()

    def tags(self, project_id: str, count: int, now: float) -> range:
        if project_id not in self._last:
            clock = _CLOCK.with_for_update() if self.conn.dialect.name == "postgresql" else _CLOCK
            last = self.conn.execute(clock, {"p": project_id}).scalar_one_or_none() or 0
            head = self.conn.execute(_HEAD, {"now": now}).scalar_one_or_none()
            if head is None:
                # Nothing is due: the virtual time is where service stopped, the highest tag
                # handed out, so a project with a long history and a new one start level.
                head = self.conn.execute(_LATEST).scalar_one_or_none() or 0
            self._last[project_id] = max(int(head), int(last))
        start = self._last[project_id]
        self._last[project_id] = start + count
        self._dirty.add(project_id)
        return range(start + 1, start + count + 1)

    def flush(self) -> None:
        for project_id in sorted(self._dirty):
            _upsert_clock(self.conn, project_id, self._last[project_id])
        self._dirty.clear()


def enqueue_many(conn: sa.Connection, rows: list[dict[str, object]], clock: FairClock | None = None) -> None:
    """Queue jobs (``run_pk, project_id, kind, ordering_key, run_at`` each) of one project,
    tagged for fair claiming. Without a ``clock`` (one per transaction), the project's clock is
    read and written for these jobs alone."""
    if not rows:
        return
    own = clock is None
    clock = clock or FairClock(conn)
    now = max(float(row["run_at"]) for row in rows)  # type: ignore[arg-type]
    tags = clock.tags(str(rows[0]["project_id"]), len(rows), now)
    conn.execute(_INSERT, [{**row, "fair_tag": tag} for tag, row in zip(tags, rows, strict=True)])
    if own:
        clock.flush()


def _claimable(kinds: Collection[str], now: float) -> sa.Select:
    earlier = jobs.alias("earlier")
    blocked = sa.exists().where(earlier.c.ordering_key == J.ordering_key, earlier.c.pk < J.pk)
    return (
        sa.select(J.pk)
        .where(
            J.kind.in_(list(kinds)),
            J.run_at <= now,
            sa.or_(J.lease_expires_at.is_(None), J.lease_expires_at < now),
            ~blocked,
        )
        .order_by(J.fair_tag, J.pk)
    )


def claim(database: dbmod.Database, owner: str, kinds: Collection[str], limit: int,
          lease_seconds: float) -> list[model.Job]:
    """Claim up to ``limit`` ready jobs of the given kinds for ``owner``."""
    if limit <= 0 or not kinds:
        return []
    now = time.time()
    with database.write() as conn:
        candidates = _claimable(kinds, now).limit(limit)
        if conn.dialect.name == "postgresql":
            candidates = candidates.with_for_update(skip_locked=True, of=jobs)
        pks = list(conn.execute(candidates).scalars())
        if not pks:
            return []
        conn.execute(
            jobs.update().where(J.pk.in_(pks)).values(lease_owner=owner, lease_expires_at=now + lease_seconds)
        )
        rows = conn.execute(
            sa.select(J.pk, J.run_pk, J.project_id, J.kind, runs.c.attempts, activities.c.id)
            .join(runs, runs.c.pk == J.run_pk)
            .join(activities, activities.c.pk == J.run_pk)
            .where(J.pk.in_(pks))
            .order_by(J.fair_tag, J.pk)
        ).all()
    return [model.Job(id=pk, run_pk=run_pk, run_id=run_id, project=project, kind=kind, attempts=attempts,
                      lease_owner=owner) for pk, run_pk, project, kind, attempts, run_id in rows]


def renew(database: dbmod.Database, owner: str, job_pks: Collection[int], lease_seconds: float) -> set[int]:
    """Extend the leases ``owner`` still holds; returns the pks it still holds."""
    if not job_pks:
        return set()
    now = time.time()
    with database.write() as conn:
        conn.execute(
            jobs.update()
            .where(J.pk.in_(list(job_pks)), J.lease_owner == owner)
            .values(lease_expires_at=now + lease_seconds)
        )
        held = conn.execute(sa.select(J.pk).where(J.pk.in_(list(job_pks)), J.lease_owner == owner)).scalars()
        return set(held)


def complete(conn: sa.Connection, job_pk: int, owner: str) -> bool:
    """Remove a finished job; False when ``owner`` no longer holds it (it must not record)."""
    return conn.execute(jobs.delete().where(J.pk == job_pk, J.lease_owner == owner)).rowcount > 0


def held(conn: sa.Connection, job_pks: Collection[int], owner: str) -> set[int]:
    """Of ``job_pks``, those ``owner`` still holds."""
    if not job_pks:
        return set()
    return set(conn.execute(sa.select(J.pk).where(J.pk.in_(list(job_pks)), J.lease_owner == owner)).scalars())


def complete_many(conn: sa.Connection, job_pks: Collection[int], owner: str) -> set[int]:
    """Remove finished jobs ``owner`` still holds; returns those removed (only they may record)."""
    if not job_pks:
        return set()
    # One statement: checking and deleting apart would let a lease change hands in between.
    deleted = conn.execute(jobs.delete().where(J.pk.in_(list(job_pks)), J.lease_owner == owner).returning(J.pk))
    return set(deleted.scalars())


def retry_at(conn: sa.Connection, job_pk: int, owner: str, when: float) -> bool:
    """Release the job to be claimed again at ``when``."""
    result = conn.execute(
        jobs.update()
        .where(J.pk == job_pk, J.lease_owner == owner)
        .values(run_at=when, lease_owner=None, lease_expires_at=None)
    )
    return result.rowcount > 0


def release(database: dbmod.Database, owner: str, job_pks: Collection[int]) -> int:
    """Give back leases without an outcome (clean shutdown): claimable again at once."""
    if not job_pks:
        return 0
    with database.write() as conn:
        return conn.execute(
            jobs.update()
            .where(J.pk.in_(list(job_pks)), J.lease_owner == owner)
            .values(lease_owner=None, lease_expires_at=None)
        ).rowcount


def cancel(conn: sa.Connection, run_pk: int, now: float) -> bool:
    """Remove the job of a run that nobody is executing; False when it is leased or gone."""
    return conn.execute(
        jobs.delete().where(
            J.run_pk == run_pk, sa.or_(J.lease_expires_at.is_(None), J.lease_expires_at < now)
        )
    ).rowcount > 0


def depth(database: dbmod.Database) -> dict[str, int]:
    """Jobs queued per kind."""
    with database.read() as conn:
        rows = conn.execute(sa.select(J.kind, sa.func.count()).group_by(J.kind)).all()
    return {kind: int(n) for kind, n in rows}
