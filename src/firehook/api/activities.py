"""Activity routes: intake (SPEC §2.3), reading, logs, replay and cancel (§6)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from firehook import model
from firehook.api.http import (
    JSON_BODY,
    OPTIONAL_JSON_BODY,
    bearer,
    call,
    json_body,
    listing_params,
    principal,
    services_of,
)
from firehook.api.intake import through_fastapi
from firehook.service import activities as service
from firehook.service import intake

router = APIRouter(prefix="/api/projects/{project}", tags=["activities"])

LOG_POLL_SECONDS = 0.3


@router.get("/activities")
async def list_activities(project: str, request: Request, who: model.Token = Depends(principal)) -> Any:
    """Activities and runs, newest first by when firehook received them (not by the document's
    own ``created_at``). Filters: ``type`` (repeatable; globs with ``*`` and ``?``, such as
    ``environment.*``), ``state`` (repeatable), ``result``, ``environment``, ``count`` (1–1000,
    default 50), ``starts_at`` (only those received before that time: the next page)."""
    return await call(service.list_, services_of(request), who, project, listing_params(request))


# Intake is answered by the lean path (api.intake); these routes keep it in the OpenAPI
# document and answer the same way when the lean path does not take a request.
@router.post("/activities", status_code=201, openapi_extra=JSON_BODY,
             dependencies=[Depends(bearer)])
async def create_activity(project: str, request: Request) -> Any:
    return await through_fastapi(request, "create", project)


@router.post(
    "/activities:batch",
    openapi_extra={"requestBody": {"required": True,
                                   "content": {"application/x-ndjson": {"schema": {"type": "string"}}}}},
    dependencies=[Depends(bearer)],
)
async def batch_activities(project: str, request: Request) -> Any:
    return await through_fastapi(request, "batch", project)


@router.get("/activities/{activity}")
async def get_activity(project: str, activity: str, request: Request, who: model.Token = Depends(principal)) -> Any:
    return await call(service.get, services_of(request), who, project, activity)


@router.patch("/activities/{activity}", openapi_extra=JSON_BODY)
async def patch_activity(project: str, activity: str, request: Request, who: model.Token = Depends(principal)) -> Any:
    body = await json_body(request, allow_nul=True)  # a document: stored as JSON text
    accepted = await call(intake.patch, services_of(request), who, project, activity, body)
    return accepted.answer()


@router.get("/activities/{activity}/attempts")
async def activity_attempts(project: str, activity: str, request: Request,
                            who: model.Token = Depends(principal)) -> Any:
    return await call(service.attempts, services_of(request), who, project, activity)


@router.get("/activities/{activity}/runs")
async def activity_runs(project: str, activity: str, request: Request, who: model.Token = Depends(principal)) -> Any:
    return await call(service.runs_of, services_of(request), who, project, activity)


@router.post("/activities/{activity}/replay", openapi_extra=OPTIONAL_JSON_BODY)
async def replay_activity(project: str, activity: str, request: Request,
                          who: model.Token = Depends(principal)) -> Any:
    body = await json_body(request, allow_empty=True)
    return await call(service.replay, services_of(request), who, project, activity, body)


@router.post("/activities/{activity}/cancel")
async def cancel_activity(project: str, activity: str, request: Request,
                          who: model.Token = Depends(principal)) -> Any:
    return await call(service.cancel, services_of(request), who, project, activity)


@router.get("/activities/{activity}/log", response_class=StreamingResponse)
async def activity_log(project: str, activity: str, request: Request, who: model.Token = Depends(principal)) -> Any:
    """NDJSON lines ``{"_id": n, "data": {"timestamp", "message"}}``, then ``{"seal": true}``
    once the run is finished; while it runs, the stream follows it."""
    cursor = await call(service.LogCursor, services_of(request), who, project, activity)

    async def lines() -> AsyncIterator[bytes]:
        while True:
            batch, sealed = await call(cursor.read)
            if batch:
                yield b"".join(json.dumps(item, ensure_ascii=False).encode() + b"\n" for item in batch)
            if sealed:
                yield b'{"seal": true}\n'
                return
            if await request.is_disconnected():
                return
            if not batch:
                await asyncio.sleep(LOG_POLL_SECONDS)

    return StreamingResponse(lines(), media_type="application/x-ndjson")
