"""The dry-run page: a script against a pasted or recorded activity, with the real runtime,
``fetch`` answered canned and a throw-away storage, so nothing leaves firehook.

It reads only through the services with the signed-in token (the activity, the project, the
script and the non-sensitive variables of an integration), and needs a token that may write,
as ``validate`` does, since it runs code on the server.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from firehook import dryrun, errors, model
from firehook.service import activities as activity_service
from firehook.service import integrations as integration_service
from firehook.service import projects as project_service
from firehook.web import auth, render
from firehook.web.render import UIRoute

router = APIRouter(route_class=UIRoute, include_in_schema=False)

RECENT = 50
SAMPLE_SCRIPT = """// The activity is the global `activity`; variables are in `variables`.
console.log("Got", activity.type, "in state", activity.state);
var res = fetch("https://hooks.example.com/notify", {
  method: "POST",
  headers: {"Content-Type": "application/json"},
  body: JSON.stringify({text: activity.text}),
});
console.log("answered", res.status);
"""


async def _page(request: Request, who: model.Token, project: str, values: dict[str, str], *,
                picked_activity: str = "", picked_integration: str = "", sensitive_names: list[str] | None = None,
                field_errors: dict[str, str] | None = None, outcome: Any = None,
                log_lines: list[dict[str, str]] | None = None, status: int = 200) -> Response:
    services = auth.services_of(request)
    info = await auth.call(project_service.get, services, who, project)
    recent = await auth.call(activity_service.list_, services, who, project, {"count": str(RECENT)})
    recent = [a for a in recent if not str(a.get("type", "")).startswith("integration.")]
    integrations = await auth.call(integration_service.list_, services, who, project)
    return render.page(request, "dryrun.html", {
        "project": info, "recent": recent, "scripts": [i for i in integrations if i["type"] == "script"],
        "values": values, "picked_activity": picked_activity, "picked_integration": picked_integration,
        "sensitive_names": sensitive_names or [], "errors": field_errors or {}, "outcome": outcome,
        "log_lines": log_lines or [],
    }, status=status, who=who)


@router.get("/projects/{project}/dry-run")
async def dry_run_page(project: str, request: Request) -> Response:
    who = await auth.principal(request)
    services = auth.services_of(request)
    activity_id = request.query_params.get("activity", "")
    integration_id = request.query_params.get("integration", "")
    values = {"activity_json": "", "script": SAMPLE_SCRIPT, "variables_json": "{}"}
    sensitive: list[str] = []
    if activity_id:
        doc = await auth.call(activity_service.get, services, who, project, activity_id)
        values["activity_json"] = json.dumps(doc, indent=2, ensure_ascii=False)
    if integration_id:
        item = await auth.call(integration_service.get, services, who, project, integration_id)
        if item["type"] != "script":
            raise errors.InvalidInput.field("integration", f"{integration_id} is a webhook, not a script")
        values["script"] = item["script"] or ""
        variables = await auth.call(integration_service.list_variables, services, who, project, integration_id)
        plain = {}
        for var in variables:
            if var["is_sensitive"]:
                sensitive.append(var["name"])
            else:
                plain[var["name"]] = json.loads(var["value"]) if var["is_json"] else var["value"]
        values["variables_json"] = json.dumps(plain, indent=2, ensure_ascii=False)
    return await _page(request, who, project, values, picked_activity=activity_id, picked_integration=integration_id,
                       sensitive_names=sensitive)


@router.post("/projects/{project}/dry-run")
async def dry_run(project: str, request: Request) -> Response:
    who = await auth.principal(request)
    form = await auth.form_checked(request)
    services = auth.services_of(request)
    values = {name: str(form.get(name) or "") for name in ("activity_json", "script", "variables_json")}
    field_errors: dict[str, str] = {}
    activity_doc = _json_object(values["activity_json"], "activity", field_errors)
    variables = _json_object(values["variables_json"] or "{}", "variables", field_errors)
    if not values["script"].strip():
        field_errors["script"] = "write a script to run"
    if field_errors:
        return await _page(request, who, project, values, field_errors=field_errors, status=400)
    # The same use case as POST /api/projects/{p}/dry-run.
    report = await auth.call(dryrun.dry_run, services, who, project,
                             {"script": values["script"], "activity": activity_doc, "variables": variables})
    outcome = SimpleNamespace(success=report["result"] == "success", error=report["error"],
                              duration_ms=report["duration_ms"])
    return await _page(request, who, project, values, outcome=outcome, log_lines=report["log"])


def _json_object(text: str, field: str, field_errors: dict[str, str]) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        field_errors[field] = f"is not valid JSON: {exc}"
        return {}
    if not isinstance(value, dict):
        field_errors[field] = "must be a JSON object"
        return {}
    return value
