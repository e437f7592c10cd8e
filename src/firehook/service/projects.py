"""Projects: the unit of tenancy."""

from __future__ import annotations

from typing import Any

from firehook import errors, ids, model, timefmt
from firehook.service.core import Services, project_not_found, require_admin, require_project, require_write
from firehook.store import projects as store
from firehook.store import tokens as token_store


def public(row: dict[str, Any]) -> dict[str, Any]:
    doc = dict(row["doc"])
    doc["id"] = row["id"]
    doc["title"] = row["title"]
    doc["has_relay_key"] = bool(row.get("relay_key"))
    doc["created_at"] = row["created_at"]
    doc["updated_at"] = row["updated_at"]
    return doc


def _relay_key(value: Any) -> str | None:
    if value is not None and (not isinstance(value, str) or not value):
        raise errors.InvalidInput.field("relay_key", "must be a non-empty string, or null to remove it")
    return value


def _title(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise errors.InvalidInput.field("title", "is required: a non-empty string")
    return value


def create(services: Services, principal: model.Token, body: Any) -> dict[str, Any]:
    require_admin(principal)
    if not isinstance(body, dict):
        raise errors.InvalidInput.field("body", "must be a JSON object")
    doc = dict(body)
    project_id = doc.pop("id", None)
    if project_id is None:
        project_id = ids.new_id()
    elif not ids.is_valid_given_id(project_id):
        raise errors.InvalidInput.field("id", "must be 1 to 64 letters, digits, '.', '_' or '-'")
    title = _title(doc.get("title"))
    relay_key = _relay_key(doc.pop("relay_key", None))
    for derived in ("has_relay_key", "created_at", "updated_at"):
        doc.pop(derived, None)
    doc["id"] = project_id
    now = timefmt.now_ts()
    with services.database.write() as conn:
        if store.exists(conn, project_id):
            raise errors.Conflict(f"project {project_id} already exists", {"id": "already exists"})
        store.insert(conn, project_id, title, doc, relay_key, now)
        row = store.get(conn, project_id)
    assert row is not None
    return public(row)


def get_row(services: Services, principal: model.Token, project_id: str) -> dict[str, Any]:
    require_project(principal, project_id)
    with services.database.read() as conn:
        row = store.get(conn, project_id)
    if row is None:
        raise project_not_found(project_id)
    return row


def get(services: Services, principal: model.Token, project_id: str) -> dict[str, Any]:
    return public(get_row(services, principal, project_id))


def list_(services: Services, principal: model.Token) -> list[dict[str, Any]]:
    with services.database.read() as conn:
        return [public(r) for r in store.list_all(conn, only=principal.project)]


def update(services: Services, principal: model.Token, project_id: str, body: Any) -> dict[str, Any]:
    require_write(principal)
    row = get_row(services, principal, project_id)
    if not isinstance(body, dict):
        raise errors.InvalidInput.field("body", "must be a JSON object")
    if "id" in body and body["id"] != project_id:
        raise errors.InvalidInput.field("id", "cannot be changed")
    doc = dict(row["doc"])
    relay: Any = False
    for name, value in body.items():
        if name == "relay_key":
            relay = _relay_key(value)
        elif name in ("has_relay_key", "created_at", "updated_at", "id"):
            continue
        else:
            doc[name] = value
    title = _title(doc.get("title", row["title"]))
    with services.database.write() as conn:
        store.update(conn, project_id, title=title, doc=doc, now=timefmt.now_ts(), relay_key=relay)
        fresh = store.get(conn, project_id)
    assert fresh is not None
    return public(fresh)


def delete(services: Services, principal: model.Token, project_id: str) -> None:
    require_admin(principal)
    get_row(services, principal, project_id)
    with services.database.write() as conn:
        store.delete(conn, project_id)
        # Its tokens end with it: a project created later under the same id is someone else's.
        token_store.revoke_for_project(conn, project_id, timefmt.now_ts())


def relay_key(services: Services, project_id: str) -> tuple[bool, str | None]:
    """(project exists, its relay key) — for the relay endpoint, which has no bearer token."""
    with services.database.read() as conn:
        row = store.get(conn, project_id)
    if row is None:
        return False, None
    return True, row.get("relay_key")
