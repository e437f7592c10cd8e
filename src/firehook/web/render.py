"""Templates, filters, the security headers of every UI response, and the UI's error pages."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from fastapi import Request
from fastapi.routing import APIRoute
from starlette.responses import HTMLResponse, RedirectResponse, Response

import firehook
from firehook import errors, model
from firehook.web import auth

HERE = Path(__file__).parent
TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(HERE / "templates")),
    autoescape=jinja2.select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


def ts(value: Any) -> str:
    """``2025-12-14T15:41:05.821145+00:00`` → ``2025-12-14 15:41:05``."""
    if not value or not isinstance(value, str):
        return "—"
    return value.replace("T", " ")[:19]


def seconds(value: Any) -> str:
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return "—"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 120:
        return f"{value:.2f} s"
    return f"{value / 60:.1f} min"


def millis(value: Any) -> str:
    if value is None or not isinstance(value, (int, float)):
        return "—"
    return seconds(value / 1000)


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


def summary(item: dict[str, Any]) -> str:
    """One line that tells integrations apart: the URL of a webhook, the description or the
    first line of a script."""
    if item.get("type") == "webhook":
        return str(item.get("url") or "")
    if item.get("description"):
        return str(item["description"])
    for line in (item.get("script") or "").splitlines():
        if line.strip():
            return line.strip()[:80]
    return ""


TEMPLATES.filters.update(ts=ts, seconds=seconds, millis=millis, pretty=pretty, summary=summary, urlpart=quote)
TEMPLATES.globals.update(version=firehook.__version__, STATES=sorted(model.ACTIVITY_STATES))


def secure(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def page(request: Request, template: str, context: dict[str, Any], *, status: int = 200,
         who: model.Token | None = None) -> HTMLResponse:
    """Render a page; ``who`` (the signed-in token) drives the header and the action buttons."""
    values = {
        "request": request,
        "who": who,
        "can_write": bool(who is not None and not who.read_only),
        "csrf": auth.csrf_token(request),
        "flash": auth.take_flash(request),
        "path": request.url.path,
    }
    values.update(context)
    response = HTMLResponse(TEMPLATES.get_template(template).render(values), status_code=status)
    if values["flash"]:
        auth.clear_cookie(request, response, auth.FLASH_COOKIE)
    return response


def redirect(request: Request, url: str, message: str | None = None) -> RedirectResponse:
    """303 See Other after a POST, with a one-time message for the next page."""
    response = RedirectResponse(url, status_code=303)
    if message:
        auth.flash(request, response, message)
    return response


def error_page(request: Request, exc: errors.FirehookError) -> Response:
    if isinstance(exc, errors.Unauthorized):
        target = request.url.path + (("?" + request.url.query) if request.url.query else "")
        response: Response = RedirectResponse("/signin?next=" + quote(target, safe=""), status_code=303)
        if request.cookies.get(auth.SESSION_COOKIE):
            auth.clear_cookie(request, response, auth.SESSION_COOKIE)  # already dead on the server
        return response
    detail = exc.detail if isinstance(exc.detail, dict) else None
    return page(request, "error.html", {"status": exc.status, "title": exc.title, "message": exc.message,
                                        "detail": detail}, status=exc.status,
                who=getattr(request.state, "who", None))


class UIRoute(APIRoute):
    """Every UI response carries the security headers; errors become HTML pages, and a missing
    or revoked session becomes a redirect to the sign-in page."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                response = await original(request)
            except errors.FirehookError as exc:
                response = error_page(request, exc)
            return secure(response)

        return handler
