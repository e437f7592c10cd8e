"""The run lifecycle's statements: what the worker reads and writes for every run it executes.

These are the hottest statements firehook has (a few per delivery), so they go to the
DB-API directly (``store.raw``), one ``executemany`` per table for a whole claim round or a
whole group of outcomes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

from firehook import model
from firehook.store import jsonutil, raw

CHUNK = 500  # values per IN (…) list: far below either database's limit on parameters


@dataclasses.dataclass
class RunRow:
    """A run as the worker needs it: its document, its row in ``runs``, its snapshot's body."""

    pk: int
    doc: dict[str, Any]
    integration_id: str
    attempts: int
    queued_at: float
    started_at: float | None
    body: str


def load(conn: sa.Connection, run_pks: Sequence[int]) -> dict[int, RunRow]:
    """The runs of ``run_pks`` that still exist, with their documents and snapshot bodies."""
    found = select_runs(conn, run_pks)
    return assemble(found, send_bodies(conn, found)())


Found = list[tuple[Any, ...]]  # rows of select_runs


def select_runs(conn: sa.Connection, run_pks: Sequence[int]) -> Found:
    """The rows of :func:`load` without the snapshot bodies (:func:`send_bodies` reads those)."""
    cur = raw.cursor(conn)
    found: Found = []
    pks = list(dict.fromkeys(run_pks))
    for start in range(0, len(pks), CHUNK):
        part = pks[start:start + CHUNK]
        among, params = raw.among(cur.dialect, "r.pk", part, "bigint")
        found += cur.execute(
            "SELECT r.pk, a.doc, r.integration_id, r.attempts, r.queued_at, r.started_at, r.snapshot_pk "
            f"FROM runs r JOIN activities a ON a.pk = r.pk WHERE {among}", params).fetchall()
    return found


def integration_ids(found: Found) -> set[str]:
    return {str(row[2]) for row in found}


def send_bodies(conn: sa.Connection, found: Found) -> Callable[[], dict[int, str]]:
    """The snapshot bodies of ``found``, in two steps: the statements are sent now, their rows
    read when the returned function is called (in a pipeline, with other reads' round trip)."""
    # The runs of one activity's state share a snapshot (ten webhooks, one body): read once each.
    snapshots = list({int(row[6]) for row in found})
    sent: list[raw.Cursor] = []
    for start in range(0, len(snapshots), CHUNK):
        part = snapshots[start:start + CHUNK]
        # A body left to its activity (NULL: migration 0006) is the activity's document; runs are
        # only created for snapshots that hold theirs, but a run never reads the wrong one.
        cur = raw.cursor(conn)
        among, params = raw.among(cur.dialect, "s.pk", part, "bigint")
        sent.append(cur.execute(
            "SELECT s.pk, coalesce(s.body, a.doc) FROM snapshots s JOIN activities a ON a.pk = s.activity_pk "
            f"WHERE {among}", params))
    return lambda: {int(pk): body for each in sent for pk, body in each.fetchall()}


def assemble(found: Found, bodies: dict[int, str]) -> dict[int, RunRow]:
    out: dict[int, RunRow] = {}
    for pk, doc, integration_id, attempts, queued_at, started_at, snapshot_pk in found:
        body = bodies.get(int(snapshot_pk))
        if body is None:  # deleted with its activity meanwhile: the run is gone too
            continue
        out[int(pk)] = RunRow(pk=int(pk), doc=jsonutil.loads(doc), integration_id=integration_id,
                              attempts=int(attempts), queued_at=float(queued_at),
                              started_at=None if started_at is None else float(started_at), body=body)
    return out


def save_docs(conn: sa.Connection, docs: Sequence[tuple[int, dict[str, Any]]]) -> None:
    """Write run documents; the indexed state, result and updated_at follow each document."""
    raw.cursor(conn).bulk(
        "UPDATE activities SET state = ?, result = ?, updated_at = ?, doc = ? WHERE pk = ?",
        "UPDATE activities AS a SET state = v.state, result = v.result, updated_at = v.updated_at, doc = v.doc "
        "FROM unnest(?::text[], ?::text[], ?::text[], ?::text[], ?::bigint[]) AS v(state, result, updated_at, doc, pk) "
        "WHERE a.pk = v.pk",
        [(d["state"], d.get("result"), d["updated_at"], jsonutil.document(d)[0], pk) for pk, d in docs])


