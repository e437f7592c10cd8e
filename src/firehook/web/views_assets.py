"""Vendored front-end assets (Swagger UI for ``/docs``, CodeMirror for the script editor), the
favicon and the script reference, served from the installed package: the UI and ``/docs`` work
with no network."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from starlette.responses import FileResponse, Response

from firehook import errors
from firehook.web import auth, render
from firehook.web.render import UIRoute

router = APIRouter(route_class=UIRoute, include_in_schema=False)

STATIC = Path(__file__).parent / "static"
_JS, _CSS = "text/javascript; charset=utf-8", "text/css; charset=utf-8"
# package → file → media type; nothing else under vendor/ is served (licences are read in the tree)
VENDOR: dict[str, dict[str, str]] = {
    "swagger-ui": {"swagger-ui-bundle.js": _JS, "swagger-ui.css": _CSS},
    "codemirror": {"codemirror.js": _JS, "codemirror.css": _CSS, "javascript.js": _JS},
}
CACHE = {"Cache-Control": "public, max-age=86400"}


@router.get("/static/vendor/{package}/{name}")
async def vendored(package: str, name: str) -> Response:
    media = VENDOR.get(package, {}).get(name)
    if media is None:
        raise errors.NotFound(f"no vendored file {package}/{name}")
    return FileResponse(STATIC / "vendor" / package / name, media_type=media, headers=CACHE)


@router.get("/static/editor.js")
async def editor_script() -> Response:
    return FileResponse(STATIC / "editor.js", media_type=_JS, headers=CACHE)


@router.get("/favicon.ico")
@router.get("/static/favicon.svg")
async def favicon() -> Response:
    return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml", headers=CACHE)


HELP = Path(__file__).parent / "help"
HELP_PAGES = {"scripts": ("Activity scripts", "docs/scripts.md", "scripts.md")}


@router.get("/help/{topic}")
async def help_page(topic: str, request: Request) -> Response:
    """docs/scripts.md (shipped in the package as web/help/scripts.md), for the script forms."""
    who = await auth.principal(request)
    if topic not in HELP_PAGES:
        raise errors.NotFound(f"no help page {topic}")
    title, source, name = HELP_PAGES[topic]
    text = (HELP / name).read_text(encoding="utf-8")
    return render.page(request, "help.html", {"title": title, "source": source, "text": text}, who=who)
