"""Activities and runs: the list with filters, one activity or run with its log, attempts and
timings, the log as JSON for live following, replay and cancel — the twins of
``/api/projects/{p}/activities…``."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.responses import Response

from firehook import event_types
from firehook.service import activities as activity_service
from firehook.service import integrations as integration_service
from firehook.service import projects as project_service
from firehook.service import timeline
from firehook.web import auth, render
from firehook.web.render import UIRoute

router = APIRouter(route_class=UIRoute, include_in_schema=False)

PAGE_SIZE = 20  # activities a page, each with its runs under it
MAX_LOG_LINES = 50_000  # past this, the page's script reads the rest
KNOWN_TYPES = event_types.KNOWN


@router.get("/projects/{project}/activities")
async def activities(project: str, request: Request) -> Response:
    who = await auth.principal(request)
    services = auth.services_of(request)
    q = request.query_params
    filters = {name: (q.get(name) or "").strip() for name in ("type", "state", "result", "environment")}
    params: dict[str, Any] = {k: v for k, v in filters.items() if v and k != "type"}
    params["type"] = [filters["type"]] if filters["type"] else []
    if q.get("starts_at"):
        params["starts_at"] = q["starts_at"]
    info = await auth.call(project_service.get, services, who, project)
    listed = await auth.call(timeline.page, services, who, project, params, PAGE_SIZE)
    kept = {k: v for k, v in filters.items() if v}
    next_page = "?" + urlencode({**kept, "starts_at": listed["next"]}) if listed["next"] else None
    first_page = ("?" + urlencode(kept)) if q.get("starts_at") else None
    return render.page(request, "activities.html", {
        "project": info, "items": listed["items"], "filters": filters, "known_types": KNOWN_TYPES,
        "next_page": next_page, "first_page": first_page,
    }, who=who)


@router.get("/projects/{project}/activities/{activity}")
async def activity(project: str, activity: str, request: Request) -> Response:
    who = await auth.principal(request)
    services = auth.services_of(request)
    info = await auth.call(project_service.get, services, who, project)
    cursor = await auth.call(activity_service.LogCursor, services, who, project, activity)
    doc = dict(cursor.doc)
    is_run = cursor.is_run
    log_lines, sealed = await _read_log(cursor)
    context: dict[str, Any] = {
        "project": info, "activity": doc, "is_run": is_run, "log_lines": log_lines, "sealed": sealed,
        "after": cursor.after, "timings": doc.get("timings") if isinstance(doc.get("timings"), dict) else {},
        "attempts": [], "runs": [], "integrations": [],
    }
    context["integrations"] = await auth.call(integration_service.list_, services, who, project)
    # runs are named by their integration (its name, or a webhook's host, port and path)
    context["names"] = {i["id"]: render.name_of(i) for i in context["integrations"]}
    if is_run:
        context["attempts"] = await auth.call(activity_service.attempts, services, who, project, activity)
    else:
        context["runs"] = await auth.call(activity_service.runs_of, services, who, project, activity)
    return render.page(request, "activity.html", context, who=who)


async def _read_log(cursor: Any) -> tuple[list[dict[str, Any]], bool]:
    """The whole log written so far (the cursor reads it in pages), and whether it is sealed."""
    lines: list[dict[str, Any]] = []
    while True:
        batch, sealed = await auth.call(cursor.read)
        lines.extend(batch)
        if sealed or not batch or len(lines) >= MAX_LOG_LINES:
            return lines, sealed


@router.get("/projects/{project}/activities/{activity}/log.json")
async def activity_log(project: str, activity: str, request: Request) -> Response:
    """The log lines after line ``after``, whether the log is sealed, and the run's state: the
    page follows a running run with this (the API's NDJSON stream needs a bearer token)."""
    who = await auth.principal(request)
    services = auth.services_of(request)
    cursor = await auth.call(activity_service.LogCursor, services, who, project, activity)
    after = request.query_params.get("after", "0")
    cursor.after = int(after) if after.isdigit() else 0
    lines, sealed = await auth.call(cursor.read)
    return JSONResponse({"lines": lines, "after": cursor.after, "sealed": sealed,
                         "state": cursor.doc.get("state"), "result": cursor.doc.get("result")})


@router.post("/projects/{project}/activities/{activity}/replay")
async def replay(project: str, activity: str, request: Request) -> Response:
    who = await auth.principal(request)
    form = await auth.form_checked(request)
    body: dict[str, Any] = {}
    chosen = [str(v) for v in form.getlist("integrations") if v]
    if chosen:
        body["integrations"] = chosen
    if form.get("state"):
        body["state"] = str(form.get("state"))
    answer = await auth.call(activity_service.replay, auth.services_of(request), who, project, activity, body)
    runs = answer["_embedded"]["runs"]
    if len(runs) == 1 and form.get("open_run"):
        return render.redirect(request, f"/projects/{project}/activities/{runs[0]['id']}", "Replayed: 1 new run.")
    if not runs:
        message = "Replayed: no integration matches this activity in that state, so nothing ran."
    else:
        message = f"Replayed: {len(runs)} new run{'s' if len(runs) != 1 else ''}."
    return render.redirect(request, f"/projects/{project}/activities/{activity}", message)


@router.post("/projects/{project}/activities/{activity}/cancel")
async def cancel(project: str, activity: str, request: Request) -> Response:
    who = await auth.principal(request)
    await auth.form_checked(request)
    await auth.call(activity_service.cancel, auth.services_of(request), who, project, activity)
    return render.redirect(request, f"/projects/{project}/activities/{activity}", "Run cancelled.")
