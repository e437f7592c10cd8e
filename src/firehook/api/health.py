"""``/healthz``: the process is up and the database answers."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from firehook.api.http import call, services_of

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz(request: Request) -> Any:
    services = services_of(request)

    def ping() -> None:
        with services.database.read() as conn:
            conn.execute(sa.text("SELECT 1"))

    try:
        await call(ping)
    except Exception as exc:
        return JSONResponse({"status": "error", "database": str(exc)}, status_code=503)
    return {"status": "ok", "database": "ok"}
