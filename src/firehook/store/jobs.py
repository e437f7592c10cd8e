"""The queue's SQL: enqueue, the claim walk, leases, retries and the fair clock's rows.

``queue.py`` decides (ordering keys, fair tags, lease lengths); this module only speaks SQL,
on the DB-API of the caller's transaction (``store.raw``: ``?`` placeholders, statements the
driver prepares once), because the claim and the lease writes run for every run executed.

The claim walks ``ix_jobs_claim`` — ``(kind, fair_tag, pk)`` of the jobs not parked — in
claim order and stops after ``limit`` claimable rows: its cost follows the rows it passes
over, not the queue's depth. The rows it passes over are:

- jobs in flight (leased): at most the workers' total concurrency;
- later jobs of an ordering key whose earlier job is still queued: one or two per activity
  for per-activity keys, and these interleave with other jobs, but the backlog of an
  ``ordered`` integration whose head is in flight or waiting for a retry is passed over in
  full by every claim that reaches it. Not bounded: skipping it would need a "blocked" flag
  kept exact by every removal of a job (complete, cancel, and the cascades of deleting an
  activity or a project) and a lock per ordering key against concurrent enqueues on
  PostgreSQL, and one missed update would stall an environment's runs for good — a worse
  failure than a slow claim behind a long ordered backlog;
- jobs waiting for a later attempt are *not* passed over: :func:`park` (``queue.retry_at``)
  takes them out of the claim and head indexes, and each claim first wakes those now due (a
  bounded number per claim, ``queue.WAKE_LIMIT``), so a receiver that has been down for hours
  with thousands of retries queued costs each claim one index probe;
- on PostgreSQL, index entries of jobs completed but not yet vacuumed: the first walk past
  them marks them dead in the index, later ones skip them cheaply.

PostgreSQL claims with ``FOR UPDATE SKIP LOCKED`` (never waiting on another claimer's rows);
SQLite claims under its single writer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterable, Iterator, Sequence
from typing import Any, NamedTuple

import sqlalchemy as sa

from firehook.store import raw

# The claim walk: "NOT j.parked" repeats the partial index's predicate word for word (SQLite
# uses a partial index only then). The earlier-job test is a scalar subquery on the key's
# first pk (one ix_jobs_order step per row walked), not NOT EXISTS, which PostgreSQL may turn
# into an anti-join hashing every job; written as ORDER BY … LIMIT 1 rather than min(), which
# PostgreSQL may compute over every job of the key (a long ordered chain) when its statistics
# are off; "<=" rather than "=" (the same test: the key's first pk is at most j's) because
# PostgreSQL guesses a third of the rows pass an inequality but 0.5 % an equality with a
# subquery, and with so few it prefers sorting to walking. attempts and the run's id are read
# for the rows returned only (subqueries in the select list).
_CLAIMABLE = (
    "SELECT j.pk, j.run_pk, j.project_id, j.fair_tag,"
    " (SELECT r.attempts FROM runs AS r WHERE r.pk = j.run_pk),"
    " (SELECT a.id FROM activities AS a WHERE a.pk = j.run_pk)"
    " FROM jobs AS j"
    " WHERE j.kind = ? AND NOT j.parked AND j.run_at <= ?"
    " AND (j.lease_expires_at IS NULL OR j.lease_expires_at < ?)"
    " AND j.pk <= (SELECT e.pk FROM jobs AS e WHERE e.ordering_key = j.ordering_key ORDER BY e.pk LIMIT 1)"
    " ORDER BY j.fair_tag, j.pk LIMIT ?"
)
_CLAIMABLE_POSTGRESQL = _CLAIMABLE + " FOR UPDATE OF j SKIP LOCKED"

# PostgreSQL's planner still sorts instead of walking when its statistics say few jobs are
# claimable — statistics taken while the queue was short, or while most jobs were in flight —
# and then every claim on a deep queue sorts all of it until the next ANALYZE. The claim is
# therefore planned with sorting off (the claim index is then the only way to its order), for
# its own statements only: the previous values are put back right after.
_WALK_ONLY = ("enable_sort", "enable_incremental_sort")

# Wake the parked jobs now due, oldest first. On PostgreSQL the pks are collected once (an
# ARRAY sublink is evaluated once, where an IN sublink with a LIMIT may be rescanned) and
# rows another claimer is waking are skipped, not waited for.
_WAKE_SQLITE = (
    "UPDATE jobs SET parked = false WHERE pk IN"
    " (SELECT pk FROM jobs WHERE parked AND run_at <= ? ORDER BY run_at LIMIT ?)"
)
_WAKE_POSTGRESQL = (
    "UPDATE jobs SET parked = false WHERE pk = ANY(ARRAY("
    "SELECT pk FROM jobs WHERE parked AND run_at <= ? ORDER BY run_at LIMIT ? FOR UPDATE SKIP LOCKED))"
)

# The lowest tag of the jobs due (in flight included): the first entry of ix_jobs_head. Parked
# jobs are those not due, so no time test (which would let a planner with stale statistics of
# run_at prefer a sort of every due job).
_HEAD = "SELECT min(fair_tag) FROM jobs WHERE NOT parked"
_LATEST = "SELECT max(last_tag) FROM project_clocks"
_CLOCK = "SELECT last_tag FROM project_clocks WHERE project_id = ?"
_UPSERT_CLOCK = (
    "INSERT INTO project_clocks (project_id, last_tag) VALUES (?, ?)"
    " ON CONFLICT (project_id) DO UPDATE SET last_tag = excluded.last_tag"
)
_INSERT = (
    "INSERT INTO jobs (run_pk, project_id, kind, ordering_key, run_at, fair_tag, parked)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)


class Candidate(NamedTuple):
    pk: int
    run_pk: int
    project_id: str
    fair_tag: int
    attempts: int
    run_id: str


def claimable_sql(dialect: str) -> str:
    """The claim's candidate query (parameters: kind, now, now, limit); tests EXPLAIN it."""
    return _CLAIMABLE_POSTGRESQL if dialect == "postgresql" else _CLAIMABLE


