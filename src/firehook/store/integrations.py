"""Integrations and their variables: rows of ``integrations`` and ``variables``."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import sqlalchemy as sa

from firehook import model
from firehook.store import jsonutil, raw
from firehook.store.schema import integrations, script_storage, variables

IC = integrations.c
V = variables.c


def to_model(row: Any) -> model.Integration:
    config = jsonutil.loads(row["config"])
    retry = config.get("retry")
    return model.Integration(
        id=row["id"],
        project=row["project_id"],
        type=row["type"],
        enabled=bool(row["enabled"]),
        events=tuple(config.get("events") or ()),
        states=tuple(config.get("states") or ()),
        result=config.get("result") or "*",
        environments=tuple(config.get("environments") or ()),
        excluded_environments=tuple(config.get("excluded_environments") or ()),
        ordered=bool(config.get("ordered")),
        script=config.get("script"),
        url=config.get("url"),
        shared_key=row["shared_key"],
        previous_shared_key=row["previous_shared_key"],
        previous_key_expires_at=config.get("previous_key_expires_at"),
        retry=tuple(retry) if retry is not None else None,
        standard_webhooks=bool(config.get("standard_webhooks")),
        description=config.get("description"),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        failing_since=config.get("failing_since"),
        disabled_reason=config.get("disabled_reason"),
    )


def insert(conn: sa.Connection, item: model.Integration) -> None:
    conn.execute(integrations.insert().values(
        id=item.id, project_id=item.project, type=item.type, enabled=item.enabled,
        config=jsonutil.dumps(item.config()), shared_key=item.shared_key,
        previous_shared_key=item.previous_shared_key, created_at=item.created_at, updated_at=item.updated_at,
    ))


def save(conn: sa.Connection, item: model.Integration) -> None:
    conn.execute(integrations.update().where(IC.id == item.id).values(
        enabled=item.enabled, config=jsonutil.dumps(item.config()), shared_key=item.shared_key,
        previous_shared_key=item.previous_shared_key, updated_at=item.updated_at,
    ))


def get(conn: sa.Connection, project_id: str, integration_id: str) -> model.Integration | None:
    row = conn.execute(
        sa.select(integrations).where(IC.project_id == project_id, IC.id == integration_id)
    ).mappings().first()
    return to_model(row) if row else None


def get_by_id(conn: sa.Connection, integration_id: str) -> model.Integration | None:
    row = conn.execute(sa.select(integrations).where(IC.id == integration_id)).mappings().first()
    return to_model(row) if row else None


# The reads every claim round, every intake transaction and every run state change make: on
# the DB-API (store.raw), since SQLAlchemy's statement building cost more than the reads.
_COLUMNS = [c.name for c in integrations.columns]
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM integrations"
_VARIABLE_COLUMNS = [c.name for c in variables.columns]


def _rows(cur: raw.Cursor, columns: list[str]) -> list[dict[str, Any]]:
    return [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]


def get_many(conn: sa.Connection, integration_ids: Iterable[str]) -> dict[str, model.Integration]:
    return send_get_many(conn, integration_ids)()


def send_get_many(conn: sa.Connection, integration_ids: Iterable[str]) -> Callable[[], dict[str, model.Integration]]:
    """:func:`get_many` in two steps: the statement is sent now, its rows read when the returned
    function is called (in a pipeline, with other reads' round trip)."""
    ids = list(set(integration_ids))
    if not ids:
        return dict
    cur = raw.cursor(conn)
    among, params = raw.among(cur.dialect, "id", ids, "text")
    cur.execute(f"{_SELECT} WHERE {among}", params)
    return lambda: {r["id"]: to_model(r) for r in _rows(cur, _COLUMNS)}


def list_for(conn: sa.Connection, project_id: str, *, enabled_only: bool = False) -> list[model.Integration]:
    where = " WHERE project_id = ? AND enabled = ?" if enabled_only else " WHERE project_id = ?"
    params: tuple[Any, ...] = (project_id, True) if enabled_only else (project_id,)
    cur = raw.cursor(conn).execute(_SELECT + where + " ORDER BY created_at, id", params)
    return [to_model(r) for r in _rows(cur, _COLUMNS)]


def listening_to_runs(conn: sa.Connection, project_id: str) -> list[model.Integration]:
    """The enabled integrations of a project whose configuration mentions ``integration.`` —
    a superset of those whose events name ``integration.*`` (the caller checks each): every run
    state change asks, and most projects have none, so the others are not decoded."""
    return send_listening_to_runs(conn, project_id)()


def send_listening_to_runs(conn: sa.Connection, project_id: str) -> Callable[[], list[model.Integration]]:
    """:func:`listening_to_runs` in two steps, as :func:`send_get_many`."""
    cur = raw.cursor(conn)
    # A substring search, not LIKE '%integration.%': LIKE compares character by character, case
    # folded, through the whole configuration (a script's source included): 25 µs against 7 µs
    # for one short script here. Case-sensitive, as the events it stands in for are compared.
    contains = "strpos(config, ?) > 0" if cur.dialect == "postgresql" else "instr(config, ?) > 0"
    cur.execute(f"{_SELECT} WHERE project_id = ? AND enabled = ? AND {contains} ORDER BY created_at, id",
                (project_id, True, "integration."))
    return lambda: [to_model(r) for r in _rows(cur, _COLUMNS)]


def delete(conn: sa.Connection, integration_id: str) -> None:
    # Explicit child deletes: SQLite enforces ON DELETE CASCADE only with the pragma on, and a
    # database file created by another tool may not have it.
    conn.execute(variables.delete().where(V.integration_id == integration_id))
    conn.execute(script_storage.delete().where(script_storage.c.integration_id == integration_id))
    conn.execute(integrations.delete().where(IC.id == integration_id))


def _variable(row: Any) -> model.Variable:
    return model.Variable(
        id=row["id"], integration=row["integration_id"], name=row["name"], value=row["value"],
        is_json=bool(row["is_json"]), is_sensitive=bool(row["is_sensitive"]),
        attributes=jsonutil.loads(row["attributes"]), created_at=row["created_at"], updated_at=row["updated_at"],
    )


def list_variables(conn: sa.Connection, integration_id: str) -> list[model.Variable]:
    rows = conn.execute(
        sa.select(variables).where(V.integration_id == integration_id).order_by(V.name)
    ).mappings()
    return [_variable(r) for r in rows]


def variables_for_many(conn: sa.Connection, integration_ids: Iterable[str]) -> dict[str, list[model.Variable]]:
    return send_variables_for_many(conn, integration_ids)()


def send_variables_for_many(conn: sa.Connection,
                            integration_ids: Iterable[str]) -> Callable[[], dict[str, list[model.Variable]]]:
    """:func:`variables_for_many` in two steps, as :func:`send_get_many`."""
    ids = list(integration_ids)
    if not ids:
        return dict
    cur = raw.cursor(conn)
    among, params = raw.among(cur.dialect, "integration_id", ids, "text")
    cur.execute(f"SELECT {', '.join(_VARIABLE_COLUMNS)} FROM variables WHERE {among}", params)

    def read() -> dict[str, list[model.Variable]]:
        out: dict[str, list[model.Variable]] = {i: [] for i in ids}
        for row in _rows(cur, _VARIABLE_COLUMNS):
            out[row["integration_id"]].append(_variable(row))
        return out

    return read


def get_variable(conn: sa.Connection, integration_id: str, name: str) -> model.Variable | None:
    row = conn.execute(
        sa.select(variables).where(V.integration_id == integration_id, V.name == name)
    ).mappings().first()
    return _variable(row) if row else None


def find_variable(conn: sa.Connection, integration_id: str, ref: str) -> model.Variable | None:
    """The variable of this integration whose stable ``id`` is ``ref``, else the one named ``ref``
    (tools written for Upsun address variables by id, people by name)."""
    rows = conn.execute(
        sa.select(variables).where(V.integration_id == integration_id, sa.or_(V.id == ref, V.name == ref))
    ).mappings().all()
    by_id = [r for r in rows if r["id"] == ref]
    chosen = by_id[0] if by_id else (rows[0] if rows else None)
    return _variable(chosen) if chosen else None


def insert_variable(conn: sa.Connection, var: model.Variable) -> None:
    conn.execute(variables.insert().values(
        id=var.id, integration_id=var.integration, name=var.name, value=var.value, is_json=var.is_json,
        is_sensitive=var.is_sensitive, attributes=jsonutil.dumps(var.attributes),
        created_at=var.created_at, updated_at=var.updated_at,
    ))


def save_variable(conn: sa.Connection, var: model.Variable) -> None:
    conn.execute(variables.update().where(V.id == var.id).values(
        value=var.value, is_json=var.is_json, is_sensitive=var.is_sensitive,
        attributes=jsonutil.dumps(var.attributes), updated_at=var.updated_at,
    ))


def delete_variable(conn: sa.Connection, integration_id: str, variable_id: str) -> bool:
    result = conn.execute(variables.delete().where(V.integration_id == integration_id, V.id == variable_id))
    return result.rowcount > 0
