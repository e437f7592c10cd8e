"""Integrations and their variables: list, one, create, edit, enable/disable, delete, validate
— the twins of ``/api/projects/{p}/integrations…``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from firehook import errors, event_types, model
from firehook.service import activities as activity_service
from firehook.service import integrations as service
from firehook.service import projects as project_service
from firehook.web import auth, forms, render
from firehook.web.render import UIRoute

router = APIRouter(route_class=UIRoute, include_in_schema=False)

RUNS_SHOWN = 25


def _base(project: str, integration: str | None = None) -> str:
    url = f"/projects/{project}/integrations"
    return f"{url}/{integration}" if integration else url


def _detail(exc: errors.FirehookError) -> dict[str, str]:
    if isinstance(exc.detail, dict):
        return {str(k): str(v) for k, v in exc.detail.items()}
    return {"request": exc.message}


@router.get("/projects/{project}/integrations")
async def integrations(project: str, request: Request) -> Response:
    who = await auth.principal(request)
    services = auth.services_of(request)
    info = await auth.call(project_service.get, services, who, project)
    items = await auth.call(service.list_, services, who, project)
    return render.page(request, "integrations.html", {"project": info, "integrations": items}, who=who)


async def _form_page(request: Request, who: model.Token, project: str, kind: str, item: dict[str, Any] | None,
                     values: dict[str, Any], field_errors: dict[str, str], status: int = 200) -> Response:
    info = await auth.call(project_service.get, auth.services_of(request), who, project)
    return render.page(request, "integration_form.html", {
        "project": info, "kind": kind, "integration": item, "values": values, "errors": field_errors,
        "has_key": bool(item and item.get("shared_key")),
        "action": _base(project, item["id"]) if item else _base(project),
        "cancel_url": _base(project, item["id"]) if item else _base(project),
    }, status=status, who=who)


@router.get("/projects/{project}/integrations/new")
async def new_integration(project: str, request: Request) -> Response:
    who = await auth.principal(request)
    kind = request.query_params.get("type", "script")
    if kind not in model.INTEGRATION_TYPES:
        raise errors.InvalidInput.field("type", f"{kind!r} is not one of script, webhook")
    return await _form_page(request, who, project, kind, None, forms.integration_values(None), {})


@router.post("/projects/{project}/integrations")
async def create_integration(project: str, request: Request) -> Response:
    who = await auth.principal(request)
    form = await auth.form_checked(request)
    kind = str(form.get("type") or "")
    if kind not in model.INTEGRATION_TYPES:
        raise errors.InvalidInput.field("type", f"{kind!r} is not one of script, webhook")
    try:
        body = forms.integration_body(form, kind, creating=True)
        created = await auth.call(service.create, auth.services_of(request), who, project, body)
    except errors.InvalidInput as exc:
        return await _form_page(request, who, project, kind, None, forms.submitted_values(form),
                                _detail(exc), status=400)
    return render.redirect(request, _base(project, created["id"]),
                           " ".join([f"Created {kind} {created['id']}.", *event_types.warnings(created["events"])]))


@router.get("/projects/{project}/integrations/{integration}")
async def integration(project: str, integration: str, request: Request) -> Response:
    who = await auth.principal(request)
    return await _integration_page(request, who, project, integration, {}, {})


async def _integration_page(request: Request, who: model.Token, project: str, integration: str,
                            var_values: dict[str, Any], var_errors: dict[str, str], status: int = 200) -> Response:
    services = auth.services_of(request)
    info = await auth.call(project_service.get, services, who, project)
    item = await auth.call(service.get, services, who, project, integration)
    variables = await auth.call(service.list_variables, services, who, project, integration)
    runs = await auth.call(activity_service.list_, services, who, project, {"count": str(RUNS_SHOWN)}, integration)
    return render.page(request, "integration.html", {
        "project": info, "integration": item, "variables": variables, "runs": runs,
        "var_values": var_values, "var_errors": var_errors,
    }, status=status, who=who)


@router.get("/projects/{project}/integrations/{integration}/edit")
async def edit_integration(project: str, integration: str, request: Request) -> Response:
    who = await auth.principal(request)
    item = await auth.call(service.get, auth.services_of(request), who, project, integration)
    return await _form_page(request, who, project, item["type"], item, forms.integration_values(item), {})


@router.post("/projects/{project}/integrations/{integration}")
async def update_integration(project: str, integration: str, request: Request) -> Response:
    who = await auth.principal(request)
    form = await auth.form_checked(request)
    services = auth.services_of(request)
    item = await auth.call(service.get, services, who, project, integration)
    try:
        body = forms.integration_body(form, item["type"], creating=False)
        saved = await auth.call(service.update, services, who, project, integration, body)
    except errors.InvalidInput as exc:
        return await _form_page(request, who, project, item["type"], item,
                                forms.submitted_values(form), _detail(exc), status=400)
    return render.redirect(request, _base(project, integration),
                           " ".join(["Saved.", *event_types.warnings(saved["events"])]))


async def _set_enabled(project: str, integration: str, request: Request, enabled: bool) -> Response:
    who = await auth.principal(request)
    await auth.form_checked(request)
    await auth.call(service.update, auth.services_of(request), who, project, integration, {"enabled": enabled})
    back = request.headers.get("referer") or ""
    target = _base(project) if back.endswith(_base(project)) else _base(project, integration)
    return render.redirect(request, target, f"Integration {integration} {'enabled' if enabled else 'disabled'}.")


@router.post("/projects/{project}/integrations/{integration}/enable")
async def enable(project: str, integration: str, request: Request) -> Response:
    return await _set_enabled(project, integration, request, True)


@router.post("/projects/{project}/integrations/{integration}/disable")
async def disable(project: str, integration: str, request: Request) -> Response:
    return await _set_enabled(project, integration, request, False)


@router.post("/projects/{project}/integrations/{integration}/delete")
async def delete_integration(project: str, integration: str, request: Request) -> Response:
    who = await auth.principal(request)
    await auth.form_checked(request)
    await auth.call(service.delete, auth.services_of(request), who, project, integration)
    return render.redirect(request, _base(project), f"Deleted integration {integration}.")


@router.post("/projects/{project}/integrations/{integration}/validate")
async def validate(project: str, integration: str, request: Request) -> Response:
    who = await auth.principal(request)
    await auth.form_checked(request)
    services = auth.services_of(request)
    report = await auth.call(service.validate, services, who, project, integration)
    info = await auth.call(project_service.get, services, who, project)
    item = await auth.call(service.get, services, who, project, integration)
    return render.page(request, "validate.html", {"project": info, "integration": item, "report": report},
                       status=200 if report.get("valid") else 400, who=who)


# --- variables --------------------------------------------------------------------------------


@router.post("/projects/{project}/integrations/{integration}/variables")
async def create_variable(project: str, integration: str, request: Request) -> Response:
    who = await auth.principal(request)
    form = await auth.form_checked(request)
    body = forms.variable_create_body(form)
    try:
        await auth.call(service.create_variable, auth.services_of(request), who, project, integration, body)
    except (errors.InvalidInput, errors.Conflict) as exc:
        shown = {"name": body["name"], "is_json": body["is_json"], "is_sensitive": body["is_sensitive"]}
        return await _integration_page(request, who, project, integration, shown, _detail(exc), status=exc.status)
    return render.redirect(request, _base(project, integration) + "#variables", f"Added variable {body['name']}.")


@router.post("/projects/{project}/integrations/{integration}/variables/{name}")
async def update_variable(project: str, integration: str, name: str, request: Request) -> Response:
    who = await auth.principal(request)
    form = await auth.form_checked(request)
    services = auth.services_of(request)
    current = await auth.call(service.get_variable, services, who, project, integration, name)
    body = forms.variable_update_body(form, current)
    await auth.call(service.update_variable, services, who, project, integration, name, body)
    return render.redirect(request, _base(project, integration) + "#variables", f"Saved variable {name}.")


@router.post("/projects/{project}/integrations/{integration}/variables/{name}/delete")
async def delete_variable(project: str, integration: str, name: str, request: Request) -> Response:
    who = await auth.principal(request)
    await auth.form_checked(request)
    await auth.call(service.delete_variable, auth.services_of(request), who, project, integration, name)
    return render.redirect(request, _base(project, integration) + "#variables", f"Deleted variable {name}.")