def _pks(cur: raw.Cursor, pks: Collection[int]) -> tuple[str, list[Any]]:
    """``pk`` is one of ``pks`` (in order, as ``raw.among`` words it), and its parameters."""
    return raw.among(cur.dialect, "pk", sorted(pks), "bigint")


@contextlib.contextmanager
def walk_plans(conn: sa.Connection) -> Iterator[None]:
    """Within the block, PostgreSQL plans claims as index walks whatever its statistics say.
    The block's statements go in the same pipeline as the settings: what they send before
    their first read shares its round trip with setting them, and what they send after their
    last read shares its round trip with putting them back."""
    if conn.dialect.name != "postgresql":
        yield
        return
    # incremental sort (PostgreSQL 13) would sort (fair_tag) order from ix_jobs_head by pk.
    names = _WALK_ONLY if (conn.dialect.server_version_info or (0,)) >= (13,) else _WALK_ONLY[:1]
    cur = raw.cursor(conn)
    reads = ", ".join(f"current_setting('{name}')" for name in names)
    sets = ", ".join(f"set_config('{name}', ?, true)" for name in names)
    with raw.pipelined(conn):
        # The values in force are read left to right before they are changed.
        cur.execute(f"SELECT {reads}, {sets}", ["off"] * len(names))
        yield
        # Not after an error: the transaction is failing, and its end puts the settings back anyway.
        before = cur.fetchone() or ()
        cur.execute(f"SELECT {sets}", list(before[:len(names)]))


def insert(conn: sa.Connection, rows: Iterable[Sequence[Any]]) -> None:
    """Queue jobs: ``(run_pk, project_id, kind, ordering_key, run_at, fair_tag, parked)`` each."""
    raw.cursor(conn).executemany(_INSERT, rows)


def wake(conn: sa.Connection, now: float, limit: int) -> None:
    """Unpark up to ``limit`` parked jobs due at ``now`` (in a claim's pipeline: nothing is
    read back, not even how many)."""
    cur = raw.cursor(conn)
    cur.execute(_WAKE_POSTGRESQL if cur.dialect == "postgresql" else _WAKE_SQLITE, (now, limit))


def candidates(conn: sa.Connection, kind: str, limit: int, now: float) -> list[Candidate]:
    """Up to ``limit`` claimable jobs of ``kind`` at ``now``, in claim order (locked until the
    transaction ends on PostgreSQL, skipping those another claimer holds)."""
    cur = raw.cursor(conn)
    rows = cur.execute(claimable_sql(cur.dialect), (kind, now, now, limit)).fetchall()
    return [Candidate(int(pk), int(run_pk), str(project), int(tag), int(attempts or 0), str(run_id))
            for pk, run_pk, project, tag, attempts, run_id in rows]


