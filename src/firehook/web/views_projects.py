"""The projects page (``GET /api/projects``) and project creation for admins."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from firehook import errors, model
from firehook.service import projects as project_service
from firehook.web import auth, render
from firehook.web.render import UIRoute

router = APIRouter(route_class=UIRoute, include_in_schema=False)


async def _list_page(request: Request, who: model.Token, values: dict[str, str], field_errors: dict[str, str],
                     status: int = 200) -> Response:
    projects = await auth.call(project_service.list_, auth.services_of(request), who)
    return render.page(request, "projects.html", {"projects": projects, "values": values, "errors": field_errors},
                       status=status, who=who)


@router.get("/projects")
async def projects(request: Request) -> Response:
    who = await auth.principal(request)
    return await _list_page(request, who, {}, {})


@router.post("/projects")
async def create_project(request: Request) -> Response:
    who = await auth.principal(request)
    form = await auth.form_checked(request)
    values = {"title": str(form.get("title") or ""), "id": str(form.get("id") or "").strip()}
    body: dict[str, str] = {"title": values["title"]}
    if values["id"]:
        body["id"] = values["id"]
    try:
        created = await auth.call(project_service.create, auth.services_of(request), who, body)
    except (errors.InvalidInput, errors.Conflict) as exc:
        detail = exc.detail if isinstance(exc.detail, dict) else {"title": exc.message}
        return await _list_page(request, who, values, detail, status=exc.status)
    return render.redirect(request, f"/projects/{created['id']}/integrations", f"Created project {created['title']}.")


@router.get("/projects/{project}")
async def project_home(project: str, request: Request) -> Response:
    who = await auth.principal(request)
    await auth.call(project_service.get, auth.services_of(request), who, project)
    return RedirectResponse(f"/projects/{project}/activities", status_code=303)
