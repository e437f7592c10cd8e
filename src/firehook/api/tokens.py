"""Token routes (SPEC §8): admins create, list and revoke tokens."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from firehook import model
from firehook.api.http import OPTIONAL_JSON_BODY, call, json_body, principal, services_of
from firehook.service import tokens as service

router = APIRouter(prefix="/api/tokens", tags=["tokens"])


@router.get("")
async def list_tokens(request: Request, who: model.Token = Depends(principal)) -> Any:
    return await call(service.list_, services_of(request), who)


@router.post("", status_code=201, openapi_extra=OPTIONAL_JSON_BODY)
async def create_token(request: Request, who: model.Token = Depends(principal)) -> Any:
    body = await json_body(request, allow_empty=True)
    return await call(service.create, services_of(request), who, body)


@router.delete("/{token_id}", status_code=204)
async def revoke_token(token_id: str, request: Request, who: model.Token = Depends(principal)) -> Response:
    await call(service.revoke, services_of(request), who, token_id)
    return Response(status_code=204)
