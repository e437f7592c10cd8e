"""Firehook: a self-hosted engine for activity integrations (scripts and webhooks)."""

from __future__ import annotations

__version__ = "0.1.0"
