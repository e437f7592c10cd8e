"""Activities, their per-state snapshots, runs, run logs and webhook attempts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from firehook import model
from firehook.store import jsonutil, raw
from firehook.store import runs as run_store
from firehook.store.schema import Stamp, activities, attempts, run_logs, runs, snapshots

A = activities.c
R = runs.c
S = snapshots.c
L = run_logs.c
AT = attempts.c


def _row(row: Any) -> dict[str, Any]:
    out = dict(row)
    out["doc"] = jsonutil.loads(out["doc"])
    return out


def find(conn: sa.Connection, project_id: str, activity_id: str) -> dict[str, Any] | None:
    """The activity row (``doc`` parsed)."""
    row = conn.execute(_FIND, {"p": project_id, "i": activity_id}).mappings().first()
    return _row(row) if row else None


def find_by_pk(conn: sa.Connection, pk: int) -> dict[str, Any] | None:
    row = conn.execute(sa.select(activities).where(A.pk == pk)).mappings().first()
    return _row(row) if row else None


# Statements built once: building a select per call costs more than running it.
_FIND = sa.select(activities).where(A.project_id == sa.bindparam("p"), A.id == sa.bindparam("i"))
_SNAPSHOT_STATES = sa.select(S.state).where(S.activity_pk == sa.bindparam("pk"))


def save(conn: sa.Connection, pk: int, doc: dict[str, Any]) -> None:
    write_out_snapshots(conn, [pk])
    conn.execute(activities.update().where(A.pk == pk).values(
        state=doc["state"], result=doc.get("result"), environments=jsonutil.dumps(doc.get("environments") or []),
        updated_at=doc["updated_at"], doc=jsonutil.dumps(doc),
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
    sources_only: bool = False,
) -> list[dict[str, Any]]:
    """Newest first by when firehook received them (not by the document's own ``created_at``,
    which a sender sets: a fixture from 2024 posted now is the newest), each row with its
    ``received_at``. ``types`` may hold globs (``*``, ``?``); ``starts_at``: only activities
    received before that time (paging); ``sources_only``: no runs."""
    query = sa.select(activities, RECEIVED.label("received_at")).where(A.project_id == project_id)
    if integration_id is not None:
        query = query.where(A.integration_id == integration_id)
    if sources_only:
        query = query.where(A.integration_id.is_(None))
    if types:
        exact = [t for t in types if "*" not in t and "?" not in t]
        matches = [A.type.in_(exact)] if exact else []
        matches += [A.type.like(_like(t), escape="\\") for t in types if t not in exact]
        query = query.where(sa.or_(*matches))
    if states:
        query = query.where(A.state.in_(list(states)))
    if result:
        query = query.where(A.result == result)
    if environment:
        query = query.where(A.environments.contains(jsonutil.dumps(environment)))
    if starts_at:
        query = query.where(RECEIVED < starts_at)
    # Keys are taken in the order activities arrive (new_keys), so the key is the arrival order.
    query = query.order_by(A.pk.desc()).limit(count)
    return [_row(r) for r in conn.execute(query).mappings()]


# When firehook received an activity: the time its first state was snapshotted (intake snapshots
# every activity it creates); a run, never snapshotted, is created by firehook itself.
RECEIVED = sa.func.coalesce(
    sa.select(sa.func.min(S.reached_at)).where(S.activity_pk == A.pk).scalar_subquery(), A.created_at)


def _like(glob: str) -> str:
    """A LIKE pattern for a shell-style glob of ``*`` and ``?``."""
    escaped = glob.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def snapshot_states(conn: sa.Connection, activity_pk: int) -> set[str]:
    return set(conn.execute(_SNAPSHOT_STATES, {"pk": activity_pk}).scalars())


def find_snapshot(conn: sa.Connection, activity_pk: int, state: str) -> dict[str, Any] | None:
    """The snapshot of ``state``, its ``body`` the document as it was (read with the activity's
    document in one statement: a body left to it is read as it is now, never half-changed)."""
    row = conn.execute(_FIND_SNAPSHOT, {"pk": activity_pk, "state": state}).mappings().first()
    return dict(row) if row else None


_FIND_SNAPSHOT = (
    sa.select(S.pk, S.activity_pk, S.state, sa.func.coalesce(S.body, A.doc).label("body"), S.reached_at)
    .join(activities, A.pk == S.activity_pk)
    .where(S.activity_pk == sa.bindparam("pk"), S.state == sa.bindparam("state"))
)


def keep_snapshot(conn: sa.Connection, activity_pk: int, state: str) -> None:
    """Write out the body of a snapshot that leaves it to its activity's document, before a run
    refers to it (the worker reads a run's snapshot body alone)."""
    raw.cursor(conn).execute(
        "UPDATE snapshots SET body = (SELECT a.doc FROM activities a WHERE a.pk = snapshots.activity_pk) "
        "WHERE activity_pk = ? AND state = ? AND body IS NULL", (activity_pk, state))


def write_out_snapshots(conn: sa.Connection, activity_pks: Sequence[int]) -> None:
    """Before the documents of ``activity_pks`` change, in the same transaction: the snapshots
    that leave their body to the document get the text it has now (one statement per chunk)."""
    cur = raw.cursor(conn)
    unique = list(dict.fromkeys(activity_pks))
    for start in range(0, len(unique), CHUNK):
        part = unique[start:start + CHUNK]
        among, params = raw.among(cur.dialect, "activity_pk", part, "bigint")
        cur.execute("UPDATE snapshots SET body = (SELECT a.doc FROM activities a WHERE a.pk = snapshots.activity_pk) "
                    f"WHERE {among} AND body IS NULL", params)


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
    run_store.append_logs(conn, [(run_pk, lines)])


def logs_after(conn: sa.Connection, run_pk: int, after: int = 0, limit: int = 1000) -> list[tuple[int, str, str]]:
    rows = conn.execute(
        sa.select(L.n, L.timestamp, L.message).where(L.run_pk == run_pk, L.n > after).order_by(L.n).limit(limit)
    )
    return [(int(n), ts, msg) for n, ts, msg in rows]


def list_attempts(conn: sa.Connection, run_pk: int) -> list[model.Attempt]:
    rows = conn.execute(sa.select(attempts).where(AT.run_pk == run_pk).order_by(AT.number)).mappings()
    return [model.Attempt(number=r["number"], started_at=r["started_at"], duration_ms=r["duration_ms"],
                          status=r["status"], response=r["response"], error=r["error"]) for r in rows]


# --- intake: hot statements on the DB-API (store.raw), a whole group of documents at once ----
#
# Rows that refer to each other (a snapshot to its activity, a run to both) get their primary
# keys first (:func:`new_keys`), so each table takes one statement per group and, on
# PostgreSQL, all of them go in one pipeline (:func:`raw.pipelined`): one round trip.

CHUNK = 500  # values per IN (…) list: far below either database's limit on parameters

ACTIVITY_COLUMNS = ("pk", "project_id", "id", "type", "state", "result", "environments", "integration_id",
                    "created_at", "updated_at", "doc")
SNAPSHOT_COLUMNS = ("pk", "activity_pk", "state", "body", "reached_at")
RUN_COLUMNS = ("pk", "integration_id", "kind", "snapshot_pk", "source_pk", "attempts", "queued_at", "finished")
LOG_COLUMNS = ("run_pk", "n", "timestamp", "message")
STAMP_LENGTH = Stamp.length or 40

_NEXTVAL = ("SELECT ARRAY(SELECT nextval(pg_get_serial_sequence('activities', 'pk')) FROM generate_series(1, ?)), "
            "ARRAY(SELECT nextval(pg_get_serial_sequence('snapshots', 'pk')) FROM generate_series(1, ?))")


_STAMPED = ("created_at", "updated_at")  # document fields kept in columns of their own


def unfit_field(doc: dict[str, Any]) -> tuple[str, str] | None:
    """``(field, why)`` when a field of ``doc`` kept in a column of its own cannot be stored
    there (PostgreSQL refuses a timestamp longer than its column, or holding a NUL character);
    None when all fit."""
    for name in _STAMPED:
        value = doc.get(name)
        if isinstance(value, str):
            if len(value) > STAMP_LENGTH:
                return name, f"is longer than a timestamp ({STAMP_LENGTH} characters at most)"
            if "\x00" in value:
                return name, "holds a NUL character, which is not a timestamp"
    return None


def activity_row(pk: int, project_id: str, doc: dict[str, Any], text: str | bytes, integration_id: str | None = None,
                 updated_at: str | None = None) -> tuple[Any, ...]:
    """The values of :data:`ACTIVITY_COLUMNS` for ``doc``, whose JSON is ``text`` (on SQLite it
    may be that text's UTF-8 bytes: see :func:`doc_value`); ``updated_at`` is the indexed time
    when the document's own is null."""
    return (pk, project_id, doc["id"], doc["type"], doc["state"], doc.get("result"),
            jsonutil.dumps(doc.get("environments") or []), integration_id, doc["created_at"],
            doc.get("updated_at") or updated_at, text)


def doc_value(dialect: str, text: str, utf8: bytes | None) -> str | bytes:
    """What to bind for a document column: on SQLite its UTF-8 bytes when the caller has them,
    which the statements read back as text (``CAST(? AS TEXT)``, no conversion: the database is
    UTF-8). Binding the ``str`` instead makes the driver encode every document that holds a
    character beyond ASCII again (measured: 12 µs of a 20 KB document's 40–60 µs INSERT).
    PostgreSQL takes the text."""
    if utf8 is not None and dialect == "sqlite":
        return utf8
    return text


def new_keys(conn: sa.Connection, activities: int, snapshots: int = 0) -> tuple[list[int], list[int]]:
    """Primary keys for the activities and snapshots this transaction inserts next.

    PostgreSQL: from the tables' sequences, both in one statement. SQLite: this transaction is
    the only writer (BEGIN IMMEDIATE), so the keys after the highest are its own until it
    commits — as long as it inserts them before any row that takes a key by itself.
    """
    if not activities and not snapshots:
        return [], []
    cur = raw.cursor(conn)
    if cur.dialect == "postgresql":
        row = cur.execute(_NEXTVAL, (activities, snapshots)).fetchone()
        assert row is not None
        return [int(pk) for pk in row[0]], [int(pk) for pk in row[1]]
    out: list[list[int]] = []
    for table, count in (("activities", activities), ("snapshots", snapshots)):
        last = int(cur.execute(f"SELECT coalesce(max(pk), 0) FROM {table}").scalar()) if count else 0
        out.append(list(range(last + 1, last + 1 + count)))
    return out[0], out[1]


def find_for_update(conn: sa.Connection, project_id: str, activity_ids: Sequence[str]) -> dict[str, tuple[Any, ...]]:
    """``id → (pk, integration_id, doc text)`` of the activities among ``activity_ids`` that
    exist, locked until the transaction ends on PostgreSQL."""
    cur = raw.cursor(conn)
    lock = " FOR UPDATE" if cur.dialect == "postgresql" else ""
    out: dict[str, tuple[Any, ...]] = {}
    unique = list(dict.fromkeys(activity_ids))
    for start in range(0, len(unique), CHUNK):
        part = unique[start:start + CHUNK]
        among, params = raw.among(cur.dialect, "id", part, "text")
        rows = cur.execute(f"SELECT id, pk, integration_id, doc FROM activities WHERE project_id = ? "
                           f"AND {among}{lock}", [project_id, *params]).fetchall()
        for activity_id, pk, integration_id, text in rows:
            out[activity_id] = (int(pk), integration_id, text)
    return out


def states_reached(conn: sa.Connection, activity_pks: Sequence[int]) -> dict[int, set[str]]:
    """The states each of ``activity_pks`` has a snapshot of."""
    cur = raw.cursor(conn)
    out: dict[int, set[str]] = {pk: set() for pk in activity_pks}
    unique = list(out)
    for start in range(0, len(unique), CHUNK):
        part = unique[start:start + CHUNK]
        among, params = raw.among(cur.dialect, "activity_pk", part, "bigint")
        for pk, state in cur.execute(f"SELECT activity_pk, state FROM snapshots WHERE {among}", params).fetchall():
            out[int(pk)].add(state)
    return out


def insert_activities(conn: sa.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Activity rows (:func:`activity_row`, keys from :func:`new_keys`)."""
    _insert(conn, "activities", ACTIVITY_COLUMNS, ("bigint", *["text"] * 10), rows, utf8=("doc",))


def insert_snapshots(conn: sa.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Snapshots ``(pk, activity_pk, state, body, reached_at)`` (keys from :func:`new_keys`);
    ``body`` None: the activity's document as this transaction leaves it (which no run of this
    snapshot may be given: a run's snapshot holds its body)."""
    _insert(conn, "snapshots", SNAPSHOT_COLUMNS, ("bigint", "bigint", "text", "text", "text"), rows, utf8=("body",))


def update_activities(conn: sa.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Rewrite activities: ``(state, result, environments, updated_at, doc, pk)`` each (``doc``:
    see :func:`doc_value`); the snapshots that left their body to a document keep the text it had."""
    if not rows:
        return
    write_out_snapshots(conn, [row[-1] for row in rows])
    raw.cursor(conn).bulk(
        "UPDATE activities SET state = ?, result = ?, environments = ?, updated_at = ?, doc = CAST(? AS TEXT) "
        "WHERE pk = ?",
        "UPDATE activities AS a SET state = v.state, result = v.result, environments = v.environments, "
        "updated_at = v.updated_at, doc = v.doc FROM unnest(?::text[], ?::text[], ?::text[], ?::text[], ?::text[], "
        "?::bigint[]) AS v(state, result, environments, updated_at, doc, pk) WHERE a.pk = v.pk", rows)


def insert_run_rows(conn: sa.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Rows of ``runs`` (:data:`RUN_COLUMNS`) for run activities inserted in this transaction."""
    _insert(conn, "runs", RUN_COLUMNS, ("bigint", "text", "text", "bigint", "bigint", "int", "float8", "boolean"), rows)


def insert_first_logs(conn: sa.Connection, rows: Sequence[tuple[int, str, str]]) -> None:
    """The first log line ``(run_pk, timestamp, message)`` of runs just created (``n`` = 1)."""
    _insert(conn, "run_logs", LOG_COLUMNS, ("bigint", "int", "text", "text"),
            [(pk, 1, ts, message) for pk, ts, message in rows])


def _insert(conn: sa.Connection, table: str, columns: Sequence[str], types: Sequence[str],
            rows: Sequence[tuple[Any, ...]], utf8: Sequence[str] = ()) -> None:
    # SQLite: one prepared statement stepped per row in C (cheaper there than a multi-row
    # VALUES); the ``utf8`` columns take a document as text or as its UTF-8 bytes (doc_value).
    # PostgreSQL: one statement taking each column as an array (store.raw's bulk): one plan,
    # and long documents sent length-prefixed in binary rather than escaped.
    names = ", ".join(columns)
    marks = ", ".join("CAST(? AS TEXT)" if column in utf8 else "?" for column in columns)
    raw.cursor(conn).bulk(f"INSERT INTO {table} ({names}) VALUES ({marks})",
                          f"INSERT INTO {table} ({names}) SELECT * FROM unnest("
                          + ", ".join(f"?::{t}[]" for t in types) + ")", rows)
