"""The FastAPI application: error handlers, routers, the lean intake path, the lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

import firehook
from firehook import collector, errors, metrics, outbound, queue, supervisor, web
from firehook.api import activities, docs, health, integrations, projects, relay, storage, tokens
from firehook.api import intake as intake_api
from firehook.api import metrics as metrics_routes
from firehook.api.http import error_response
from firehook.service import Services, group_commit
from firehook.store import jsonutil

log = logging.getLogger("firehook.api")


class App(FastAPI):
    """FastAPI, with intake's routes answered by the lean path first (``api.intake``)."""

    lean: intake_api.LeanIntake | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _holds_nul(scope):
            await _refuse_nul(send)  # no name firehook stores holds one, and PostgreSQL's text refuses it
            return
        if self.lean is not None:
            route = intake_api.route_of(scope)
            if route is not None:
                await self.lean(route, scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def _holds_nul(scope: Scope) -> bool:
    return "\x00" in scope["path"] or b"%00" in scope.get("query_string", b"")


async def _refuse_nul(send: Send) -> None:
    body = jsonutil.answer(errors.error_body(400, "Bad Request",
                                             {"request": "the path or the query holds a NUL character"}))
    await send({"type": "http.response.start", "status": 400,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def create_app(services: Services, *, start_worker: Callable[[], Any] | None = None,
               children: Sequence[supervisor.Child] = ()) -> FastAPI:
    """The API app. ``start_worker`` (optional) builds a worker that runs in this process for
    the app's lifetime (tests); ``children`` are supervised processes (``serve``'s worker) that
    start and stop with the app and are woken when runs are queued."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = None
        stop = asyncio.Event()
        if services.settings.outbound_allow:
            log.info("event=outbound.allow allow=%s webhooks and fetch may reach these private targets "
                     "(%s / %s)", ",".join(services.settings.outbound_allow), outbound.ALLOW_FLAG,
                     outbound.ALLOW_SETTING)
        for child in children:
            await child.start()
            services.wakeups.append(child.wake)
        if start_worker is not None:
            worker = start_worker()
            services.wakeups.append(worker.wake)
            task = asyncio.create_task(worker.run(stop))
            app.state.worker = worker
        # What is alive once the app is up (modules, the app, the engine) lives as long as the
        # process: frozen out of the collector, whose every full collection would otherwise
        # walk it all again (measured: a sixth of batch intake's CPU); young collections spaced.
        collector.settle()
        try:
            yield
        finally:
            stop.set()
            if task is not None:
                await task
            for child in children:
                await child.stop()
            await asyncio.to_thread(app.state.group_commit.close)
            if services.script_runner is not None:
                await asyncio.to_thread(services.script_runner.close)

    app = App(
        title="firehook",
        version=firehook.__version__,
        description="Activity integrations: sandboxed activity scripts and signed webhooks.",
        lifespan=lifespan,
        docs_url=None,  # api.docs serves /docs with Swagger UI from the package, not a CDN
        redoc_url=None,
    )
    app.state.services = services
    app.state.group_commit = group_commit.GroupCommit(services)
    app.state.intake = intake_api.Intake(services, app.state.group_commit)
    app.lean = intake_api.LeanIntake(app.state.intake)
    metrics.install_queue_depth(lambda: queue.depth(services.database))

    @app.exception_handler(errors.FirehookError)
    async def _firehook_error(_request: Request, exc: errors.FirehookError) -> Any:
        if exc.status >= 500:
            log.error("event=api.error error=%s", exc.message)
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return error_response(exc.status, exc.title, exc.detail, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> Any:
        detail = {}
        for item in exc.errors():
            loc = [str(p) for p in item.get("loc", ()) if p not in ("query", "path", "body", "header")]
            detail[".".join(loc) or "request"] = item.get("msg", "invalid")
        return error_response(400, "Bad Request", detail)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> Any:
        titles = {404: "Not Found", 405: "Method Not Allowed"}
        detail = exc.detail if isinstance(exc.detail, str) else "error"
        return error_response(exc.status_code, titles.get(exc.status_code, "Error"), detail)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> Any:
        log.exception("event=api.unexpected_error")
        return error_response(500, "Internal Server Error", "an unexpected error occurred; see the server log")

    for module in (health, docs, metrics_routes, projects, integrations, storage, activities, tokens, relay, web):
        app.include_router(module.router)
    app.include_router(integrations.dry_run_router)
    return app
