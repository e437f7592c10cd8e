"""Dry runs of scripts: the real runtime, ``fetch`` answered canned, a throw-away storage.

``POST /api/projects/{p}/dry-run`` (and the UI's dry-run page, its HTML twin) run a script —
pasted, or an integration's — against a pasted or recorded activity. ``validate`` uses the same
runner. Nothing leaves firehook, nothing is stored, and the values of sensitive variables are
masked in the log that comes back.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from firehook import errors, masking, model, scripts, timefmt
from firehook.scripts import pool
from firehook.service import activities as activity_service
from firehook.service import core
from firehook.service import integrations as integration_service
from firehook.service import projects as project_service
from firehook.store import integrations as integration_store
from firehook.store import kv
from firehook.store import projects as project_store

FIELDS = frozenset({"script", "activity", "activity_id", "integration", "variables"})


def run(services: core.Services, *, project_id: str, script: str, activity_json: str, project: dict[str, Any],
        variables: dict[str, Any], storage: scripts.StorageBackend, secrets: Iterable[str] = ()) -> dict[str, Any]:
    """Run ``script`` once without side effects, in a script process (429 when the project or
    the server has too many runs in progress); the report with its log (secrets masked)."""
    mask = masking.Masker(secrets)
    lines: list[dict[str, str]] = []

    def log(message: str) -> None:
        lines.append({"timestamp": timefmt.now_ts(), "message": mask(message)})

    if services.script_runner is None:
        raise errors.FirehookError("script runs are not available in this process")
    outcome = services.script_runner.run(pool.Request(
        project_id=project_id, source=script, activity_json=activity_json, project=project, variables=variables,
        storage=storage, limits=scripts.ScriptLimits.from_settings(services.settings), log=log,
        outbound_allow=services.settings.outbound_allow, dry_fetch=True,
    ))
    return {"result": "success" if outcome.success else "failure", "error": mask(outcome.error or "") or None,
            "duration_ms": round(outcome.duration_ms, 1), "log": lines}


def project_object(services: core.Services, project_id: str) -> dict[str, Any]:
    with services.database.read() as conn:
        return project_store.script_object(project_store.get(conn, project_id), project_id)


def integration_inputs(services: core.Services,
                       item: model.Integration) -> tuple[dict[str, Any], list[str], scripts.MemoryStorage]:
    """What a run of ``item`` gets, for a run without side effects: its variables, the values to
    mask, and a throw-away copy of its storage."""
    with services.database.read() as conn:
        stored = integration_store.list_variables(conn, item.id)
    storage = scripts.MemoryStorage(kv.IntegrationStorage(services.database, item.id).items())
    return integration_service.script_variables(stored), masking.sensitive_values(stored), storage


def dry_run(services: core.Services, principal: model.Token, project_id: str, body: Any) -> dict[str, Any]:
    """``{"script"?, "integration"?, "activity"? | "activity_id"?, "variables"?}``: the script is
    the given one or the integration's; variables the given ones or the integration's; the
    activity the given document or a stored one's current state."""
    core.require_write(principal)  # it runs code on the server, as validate does
    if not isinstance(body, dict):
        raise errors.InvalidInput.field("body", "must be a JSON object")
    unknown = set(body) - FIELDS
    if unknown:
        raise errors.InvalidInput.field(sorted(unknown)[0], f"is not a dry-run field ({', '.join(sorted(FIELDS))})")
    project_service.get(services, principal, project_id)  # the token may see it, and it exists
    project = project_object(services, project_id)
    script = body.get("script")
    variables = body.get("variables")
    secrets: list[str] = []
    storage: scripts.StorageBackend = scripts.MemoryStorage()
    if body.get("integration") is not None:
        item = integration_service.get_model(services, principal, project_id, str(body["integration"]))
        if item.type != "script":
            raise errors.InvalidInput.field("integration", f"{item.id} is a webhook, not a script")
        script = script if script is not None else item.script
        own_variables, own_secrets, storage = integration_inputs(services, item)
        if variables is None:
            variables, secrets = own_variables, own_secrets
    if not isinstance(script, str) or not script.strip():
        raise errors.InvalidInput.field("script", "is required: the JavaScript to run (or an integration)")
    if variables is None:
        variables = {}
    if not isinstance(variables, dict):
        raise errors.InvalidInput.field("variables", "must be an object of name → value")
    if body.get("activity") is not None:
        if not isinstance(body["activity"], dict):
            raise errors.InvalidInput.field("activity", "must be an activity document (a JSON object)")
        doc = dict(body["activity"])
        doc.setdefault("project", project_id)
    elif body.get("activity_id") is not None:
        doc = activity_service.get(services, principal, project_id, str(body["activity_id"]))
    else:
        raise errors.InvalidInput.field("activity", "is required: a document, or activity_id of a stored one")
    return run(services, project_id=project_id, script=script, activity_json=json.dumps(doc, ensure_ascii=False),
               project=project,
               variables=variables, storage=storage, secrets=secrets)
