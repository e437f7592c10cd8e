"""Sign-in, sign-out, the home page and the static files."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from starlette.responses import FileResponse, RedirectResponse, Response

from firehook import errors
from firehook.web import auth, render
from firehook.web.render import UIRoute

router = APIRouter(route_class=UIRoute, include_in_schema=False)

STATIC = Path(__file__).parent / "static"
STATIC_TYPES = {"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"}


def _safe_next(value: str | None) -> str:
    """Only a path of this site: never an open redirect."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/projects"


@router.get("/")
async def home(request: Request) -> Response:
    await auth.principal(request)
    return RedirectResponse("/projects", status_code=303)


@router.get("/signin")
async def signin_page(request: Request, next: str | None = None) -> Response:
    if request.cookies.get(auth.SESSION_COOKIE):
        try:
            await auth.principal(request)
            return RedirectResponse(_safe_next(next), status_code=303)
        except errors.Unauthorized:
            pass
    token, fresh = auth.presession_token(request)
    response = render.page(request, "signin.html", {"csrf": token, "next": _safe_next(next), "error": None})
    if fresh:
        auth.set_cookie(request, response, auth.PRESESSION_COOKIE, token, max_age=3600)
    return response


@router.post("/signin")
async def signin(request: Request) -> Response:
    form = await auth.form_checked(request, presession=True)
    secret = str(form.get("token") or "").strip()
    target = _safe_next(str(form.get("next") or ""))
    try:
        if not secret:
            raise errors.Unauthorized("paste a token")
        response = RedirectResponse(target, status_code=303)
        await auth.start_session(request, response, secret)
    except errors.Unauthorized:
        token, _ = auth.presession_token(request)
        return render.page(request, "signin.html", {
            "csrf": token, "next": target,
            "error": "That token is not valid: it may be mistyped or revoked.",
        }, status=401)
    return response


@router.post("/signout")
async def signout(request: Request) -> Response:
    await auth.form_checked(request)
    response = RedirectResponse("/signin", status_code=303)
    await auth.end_session(request, response)
    return response


@router.get("/static/{name}")
async def static(name: str) -> Response:
    if name not in STATIC_TYPES:
        raise errors.NotFound(f"no static file {name}")
    return FileResponse(STATIC / name, media_type=STATIC_TYPES[name],
                        headers={"Cache-Control": "public, max-age=3600"})
