"""An integration's script storage: what its scripts stored, one key removed, all cleared —
the twin of ``/api/projects/{p}/integrations/{i}/storage``."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.responses import Response

from firehook.service import integrations as integration_service
from firehook.service import projects as project_service
from firehook.service import storage as service
from firehook.web import auth, render
from firehook.web.render import UIRoute

router = APIRouter(route_class=UIRoute, include_in_schema=False)


def _url(project: str, integration: str) -> str:
    return f"/projects/{project}/integrations/{integration}/storage"


@router.get("/projects/{project}/integrations/{integration}/storage")
async def storage_page(project: str, integration: str, request: Request) -> Response:
    who = await auth.principal(request)
    services = auth.services_of(request)
    info = await auth.call(project_service.get, services, who, project)
    item = await auth.call(integration_service.get, services, who, project, integration)
    listing = await auth.call(service.listing, services, who, project, integration)
    return render.page(request, "storage.html", {"project": info, "integration": item, "storage": listing,
                                                 "quote": quote}, who=who)


@router.post("/projects/{project}/integrations/{integration}/storage/clear")
async def clear(project: str, integration: str, request: Request) -> Response:
    who = await auth.principal(request)
    await auth.form_checked(request)
    removed = await auth.call(service.clear, auth.services_of(request), who, project, integration)
    return render.redirect(request, _url(project, integration),
                           f"Cleared the storage: {removed} key{'s' if removed != 1 else ''} removed.")


@router.post("/projects/{project}/integrations/{integration}/storage/remove")
async def remove(project: str, integration: str, request: Request) -> Response:
    who = await auth.principal(request)
    form = await auth.form_checked(request)
    key = str(form.get("key") or "")
    await auth.call(service.remove, auth.services_of(request), who, project, integration, key)
    return render.redirect(request, _url(project, integration), f"Removed {key!r}.")
