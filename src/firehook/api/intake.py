"""Intake over HTTP: ``POST …/activities``, ``…/activities:batch`` and the Upsun relay.

These are firehook's hottest routes, so they are answered by :class:`LeanIntake`, a small
ASGI handler in front of the FastAPI app that recognises exactly these method and path pairs
and passes everything else through: FastAPI's routing and dependency injection cost more per
request than the rest of the work. The FastAPI routes stay (the OpenAPI document, and any
request the lean path does not take) and call the same coroutines, so both answer alike: the
same status codes, bodies, headers and error format.

Order of checks: the bearer token first — a missing or unknown token is a 401 and a token
that may not write a 403 before the body is read — then the body (413 past the limit), its
JSON and its fields (400), then the write.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import Request, Response
from starlette.types import Receive, Scope, Send

from firehook import errors, metrics, model, signing, validation
from firehook.api import http
from firehook.api.http import call, parse_json, read_body, too_large
from firehook.service import Services
from firehook.service import batch as batch_service
from firehook.service import intake as service
from firehook.service import projects as project_service
from firehook.service import tokens as token_service
from firehook.service.group_commit import GroupCommit
from firehook.store import jsonutil

log = logging.getLogger("firehook.api")

BATCH_LIMIT_FACTOR = 32  # a batch may carry this many times the single-document limit
BATCH_PIECE = 256 * 1024  # bytes of a batch handed to its thread at a time

Header = Callable[[str], str | None]  # a request header by its lower-case name
ReadBody = Callable[[int], Awaitable[bytes]]  # the body, refused with 413 past the given size
# The body as it arrives, refused with 413 at once when its Content-Length is past the given size.
StreamBody = Callable[[int], AsyncIterator[bytes]]

@dataclasses.dataclass
class Answer:
    """A JSON answer: status, body, and headers beyond content-type and content-length."""

    status: int
    body: bytes
    extra: list[tuple[bytes, bytes]] = dataclasses.field(default_factory=list)


def error_answer(exc: errors.FirehookError) -> Answer:
    """The one error format (SPEC §2.3) for ``exc``, logged when it is the server's fault."""
    if exc.status >= 500:
        log.error("event=api.error error=%s", exc.message)
    headers = [(b"www-authenticate", b"Bearer")] if exc.status == 401 else []
    return Answer(exc.status, jsonutil.answer(errors.error_body(exc.status, exc.title, exc.detail)), headers)


class Intake:
    """The intake use cases over HTTP, shared by the lean path and the FastAPI routes."""

    def __init__(self, services: Services, group_commit: GroupCommit) -> None:
        self.services = services
        self.group_commit = group_commit
        self.cache = token_service.cache_of(services)
        self._counters: dict[str, Any] = {}

    def _counter(self, source: str) -> Any:
        """``firehook_activities_accepted_total{source}``, looked up once (labels() takes a lock)."""
        counter = self._counters.get(source)
        if counter is None:
            counter = self._counters[source] = metrics.ACTIVITIES.labels(source)
        return counter

    async def _writer_token(self, header: str | None, project_id: str) -> tuple[str, model.Token]:
        """The request's token, checked before the body is read: from this process's cache
        (no SQL) or the database; 401 when missing or unknown, 403 when it may not write here."""
        token_hash = token_service.header_hash(header)
        token = self.cache.get(token_hash)
        if token is None:
            token = await call(token_service.authenticate_hash, self.services, token_hash)
        service.authorize(token, project_id)
        return token_hash, token

    async def create(self, project_id: str, header: Header, read: ReadBody, stream: StreamBody) -> Answer:
        token_hash, _ = await self._writer_token(header("authorization"), project_id)
        doc = await parse_document(await read(self.services.settings.max_document_bytes))
        # Written by the group-commit writer, which checks the token again in that transaction.
        accepted = await self.group_commit.submit_async(service.Item(project_id, doc, token_hash))
        self._counter("api").inc()
        return Answer(201 if accepted.created else 200, accepted.answer_bytes())

    async def batch(self, project_id: str, header: Header, read: ReadBody, stream: StreamBody) -> Answer:
        """NDJSON, taken in as it arrives (``service.batch``): the body is never held whole,
        its lines are parsed and written a piece at a time off the event loop, and reading
        stops at the batch's limits (bytes, lines), which the report's last line states."""
        token_hash, token = await self._writer_token(header("authorization"), project_id)
        limit = self.services.settings.max_document_bytes * BATCH_LIMIT_FACTOR
        ingest = await call(batch_service.BatchIngest, self.services, token, project_id,
                            token_hash=token_hash, max_bytes=limit)
        pending: list[bytes] = []
        size = 0
        going = True
        async for chunk in stream(limit):
            pending.append(chunk)
            size += len(chunk)
            if size >= BATCH_PIECE:
                going = await call(ingest.feed, b"".join(pending))
                pending.clear()
                size = 0
                if not going:
                    break
        if going and pending:
            await call(ingest.feed, b"".join(pending))
        report = await call(ingest.finish)
        self._counter("batch").inc(report["accepted"])
        metrics.REJECTED.labels("batch").inc(report["rejected"])
        return Answer(200, jsonutil.answer(report))

    async def relay(self, project_id: str, header: Header, read: ReadBody, stream: StreamBody) -> Answer:
        # Closed by default, and one answer for every refusal: an unknown project, a project
        # without a relay key, a missing or a wrong signature (which projects exist stays unsaid).
        signature = header("x-jws-signature")
        if not signature:
            raise relay_refused()
        exists, key = await call(project_service.relay_key, self.services, project_id)
        # Read (within the limit) whatever the project, so that a body too large is a 413 for
        # every project alike, then refused alike when there is no key to verify it with.
        raw = await read(self.services.settings.max_document_bytes)
        if not exists or not key:
            raise relay_refused()
        try:
            signing.verify_detached(raw, signature, key)
        except signing.InvalidSignature:
            raise relay_refused() from None
        doc = await parse_document(raw)
        accepted = await self.group_commit.submit_async(service.Item(project_id, doc))
        self._counter("relay").inc()
        return Answer(201 if accepted.created else 200, accepted.answer_bytes())


