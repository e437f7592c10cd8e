"""``GET /metrics`` in the Prometheus text format."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from firehook import metrics
from firehook.api.http import call

router = APIRouter(tags=["operations"])


@router.get("/metrics", response_class=Response)
async def prometheus(request: Request) -> Response:
    body = await call(lambda: generate_latest(metrics.scrape_registry()))
    return Response(body, media_type=CONTENT_TYPE_LATEST)
