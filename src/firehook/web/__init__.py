"""The web UI (SPEC §8): server-rendered pages, the HTML twin of the API, over ``service``."""

from __future__ import annotations

from firehook.web.routes import router

__all__ = ["router"]
