"""Verify webhooks in Starlette and FastAPI applications.

FastAPI::

    from fastapi import Depends, FastAPI
    from firehook.contrib.starlette import require_signature

    app = FastAPI()

    @app.post("/hooks/firehook")
    async def hook(body: bytes = Depends(require_signature(SHARED_KEY))):
        activity = json.loads(body)   # parse only after verifying

Starlette::

    from firehook.contrib.starlette import verified_body

    async def hook(request):
        body = await verified_body(request, SHARED_KEY)   # 401 when it does not verify
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from firehook import receiver
from firehook.contrib import KeySource, missing_framework, refusal

try:
    from starlette.exceptions import HTTPException
    from starlette.requests import Request
except ImportError:  # pragma: no cover - depends on the environment
    raise missing_framework("starlette", "Starlette", "fastapi") from None

__all__ = ["require_signature", "verified_body"]


async def verified_body(request: Request, key: KeySource) -> bytes:
    """The raw body of ``request`` once its ``X-JWS-Signature`` verifies with ``key``.

    Raises ``HTTPException(401)`` whose detail says why when it does not.
    """
    body = await request.body()
    reason = refusal(body, request.headers.get(receiver.SIGNATURE_HEADER), key)
    if reason is not None:
        raise HTTPException(status_code=401, detail=reason)
    return body


def require_signature(key: KeySource) -> Callable[[Request], Awaitable[bytes]]:
    """A FastAPI dependency that verifies the request and returns its raw body."""

    async def firehook_signed_body(request: Request) -> bytes:
        return await verified_body(request, key)

    return firehook_signed_body
