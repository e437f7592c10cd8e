"""Use cases called by the API, the CLI and the UI: one place, so the faces never disagree."""

from __future__ import annotations

from firehook.service.core import Services, open_services

__all__ = ["Services", "open_services"]
