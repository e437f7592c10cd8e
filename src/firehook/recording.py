"""Recording what happens to a run: started, log lines, attempts, finished or retried.

Every outcome is written only while the worker still holds the job's lease, in the same
transaction that releases it, so a worker that lost its lease never overwrites the work of
the worker that took over.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any

from firehook import fanout, model, queue, timefmt
from firehook.store import activities as store
from firehook.store import db as dbmod
from firehook.store import integrations as integration_store
from firehook.store import projects as project_store


@dataclasses.dataclass
class Loaded:
    """Everything an executor needs for one run, read in one transaction."""

    run_doc: dict[str, Any]
    project: dict[str, Any]
    integration: model.Integration | None
    variables: list[model.Variable]
    body: str
    attempt: int  # the number of the attempt about to be made (1-based)


def load(database: dbmod.Database, job: model.Job) -> Loaded | None:
    with database.read() as conn:
        row = store.find_by_pk(conn, job.run_pk)
        run = store.get_run(conn, job.run_pk)
        if row is None or run is None:
            return None
        integration = integration_store.get_by_id(conn, run["integration_id"])
        variables = integration_store.list_variables(conn, run["integration_id"]) if integration else []
        project = project_store.get(conn, job.project)
        body = store.snapshot_body(conn, run["snapshot_pk"])
    project_doc = dict(project["doc"]) if project else {"id": job.project}
    if project:
        project_doc.setdefault("id", project["id"])
        project_doc.setdefault("title", project["title"])
    return Loaded(run_doc=row["doc"], project=project_doc, integration=integration, variables=variables,
                  body=body, attempt=int(run["attempts"]) + 1)


def start(database: dbmod.Database, job: model.Job, owner: str, public_url: str = "") -> bool:
    """Mark the run in progress and count the attempt; False when the lease was lost."""
    now = time.time()
    stamp = timefmt.from_epoch(now)
    with database.write() as conn:
        if not queue.holds(conn, job.id, owner):
            return False
        row = store.find_by_pk(conn, job.run_pk)
        run = store.get_run(conn, job.run_pk)
        if row is None or run is None:
            return False
        attempts = int(run["attempts"]) + 1
        doc = row["doc"]
        if doc["state"] != "in_progress":
            doc["state"] = "in_progress"
            doc["started_at"] = doc.get("started_at") or stamp
        timings = doc.get("timings") if isinstance(doc.get("timings"), dict) else {}
        timings.setdefault("wait", round(now - float(run["queued_at"]), 3))
        doc["timings"] = timings
        doc["parameters"]["attempts"] = attempts
        doc["updated_at"] = stamp
        store.save(conn, job.run_pk, doc)
        store.update_run(conn, job.run_pk, attempts=attempts, started_at=run["started_at"] or now)
        if attempts == 1:
            _reached(conn, public_url, job, doc)
    return True


def _reached(conn: Any, public_url: str, job: model.Job, doc: dict[str, Any]) -> None:
    """The run reached a state: integrations listening to ``integration.*`` may get runs (the
    worker polls again as soon as this run is done, so they start promptly)."""
    fanout.run_reached_state(conn, public_url, job.project, job.run_pk, doc,
                             str(doc.get("parameters", {}).get("activity_type", "")))


def append_logs(database: dbmod.Database, batches: Sequence[tuple[int, Sequence[tuple[str, str]]]]) -> None:
    """Write buffered log lines of several runs in one transaction."""
    batches = [(pk, lines) for pk, lines in batches if lines]
    if not batches:
        return
    with database.write() as conn:
        for run_pk, lines in batches:
            store.append_logs(conn, run_pk, lines)


@dataclasses.dataclass(frozen=True)
class Health:
    """A webhook attempt's effect on its integration's failure streak."""

    ok: bool
    disable_after: float  # seconds of nothing but failures before disabling; 0: never
    integration_id: str


def _track(conn: Any, health: Health | None, now: float) -> str | None:
    """Update the failure streak; returns the reason when this attempt disables the integration."""
    if health is None:
        return None
    item = integration_store.get_by_id(conn, health.integration_id)
    if item is None or not item.enabled:
        return None
    if health.ok:
        if item.failing_since is not None:
            integration_store.save(conn, dataclasses.replace(item, failing_since=None))
        return None
    if item.failing_since is None:
        integration_store.save(conn, dataclasses.replace(item, failing_since=timefmt.from_epoch(now)))
        return None
    failing_for = now - timefmt.to_epoch(item.failing_since)
    if health.disable_after <= 0 or failing_for < health.disable_after:
        return None
    reason = (f"every delivery failed since {item.failing_since} ({failing_for:.0f} s, "
              f"limit {health.disable_after:.0f} s)")
    integration_store.save(conn, dataclasses.replace(item, enabled=False, disabled_reason=reason,
                                                     updated_at=timefmt.from_epoch(now)))
    return reason


def _disabled_line(reason: str | None, stamp: str) -> list[tuple[str, str]]:
    if reason is None:
        return []
    return [(stamp, f"Integration disabled automatically: {reason}. Activities it matches from now on are "
                    "recorded as skipped runs; enable it again to resume, and replay what it missed.")]


def finish(database: dbmod.Database, job: model.Job, owner: str, result: str, *,
           logs: Sequence[tuple[str, str]] = (), attempt: model.Attempt | None = None,
           public_url: str = "", health: Health | None = None) -> bool:
    """Record the final outcome and remove the job; False (nothing written) if the lease was lost."""
    now = time.time()
    stamp = timefmt.from_epoch(now)
    with database.write() as conn:
        if not queue.complete(conn, job.id, owner):
            return False
        logs = list(logs) + _disabled_line(_track(conn, health, now), stamp)
        store.append_logs(conn, job.run_pk, logs)
        if attempt is not None:
            store.insert_attempt(conn, job.run_pk, attempt)
        row = store.find_by_pk(conn, job.run_pk)
        run = store.get_run(conn, job.run_pk)
        if row is None or run is None:
            return True
        doc = row["doc"]
        doc.update({"state": "complete", "result": result, "completed_at": stamp, "updated_at": stamp,
                    "completion_percent": 100})
        timings = doc.get("timings") if isinstance(doc.get("timings"), dict) else {}
        if run["started_at"] is not None:
            timings["execute"] = round(now - float(run["started_at"]), 3)
        timings.setdefault("wait", round((run["started_at"] or now) - float(run["queued_at"]), 3))
        doc["timings"] = timings
        store.save(conn, job.run_pk, doc)
        store.update_run(conn, job.run_pk, finished=True)
        _reached(conn, public_url, job, doc)
    return True


def retry(database: dbmod.Database, job: model.Job, owner: str, when: float, *,
          logs: Sequence[tuple[str, str]] = (), attempt: model.Attempt | None = None,
          health: Health | None = None) -> bool:
    """Record an attempt that will be made again at ``when``; the run stays in progress."""
    now = time.time()
    with database.write() as conn:
        if not queue.retry_at(conn, job.id, owner, when):
            return False
        logs = list(logs) + _disabled_line(_track(conn, health, now), timefmt.from_epoch(now))
        store.append_logs(conn, job.run_pk, logs)
        if attempt is not None:
            store.insert_attempt(conn, job.run_pk, attempt)
    return True
