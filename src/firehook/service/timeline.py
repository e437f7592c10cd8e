"""The UI's activities page: activities newest first by when firehook received them, each with
the runs it triggered under it (as Upsun's console shows them), a page at a time."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from firehook import model
from firehook.service import activities as activity_service
from firehook.service.core import Services, readable_project
from firehook.store import activities as store
from firehook.store import integrations as integration_store


def target(item: model.Integration | dict[str, Any]) -> str:
    """Where a webhook sends, as host, port and path (``hooks.example.com:8443/deploy``): two
    webhooks to one host are told apart by it."""
    url = item.url if isinstance(item, model.Integration) else item.get("url")
    if not url:
        return ""
    parts = urlsplit(str(url))
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{host}{port}{parts.path or '/'}"


def page(services: Services, principal: model.Token, project_id: str, params: dict[str, Any],
         size: int) -> dict[str, Any]:
    """``{"items": [{"activity", "received_at", "runs": [...]}], "next": starts_at or None}``.
    Filters as the API's listing; a filter on ``integration.*`` types lists runs themselves."""
    readable_project(services, principal, project_id)
    filters = activity_service.parse_filters({**params, "count": str(size)})
    runs_listed = any(t.startswith("integration.") for t in filters["types"])
    with services.database.read() as conn:
        rows = store.list_for(conn, project_id, sources_only=not runs_listed, **filters)
        names = {i.id: i for i in integration_store.list_for(conn, project_id)}
        items = []
        for row in rows:
            runs = [] if runs_listed else [_run(r["doc"], names) for r in store.runs_of(conn, row["pk"])]
            items.append({"activity": row["doc"], "received_at": row["received_at"], "runs": runs})
    return {"items": items, "next": rows[-1]["received_at"] if len(rows) == size else None}


def _run(doc: dict[str, Any], names: dict[str, model.Integration]) -> dict[str, Any]:
    item = names.get(doc.get("integration") or "")
    label = ""
    if item is not None:
        label = item.description or (f"webhook → {target(item)}" if item.type == "webhook" else "")
    return {"doc": doc, "label": label or doc.get("text") or doc.get("type"),
            "kind": "webhook" if doc.get("type") == "integration.webhook" else "script"}
