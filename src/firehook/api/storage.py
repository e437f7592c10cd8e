"""An integration's script storage (SPEC §4.4): read what its scripts stored, remove, clear."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from firehook import model
from firehook.api.http import call, principal, services_of
from firehook.service import storage as service

router = APIRouter(prefix="/api/projects/{project}/integrations/{integration}/storage", tags=["integrations"])


@router.get("")
async def list_storage(project: str, integration: str, request: Request,
                       who: model.Token = Depends(principal)) -> Any:
    """Every key the integration's scripts stored, with its value as the script gets it (a
    string, number or boolean) and the bytes it counts against the quota."""
    return await call(service.listing, services_of(request), who, project, integration)


@router.delete("")
async def clear_storage(project: str, integration: str, request: Request,
                        who: model.Token = Depends(principal)) -> Any:
    """Remove every key: the next run starts from an empty storage."""
    removed = await call(service.clear, services_of(request), who, project, integration)
    return {"status": "cleared", "code": 200, "removed": removed}


@router.get("/{key:path}")
async def get_storage_key(project: str, integration: str, key: str, request: Request,
                          who: model.Token = Depends(principal)) -> Any:
    return await call(service.get, services_of(request), who, project, integration, key)


@router.delete("/{key:path}", status_code=204)
async def delete_storage_key(project: str, integration: str, key: str, request: Request,
                             who: model.Token = Depends(principal)) -> Response:
    await call(service.remove, services_of(request), who, project, integration, key)
    return Response(status_code=204)
