"""Templates, filters, the security headers of every UI response, and the UI's error pages."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import jinja2
from fastapi import Request
from fastapi.routing import APIRoute
from markupsafe import Markup, escape
from starlette.responses import HTMLResponse, RedirectResponse, Response

import firehook
from firehook import errors, model
from firehook.service import timeline
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


_LINE = re.compile(r"\(line (\d+), column \d+\)")
_TICKED = re.compile(r"`([^`]+)`")


def error_line(message: Any) -> int | None:
    """The line of a compile or run error (``… (line 3, column 18)``), to mark in the editor."""
    found = _LINE.search(str(message or ""))
    return int(found.group(1)) if found else None


def ticks(message: Any) -> Markup:
    """A message written for the API and the CLI (```firehook project:create```) with its
    backticked parts as code, escaped."""
    return Markup(_TICKED.sub(lambda m: f"<code>{m.group(1)}</code>", str(escape(str(message or "")))))


def name_of(item: dict[str, Any]) -> str:
    """What an integration is called wherever it is listed: its name (description) when it has
    one, else the webhook's host, port and path, else the first line of the script."""
    if item.get("description"):
        return str(item["description"])
    if item.get("type") == "webhook":
        return "webhook → " + timeline.target(item)
    return summary(item) or str(item.get("id") or "")


TEMPLATES.filters.update(ts=ts, seconds=seconds, millis=millis, pretty=pretty, summary=summary, urlpart=quote,
                         error_line=error_line, ticks=ticks, name_of=name_of)
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
        "replace_url": _get_twin(request),
    }
    values.update(context)
    response = HTMLResponse(TEMPLATES.get_template(template).render(values), status_code=status)
    if values["flash"]:
        auth.clear_cookie(request, response, auth.FLASH_COOKIE)
    return response


def _get_twin(request: Request) -> str | None:
    """For a page rendered in answer to a POST (a form with errors, a dry run's result): the
    page the form was on, which app.js puts in the history in place of the POST, so reloading
    shows the form again instead of sending it twice (a redirect after POST, without losing
    what the user typed on the page in front of them)."""
    if request.method != "POST":
        return None
    referer = urlsplit(request.headers.get("referer") or "")
    if referer.netloc == request.url.netloc and referer.path.startswith("/") and not referer.path.startswith("//"):
        return referer.path + (("?" + referer.query) if referer.query else "")
    return request.url.path


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
