"""Integrations (SPEC §3) and their variables (§3.3)."""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

from firehook import errors, ids, model, timefmt, validation
from firehook.service.core import Services, readable_project, require_write
from firehook.store import integrations as store
from firehook.store import jsonutil


def links(project_id: str, integration_id: str) -> dict[str, Any]:
    base = f"/api/projects/{project_id}/integrations/{integration_id}"
    return {"self": {"href": base}, "#edit": {"href": base, "method": "PATCH"},
            "#delete": {"href": base, "method": "DELETE"}, "#validate": {"href": base + "/validate", "method": "POST"}}


def public(item: model.Integration) -> dict[str, Any]:
    body = item.public()
    body["_links"] = links(item.project, item.id)
    return body


def get_model(services: Services, principal: model.Token, project_id: str, integration_id: str) -> model.Integration:
    readable_project(services, principal, project_id)
    with services.database.read() as conn:
        item = store.get(conn, project_id, integration_id)
    if item is None:
        raise errors.NotFound(f"integration {integration_id} not found in project {project_id}")
    return item


def list_(services: Services, principal: model.Token, project_id: str) -> list[dict[str, Any]]:
    readable_project(services, principal, project_id)
    with services.database.read() as conn:
        return [public(i) for i in store.list_for(conn, project_id)]


def get(services: Services, principal: model.Token, project_id: str, integration_id: str) -> dict[str, Any]:
    return public(get_model(services, principal, project_id, integration_id))


def _checks(services: Services, changes: dict[str, Any]) -> None:
    if "script" in changes and isinstance(changes["script"], str):
        size = len(changes["script"].encode("utf-8", "surrogatepass"))
        limit = int(services.settings.script_max_bytes)
        if size > limit:
            raise errors.InvalidInput.field(
                "script",
                f"the script is {size} bytes; the limit is {limit} bytes (FIREHOOK_SCRIPT_MAX_BYTES)",
            )
    if "script" in changes and services.check_script is not None:
        try:
            services.check_script(changes["script"])
        except errors.ScriptError as exc:
            raise errors.InvalidInput.field("script", exc.message) from None
    if changes.get("url") and services.check_url is not None:
        try:
            services.check_url(changes["url"])
        except errors.OutboundBlocked as exc:
            raise errors.InvalidInput.field("url", exc.message) from None
        except errors.InvalidInput as exc:
            raise errors.InvalidInput.field("url", exc.message) from None


def _apply(item: model.Integration, changes: dict[str, Any], now: str) -> model.Integration:
    fields = {k: v for k, v in changes.items() if k not in ("shared_key", "keep_previous_key_for")}
    if "shared_key" in changes and changes["shared_key"] != item.shared_key:
        keep = changes.get("keep_previous_key_for")
        if keep and item.shared_key:
            fields["previous_shared_key"] = item.shared_key
            fields["previous_key_expires_at"] = timefmt.from_epoch(time.time() + keep)
        else:
            fields["previous_shared_key"] = None
            fields["previous_key_expires_at"] = None
        fields["shared_key"] = changes["shared_key"]
    elif "keep_previous_key_for" in changes:
        raise errors.InvalidInput.field("keep_previous_key_for", "goes with a new shared_key")
    if changes.get("enabled") is True:
        # Enabling (by hand) starts afresh: no failure streak, no reason to be disabled.
        fields["failing_since"] = None
        fields["disabled_reason"] = None
    elif changes.get("enabled") is False:
        fields["disabled_reason"] = None
    fields["updated_at"] = now
    return dataclasses.replace(item, **fields)


def create(services: Services, principal: model.Token, project_id: str, body: Any) -> dict[str, Any]:
    require_write(principal)
    readable_project(services, principal, project_id)
    changes = validation.integration_changes(body, None)
    _checks(services, changes)
    kind = body["type"]
    now = timefmt.now_ts()
    base = model.Integration(
        id=ids.new_id(), project=project_id, type=kind, events=model.DEFAULT_EVENTS[kind],
        states=model.DEFAULT_STATES, created_at=now, updated_at=now,
    )
    item = _apply(base, changes, now)
    with services.database.write() as conn:
        store.insert(conn, item)
    return public(item)


def update(services: Services, principal: model.Token, project_id: str, integration_id: str,
           body: Any) -> dict[str, Any]:
    require_write(principal)
    current = get_model(services, principal, project_id, integration_id)
    changes = validation.integration_changes(body, current.type)
    _checks(services, changes)
    with services.database.write() as conn:
        fresh = store.get(conn, project_id, integration_id)
        if fresh is None:
            raise errors.NotFound(f"integration {integration_id} not found in project {project_id}")
        item = _apply(fresh, changes, timefmt.now_ts())
        store.save(conn, item)
    return public(item)


