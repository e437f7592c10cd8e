"""The HTTP API: routes only; every route calls :mod:`firehook.service`."""

from __future__ import annotations

from firehook.api.app import create_app

__all__ = ["create_app"]
