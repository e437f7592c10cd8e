"""Activities, their per-state snapshots, runs, run logs and webhook attempts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from firehook import model
from firehook.store import jsonutil
from firehook.store.schema import activities, attempts, run_logs, runs, snapshots

A = activities.c
R = runs.c
S = snapshots.c
L = run_logs.c
AT = attempts.c


def _row(row: Any) -> dict[str, Any]:
    out = dict(row)
    out["doc"] = jsonutil.loads(out["doc"])
    return out


def find(conn: sa.Connection, project_id: str, activity_id: str, *, lock: bool = False) -> dict[str, Any] | None:
    """The activity row (``doc`` parsed), locked for update on PostgreSQL when ``lock``."""
    query = _FIND_LOCKED if lock and conn.dialect.name == "postgresql" else _FIND
    row = conn.execute(query, {"p": project_id, "i": activity_id}).mappings().first()
    return _row(row) if row else None


def find_by_pk(conn: sa.Connection, pk: int) -> dict[str, Any] | None:
    row = conn.execute(sa.select(activities).where(A.pk == pk)).mappings().first()
    return _row(row) if row else None


# Statements built once: building `insert().values(...)` per call costs more than running it.
_INSERT = activities.insert()
_INSERT_RETURNING = activities.insert().returning(A.pk, sort_by_parameter_order=True)
_FIND = sa.select(activities).where(A.project_id == sa.bindparam("p"), A.id == sa.bindparam("i"))
_FIND_LOCKED = _FIND.with_for_update()
_SNAPSHOT_STATES = sa.select(S.state).where(S.activity_pk == sa.bindparam("pk"))
_INSERT_SNAPSHOT = snapshots.insert()


def row_values(project_id: str, doc: dict[str, Any], integration_id: str | None = None, *,
               text: str | None = None, updated_at: str | None = None) -> dict[str, Any]:
    """The column values of an activity row for ``doc``; ``text`` is its JSON when the caller
    has it already (a 20 KB document is worth serialising once), ``updated_at`` the indexed
    time when the document's own is null."""
    return {
        "project_id": project_id, "id": doc["id"], "type": doc["type"], "state": doc["state"],
        "result": doc.get("result"), "environments": jsonutil.dumps(doc.get("environments") or []),
        "integration_id": integration_id, "created_at": doc["created_at"],
        "updated_at": doc.get("updated_at") or updated_at, "doc": text if text is not None else jsonutil.dumps(doc),
    }


def insert(conn: sa.Connection, project_id: str, doc: dict[str, Any], *, integration_id: str | None = None,
           text: str | None = None, updated_at: str | None = None) -> int:
    result = conn.execute(_INSERT, row_values(project_id, doc, integration_id, text=text, updated_at=updated_at))
    assert result.inserted_primary_key is not None
    return int(result.inserted_primary_key[0])


def insert_many(conn: sa.Connection, rows: list[dict[str, Any]]) -> list[int]:
    """Insert several activity rows (from :func:`row_values`); their pks, in order."""
    if not rows:
        return []
    return [int(pk) for pk in conn.execute(_INSERT_RETURNING, rows).scalars()]


def save(conn: sa.Connection, pk: int, doc: dict[str, Any], *, text: str | None = None,
         updated_at: str | None = None) -> None:
    conn.execute(activities.update().where(A.pk == pk).values(
        state=doc["state"], result=doc.get("result"), environments=jsonutil.dumps(doc.get("environments") or []),
        updated_at=doc.get("updated_at") or updated_at, doc=text if text is not None else jsonutil.dumps(doc),
    ))


def list_for(
    conn: sa.Connection,
    project_id: str,
    *,
    integration_id: str | None = None,
    types: Sequence[str] = (),
    states: Sequence[str] = (),
    result: str | None = None,
    environment: str | None = None,
    starts_at: str | None = None,
    count: int = 50,
) -> list[dict[str, Any]]:
    """Newest first. ``starts_at``: only activities created before that time (paging)."""
    query = sa.select(activities).where(A.project_id == project_id)
    if integration_id is not None:
        query = query.where(A.integration_id == integration_id)
    if types:
        query = query.where(A.type.in_(list(types)))
    if states:
        query = query.where(A.state.in_(list(states)))
    if result:
        query = query.where(A.result == result)
    if environment:
        query = query.where(A.environments.contains(jsonutil.dumps(environment)))
    if starts_at:
        query = query.where(A.created_at < starts_at)
    query = query.order_by(A.created_at.desc(), A.pk.desc()).limit(count)
    return [_row(r) for r in conn.execute(query).mappings()]


def snapshot_states(conn: sa.Connection, activity_pk: int) -> set[str]:
    return set(conn.execute(_SNAPSHOT_STATES, {"pk": activity_pk}).scalars())


def insert_snapshot(conn: sa.Connection, activity_pk: int, state: str, body: str, now: str) -> int:
    result = conn.execute(_INSERT_SNAPSHOT, {"activity_pk": activity_pk, "state": state, "body": body,
                                             "reached_at": now})
    assert result.inserted_primary_key is not None
    return int(result.inserted_primary_key[0])


def find_snapshot(conn: sa.Connection, activity_pk: int, state: str) -> dict[str, Any] | None:
    row = conn.execute(
        sa.select(snapshots).where(S.activity_pk == activity_pk, S.state == state)
    ).mappings().first()
    return dict(row) if row else None


