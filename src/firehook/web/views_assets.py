"""Vendored front-end assets (Swagger UI for ``/docs``, CodeMirror for the script editor) and the
favicon, served from the installed package: the UI and ``/docs`` work with no network."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from starlette.responses import FileResponse, Response

from firehook import errors
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
