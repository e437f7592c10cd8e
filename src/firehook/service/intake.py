"""Intake (SPEC §2.3): create, update (a state transition), PATCH and NDJSON batches.

Every time an activity reaches a state it has not reached before, it is snapshotted as it is
then, and every matching integration gets a run — all in the transaction that stores the
activity, so a 2xx answer means the activity and its runs are durable.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import sqlalchemy as sa

from firehook import errors, fanout, ids, model, queue, timefmt, validation
from firehook.service.core import Services, project_not_found, require_project, require_write
from firehook.store import activities as store
from firehook.store import integrations as integration_store
from firehook.store import jsonutil
from firehook.store import projects as project_store

BATCH_CHUNK = 200


@dataclasses.dataclass
class Accepted:
    doc: dict[str, Any]
    created: bool
    runs: list[dict[str, Any]]
    text: str | None = None  # the document's JSON, as stored

    def answer_bytes(self) -> bytes:
        """The answer's JSON, reusing the document's stored text rather than serialising it again."""
        answer = self.answer()
        if self.text is None:
            return jsonutil.dumps(answer).encode("utf-8")
        answer["_embedded"]["entity"] = None
        head = jsonutil.dumps(answer)
        marker = '"entity":null'
        at = head.index(marker)
        return (head[:at] + '"entity":' + self.text + head[at + len(marker):]).encode("utf-8")

    def answer(self) -> dict[str, Any]:
        code = 201 if self.created else 200
        return {
            "status": "created" if self.created else "updated",
            "code": code,
            "_embedded": {"entity": self.doc, "runs": self.runs},
        }


class Intake:
    """One write transaction's worth of intake; integrations loaded once per project."""

    def __init__(self, services: Services, conn: sa.Connection, project_id: str) -> None:
        self.services = services
        self.conn = conn
        self.project_id = project_id
        self._integrations: list[model.Integration] | None = None
        self._project_checked = False
        self.clock = queue.FairClock(conn)

    def close(self) -> None:
        """Write what the transaction kept in memory (the fair-queueing clocks); call it last."""
        self.clock.flush()

    def apply_one(self, incoming: dict[str, Any], *, patch_of: str | None = None) -> Accepted:
        """Apply one document and close: for a transaction that holds just this one."""
        accepted = self.apply(incoming, patch_of=patch_of)
        self.close()
        return accepted

    @property
    def integrations(self) -> list[model.Integration]:
        if self._integrations is None:
            self._integrations = [i for i in integration_store.list_for(self.conn, self.project_id)
                                  if i.enabled or i.auto_disabled]
        return self._integrations

    def apply(self, incoming: dict[str, Any], *, patch_of: str | None = None) -> Accepted:
        if not self._project_checked:
            if not project_store.exists(self.conn, self.project_id):
                raise project_not_found(self.project_id)
            self._project_checked = True
        now = timefmt.now_ts()
        activity_id = patch_of if patch_of is not None else incoming.get("id")
        existing = store.find(self.conn, self.project_id, activity_id, lock=True) if activity_id else None
        if patch_of is not None and existing is None:
            raise errors.NotFound(f"activity {patch_of} not found in project {self.project_id}")
        if existing is not None:
            doc = dict(existing["doc"])
            if incoming.get("type") not in (None, doc["type"]):
                raise errors.InvalidInput.field("type", f"cannot change from {doc['type']} to {incoming['type']}")
            if existing["integration_id"] is not None:
                raise errors.InvalidInput.field("id", f"{activity_id} is a run; runs are updated by firehook only")
            doc.update({k: v for k, v in incoming.items() if k not in ("id", "project", "_links")})
            if "updated_at" not in incoming:
                doc["updated_at"] = now
        else:
            doc = dict(incoming)
            doc["id"] = activity_id or ids.new_id()
            doc.setdefault("created_at", now)
            doc.setdefault("updated_at", now)
            doc.setdefault("environments", [])
            doc.setdefault("result", None)
        if doc.get("state") is None:
            doc["state"] = model.State.COMPLETE.value
        if doc.get("environments") is None:
            doc["environments"] = []
        if doc.get("created_at") is None:
            doc["created_at"] = now
        doc["project"] = self.project_id
        doc["_links"] = self.services.activity_links(self.project_id, doc["id"])
        validation.check_activity_fields(doc)
        # Serialised once: the stored document, the snapshot and the answer are the same text.
        # (The indexed updated_at must never be null, whatever the document says.)
        text = jsonutil.dumps(doc)
        try:
            jsonutil.encode_utf8(text)
        except ValueError as exc:
            raise errors.InvalidInput.field("body", str(exc)) from None
        if existing is None:
            pk = store.insert(self.conn, self.project_id, doc, text=text, updated_at=now)
            reached: set[str] = set()
        else:
            pk = existing["pk"]
            store.save(self.conn, pk, doc, text=text, updated_at=now)
            reached = store.snapshot_states(self.conn, pk)
        runs: list[dict[str, Any]] = []
        state = doc["state"]
        if state not in reached:
            snapshot_pk = store.insert_snapshot(self.conn, pk, state, text, now)
            runs = fanout.fan_out(self.conn, self.services.settings.resolved_public_url, self.project_id,
                                  pk, doc, state, snapshot_pk, self.integrations, clock=self.clock)
        return Accepted(doc=doc, created=existing is None, runs=runs, text=text)


