"""Validation of what clients send: activity documents and integration fields. Pure.

Every error names the field (``InvalidInput.field``), so the API can answer
``{"detail": {field: message}}``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from firehook import errors, event_types, ids, model, timefmt

TYPE_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,127}$")
# Upsun sends PHP's empty array `[]` where an object is expected ("timings": [], "attributes": []);
# those fields take an object, null or an empty list.
OBJECT_FIELDS = ("parameters", "payload", "timings")
TIMESTAMP_FIELDS = ("created_at", "updated_at", "started_at", "completed_at", "cancelled_at", "expires_at")
STRING_FIELDS = ("description", "text", "log", "failure_reason")
LINK_FIELDS = ("_links",)


def activity(doc: Any) -> dict[str, Any]:
    """Check an activity document for intake; returns it (a dict) or raises InvalidInput."""
    if not isinstance(doc, dict):
        raise errors.InvalidInput.field("body", f"an activity must be a JSON object, not {_json_type(doc)}")
    check_activity_fields(doc)
    if "type" not in doc or doc["type"] is None:
        raise errors.InvalidInput.field("type", "is required")
    return doc


def check_activity_fields(doc: Mapping[str, Any]) -> None:
    """Check the fields present in ``doc`` (a whole document or a PATCH): every field of SPEC
    §2.1 has its type checked, with a message naming it (unknown fields are kept untouched)."""
    if "type" in doc and doc["type"] is not None:
        if not isinstance(doc["type"], str):
            raise errors.InvalidInput.field("type", f"must be a string, not {_json_type(doc['type'])}")
        if not TYPE_PATTERN.match(doc["type"]):
            raise errors.InvalidInput.field("type", f"{doc['type']!r} is not an event name like environment.push")
    if "id" in doc and doc["id"] is not None and not ids.is_valid_given_id(doc["id"]):
        raise errors.InvalidInput.field("id", "must be 1 to 64 letters, digits, '.', '_' or '-'")
    state = doc.get("state")
    if state is not None:
        if not isinstance(state, str):
            raise errors.InvalidInput.field("state", f"must be a string or null, not {_json_type(state)}")
        if state not in model.ACTIVITY_STATES:
            raise errors.InvalidInput.field(
                "state", f"{_shown(state)} is not one of {', '.join(sorted(model.ACTIVITY_STATES))}")
    result = doc.get("result")
    if result is not None and (not isinstance(result, str) or result not in model.RESULTS):
        shown = _shown(result) if isinstance(result, str) else _json_type(result)
        raise errors.InvalidInput.field("result", f"{shown} is not one of failure, success, or null")
    if "environments" in doc and doc["environments"] is not None:
        envs = doc["environments"]
        if not isinstance(envs, list) or not all(isinstance(e, str) for e in envs):
            raise errors.InvalidInput.field("environments", "must be a list of environment names (strings)")
    for name in OBJECT_FIELDS + LINK_FIELDS:
        value = doc.get(name)
        if value is not None and not isinstance(value, dict) and value != []:
            raise errors.InvalidInput.field(name, f"must be an object, not {_json_type(value)}")
    for name in STRING_FIELDS + ("project",):
        value = doc.get(name)
        if value is not None and not isinstance(value, str):
            raise errors.InvalidInput.field(name, f"must be a string or null, not {_json_type(value)}")
    for name in TIMESTAMP_FIELDS:
        value = doc.get(name)
        if value is not None:
            _timestamp(name, value)
    percent = doc.get("completion_percent")
    if percent is not None and (isinstance(percent, bool) or not isinstance(percent, (int, float))
                                or not 0 <= percent <= 100):
        raise errors.InvalidInput.field("completion_percent", "must be a number from 0 to 100")
    timings = doc.get("timings")
    if isinstance(timings, dict):
        for key, seconds in timings.items():
            if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, (int, float))):
                raise errors.InvalidInput.field("timings",
                                                f"{key} must be a number of seconds, not {_json_type(seconds)}")
    commands = doc.get("commands")
    if commands is not None and not isinstance(commands, (list, dict)):
        raise errors.InvalidInput.field("commands", f"must be a list, an object or null, not {_json_type(commands)}")


TIMESTAMP_MAX = 40  # characters: what the timestamp columns hold (store.activities.STAMP_LENGTH)


def _timestamp(name: str, value: Any) -> None:
    if not isinstance(value, str):
        raise errors.InvalidInput.field(name, f"must be an ISO-8601 timestamp or null, not {_json_type(value)}")
    if len(value) > TIMESTAMP_MAX or "\x00" in value:
        raise errors.InvalidInput.field(name, f"is not a timestamp: longer than {TIMESTAMP_MAX} characters")
    try:
        timefmt.parse_ts(value)
    except ValueError:
        raise errors.InvalidInput.field(
            name, f"{_shown(value)} is not an ISO-8601 timestamp like 2025-12-14T15:41:05.821145+00:00") from None


def _shown(text: str) -> str:
    """A client's string quoted in a message, cut short."""
    return repr(text if len(text) <= 60 else text[:57] + "...")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


