"""Integration and variable routes (SPEC §3.3, §3.4)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from firehook import dryrun, errors, event_types, model
from firehook.api.http import JSON_BODY, call, json_body, listing_params, principal, services_of
from firehook.service import activities as activity_service
from firehook.service import integrations as service

router = APIRouter(prefix="/api/projects/{project}/integrations", tags=["integrations"])


@router.get("")
async def list_integrations(project: str, request: Request, who: model.Token = Depends(principal)) -> Any:
    return await call(service.list_, services_of(request), who, project)


@router.post("", status_code=201, openapi_extra=JSON_BODY)
async def create_integration(project: str, request: Request, who: model.Token = Depends(principal)) -> Any:
    body = await json_body(request)
    entity = await call(service.create, services_of(request), who, project, body)
    return {"status": "created", "code": 201, "_embedded": {"entity": entity}, **_warned(entity)}


@router.get("/{integration}")
async def get_integration(project: str, integration: str, request: Request,
                          who: model.Token = Depends(principal)) -> Any:
    return await call(service.get, services_of(request), who, project, integration)


@router.patch("/{integration}", openapi_extra=JSON_BODY)
async def update_integration(project: str, integration: str, request: Request,
                             who: model.Token = Depends(principal)) -> Any:
    body = await json_body(request)
    entity = await call(service.update, services_of(request), who, project, integration, body)
    return {"status": "updated", "code": 200, "_embedded": {"entity": entity}, **_warned(entity)}


def _warned(entity: dict[str, Any]) -> dict[str, Any]:
    """``warnings`` (a "did you mean" for an event name close to a known type) when there are any."""
    found = event_types.warnings(entity.get("events") or ())
    return {"warnings": found} if found else {}


@router.delete("/{integration}", status_code=202)
async def delete_integration(project: str, integration: str, request: Request,
                             who: model.Token = Depends(principal)) -> Any:
    """Deleted at once; the answer is Upsun's accepted body (its deletions are asynchronous)."""
    await call(service.delete, services_of(request), who, project, integration)
    return {"status": "accepted", "code": 202, "_embedded": {"activities": []}}


@router.post("/{integration}/validate")
async def validate_integration(project: str, integration: str, request: Request,
                               who: model.Token = Depends(principal)) -> Any:
    report = await call(service.validate, services_of(request), who, project, integration)
    if report.get("valid"):
        return JSONResponse(report, status_code=200)
    # The one error format, plus the report itself (`valid`, `errors`, the dry run or delivery).
    body = {**report, **errors.error_body(400, "Bad Request", report.get("errors") or "invalid")}
    return JSONResponse(body, status_code=400)


@router.get("/{integration}/activities")
async def integration_activities(project: str, integration: str, request: Request,
                                 who: model.Token = Depends(principal)) -> Any:
    params = listing_params(request)
    return await call(activity_service.list_, services_of(request), who, project, params, integration)


@router.get("/{integration}/variables")
async def list_variables(project: str, integration: str, request: Request,
                         who: model.Token = Depends(principal)) -> Any:
    return await call(service.list_variables, services_of(request), who, project, integration)


@router.post("/{integration}/variables", status_code=201, openapi_extra=JSON_BODY)
async def create_variable(project: str, integration: str, request: Request,
                          who: model.Token = Depends(principal)) -> Any:
    body = await json_body(request)
    entity = await call(service.create_variable, services_of(request), who, project, integration, body)
    return {"status": "created", "code": 201, "_embedded": {"entity": entity}}


@router.get("/{integration}/variables/{variable}")
async def get_variable(project: str, integration: str, variable: str, request: Request,
                       who: model.Token = Depends(principal)) -> Any:
    """``variable`` is the variable's id or its name."""
    return await call(service.get_variable, services_of(request), who, project, integration, variable)


@router.patch("/{integration}/variables/{variable}", openapi_extra=JSON_BODY)
async def update_variable(project: str, integration: str, variable: str, request: Request,
                          who: model.Token = Depends(principal)) -> Any:
    body = await json_body(request)
    entity = await call(service.update_variable, services_of(request), who, project, integration, variable, body)
    return {"status": "updated", "code": 200, "_embedded": {"entity": entity}}


@router.delete("/{integration}/variables/{variable}", status_code=204)
async def delete_variable(project: str, integration: str, variable: str, request: Request,
                          who: model.Token = Depends(principal)) -> Response:
    await call(service.delete_variable, services_of(request), who, project, integration, variable)
    return Response(status_code=204)


dry_run_router = APIRouter(prefix="/api/projects/{project}", tags=["integrations"])


@dry_run_router.post("/dry-run", openapi_extra=JSON_BODY)
async def dry_run(project: str, request: Request, who: model.Token = Depends(principal)) -> Any:
    """Run a script once with the real runtime, ``fetch`` answered canned, nothing stored."""
    body = await json_body(request)
    return await call(dryrun.dry_run, services_of(request), who, project, body)
