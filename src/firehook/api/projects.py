"""Project routes (SPEC §8)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from firehook import model
from firehook.api.http import JSON_BODY, call, json_body, principal, services_of
from firehook.service import projects as service

router = APIRouter(prefix="/api/projects", tags=["projects"])


@router.get("")
async def list_projects(request: Request, who: model.Token = Depends(principal)) -> Any:
    return await call(service.list_, services_of(request), who)


@router.post("", status_code=201, openapi_extra=JSON_BODY)
async def create_project(request: Request, who: model.Token = Depends(principal)) -> Any:
    body = await json_body(request)
    entity = await call(service.create, services_of(request), who, body)
    return {"status": "created", "code": 201, "_embedded": {"entity": entity}}


@router.get("/{project}")
async def get_project(project: str, request: Request, who: model.Token = Depends(principal)) -> Any:
    return await call(service.get, services_of(request), who, project)


@router.patch("/{project}", openapi_extra=JSON_BODY)
async def update_project(project: str, request: Request, who: model.Token = Depends(principal)) -> Any:
    body = await json_body(request)
    entity = await call(service.update, services_of(request), who, project, body)
    return {"status": "updated", "code": 200, "_embedded": {"entity": entity}}


@router.delete("/{project}", status_code=204)
async def delete_project(project: str, request: Request, who: model.Token = Depends(principal)) -> Response:
    await call(service.delete, services_of(request), who, project)
    return Response(status_code=204)