# --- integrations -----------------------------------------------------------------------------

# Fields a client may send back as it read them (from firehook or from Upsun, whose integrations
# carry `role`, `status`, `_embedded`…): ignored, never refused.
READ_ONLY_FIELDS = frozenset({"id", "project", "created_at", "updated_at", "_links", "_embedded", "role",
                              "status", "failing_since", "disabled_reason", "previous_key_expires_at"})
COMMON_FIELDS = frozenset({
    "type", "events", "states", "result", "environments", "excluded_environments", "enabled", "ordered",
    "description",
})
SCRIPT_FIELDS = COMMON_FIELDS | {"script"}
WEBHOOK_FIELDS = COMMON_FIELDS | {"url", "shared_key", "retry", "standard_webhooks", "keep_previous_key_for"}
_STATE_CHOICES = model.ACTIVITY_STATES | {"*"}


def string_list(name: str, value: Any, *, allow_empty: bool = True) -> tuple[str, ...]:
    """A list of non-empty strings; a single string is split on commas and spaces."""
    if isinstance(value, str):
        value = [v for v in re.split(r"[,\s]+", value) if v]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise errors.InvalidInput.field(name, "must be a list of non-empty strings")
    if not value and not allow_empty:
        raise errors.InvalidInput.field(name, "must not be empty")
    return tuple(v.strip() for v in value)


def _bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise errors.InvalidInput.field(name, "must be true or false")
    return value