def authorize(principal: model.Token, project_id: str) -> None:
    require_project(principal, project_id)
    require_write(principal)


def ingest(services: Services, principal: model.Token, project_id: str, body: Any) -> Accepted:
    """Take in one activity document: create it, or update it when its id exists."""
    authorize(principal, project_id)
    doc = validation.activity(body)
    accepted = _write_one(services, project_id, doc)
    if accepted.runs:
        services.notify()
    return accepted


def _write_one(services: Services, project_id: str, doc: dict[str, Any]) -> Accepted:
    try:
        with services.database.write() as conn:
            return Intake(services, conn, project_id).apply_one(doc)
    except sa.exc.IntegrityError:
        # Two writers created the same new id at once; the second is now an update.
        with services.database.write() as conn:
            return Intake(services, conn, project_id).apply_one(doc)


def patch(services: Services, principal: model.Token, project_id: str, activity_id: str, body: Any) -> Accepted:
    """Merge top-level fields into an existing activity (which may reach a new state)."""
    authorize(principal, project_id)
    if not isinstance(body, dict):
        raise errors.InvalidInput.field("body", "must be a JSON object")
    validation.check_activity_fields(body)
    with services.database.write() as conn:
        accepted = Intake(services, conn, project_id).apply_one(body, patch_of=activity_id)
    if accepted.runs:
        services.notify()
    return accepted


def parse_ndjson(data: bytes, max_line_bytes: int) -> list[tuple[int, dict[str, Any] | None, dict[str, Any] | None]]:
    """Split an NDJSON body into ``(line number, document or None, error or None)``; blank
    lines are skipped. Every error names the line and the problem."""
    out: list[tuple[int, dict[str, Any] | None, dict[str, Any] | None]] = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        line = raw.strip()
        if not line:
            continue
        if len(line) > max_line_bytes:
            out.append((number, None, {"line": number, "code": 413,
                                       "detail": f"document of {len(line)} bytes is over the limit "
                                                 f"of {max_line_bytes}"}))
            continue
        try:
            doc = jsonutil.loads_strict(line)
        except (UnicodeDecodeError, ValueError) as exc:
            out.append((number, None, {"line": number, "code": 400, "detail": f"invalid JSON: {exc}"}))
            continue
        try:
            out.append((number, validation.activity(doc), None))
        except errors.InvalidInput as exc:
            out.append((number, None, {"line": number, "code": 400, "detail": exc.detail}))
    return out


def ingest_batch(services: Services, principal: model.Token, project_id: str, data: bytes) -> dict[str, Any]:
    """NDJSON intake: per line, the id or the error. A bad line never loses the good ones.

    Good lines are written in chunks, one transaction per chunk; if a chunk fails as a whole,
    its lines are retried one transaction each so only the faulty line is refused.
    """
    authorize(principal, project_id)
    with services.database.read() as conn:
        if not project_store.exists(conn, project_id):
            raise project_not_found(project_id)
    parsed = parse_ndjson(data, services.settings.max_document_bytes)
    if not parsed:
        raise errors.InvalidInput.field("body", "no documents: send one JSON activity per line")
    results: dict[int, dict[str, Any]] = {n: err for n, _, err in parsed if err is not None}
    good = [(n, doc) for n, doc, err in parsed if doc is not None]
    any_runs = False
    for start in range(0, len(good), BATCH_CHUNK):
        chunk = good[start:start + BATCH_CHUNK]
        try:
            with services.database.write() as conn:
                intake = Intake(services, conn, project_id)
                chunk_results = {}
                for n, doc in chunk:
                    accepted = intake.apply(doc)
                    chunk_results[n] = _line_result(n, accepted)
                intake.close()
            results.update(chunk_results)
            any_runs = any_runs or any(r["runs"] for r in chunk_results.values())
        except (errors.FirehookError, sa.exc.IntegrityError, ValueError):
            # One line spoiled the chunk: each line again in its own transaction, so only it fails.
            for n, doc in chunk:
                try:
                    with services.database.write() as conn:
                        accepted = Intake(services, conn, project_id).apply_one(doc)
                    results[n] = _line_result(n, accepted)
                    any_runs = any_runs or bool(accepted.runs)
                except errors.FirehookError as exc:
                    results[n] = {"line": n, "code": exc.status, "detail": exc.detail}
                except sa.exc.IntegrityError:
                    results[n] = {"line": n, "code": 409, "detail": "conflicts with a concurrent write; send it again"}
    if any_runs:
        services.notify()
    ordered = [results[n] for n in sorted(results)]
    accepted_count = sum(1 for r in ordered if "id" in r)
    return {"status": "ok", "accepted": accepted_count, "rejected": len(ordered) - accepted_count, "results": ordered}


def _line_result(n: int, accepted: Accepted) -> dict[str, Any]:
    return {"line": n, "id": accepted.doc["id"], "status": "created" if accepted.created else "updated",
            "runs": len(accepted.runs)}