def delete(services: Services, principal: model.Token, project_id: str, integration_id: str) -> None:
    require_write(principal)
    get_model(services, principal, project_id, integration_id)
    with services.database.write() as conn:
        store.delete(conn, integration_id)


def validate(services: Services, principal: model.Token, project_id: str, integration_id: str) -> dict[str, Any]:
    """Compile and dry-run a script, or send a test delivery for a webhook (SPEC §3.4)."""
    require_write(principal)
    item = get_model(services, principal, project_id, integration_id)
    if services.validate_integration is None:
        raise errors.FirehookError("validation is not available in this process")
    return services.validate_integration(services, item)


# --- variables --------------------------------------------------------------------------------


def _parse_json_value(value: str) -> None:
    try:
        jsonutil.loads_strict(value)
    except ValueError as exc:
        raise errors.InvalidInput.field("value", f"is_json is true but the value is not JSON: {exc}") from None


def list_variables(services: Services, principal: model.Token, project_id: str,
                   integration_id: str) -> list[dict[str, Any]]:
    get_model(services, principal, project_id, integration_id)
    with services.database.read() as conn:
        return [v.public() for v in store.list_variables(conn, integration_id)]


def _variable(conn: Any, integration_id: str, ref: str) -> model.Variable:
    var = store.find_variable(conn, integration_id, ref)
    if var is None:
        raise errors.NotFound(f"variable {ref} not found on integration {integration_id} (by id or name)")
    return var


def get_variable(services: Services, principal: model.Token, project_id: str, integration_id: str,
                 ref: str) -> dict[str, Any]:
    """The variable whose id, else name, is ``ref``."""
    get_model(services, principal, project_id, integration_id)
    with services.database.read() as conn:
        return _variable(conn, integration_id, ref).public()


def create_variable(services: Services, principal: model.Token, project_id: str, integration_id: str,
                    body: Any) -> dict[str, Any]:
    require_write(principal)
    get_model(services, principal, project_id, integration_id)
    changes = validation.variable_changes(body, creating=True)
    if changes.get("is_json"):
        _parse_json_value(changes["value"])
    now = timefmt.now_ts()
    var = model.Variable(id=ids.new_id(), integration=integration_id, name=changes["name"], value=changes["value"],
                         is_json=changes.get("is_json", False), is_sensitive=changes.get("is_sensitive", False),
                         attributes=changes.get("attributes", {}), created_at=now, updated_at=now)
    validation.maskable(var.value, var.is_sensitive)
    with services.database.write() as conn:
        if store.get_variable(conn, integration_id, var.name) is not None:
            raise errors.Conflict(f"variable {var.name} already exists; update it with PATCH",
                                  {"name": "already exists"})
        store.insert_variable(conn, var)
    return var.public()


def update_variable(services: Services, principal: model.Token, project_id: str, integration_id: str,
                    ref: str, body: Any) -> dict[str, Any]:
    """Update the variable whose id, else name, is ``ref``. Its own ``name`` and read-only
    fields sent back as read are ignored."""
    require_write(principal)
    get_model(services, principal, project_id, integration_id)
    with services.database.write() as conn:
        var = _variable(conn, integration_id, ref)
        if isinstance(body, dict) and body.get("name") == var.name:
            body = {k: v for k, v in body.items() if k != "name"}
        changes = validation.variable_changes(body, creating=False)
        if var.is_sensitive and changes.get("is_sensitive") is False:
            raise errors.InvalidInput.field("is_sensitive", "a sensitive variable cannot be made non-sensitive")
        if var.is_sensitive and changes.get("value") == model.SECRET_MASK:
            changes.pop("value")  # the masked value as read back: the value is kept
        fresh = dataclasses.replace(var, **changes, updated_at=timefmt.now_ts())
        validation.maskable(fresh.value, fresh.is_sensitive)
        if fresh.is_json:
            _parse_json_value(fresh.value)
        store.save_variable(conn, fresh)
    return fresh.public()


def delete_variable(services: Services, principal: model.Token, project_id: str, integration_id: str,
                    ref: str) -> None:
    """Delete the variable whose id, else name, is ``ref``."""
    require_write(principal)
    get_model(services, principal, project_id, integration_id)
    with services.database.write() as conn:
        var = _variable(conn, integration_id, ref)
        store.delete_variable(conn, integration_id, var.id)


def script_variables(variables: list[model.Variable]) -> dict[str, Any]:
    """What scripts see as ``variables``: name → value, parsed when ``is_json``."""
    out: dict[str, Any] = {}
    for var in variables:
        out[var.name] = json.loads(var.value) if var.is_json else var.value
    return out
