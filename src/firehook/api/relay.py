"""The Upsun relay (SPEC §2.3): ``POST /hooks/upsun/{project}``.

One Upsun webhook points here; the body is an activity document, verified against the
project's relay key (``X-JWS-Signature``) when the project has one, then taken in like any
other activity.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request, Response

from firehook import errors, metrics, signing, validation
from firehook.api.http import JSON_BODY, call, parse_json, read_body, services_of
from firehook.service import projects as project_service

router = APIRouter(tags=["relay"])


@router.post("/hooks/upsun/{project}", openapi_extra=JSON_BODY)
async def upsun_relay(project: str, request: Request) -> Any:
    services = services_of(request)
    raw = await read_body(request, services.settings.max_document_bytes)
    exists, key = await call(project_service.relay_key, services, project)
    if not exists:
        raise errors.NotFound(f"project {project} not found")
    if key:
        header = request.headers.get("x-jws-signature")
        if not header:
            raise errors.Unauthorized("missing X-JWS-Signature: this project's relay requires signed deliveries")
        try:
            signing.verify_detached(raw, header, key)
        except signing.InvalidSignature as exc:
            raise errors.Unauthorized(f"X-JWS-Signature does not verify: {exc.message}") from None
    doc = validation.activity(parse_json(raw))
    accepted = await asyncio.wrap_future(request.app.state.group_commit.submit(None, project, doc, check_token=False))
    metrics.ACTIVITIES.labels("relay").inc()
    return Response(accepted.answer_bytes(), status_code=201 if accepted.created else 200,
                    media_type="application/json")
