"""Reading activities and runs; run logs; replay and cancel (SPEC §6)."""

from __future__ import annotations

import re
import time
from typing import Any

from firehook import errors, fanout, matching, model, queue, timefmt
from firehook.service.core import Services, readable_project, require_write
from firehook.store import activities as store
from firehook.store import integrations as integration_store
from firehook.store import jsonutil

MAX_COUNT = 1000
DEFAULT_COUNT = 50


def _row(services: Services, principal: model.Token, project_id: str, activity_id: str) -> dict[str, Any]:
    readable_project(services, principal, project_id)
    with services.database.read() as conn:
        row = store.find(conn, project_id, activity_id)
    if row is None:
        raise errors.NotFound(f"activity {activity_id} not found in project {project_id}")
    return row


def _values(given: Any) -> list[str]:
    """A filter given once, repeated, or comma-separated, as one list."""
    items = [given] if isinstance(given, str) else list(given or [])
    return [v for item in items for v in item.split(",") if v]


def parse_filters(params: dict[str, Any]) -> dict[str, Any]:
    """Listing filters from query parameters: type (globs with * and ?) and state (repeatable or
    comma-separated), result, environment, count (1–1000), starts_at (only activities firehook
    received before it)."""
    out: dict[str, Any] = {}
    out["types"] = _values(params.get("type"))
    for kind in out["types"]:
        if "[" in kind or "]" in kind:
            raise errors.InvalidInput.field("type", f"{kind!r}: type filters take the globs * and ?, not [...]")
    out["states"] = _values(params.get("state"))
    for st in out["states"]:
        if st not in model.ACTIVITY_STATES | {model.RUN_SKIPPED}:
            raise errors.InvalidInput.field("state", f"{st!r} is not a state")
    result = params.get("result")
    if result and result not in model.RESULTS:
        raise errors.InvalidInput.field("result", "must be success or failure")
    out["result"] = result or None
    out["environment"] = params.get("environment") or None
    count = params.get("count")
    if count in (None, ""):
        out["count"] = DEFAULT_COUNT
    else:
        try:
            out["count"] = int(count)
        except (TypeError, ValueError):
            raise errors.InvalidInput.field("count", "must be a whole number") from None
        if not 1 <= out["count"] <= MAX_COUNT:
            raise errors.InvalidInput.field("count", f"must be from 1 to {MAX_COUNT}")
    starts_at = params.get("starts_at")
    if starts_at:
        # Upsun's PHP client sends `…+00:00` unencoded in the query: its `+` arrives as a space.
        starts_at = re.sub(r" (\d{2}(:?\d{2})?)$", r"+\1", starts_at)
        try:
            out["starts_at"] = timefmt.format_ts(timefmt.parse_ts(starts_at))
        except ValueError as exc:
            raise errors.InvalidInput.field("starts_at", str(exc)) from None
    return out


def list_(services: Services, principal: model.Token, project_id: str, params: dict[str, Any],
          integration_id: str | None = None) -> list[dict[str, Any]]:
    readable_project(services, principal, project_id)
    filters = parse_filters(params)
    with services.database.read() as conn:
        if integration_id is not None and not store_has_integration(conn, project_id, integration_id):
            raise errors.NotFound(f"integration {integration_id} not found in project {project_id}")
        rows = store.list_for(conn, project_id, integration_id=integration_id, **filters)
    return [r["doc"] for r in rows]


def store_has_integration(conn: Any, project_id: str, integration_id: str) -> bool:
    if integration_store.get(conn, project_id, integration_id) is not None:
        return True
    # A deleted integration's runs stay readable.
    return bool(store.list_for(conn, project_id, integration_id=integration_id, count=1))


def get(services: Services, principal: model.Token, project_id: str, activity_id: str) -> dict[str, Any]:
    return dict(_row(services, principal, project_id, activity_id)["doc"])


def attempts(services: Services, principal: model.Token, project_id: str, activity_id: str) -> list[dict[str, Any]]:
    row = _row(services, principal, project_id, activity_id)
    with services.database.read() as conn:
        return [a.__dict__ for a in store.list_attempts(conn, row["pk"])]


def runs_of(services: Services, principal: model.Token, project_id: str, activity_id: str) -> list[dict[str, Any]]:
    row = _row(services, principal, project_id, activity_id)
    with services.database.read() as conn:
        return [r["doc"] for r in store.runs_of(conn, row["pk"])]