def mark_started(conn: sa.Connection, rows: Sequence[tuple[int, int, float]]) -> None:
    """``(run pk, attempts, started_at)`` each."""
    raw.cursor(conn).bulk(
        "UPDATE runs SET attempts = ?, started_at = ? WHERE pk = ?",
        "UPDATE runs AS r SET attempts = v.attempts, started_at = v.started_at "
        "FROM unnest(?::int[], ?::float8[], ?::bigint[]) AS v(attempts, started_at, pk) WHERE r.pk = v.pk",
        [(n, at, pk) for pk, n, at in rows])


def mark_finished(conn: sa.Connection, pks: Sequence[int]) -> None:
    raw.cursor(conn).bulk("UPDATE runs SET finished = ? WHERE pk = ?",
                          "UPDATE runs AS r SET finished = v.finished "
                          "FROM unnest(?::boolean[], ?::bigint[]) AS v(finished, pk) WHERE r.pk = v.pk",
                          [(True, pk) for pk in pks])


def append_logs(conn: sa.Connection, batches: Sequence[tuple[int, Sequence[tuple[str, str]]]]) -> None:
    """Append log lines to several runs; each run's numbering continues from its last line.
    On PostgreSQL one statement that reads each run's last number itself (no round trip to
    ask first, so it may go in a pipeline): the lines are numbered from 0 here and the
    statement adds the last number; on SQLite the last numbers are read first."""
    batches = [(pk, lines) for pk, lines in batches if lines]
    if not batches:
        return
    cur = raw.cursor(conn)
    last: dict[int, int] = {}
    if cur.dialect != "postgresql":
        pks = list({pk for pk, _ in batches})
        for start in range(0, len(pks), CHUNK):
            part = pks[start:start + CHUNK]
            found = cur.execute(f"SELECT run_pk, max(n) FROM run_logs WHERE run_pk IN ({raw.placeholders(len(part))}) "
                                "GROUP BY run_pk", part).fetchall()
            last.update({int(pk): int(n) for pk, n in found})
    # On PostgreSQL the subquery sees the table as the statement began: the lines it inserts are not counted.
    cur.bulk("INSERT INTO run_logs (run_pk, n, timestamp, message) VALUES (?, ?, ?, ?)",
             "INSERT INTO run_logs (run_pk, n, timestamp, message) "
             "SELECT v.run_pk, v.k + coalesce((SELECT max(l.n) FROM run_logs AS l WHERE l.run_pk = v.run_pk), 0), "
             "v.ts, v.msg FROM unnest(?::bigint[], ?::int[], ?::text[], ?::text[]) AS v(run_pk, k, ts, msg)",
             _numbered(batches, last))


def _numbered(batches: Sequence[tuple[int, Sequence[tuple[str, str]]]],
              last: dict[int, int]) -> list[tuple[int, int, str, str]]:
    """``(run pk, n, timestamp, message)`` of every line, each run's ``n`` going on from ``last``."""
    last = dict(last)
    rows = []
    for pk, lines in batches:
        n = last.get(pk, 0)
        for ts, msg in lines:
            n += 1
            rows.append((pk, n, ts, msg))
        last[pk] = n
    return rows


def insert_attempts(conn: sa.Connection, rows: Sequence[tuple[int, model.Attempt]]) -> None:
    raw.cursor(conn).bulk(
        "INSERT INTO attempts (run_pk, number, started_at, duration_ms, status, response, error) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        "INSERT INTO attempts (run_pk, number, started_at, duration_ms, status, response, error) "
        "SELECT * FROM unnest(?::bigint[], ?::int[], ?::text[], ?::float8[], ?::int[], ?::text[], ?::text[])",
        [(pk, a.number, a.started_at, a.duration_ms, a.status, a.response, a.error) for pk, a in rows])
