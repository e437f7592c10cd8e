"""Turning submitted forms into the JSON bodies the services take (the same as the API's),
and integrations back into form values."""

from __future__ import annotations

import re
from typing import Any

from firehook import errors

LIST_FIELDS = ("events", "states", "environments", "excluded_environments")
FLAGS = ("enabled", "ordered")


def _text(form: Any, name: str) -> str:
    return str(form.get(name) or "")


def integration_body(form: Any, kind: str, *, creating: bool) -> dict[str, Any]:
    """The create or PATCH body of an integration form. Empty filter fields keep the defaults
    (on create) or the current value (on update); the shared key is only sent when typed."""
    body: dict[str, Any] = {"type": kind} if creating else {}
    for name in LIST_FIELDS:
        value = _text(form, name).strip()
        if value or name == "excluded_environments":
            body[name] = value
    body["result"] = _text(form, "result") or "*"
    for name in FLAGS:
        body[name] = name in form
    description = _text(form, "description").strip()
    body["description"] = description or None
    if kind == "script":
        body["script"] = _text(form, "script")
    else:
        body["url"] = _text(form, "url").strip()
        body["standard_webhooks"] = "standard_webhooks" in form
        key = _text(form, "shared_key")
        if key:
            body["shared_key"] = key
        elif "remove_shared_key" in form:
            body["shared_key"] = None
        body["retry"] = _retry(_text(form, "retry"))
    return body


def _retry(text: str) -> list[float] | None:
    parts = [p for p in re.split(r"[,\s]+", text.strip()) if p]
    if not parts:
        return None
    try:
        return [float(p) for p in parts]
    except ValueError:
        raise errors.InvalidInput.field("retry", "must be seconds separated by commas, e.g. 5, 300, 1800") from None


def integration_values(item: dict[str, Any] | None) -> dict[str, Any]:
    """Form values of an integration (the defaults for a new one). Never the shared key."""
    if item is None:
        return {"events": "", "states": "", "result": "*", "environments": "", "excluded_environments": "",
                "description": "", "enabled": True, "ordered": False, "script": "", "url": "",
                "standard_webhooks": False, "retry": ""}
    retry = item.get("retry")
    return {
        "events": ", ".join(item["events"]), "states": ", ".join(item["states"]), "result": item["result"],
        "environments": ", ".join(item["environments"]),
        "excluded_environments": ", ".join(item["excluded_environments"]),
        "description": item.get("description") or "", "enabled": item["enabled"], "ordered": item["ordered"],
        "script": item.get("script") or "", "url": item.get("url") or "",
        "standard_webhooks": bool(item.get("standard_webhooks")),
        "retry": ", ".join(f"{v:g}" for v in retry) if retry is not None else "",
    }


def submitted_values(form: Any) -> dict[str, Any]:
    """What was typed, to show the form again with its errors (never the shared key)."""
    values = integration_values(None)
    for name in (*LIST_FIELDS, "result", "description", "script", "url", "retry"):
        values[name] = _text(form, name)
    for name in (*FLAGS, "standard_webhooks"):
        values[name] = name in form
    return values


def variable_create_body(form: Any) -> dict[str, Any]:
    return {"name": _text(form, "name").strip(), "value": _text(form, "value"),
            "is_json": "is_json" in form, "is_sensitive": "is_sensitive" in form}


def variable_update_body(form: Any, current: dict[str, Any]) -> dict[str, Any]:
    """A sensitive variable's value is only replaced when a new one is typed; a variable can be
    made sensitive, never the other way."""
    body: dict[str, Any] = {"is_json": "is_json" in form}
    value = _text(form, "value")
    if value or not current.get("is_sensitive"):
        body["value"] = value
    if "is_sensitive" in form:
        body["is_sensitive"] = True
    return body
