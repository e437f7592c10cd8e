"""Integrations and their variables: rows of ``integrations`` and ``variables``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from firehook import model
from firehook.store import jsonutil
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


_LIST = sa.select(integrations).where(IC.project_id == sa.bindparam("p")).order_by(IC.created_at, IC.id)
_LIST_ENABLED = _LIST.where(IC.enabled.is_(True))


def get_many(conn: sa.Connection, integration_ids: Iterable[str]) -> dict[str, model.Integration]:
    ids = list(set(integration_ids))
    if not ids:
        return {}
    return {r["id"]: to_model(r) for r in conn.execute(sa.select(integrations).where(IC.id.in_(ids))).mappings()}


def list_for(conn: sa.Connection, project_id: str, *, enabled_only: bool = False) -> list[model.Integration]:
    query = _LIST_ENABLED if enabled_only else _LIST
    return [to_model(r) for r in conn.execute(query, {"p": project_id}).mappings()]


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
    ids = list(integration_ids)
    out: dict[str, list[model.Variable]] = {i: [] for i in ids}
    if ids:
        for row in conn.execute(sa.select(variables).where(V.integration_id.in_(ids))).mappings():
            out[row["integration_id"]].append(_variable(row))
    return out


def get_variable(conn: sa.Connection, integration_id: str, name: str) -> model.Variable | None:
    row = conn.execute(
        sa.select(variables).where(V.integration_id == integration_id, V.name == name)
    ).mappings().first()
    return _variable(row) if row else None


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


def delete_variable(conn: sa.Connection, integration_id: str, name: str) -> bool:
    result = conn.execute(variables.delete().where(V.integration_id == integration_id, V.name == name))
    return result.rowcount > 0
