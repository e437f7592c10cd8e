"""Fan-out: turning "an activity reached a state" into runs, one per matching integration.

Used by intake (activities posted to firehook) and by recording (runs are activities too:
an integration that lists ``integration.*`` events explicitly gets runs when other
integrations' runs reach a state). A run triggered by a run triggers nothing further, so
two integrations listening to each other cannot loop.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa

from firehook import ids, matching, model, queue, timefmt
from firehook.store import activities as store
from firehook.store import integrations as integration_store
from firehook.store import jsonutil, raw

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


@dataclasses.dataclass
class Planned:
    """The runs one activity reaching one state triggers, built before anything is written:
    live runs for the enabled integrations that match, skipped ones for the auto-disabled."""

    project_id: str
    source: dict[str, Any]
    state: str
    live: list[model.Integration]
    asleep: list[model.Integration]
    docs: list[dict[str, Any]]  # the run documents: live ones first, then the skipped
    texts: list[str]  # their JSON
    now: str
    epoch: float

    @property
    def targets(self) -> list[model.Integration]:
        return self.live + self.asleep

    def activity_rows(self, pks: Sequence[int]) -> list[tuple[Any, ...]]:
        """The rows of the run activities (:func:`store.activity_row`), in :attr:`docs` order."""
        return [store.activity_row(pk, self.project_id, doc, text, doc["integration"])
                for pk, doc, text in zip(pks, self.docs, self.texts, strict=True)]

    def summary(self) -> list[dict[str, Any]]:
        """What intake and replay answer about the runs they created."""
        live = len(self.live)
        return [{"id": d["id"], "type": d["type"], "integration": d["integration"],
                 "state": self.state if n < live else model.RUN_SKIPPED} for n, d in enumerate(self.docs)]


def plan(public_url: str, project_id: str, source: dict[str, Any], state: str,
         live: Sequence[model.Integration], asleep: Sequence[model.Integration] = ()) -> Planned | None:
    """The runs of ``live`` (queued) and ``asleep`` (skipped) integrations for ``source``
    reaching ``state``; None when there are none."""
    if not live and not asleep:
        return None
    now = timefmt.now_ts()
    docs = [new_run_doc(public_url, project_id, integration, source, state, now) for integration in live]
    for integration in asleep:
        doc = new_run_doc(public_url, project_id, integration, source, state, now)
        doc.update({"state": model.RUN_SKIPPED, "completion_percent": 100,
                    "text": f"Skipped: {integration.disabled_reason}"})
        docs.append(doc)
    # Run documents hold firehook's own values only (no NaN), so they take the fast serialiser.
    texts = [jsonutil.document(doc)[0] for doc in docs]
    return Planned(project_id, source, state, list(live), list(asleep), docs, texts, now, time.time())


def plan_matching(public_url: str, project_id: str, source: dict[str, Any], state: str,
                  integrations: Sequence[model.Integration]) -> Planned | None:
    """:func:`plan` for the integrations of ``integrations`` that match ``source`` in ``state``."""
    live = matching.matching([i for i in integrations if i.enabled], source, state)
    asleep = [i for i in integrations if i.auto_disabled
              and matching.matches(dataclasses.replace(i, enabled=True), source, state)]
    return plan(public_url, project_id, source, state, live, asleep)


@dataclasses.dataclass
class Placed:
    """A :class:`Planned` once its source, snapshot and run activities have primary keys."""

    planned: Planned
    source_pk: int
    snapshot_pk: int
    run_pks: list[int]


def insert_runs(conn: sa.Connection, placed: Sequence[Placed]) -> None:
    """The rows of ``runs`` and the skipped runs' first log lines of ``placed``, whose run
    activities are written in this transaction: one statement per table."""
    run_rows: list[tuple[Any, ...]] = []
    logs: list[tuple[int, str, str]] = []
    for item in placed:
        p = item.planned
        for n, (pk, integration) in enumerate(zip(item.run_pks, p.targets, strict=True)):
            skipped = n >= len(p.live)
            run_rows.append((pk, integration.id, integration.type, item.snapshot_pk, item.source_pk, 0, p.epoch,
                             skipped))
            if skipped:
                logs.append((pk, p.now, f"Run skipped: the integration was disabled automatically "
                                        f"({integration.disabled_reason}). Enable it, then replay this activity."))
    store.insert_run_rows(conn, run_rows)
    store.insert_first_logs(conn, logs)


def enqueue(conn: sa.Connection, placed: Sequence[Placed], clock: queue.FairClock | None = None) -> None:
    """The jobs of the live runs of ``placed``: one enqueue per project."""
    jobs: dict[str, list[dict[str, object]]] = {}
    for item in placed:
        p = item.planned
        envs = matching.activity_environments(p.source)
        for pk, integration in zip(item.run_pks, p.live, strict=False):  # live runs come first
            jobs.setdefault(p.project_id, []).append(
                {"run_pk": pk, "project_id": p.project_id, "kind": integration.type,
                 "ordering_key": queue.ordering_key(integration, item.source_pk, envs), "run_at": p.epoch})
    for rows in jobs.values():
        queue.enqueue_many(conn, rows, clock)


def create_runs(conn: sa.Connection, public_url: str, project_id: str, source_pk: int, source: dict[str, Any],
                state: str, snapshot_pk: int, targets: Sequence[model.Integration],
                clock: queue.FairClock | None = None) -> list[dict[str, Any]]:
    """One run (activity + run row + job) per target integration, in the caller's transaction.

    Written with one multi-row statement per table, whatever the number of targets.
    """
    planned = plan(public_url, project_id, source, state, targets)
    if planned is None:
        return []
    pks, _ = store.new_keys(conn, len(planned.docs))
    placed = [Placed(planned, source_pk, snapshot_pk, pks)]
    with raw.pipelined(conn):
        store.insert_activities(conn, planned.activity_rows(pks))
        insert_runs(conn, placed)
    enqueue(conn, placed, clock)
    return planned.summary()


def listens_to_runs(integration: model.Integration) -> bool:
    return integration.enabled and any(e.startswith(RUN_PREFIX) for e in integration.events)


class Listeners:
    """Per project, the enabled integrations that list ``integration.*`` events — read once per
    transaction, since every run state change asks."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self._by_project: dict[str, list[model.Integration]] = {}
        self._asked: dict[str, Callable[[], list[model.Integration]]] = {}

    def ask(self, project_ids: Iterable[str]) -> None:
        """Send the reads of these projects' listeners now, to be read at the first :meth:`of`
        (in ``raw.pipelined``: in the round trip of the block's other statements). On SQLite,
        where a read costs no round trip, each is made at its first :meth:`of`."""
        if self.conn.dialect.name != "postgresql":
            return
        for project_id in project_ids:
            if project_id not in self._by_project and project_id not in self._asked:
                self._asked[project_id] = integration_store.send_listening_to_runs(self.conn, project_id)

    def of(self, project_id: str) -> list[model.Integration]:
        if project_id not in self._by_project:
            asked = self._asked.pop(project_id, None)
            found = asked() if asked is not None else integration_store.listening_to_runs(self.conn, project_id)
            self._by_project[project_id] = [i for i in found if listens_to_runs(i)]
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
    _, [snapshot_pk] = store.new_keys(conn, 0, 1)
    store.insert_snapshots(conn, [(snapshot_pk, run_pk, state, jsonutil.dumps(run_doc), timefmt.now_ts())])
    return create_runs(conn, public_url, project_id, run_pk, run_doc, state, snapshot_pk, targets)
