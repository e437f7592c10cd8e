"""Projects: rows of the ``projects`` table."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import sqlalchemy as sa

from firehook.store import jsonutil, raw
from firehook.store.schema import projects

T = projects.c


def insert(conn: sa.Connection, project_id: str, title: str, doc: dict[str, Any], relay_key: str | None,
           now: str) -> None:
    conn.execute(projects.insert().values(id=project_id, title=title, doc=jsonutil.dumps(doc),
                                          relay_key=relay_key, created_at=now, updated_at=now))


def get(conn: sa.Connection, project_id: str) -> dict[str, Any] | None:
    """The project row as a dict with ``doc`` parsed, or None."""
    row = conn.execute(sa.select(projects).where(T.id == project_id)).mappings().first()
    return _row(row) if row else None


_EXISTS = sa.select(T.id).where(T.id == sa.bindparam("p"))


def exists(conn: sa.Connection, project_id: str) -> bool:
    return conn.execute(_EXISTS, {"p": project_id}).first() is not None


def list_all(conn: sa.Connection, only: str | None = None) -> list[dict[str, Any]]:
    query = sa.select(projects).order_by(T.created_at, T.id)
    if only is not None:
        query = query.where(T.id == only)
    return [_row(r) for r in conn.execute(query).mappings()]


def update(conn: sa.Connection, project_id: str, *, title: str, doc: dict[str, Any], now: str,
           relay_key: str | None | bool = False) -> None:
    values: dict[str, Any] = {"title": title, "doc": jsonutil.dumps(doc), "updated_at": now}
    if relay_key is not False:
        values["relay_key"] = relay_key
    conn.execute(projects.update().where(T.id == project_id).values(**values))


def delete(conn: sa.Connection, project_id: str) -> bool:
    return conn.execute(projects.delete().where(T.id == project_id)).rowcount > 0


def _row(row: Any) -> dict[str, Any]:
    out = dict(row)
    out["doc"] = jsonutil.loads(out["doc"])
    return out


_COLUMNS = [c.name for c in projects.columns]


def get_many(conn: sa.Connection, project_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Rows of several projects (every claim round asks: on the DB-API)."""
    return send_get_many(conn, project_ids)()


def send_get_many(conn: sa.Connection, project_ids: Iterable[str]) -> Callable[[], dict[str, dict[str, Any]]]:
    """:func:`get_many` in two steps: the statement is sent now, its rows read when the returned
    function is called (in a pipeline, with other reads' round trip)."""
    ids = list(set(project_ids))
    if not ids:
        return dict
    cur = raw.cursor(conn)
    among, params = raw.among(cur.dialect, "id", ids, "text")
    cur.execute(f"SELECT {', '.join(_COLUMNS)} FROM projects WHERE {among}", params)
    return lambda: {row[0]: _row(dict(zip(_COLUMNS, row, strict=True))) for row in cur.fetchall()}


def script_object(row: dict[str, Any] | None, project_id: str) -> dict[str, Any]:
    """The project object scripts see (the global ``project``): the stored document, with its
    id and title always there. Runs, dry runs and validation all use this one."""
    if row is None:
        return {"id": project_id}
    doc = dict(row["doc"])
    doc.setdefault("id", row["id"])
    doc.setdefault("title", row["title"])
    return doc
