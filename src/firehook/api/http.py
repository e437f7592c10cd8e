"""Shared pieces of the routes: the error format, body reading, the token dependency."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from firehook import errors, model
from firehook.service import Services
from firehook.service import tokens as token_service
from firehook.store import jsonutil

bearer = HTTPBearer(auto_error=False, description="An API token: `Authorization: Bearer fh_…`")

JSON_BODY = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}
}
OPTIONAL_JSON_BODY = {
    "requestBody": {"required": False, "content": {"application/json": {"schema": {"type": "object"}}}}
}


def services_of(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


def error_response(status: int, title: str, detail: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(errors.error_body(status, title, detail), status_code=status, headers=headers)


async def principal(request: Request,
                    credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> model.Token:
    """The token of the request, or 401."""
    header = request.headers.get("authorization")
    return await run_in_threadpool(token_service.authenticate, services_of(request), header)


def too_large(limit: int, declared: str | None = None) -> errors.PayloadTooLarge:
    """The 413 for a body over ``limit`` bytes (``declared``: its Content-Length, when that said so)."""
    detail = {"body": f"over the limit of {limit} bytes"}
    if declared is not None:
        return errors.PayloadTooLarge(f"the body of {declared} bytes is over the limit of {limit} bytes", detail)
    return errors.PayloadTooLarge(f"the body is over the limit of {limit} bytes", detail)


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refused with 413 past ``limit`` bytes without reading it all."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_large(limit, declared)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(raw: bytes, *, allow_empty: bool = False) -> Any:
    if not raw.strip():
        if allow_empty:
            return None
        raise errors.InvalidInput.field("body", "is empty: send a JSON document")
    try:
        return jsonutil.loads_strict(raw)
    except UnicodeDecodeError:
        raise errors.InvalidInput.field("body", "is not UTF-8 text") from None
    except ValueError as exc:
        raise errors.InvalidInput.field("body", f"is not valid JSON: {exc}") from None


async def json_body(request: Request, *, allow_empty: bool = False, allow_nul: bool = False) -> Any:
    """The request's JSON body, refused (400, naming the field) when a string in it cannot be
    stored: a lone UTF-16 surrogate, or — unless ``allow_nul`` (an activity document, stored as
    JSON text with the character escaped) — a NUL character, which PostgreSQL's text refuses."""
    limit = services_of(request).settings.max_document_bytes
    raw = await read_body(request, limit)
    if len(raw) >= PARSE_OFF_LOOP:  # a large body is parsed in a thread: no request stalls the others
        return await call(_checked_json, raw, allow_empty, allow_nul)
    return _checked_json(raw, allow_empty, allow_nul)


PARSE_OFF_LOOP = 64 * 1024  # bytes


def _checked_json(raw: bytes, allow_empty: bool, allow_nul: bool) -> Any:
    value = parse_json(raw, allow_empty=allow_empty)
    try:
        encoded = orjson.dumps(value)
    except orjson.JSONEncodeError:  # a lone surrogate, nesting deeper than orjson writes, a big integer
        _refuse_unstorable(value, allow_nul)
        return value
    if not allow_nul and b"\\u0000" in encoded:
        _refuse_unstorable(value, allow_nul)
    return value


def _refuse_unstorable(value: Any, allow_nul: bool) -> None:
    stack: list[tuple[Any, str, int]] = [(value, "body", 1)]
    while stack:
        item, where, depth = stack.pop()
        if isinstance(item, str):
            _storable(item, where, allow_nul)
            continue
        if isinstance(item, (dict, list)) and depth > jsonutil.MAX_DEPTH:
            raise errors.InvalidInput.field(where.split(".", 1)[0].split("[", 1)[0],
                                            f"nests objects and arrays deeper than {jsonutil.MAX_DEPTH} levels")
        if isinstance(item, dict):
            for key, child in item.items():
                name = key if where == "body" else f"{where}.{key}"
                _storable(key, name, allow_nul)
                stack.append((child, name, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, f"{where}[{n}]", depth + 1) for n, child in enumerate(item))


def _storable(text: str, where: str, allow_nul: bool) -> None:
    if not allow_nul and "\x00" in text:
        raise errors.InvalidInput.field(where, "holds a NUL character (\\u0000), which cannot be stored")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise errors.InvalidInput.field(where, "holds a lone UTF-16 surrogate, which is not Unicode text") from None


async def call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a (blocking) service call off the event loop."""
    return await run_in_threadpool(fn, *args, **kwargs)


def listing_params(request: Request) -> dict[str, Any]:
    """Query parameters of a listing, with the repeatable ones (``type``, ``state``) as lists."""
    params: dict[str, Any] = dict(request.query_params)
    params["type"] = request.query_params.getlist("type")
    params["state"] = request.query_params.getlist("state")
    return params