def _optional_text(name: str, value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise errors.InvalidInput.field(name, "must be a string or null")
    return value


def webhook_url(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise errors.InvalidInput.field("url", "is required for a webhook: an http or https URL")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https"):
        raise errors.InvalidInput.field("url", f"must be an http or https URL, not {parts.scheme or 'relative'}")
    if not parts.hostname:
        raise errors.InvalidInput.field("url", "has no host name")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise errors.InvalidInput.field("url", "has an invalid port") from None
    return value


def integration_changes(body: Any, current_type: str | None) -> dict[str, Any]:
    """Validate an integration create (``current_type`` None) or PATCH body.

    Returns the normalised changes; the caller applies them. Read-only fields are ignored so a
    client can send back what it read.
    """
    if not isinstance(body, dict):
        raise errors.InvalidInput.field("body", "must be a JSON object")
    if current_type is None:
        kind = body.get("type")
        if kind is None:
            raise errors.InvalidInput.field("type", "is required: script or webhook")
        if not isinstance(kind, str) or kind not in model.INTEGRATION_TYPES:
            shown = _shown(kind) if isinstance(kind, str) else _json_type(kind)
            raise errors.InvalidInput.field("type", f"{shown} is not one of script, webhook")
    else:
        kind = current_type
        if "type" in body and body["type"] != current_type:
            raise errors.InvalidInput.field("type", "cannot be changed; create a new integration instead")
    allowed = SCRIPT_FIELDS if kind == "script" else WEBHOOK_FIELDS
    out: dict[str, Any] = {}
    for name, value in body.items():
        if name in READ_ONLY_FIELDS or name == "type":
            continue
        if name == "shared_key" and value == model.SECRET_MASK:
            continue  # the masked key as read back: the key is kept
        if name not in allowed:
            other = "webhook" if kind == "script" else "script"
            if name in (WEBHOOK_FIELDS if other == "webhook" else SCRIPT_FIELDS):
                raise errors.InvalidInput.field(name, f"does not apply to a {kind} integration")
            raise errors.InvalidInput.field(name, "is not a field of integrations")
        out[name] = _field(name, value)
    if current_type is None:
        if kind == "script" and "script" not in out:
            raise errors.InvalidInput.field("script", "is required for a script integration")
        if kind == "webhook" and "url" not in out:
            raise errors.InvalidInput.field("url", "is required for a webhook: an http or https URL")
    return out


def _field(name: str, value: Any) -> Any:
    if name in ("events", "states", "environments"):
        items = string_list(name, value, allow_empty=False)
        if name == "events":
            for item in items:
                why = event_types.pattern_error(item)
                if why is not None:
                    raise errors.InvalidInput.field(name, why)
        if name == "states":
            for item in items:
                if item not in _STATE_CHOICES:
                    raise errors.InvalidInput.field(
                        name, f"{item!r} is not a state: use *, {', '.join(sorted(model.ACTIVITY_STATES))}")
        return items
    if name == "excluded_environments":
        return string_list(name, value)
    if name == "result":
        if value not in ("*", "success", "failure"):
            raise errors.InvalidInput.field(name, "must be *, success or failure")
        return value
    if name in ("enabled", "ordered", "standard_webhooks"):
        return _bool(name, value)
    if name == "description":
        return _optional_text(name, value)
    if name == "script":
        if not isinstance(value, str) or not value.strip():
            raise errors.InvalidInput.field(name, "must be the JavaScript source, a non-empty string")
        return value
    if name == "url":
        return webhook_url(value)
    if name == "shared_key":
        if value is not None and (not isinstance(value, str) or not value):
            raise errors.InvalidInput.field(name, "must be a non-empty string, or null to stop signing")
        return value
    if name == "retry":
        if value is None:
            return None
        if not isinstance(value, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in value
        ):
            raise errors.InvalidInput.field(name, "must be a list of delays in seconds (numbers ≥ 0), or null")
        return tuple(float(v) for v in value)
    if name == "keep_previous_key_for":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise errors.InvalidInput.field(name, "must be a number of seconds > 0")
        return float(value)
    raise errors.InvalidInput.field(name, "is not a field of integrations")  # pragma: no cover


SENSITIVE_MIN_LENGTH = 4  # characters: a shorter value ("1", "yes") cannot be masked in logs without
# masking ordinary words (masking.MIN_LENGTH), so it is refused


def maskable(value: str, sensitive: bool) -> None:
    """Refuse a sensitive value too short to be masked in run logs."""
    if sensitive and len(value) < SENSITIVE_MIN_LENGTH:
        raise errors.InvalidInput.field(
            "value", f"a sensitive value must be at least {SENSITIVE_MIN_LENGTH} characters long, or it could not "
                     "be masked in run logs (shorter values would mask ordinary words)")


VARIABLE_FIELDS = frozenset({"name", "value", "is_json", "is_sensitive", "attributes"})
VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]{0,255}$")


def variable_changes(body: Any, *, creating: bool) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise errors.InvalidInput.field("body", "must be a JSON object")
    out: dict[str, Any] = {}
    for name, value in body.items():
        if name in ("id", "integration", "created_at", "updated_at", "_links"):
            continue
        if name not in VARIABLE_FIELDS:
            raise errors.InvalidInput.field(name, "is not a field of variables")
        if name == "name":
            if not creating:
                raise errors.InvalidInput.field(name, "cannot be changed; delete the variable and create it anew")
            if not isinstance(value, str) or not VARIABLE_NAME.match(value):
                raise errors.InvalidInput.field(name, "must start with a letter or _ and hold letters, digits, _ . : -")
        elif name == "value":
            if not isinstance(value, str):
                raise errors.InvalidInput.field(name, "must be a string (JSON text when is_json is true)")
        elif name in ("is_json", "is_sensitive"):
            _bool(name, value)
        elif name == "attributes":
            if value == []:
                value = {}
            if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
                raise errors.InvalidInput.field(name, "must be an object of strings")
        out[name] = value
    if creating:
        for required in ("name", "value"):
            if required not in out:
                raise errors.InvalidInput.field(required, "is required")
    return out