def insert_runs(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    """Run rows: ``pk, integration_id, kind, snapshot_pk, source_pk, queued_at`` each."""
    if rows:
        conn.execute(_INSERT_RUN, [{**r, "attempts": 0, "finished": False} for r in rows])


_INSERT_RUN = runs.insert()


def get_run(conn: sa.Connection, run_pk: int) -> dict[str, Any] | None:
    row = conn.execute(sa.select(runs).where(R.pk == run_pk)).mappings().first()
    return dict(row) if row else None


def update_run(conn: sa.Connection, run_pk: int, **values: Any) -> None:
    conn.execute(runs.update().where(R.pk == run_pk).values(**values))


def runs_of(conn: sa.Connection, source_pk: int) -> list[dict[str, Any]]:
    query = (
        sa.select(activities, R.kind, R.snapshot_pk)
        .join(runs, R.pk == A.pk)
        .where(R.source_pk == source_pk)
        .order_by(A.pk)
    )
    return [_row(r) for r in conn.execute(query).mappings()]


def append_logs(conn: sa.Connection, run_pk: int, lines: Sequence[tuple[str, str]]) -> None:
    """Append log lines ``(timestamp, message)``; numbering continues from the last line."""
    append_logs_many(conn, [(run_pk, lines)])


def logs_after(conn: sa.Connection, run_pk: int, after: int = 0, limit: int = 1000) -> list[tuple[int, str, str]]:
    rows = conn.execute(
        sa.select(L.n, L.timestamp, L.message).where(L.run_pk == run_pk, L.n > after).order_by(L.n).limit(limit)
    )
    return [(int(n), ts, msg) for n, ts, msg in rows]


def list_attempts(conn: sa.Connection, run_pk: int) -> list[model.Attempt]:
    rows = conn.execute(sa.select(attempts).where(AT.run_pk == run_pk).order_by(AT.number)).mappings()
    return [model.Attempt(number=r["number"], started_at=r["started_at"], duration_ms=r["duration_ms"],
                          status=r["status"], response=r["response"], error=r["error"]) for r in rows]


# --- batches, for the worker: one statement per table for many runs --------------------------

_SAVE_MANY = activities.update().where(A.pk == sa.bindparam("b_pk")).values(
    state=sa.bindparam("b_state"), result=sa.bindparam("b_result"), updated_at=sa.bindparam("b_updated_at"),
    doc=sa.bindparam("b_doc"),
)
_STARTED_MANY = runs.update().where(R.pk == sa.bindparam("b_pk")).values(
    attempts=sa.bindparam("b_attempts"), started_at=sa.bindparam("b_started_at"))
_FINISHED_MANY = runs.update().where(R.pk == sa.bindparam("b_pk")).values(finished=True)
_INSERT_LOG = run_logs.insert()
_INSERT_ATTEMPT = attempts.insert()


def find_many_by_pk(conn: sa.Connection, pks: Sequence[int]) -> dict[int, dict[str, Any]]:
    if not pks:
        return {}
    rows = conn.execute(sa.select(activities).where(A.pk.in_(list(pks)))).mappings()
    return {int(r["pk"]): _row(r) for r in rows}


def get_runs(conn: sa.Connection, pks: Sequence[int]) -> dict[int, dict[str, Any]]:
    if not pks:
        return {}
    return {int(r["pk"]): dict(r) for r in conn.execute(sa.select(runs).where(R.pk.in_(list(pks)))).mappings()}


def snapshot_bodies(conn: sa.Connection, snapshot_pks: Sequence[int]) -> dict[int, str]:
    if not snapshot_pks:
        return {}
    rows = conn.execute(sa.select(S.pk, S.body).where(S.pk.in_(list(set(snapshot_pks)))))
    return {int(pk): body for pk, body in rows}


def save_many(conn: sa.Connection, docs: Sequence[tuple[int, dict[str, Any]]]) -> None:
    """Write several run documents (their state, result and timestamps follow the document)."""
    if docs:
        conn.execute(_SAVE_MANY, [{"b_pk": pk, "b_state": d["state"], "b_result": d.get("result"),
                                   "b_updated_at": d["updated_at"], "b_doc": jsonutil.dumps(d)} for pk, d in docs])


def mark_started(conn: sa.Connection, rows: Sequence[tuple[int, int, float]]) -> None:
    """``(run pk, attempts, started_at)`` each."""
    if rows:
        conn.execute(_STARTED_MANY, [{"b_pk": pk, "b_attempts": n, "b_started_at": at} for pk, n, at in rows])


def mark_finished(conn: sa.Connection, pks: Sequence[int]) -> None:
    if pks:
        conn.execute(_FINISHED_MANY, [{"b_pk": pk} for pk in pks])


def append_logs_many(conn: sa.Connection, batches: Sequence[tuple[int, Sequence[tuple[str, str]]]]) -> None:
    """Append log lines to several runs; each run's numbering continues from its last line."""
    batches = [(pk, lines) for pk, lines in batches if lines]
    if not batches:
        return
    pks = list({pk for pk, _ in batches})
    last = dict(conn.execute(
        sa.select(L.run_pk, sa.func.max(L.n)).where(L.run_pk.in_(pks)).group_by(L.run_pk)).all())
    rows = []
    for pk, lines in batches:
        n = int(last.get(pk) or 0)
        for ts, msg in lines:
            n += 1
            rows.append({"run_pk": pk, "n": n, "timestamp": ts, "message": msg})
        last[pk] = n
    conn.execute(_INSERT_LOG, rows)


def insert_attempts(conn: sa.Connection, rows: Sequence[tuple[int, model.Attempt]]) -> None:
    if rows:
        conn.execute(_INSERT_ATTEMPT, [
            {"run_pk": pk, "number": a.number, "started_at": a.started_at, "duration_ms": a.duration_ms,
             "status": a.status, "response": a.response, "error": a.error} for pk, a in rows])