class LogCursor:
    """Reads a log in pages: runs from their log lines, other activities from their `log` text."""

    def __init__(self, services: Services, principal: model.Token, project_id: str, activity_id: str) -> None:
        row = _row(services, principal, project_id, activity_id)
        self.services = services
        self.pk = row["pk"]
        self.is_run = row["integration_id"] is not None
        self.doc = row["doc"]
        self.after = 0

    def read(self) -> tuple[list[dict[str, Any]], bool]:
        """The next lines, and whether the log is sealed (nothing more will come)."""
        if not self.is_run:
            if self.after:
                return [], True
            text = self.doc.get("log") or ""
            stamp = self.doc.get("updated_at") or self.doc.get("created_at")
            lines = [{"_id": i, "data": {"timestamp": stamp, "message": m}}
                     for i, m in enumerate(text.splitlines(), start=1)]
            self.after = len(lines) or 1
            return lines, True
        with self.services.database.read() as conn:
            finished = bool((store.get_run(conn, self.pk) or {}).get("finished", True))
            rows = store.logs_after(conn, self.pk, self.after)
        lines = [{"_id": n, "data": {"timestamp": ts, "message": msg}} for n, ts, msg in rows]
        if rows:
            self.after = rows[-1][0]
        # Sealed only when finished *and* everything written before finishing was read.
        return lines, finished and len(rows) < 1000


def replay(services: Services, principal: model.Token, project_id: str, activity_id: str,
           body: Any) -> dict[str, Any]:
    """New runs for a stored activity, in a state it reached: for the named integrations (any
    enabled one of the project) or else every integration that matches now. Replaying a run
    (a skipped one, typically) replays its source activity for the run's integration."""
    require_write(principal)
    row = _row(services, principal, project_id, activity_id)
    body = body or {}
    if not isinstance(body, dict):
        raise errors.InvalidInput.field("body", "must be a JSON object")
    unknown = set(body) - {"integrations", "state"}
    if unknown:
        raise errors.InvalidInput.field(sorted(unknown)[0], "is not a replay option (integrations, state)")
    wanted = body.get("integrations")
    if wanted is not None and (not isinstance(wanted, list) or not all(isinstance(i, str) for i in wanted)):
        raise errors.InvalidInput.field("integrations", "must be a list of integration ids")
    chosen = body.get("state")
    if chosen is not None and (not isinstance(chosen, str) or chosen not in model.ACTIVITY_STATES):
        raise errors.InvalidInput.field("state", f"must be one of {', '.join(sorted(model.ACTIVITY_STATES))}")
    with services.database.write() as conn:
        source_pk, state = row["pk"], body.get("state") or row["doc"]["state"]
        if row["integration_id"] is not None:
            run = store.get_run(conn, row["pk"])
            assert run is not None
            source_pk = run["source_pk"]
            state = body.get("state") or row["doc"]["parameters"]["activity_state"]
            wanted = wanted if wanted is not None else [row["integration_id"]]
        source = store.find_by_pk(conn, source_pk)
        store.keep_snapshot(conn, source_pk, state)  # the new runs' snapshot holds its body
        snap = store.find_snapshot(conn, source_pk, state)
        if snap is None or source is None:
            reached = sorted(store.snapshot_states(conn, source_pk))
            raise errors.InvalidInput.field(
                "state", f"activity {activity_id} never reached {state!r}; it reached: {', '.join(reached) or 'none'}")
        doc = jsonutil.loads(snap["body"])
        all_items = integration_store.list_for(conn, project_id)
        if wanted is not None:
            by_id = {i.id: i for i in all_items}
            targets = []
            for integration_id in wanted:
                item = by_id.get(integration_id)
                if item is None:
                    raise errors.InvalidInput.field("integrations", f"integration {integration_id} not found")
                if not item.enabled:
                    raise errors.InvalidInput.field(
                        "integrations", f"integration {integration_id} is disabled; enable it first")
                targets.append(item)
        else:
            targets = matching.matching(all_items, doc, state)
        runs = fanout.create_runs(conn, services.settings.resolved_public_url, project_id, source_pk, doc, state,
                                  snap["pk"], targets)
    if runs:
        services.notify()
    return {"status": "ok", "code": 200, "_embedded": {"runs": runs}}


def cancel(services: Services, principal: model.Token, project_id: str, activity_id: str) -> dict[str, Any]:
    """Cancel a run nobody is executing (pending, or waiting for its next attempt)."""
    require_write(principal)
    row = _row(services, principal, project_id, activity_id)
    if row["integration_id"] is None:
        raise errors.InvalidInput.field("id", f"{activity_id} is not a run; only runs can be cancelled")
    now = timefmt.now_ts()
    with services.database.write() as conn:
        if not queue.cancel(conn, row["pk"], time.time()):
            fresh = store.find_by_pk(conn, row["pk"])
            state = fresh["doc"]["state"] if fresh else "gone"
            raise errors.Conflict(f"run {activity_id} cannot be cancelled: it is {state}"
                                  + (" and executing now" if state == "in_progress" else ""))
        fresh = store.find_by_pk(conn, row["pk"])
        doc = dict(fresh["doc"] if fresh else row["doc"])
        doc.update({"state": "cancelled", "cancelled_at": now, "updated_at": now, "completion_percent": 100})
        store.save(conn, row["pk"], doc)
        store.update_run(conn, row["pk"], finished=True)
        store.append_logs(conn, row["pk"], [(now, "Run cancelled.")])
    return doc