def lease(conn: sa.Connection, owner: str, job_pks: Collection[int], until: float) -> None:
    cur = raw.cursor(conn)
    among, pks = _pks(cur, job_pks)
    cur.execute(f"UPDATE jobs SET lease_owner = ?, lease_expires_at = ? WHERE {among}", (owner, until, *pks))


def renew(conn: sa.Connection, owner: str, job_pks: Collection[int], lease_until: float) -> set[int]:
    """Extend the leases ``owner`` still holds; returns their pks."""
    cur = raw.cursor(conn)
    among, pks = _pks(cur, job_pks)
    cur.execute(f"UPDATE jobs SET lease_expires_at = ? WHERE lease_owner = ? AND {among} RETURNING pk",
                (lease_until, owner, *pks))
    return {int(row[0]) for row in cur.fetchall()}


def held(conn: sa.Connection, owner: str, job_pks: Collection[int], *, lock: bool = False) -> set[int]:
    """Of ``job_pks``, those ``owner`` holds; with ``lock``, they stay so until the transaction
    ends (on PostgreSQL their rows are locked; SQLite's writer excludes everyone anyway)."""
    cur = raw.cursor(conn)
    among, pks = _pks(cur, job_pks)
    text = f"SELECT pk FROM jobs WHERE lease_owner = ? AND {among}"
    if lock and cur.dialect == "postgresql":
        text += " FOR UPDATE"
    cur.execute(text, (owner, *pks))
    return {int(row[0]) for row in cur.fetchall()}


def delete_held(conn: sa.Connection, owner: str, job_pks: Collection[int]) -> set[int]:
    """Delete the jobs ``owner`` still holds, in one statement; returns their pks."""
    cur = raw.cursor(conn)
    among, pks = _pks(cur, job_pks)
    cur.execute(f"DELETE FROM jobs WHERE lease_owner = ? AND {among} RETURNING pk", (owner, *pks))
    return {int(row[0]) for row in cur.fetchall()}


def park(conn: sa.Connection, owner: str, job_pk: int, when: float) -> bool:
    """Give back a held job to be claimed again from ``when``."""
    cur = raw.cursor(conn).execute(
        "UPDATE jobs SET run_at = ?, parked = true, lease_owner = NULL, lease_expires_at = NULL"
        " WHERE pk = ? AND lease_owner = ?", (when, job_pk, owner))
    return cur.rowcount > 0


def release(conn: sa.Connection, owner: str, job_pks: Collection[int]) -> int:
    cur = raw.cursor(conn)
    among, pks = _pks(cur, job_pks)
    cur.execute(f"UPDATE jobs SET lease_owner = NULL, lease_expires_at = NULL WHERE lease_owner = ? AND {among}",
                (owner, *pks))
    return cur.rowcount


def delete_unleased(conn: sa.Connection, run_pk: int, now: float) -> bool:
    """Delete a run's job unless someone holds a live lease on it."""
    cur = raw.cursor(conn).execute(
        "DELETE FROM jobs WHERE run_pk = ? AND (lease_expires_at IS NULL OR lease_expires_at < ?)", (run_pk, now))
    return cur.rowcount > 0


def depth(conn: sa.Connection) -> dict[str, int]:
    rows = raw.cursor(conn).execute("SELECT kind, count(*) FROM jobs GROUP BY kind").fetchall()
    return {str(kind): int(n) for kind, n in rows}


def head(conn: sa.Connection) -> int | None:
    """The lowest fair tag of the jobs due, leased or not (None when nothing is due)."""
    value = raw.cursor(conn).execute(_HEAD).scalar()
    return None if value is None else int(value)


def latest_tag(conn: sa.Connection) -> int:
    """The highest tag handed out to any project."""
    return int(raw.cursor(conn).execute(_LATEST).scalar() or 0)


def clock(conn: sa.Connection, project_id: str) -> int:
    """A project's last tag (0 for a new one), locked until the transaction ends on PostgreSQL
    so two transactions queueing for one project never hand out the same tags."""
    cur = raw.cursor(conn)
    text = _CLOCK + " FOR UPDATE" if cur.dialect == "postgresql" else _CLOCK
    return int(cur.execute(text, (project_id,)).scalar() or 0)


def save_clocks(conn: sa.Connection, clocks: Iterable[tuple[str, int]]) -> None:
    raw.cursor(conn).executemany(_UPSERT_CLOCK, clocks)
