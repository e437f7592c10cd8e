"""Fan-out: turning "an activity reached a state" into runs, one per matching integration.

Used by intake (activities posted to firehook) and by recording (runs are activities too:
an integration that lists ``integration.*`` events explicitly gets runs when other
integrations' runs reach a state). A run triggered by a run triggers nothing further, so
two integrations listening to each other cannot loop.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa

from firehook import ids, matching, model, queue, timefmt
from firehook.store import activities as store
from firehook.store import integrations as integration_store
from firehook.store import jsonutil

RUN_PREFIX = "integration."


def activity_links(public_url: str, project_id: str, activity_id: str) -> dict[str, Any]:
    """Upsun's form: an absolute ``self``, a path for ``log``."""
    path = f"/api/projects/{project_id}/activities/{activity_id}"
    return {"self": {"href": public_url + path}, "log": {"href": path + "/log"}}


def run_description(integration: model.Integration) -> str:
    if integration.type == "webhook":
        host = urlsplit(integration.url or "").hostname or "?"
        return f"Sending webhook to {host}"
    return "Running activity script"


def new_run_doc(public_url: str, project_id: str, integration: model.Integration, source: dict[str, Any],
                state: str, now: str) -> dict[str, Any]:
    run_id = ids.new_id()
    text = run_description(integration)
    return {
        "id": run_id,
        "_links": activity_links(public_url, project_id, run_id),
        "type": model.RUN_ACTIVITY_TYPE[integration.type],
        "project": project_id,
        "integration": integration.id,
        "environments": list(source.get("environments") or []),
        "state": "pending",
        "result": None,
        "parameters": {
            "activity": source["id"],
            "activity_type": source["type"],
            "activity_state": state,
            "attempts": 0,
        },
        "description": text,
        "text": text,
        "created_at": now,
        "updated_at": now,
        "started_at": None,
        "completed_at": None,
        "cancelled_at": None,
        "completion_percent": 0,
        "timings": {},
        "payload": {},
        "log": None,
    }


def _insert_runs(conn: sa.Connection, project_id: str, source_pk: int, snapshot_pk: int,
                 targets: Sequence[model.Integration], docs: list[dict[str, Any]], epoch: float) -> list[int]:
    """The run activities and run rows of ``docs`` (one per target), one statement per table."""
    pks = store.insert_many(conn, [store.row_values(project_id, doc, doc["integration"]) for doc in docs])
    store.insert_runs(conn, [
        {"pk": pk, "integration_id": i.id, "kind": i.type, "snapshot_pk": snapshot_pk, "source_pk": source_pk,
         "queued_at": epoch} for pk, i in zip(pks, targets, strict=True)
    ])
    return pks


def _summary(docs: list[dict[str, Any]], state: str) -> list[dict[str, Any]]:
    """What intake and replay answer about the runs they created."""
    return [{"id": d["id"], "type": d["type"], "integration": d["integration"], "state": state} for d in docs]


def create_runs(conn: sa.Connection, public_url: str, project_id: str, source_pk: int, source: dict[str, Any],
                state: str, snapshot_pk: int, targets: Sequence[model.Integration],
                clock: queue.FairClock | None = None) -> list[dict[str, Any]]:
    """One run (activity + run row + job) per target integration, in the caller's transaction.

    Written with one multi-row statement per table, whatever the number of targets.
    """
    if not targets:
        return []
    now = timefmt.now_ts()
    epoch = time.time()
    envs = matching.activity_environments(source)
    docs = [new_run_doc(public_url, project_id, integration, source, state, now) for integration in targets]
    pks = _insert_runs(conn, project_id, source_pk, snapshot_pk, targets, docs, epoch)
    queue.enqueue_many(conn, [
        {"run_pk": pk, "project_id": project_id, "kind": i.type, "ordering_key": queue.ordering_key(i, source_pk, envs),
         "run_at": epoch} for pk, i in zip(pks, targets, strict=True)
    ], clock)
    return _summary(docs, state)


def skip_runs(conn: sa.Connection, public_url: str, project_id: str, source_pk: int, source: dict[str, Any],
              state: str, snapshot_pk: int, targets: Sequence[model.Integration]) -> list[dict[str, Any]]:
    """Runs in state ``skipped`` for auto-disabled integrations that match: the record of what
    they missed, to replay once the integration is enabled again. No job is queued."""
    if not targets:
        return []
    now = timefmt.now_ts()
    docs = []
    for integration in targets:
        doc = new_run_doc(public_url, project_id, integration, source, state, now)
        doc.update({"state": model.RUN_SKIPPED, "completion_percent": 100,
                    "text": f"Skipped: {integration.disabled_reason}"})
        docs.append(doc)
    pks = _insert_runs(conn, project_id, source_pk, snapshot_pk, targets, docs, time.time())
    store.mark_finished(conn, pks)
    store.append_logs_many(conn, [
        (pk, [(now, f"Run skipped: the integration was disabled automatically ({i.disabled_reason}). "
                    "Enable it, then replay this activity.")]) for pk, i in zip(pks, targets, strict=True)])
    return _summary(docs, model.RUN_SKIPPED)


def fan_out(conn: sa.Connection, public_url: str, project_id: str, source_pk: int, source: dict[str, Any],
            state: str, snapshot_pk: int, integrations: Sequence[model.Integration],
            clock: queue.FairClock | None = None) -> list[dict[str, Any]]:
    """Runs for the enabled integrations that match, skipped runs for the auto-disabled ones."""
    live = matching.matching([i for i in integrations if i.enabled], source, state)
    asleep = [i for i in integrations if i.auto_disabled
              and matching.matches(dataclasses.replace(i, enabled=True), source, state)]
    return (create_runs(conn, public_url, project_id, source_pk, source, state, snapshot_pk, live, clock)
            + skip_runs(conn, public_url, project_id, source_pk, source, state, snapshot_pk, asleep))


def listens_to_runs(integration: model.Integration) -> bool:
    return integration.enabled and any(e.startswith(RUN_PREFIX) for e in integration.events)


class Listeners:
    """Per project, the enabled integrations that list ``integration.*`` events — read once per
    transaction, since every run state change asks."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self._by_project: dict[str, list[model.Integration]] = {}

    def of(self, project_id: str) -> list[model.Integration]:
        if project_id not in self._by_project:
            self._by_project[project_id] = [
                i for i in integration_store.list_for(self.conn, project_id, enabled_only=True) if listens_to_runs(i)]
        return self._by_project[project_id]


def run_reached_state(conn: sa.Connection, public_url: str, project_id: str, run_pk: int,
                      run_doc: dict[str, Any], source_type: str,
                      listeners: Listeners | None = None) -> list[dict[str, Any]]:
    """Fan a run's new state out to the integrations that listen to ``integration.*``.

    Nothing happens for a run whose source is itself a run (no chains), and an integration
    never gets runs for its own runs.
    """
    if source_type.startswith(RUN_PREFIX):
        return []
    candidates = (listeners or Listeners(conn)).of(project_id)
    others = [i for i in candidates if i.id != run_doc.get("integration")]
    if not others:
        return []
    state = run_doc["state"]
    targets = matching.matching(others, run_doc, state)
    if not targets or state in store.snapshot_states(conn, run_pk):
        return []
    snapshot_pk = store.insert_snapshot(conn, run_pk, state, jsonutil.dumps(run_doc), timefmt.now_ts())
    return create_runs(conn, public_url, project_id, run_pk, run_doc, state, snapshot_pk, targets)
