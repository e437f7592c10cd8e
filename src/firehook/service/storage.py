"""What an integration's scripts stored (SPEC §4.4), for the API, the CLI and the UI: read the
entries with their typed values, remove one, clear them all. Runs write it; this only reads
and deletes (a run's writes land in the transaction that records its outcome, store.kv)."""

from __future__ import annotations

import json
from typing import Any

from firehook import errors, model
from firehook.service import integrations
from firehook.service.core import Services, require_write
from firehook.store import kv


def _entry(key: str, encoded: str) -> dict[str, Any]:
    # Values are stored as the JSON of a string, number or boolean: they come back typed, as
    # `storage.get` gives them to the script.
    return {"key": key, "value": json.loads(encoded), "bytes": len(key.encode("utf-8")) + len(encoded.encode("utf-8"))}


def listing(services: Services, principal: model.Token, project_id: str, integration_id: str) -> dict[str, Any]:
    """Every entry, by key, with the bytes it counts against the quota."""
    integrations.get_model(services, principal, project_id, integration_id)
    stored = kv.IntegrationStorage(services.database, integration_id).items()
    entries = [_entry(k, stored[k]) for k in sorted(stored)]
    return {"integration": integration_id, "count": len(entries), "bytes": sum(e["bytes"] for e in entries),
            "limit_bytes": int(services.settings.storage_total_bytes), "items": entries}


def get(services: Services, principal: model.Token, project_id: str, integration_id: str,
        key: str) -> dict[str, Any]:
    integrations.get_model(services, principal, project_id, integration_id)
    encoded = kv.IntegrationStorage(services.database, integration_id).get(key)
    if encoded is None:
        raise errors.NotFound(f"integration {integration_id} has stored nothing under {key!r}")
    return _entry(key, encoded)


def remove(services: Services, principal: model.Token, project_id: str, integration_id: str, key: str) -> None:
    require_write(principal)
    integrations.get_model(services, principal, project_id, integration_id)
    backend = kv.IntegrationStorage(services.database, integration_id)
    if backend.get(key) is None:
        raise errors.NotFound(f"integration {integration_id} has stored nothing under {key!r}")
    backend.remove(key)


def clear(services: Services, principal: model.Token, project_id: str, integration_id: str) -> int:
    """Remove every entry; the number removed."""
    require_write(principal)
    integrations.get_model(services, principal, project_id, integration_id)
    backend = kv.IntegrationStorage(services.database, integration_id)
    count = len(backend.items())
    backend.clear()
    return count