def relay_refused() -> errors.Unauthorized:
    """The relay's one refusal (SPEC §2.3), which says how to open it."""
    return errors.Unauthorized(
        "the relay takes only deliveries signed (X-JWS-Signature) with the project's relay key, and a project "
        "without one refuses every delivery: set the key with PATCH /api/projects/{project} "
        '{"relay_key": "<the key of the Upsun webhook>"} (or firehook project:create --relay-key)')


async def parse_document(raw: bytes) -> dict[str, Any]:
    """``raw`` parsed and checked as an activity; a large one off the event loop, so that a
    client's 2 MiB document never stalls the other requests."""
    if len(raw) < http.PARSE_OFF_LOOP:
        return validation.activity(parse_json(raw))
    return await call(lambda: validation.activity(parse_json(raw)))  # type: ignore[no-any-return]


async def through_fastapi(request: Request, kind: str, project_id: str) -> Response:
    """A FastAPI route's answer for the use case ``kind``: the same as the lean path's (an
    error is raised for the app's handler, which writes the same format)."""
    intake: Intake = request.app.state.intake
    answer = await getattr(intake, kind)(project_id, request.headers.get, lambda limit: read_body(request, limit),
                                         lambda limit: _request_chunks(request, limit))
    return Response(answer.body, status_code=answer.status, media_type="application/json",
                    headers={k.decode("latin-1"): v.decode("latin-1") for k, v in answer.extra})


async def _request_chunks(request: Request, limit: int) -> AsyncIterator[bytes]:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_large(limit, declared)  # refused without reading it
    async for chunk in request.stream():
        if chunk:
            yield chunk


# --- the lean path: plain ASGI ------------------------------------------------------------------

_PROJECTS = "/api/projects/"
_RELAY = "/hooks/upsun/"
_TAILS = {"activities": "create", "activities:batch": "batch"}


def route_of(scope: Scope) -> tuple[str, str] | None:
    """``(use case, project)`` when the lean path answers this request, else None. Exactly
    what the FastAPI routes match (a project is one non-empty path segment), POST only, and
    nothing under a root path (FastAPI's business)."""
    if scope["type"] != "http" or scope["method"] != "POST" or scope.get("root_path"):
        return None
    path: str = scope["path"]
    if path.startswith(_PROJECTS):
        project, slash, tail = path[len(_PROJECTS):].partition("/")
        kind = _TAILS.get(tail) if slash else None
        return (kind, project) if kind and project else None
    if path.startswith(_RELAY):
        project = path[len(_RELAY):]
        return ("relay", project) if project and "/" not in project else None
    return None


_WANTED = frozenset({b"authorization", b"content-length", b"x-jws-signature"})  # what the use cases read


class _Gone(Exception):
    """The client disconnected before its body was read: nobody to answer."""


class LeanIntake:
    """Answers the requests :func:`route_of` recognises, without FastAPI."""

    def __init__(self, intake: Intake) -> None:
        self.intake = intake

    async def __call__(self, route: tuple[str, str], scope: Scope, receive: Receive, send: Send) -> None:
        kind, project_id = route
        found: dict[str, str] = {}
        for name, value in scope["headers"]:
            if name in _WANTED:
                key = name.decode("latin-1")
                if key not in found:  # the first of repeated headers, as Starlette reads them
                    found[key] = value.decode("latin-1")

        async def read(limit: int) -> bytes:
            return await _read_body(receive, found.get("content-length"), limit)

        def stream(limit: int) -> AsyncIterator[bytes]:
            return _chunks(receive, found.get("content-length"), limit)

        handler = getattr(self.intake, kind)
        try:
            answer = await handler(project_id, found.get, read, stream)
        except errors.FirehookError as exc:
            answer = error_answer(exc)
        except _Gone:
            return
        except Exception:
            log.exception("event=api.unexpected_error")
            answer = Answer(500, jsonutil.answer(errors.error_body(
                500, "Internal Server Error", "an unexpected error occurred; see the server log")))
        headers = [(b"content-length", str(len(answer.body)).encode("ascii")),
                   (b"content-type", b"application/json"), *answer.extra]
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": answer.body})


async def _read_body(receive: Receive, declared: str | None, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in _chunks(receive, declared, limit):
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _chunks(receive: Receive, declared: str | None, limit: int) -> AsyncIterator[bytes]:
    """The body's chunks as they arrive (the reader keeps count of their size)."""
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_large(limit, declared)  # refused without reading it
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Gone
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return
