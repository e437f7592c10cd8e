"""The Upsun relay (SPEC §2.3): ``POST /hooks/upsun/{project}``.

One Upsun webhook points here; the body is an activity document, verified against the
project's relay key (``X-JWS-Signature``) when the project has one, then taken in like any
other activity. Answered by the lean intake path (``api.intake``); this route keeps it in the
OpenAPI document and answers the same way when the lean path does not take a request.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from firehook.api.http import JSON_BODY
from firehook.api.intake import through_fastapi

router = APIRouter(tags=["relay"])


@router.post("/hooks/upsun/{project}", openapi_extra=JSON_BODY)
async def upsun_relay(project: str, request: Request) -> Any:
    return await through_fastapi(request, "relay", project)
