"""Recording what happens to runs: started, log lines, attempts, finished or retried.

The worker records in batches — every run it claimed in one round is started in one
transaction, and finished runs are recorded a group per transaction — because a transaction
per step per run costs far more than the steps themselves. Every outcome is still written only
while the worker holds the job's lease, in the transaction that releases it, so a worker that
lost its lease never overwrites the work of the worker that took over.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from firehook import fanout, handover, model, queue, timefmt
from firehook import turns as turns_mod
from firehook.store import db as dbmod
from firehook.store import integrations as integration_store
from firehook.store import kv, raw
from firehook.store import projects as project_store
from firehook.store import runs as run_store


@dataclasses.dataclass
class Loaded:
    """Everything an executor needs for one run."""

    run_doc: dict[str, Any]
    project: dict[str, Any]
    integration: model.Integration | None  # None: deleted since the run was queued
    variables: list[model.Variable]
    body: str
    attempt: int  # the number of the attempt about to be made (1-based)
    queued_at: float = 0.0
    started_at: float | None = None  # set once the run has started


@dataclasses.dataclass(frozen=True)
class Health:
    """A webhook attempt's effect on its integration's failure streak."""

    ok: bool
    disable_after: float  # seconds of nothing but failures before disabling; 0: never
    integration_id: str
    # The integration had a failure streak when the run was loaded. A success of one that had
    # none has nothing to update; a streak begun since is cleared by the next success loaded
    # after it.
    was_failing: bool = True


@dataclasses.dataclass
class Finished:
    """What an execution leaves to record: a final result, or an attempt to make again."""

    job: model.Job
    result: str = model.Result.FAILURE.value
    retry_at: float | None = None
    logs: Sequence[tuple[str, str]] = ()
    attempt: model.Attempt | None = None
    health: Health | None = None
    # The run as started, when the caller holds it: the lease means nobody else changed it
    # since, so recording need not read it back.
    started: Loaded | None = None
    storage: Sequence[kv.Op] = ()  # a script run's storage writes (store.kv.RunStorage)
    turn: str | None = None  # the integration whose turn (firehook.turns) this run held
    began_at: float | None = None  # when the script began in its process (the rest was waiting)
    # Earlier runs' storage writes this run read before they were committed (firehook.handover):
    # it is recorded only if they are.
    requires: Sequence[handover.Entry] = ()
    entry: handover.Entry | None = None  # this run's own writes, as the next runs read them
    queued_at: float | None = None  # when the run was queued (for the latency metric)


def _timings(doc: dict[str, Any]) -> dict[str, Any]:
    """The run's timings object (Upsun sends `[]` for none)."""
    value = doc.get("timings")
    return value if isinstance(value, dict) else {}


def load(database: dbmod.Database, job: model.Job) -> Loaded | None:
    """Read one run as an executor would get it (without starting it)."""
    with database.read() as conn:
        return _load(conn, [job]).get(job.id)


def _load(conn: sa.Connection, jobs: Sequence[model.Job]) -> dict[int, Loaded]:
    found = run_store.select_runs(conn, [j.run_pk for j in jobs])
    ids = run_store.integration_ids(found)
    # What the runs need besides: on PostgreSQL four reads in one round trip.
    with raw.pipelined(conn):
        read_bodies = run_store.send_bodies(conn, found)
        read_integrations = integration_store.send_get_many(conn, ids)
        read_variables = integration_store.send_variables_for_many(conn, ids)
        read_projects = project_store.send_get_many(conn, {j.project for j in jobs})
        rows = run_store.assemble(found, read_bodies())
        integrations, variables, projects = read_integrations(), read_variables(), read_projects()
    objects = {p: project_store.script_object(projects.get(p), p) for p in {j.project for j in jobs}}
    out: dict[int, Loaded] = {}
    for job in jobs:
        run = rows.get(job.run_pk)
        if run is None:
            continue
        integration = integrations.get(run.integration_id)
        out[job.id] = Loaded(run_doc=run.doc, project=objects[job.project], integration=integration,
                             variables=variables.get(integration.id, []) if integration else [],
                             body=run.body, attempt=run.attempts + 1, queued_at=run.queued_at,
                             started_at=run.started_at)
    return out


def claim_round_on(conn: sa.Connection, owner: str, kinds: Sequence[str], limit: int, lease_seconds: float,
                   public_url: str = "", turns: turns_mod.Turns | None = None) -> list[tuple[model.Job, Loaded]]:
    """Claim up to ``limit`` runs, mark them in progress, count their attempt and load what
    the executors need, in the caller's write transaction (one per claim round). With
    ``turns``, script runs whose integration another worker is running are left for later."""
    if limit <= 0:
        return []
    now = time.time()
    jobs = queue.claim_on(conn, owner, kinds, limit, lease_seconds, now)
    if turns is not None and jobs:
        jobs, _ = turns.claimed(conn, jobs, now, now + lease_seconds)
    if not jobs:
        return []
    loaded = _start(conn, jobs, now, public_url)
    return [(job, loaded[job.id]) for job in jobs if job.id in loaded]


def start_many(database: dbmod.Database, jobs: Sequence[model.Job], owner: str,
               public_url: str = "") -> dict[int, Loaded]:
    """Start runs claimed earlier (in another transaction): those whose lease was lost, or
    whose run is gone, are left out."""
    with database.write() as conn:
        mine = queue.held(conn, [j.id for j in jobs], owner)
        return _start(conn, [j for j in jobs if j.id in mine], time.time(), public_url)


def _start(conn: sa.Connection, jobs: Sequence[model.Job], now: float, public_url: str) -> dict[int, Loaded]:
    stamp = timefmt.from_epoch(now)
    loaded = _load(conn, jobs)
    by_id = {j.id: j for j in jobs}
    saves, started, first = [], [], []
    for job_id, item in loaded.items():
        if item.integration is None:
            continue
        job, doc = by_id[job_id], item.run_doc
        if doc["state"] != "in_progress":
            doc["state"] = "in_progress"
            doc["started_at"] = doc.get("started_at") or stamp
        timings = _timings(doc)
        timings.setdefault("wait", round(now - item.queued_at, 3))
        doc["timings"] = timings
        doc["parameters"]["attempts"] = item.attempt
        doc["updated_at"] = stamp
        item.started_at = item.started_at or now
        saves.append((job.run_pk, doc))
        started.append((job.run_pk, item.attempt, item.started_at))
        if item.attempt == 1:
            first.append((job, doc))
    listeners = fanout.Listeners(conn)
    with raw.pipelined(conn):
        run_store.save_docs(conn, saves)
        run_store.mark_started(conn, started)
        listeners.ask({job.project for job, _ in first})
    if first:
        for job, doc in first:
            _reached(conn, public_url, job, doc, listeners)
    return loaded


def start(database: dbmod.Database, job: model.Job, owner: str, public_url: str = "") -> bool:
    """Start one run; False when the lease was lost."""
    return job.id in start_many(database, [job], owner, public_url)


def _reached(conn: sa.Connection, public_url: str, job: model.Job, doc: dict[str, Any],
             listeners: fanout.Listeners) -> None:
    """The run reached a state: integrations listening to ``integration.*`` may get runs (a
    worker claims them at its next eager round, within a poll interval)."""
    fanout.run_reached_state(conn, public_url, job.project, job.run_pk, doc,
                             str(doc.get("parameters", {}).get("activity_type", "")), listeners)


def append_logs_on(conn: sa.Connection, batches: Sequence[tuple[int, Sequence[tuple[str, str]]]]) -> None:
    """Write buffered log lines of several runs, in the caller's write transaction."""
    run_store.append_logs(conn, batches)


def _track(conn: sa.Connection, health: Health | None, now: float,
           seen: dict[str, model.Integration | None]) -> str | None:
    """Update the failure streak; returns the reason when this attempt disables the integration."""
    if health is None or (health.ok and not health.was_failing):
        return None  # the common case: a success of an integration that was not failing
    if health.integration_id not in seen:
        seen[health.integration_id] = integration_store.get_by_id(conn, health.integration_id)
    item = seen[health.integration_id]
    if item is None or not item.enabled:
        return None
    changed: model.Integration | None = None
    reason = None
    if health.ok:
        if item.failing_since is not None:
            changed = dataclasses.replace(item, failing_since=None)
    elif item.failing_since is None:
        changed = dataclasses.replace(item, failing_since=timefmt.from_epoch(now))
    else:
        failing_for = now - timefmt.to_epoch(item.failing_since)
        if 0 < health.disable_after <= failing_for:
            reason = (f"every delivery failed since {item.failing_since} ({failing_for:.0f} s, "
                      f"limit {health.disable_after:.0f} s)")
            changed = dataclasses.replace(item, enabled=False, disabled_reason=reason,
                                          updated_at=timefmt.from_epoch(now))
    if changed is not None:
        integration_store.save(conn, changed)
        seen[health.integration_id] = changed
    return reason


def _disabled_line(reason: str | None, stamp: str) -> list[tuple[str, str]]:
    if reason is None:
        return []
    return [(stamp, f"Integration disabled automatically: {reason}. Activities it matches from now on are "
                    "recorded as skipped runs; enable it again to resume, and replay what it missed.")]


def finish_many(database: dbmod.Database, items: Sequence[Finished], owner: str,
                public_url: str = "") -> set[int]:
    """Record outcomes in one transaction; returns the ids of the jobs recorded (the others'
    leases were lost: another worker owns them now, and nothing of them is written)."""
    with database.write() as conn:
        return finish_many_on(conn, items, owner, public_url)


def finish_many_on(conn: sa.Connection, items: Sequence[Finished], owner: str, public_url: str = "",
                   turns: turns_mod.Turns | None = None) -> set[int]:
    """:func:`finish_many` in the caller's write transaction; with ``turns``, the turns of
    the finished script runs' integrations end (recorded or not, this worker is done with them)."""
    now = time.time()
    stamp = timefmt.from_epoch(now)
    ended = items  # recorded or not, this worker is done with their turns
    if any(i.requires for i in items):
        items = _release_dependents(conn, items, owner, stamp)
    recorded = queue.complete_many(conn, [i.job.id for i in items if i.retry_at is None], owner)
    for item in items:
        if item.retry_at is not None and queue.retry_at(conn, item.job.id, owner, item.retry_at):
            recorded.add(item.job.id)
    if turns is not None:
        turns.finished(conn, [(i.turn, i.job.id) for i in ended if i.turn is not None])
    kept = [i for i in items if i.job.id in recorded]
    kv.apply(conn, [(i.started.integration.id, i.storage) for i in kept
                    if i.storage and i.started is not None and i.started.integration is not None])
    seen: dict[str, model.Integration | None] = {}
    logs = [(i.job.run_pk, list(i.logs) + _disabled_line(_track(conn, i.health, now, seen), stamp)) for i in kept]
    final = [i for i in kept if i.retry_at is None]
    unknown = [i.job.run_pk for i in final if i.started is None]
    read = _load(conn, [i.job for i in final if i.started is None]) if unknown else {}
    saves = []
    for item in final:
        run = item.started or read.get(item.job.id)
        if run is None:
            continue
        doc = run.run_doc
        doc.update({"state": "complete", "result": item.result, "completed_at": stamp, "updated_at": stamp,
                    "completion_percent": 100})
        timings = _timings(doc)
        began = item.began_at if item.began_at is not None else run.started_at
        if began is not None:
            timings["execute"] = round(max(0.0, now - float(began)), 3)
        if item.began_at is not None:  # queued, then waiting for a turn or a script process
            timings["wait"] = round(max(0.0, item.began_at - run.queued_at), 3)
        timings.setdefault("wait", round((run.started_at or now) - run.queued_at, 3))
        doc["timings"] = timings
        saves.append((item.job, doc))
    listeners = fanout.Listeners(conn)
    # Writes that wait for no answer, and the one read the new states need: on PostgreSQL one
    # round trip for the five.
    with raw.pipelined(conn):
        run_store.append_logs(conn, logs)
        run_store.insert_attempts(conn, [(i.job.run_pk, i.attempt) for i in kept if i.attempt is not None])
        run_store.save_docs(conn, [(job.run_pk, doc) for job, doc in saves])
        run_store.mark_finished(conn, [job.run_pk for job, _ in saves])
        listeners.ask({job.project for job, _ in saves})
    for job, doc in saves:
        _reached(conn, public_url, job, doc, listeners)
    return recorded


NOT_RECORDED = ("Run not recorded: an earlier run of this integration, whose storage writes it read, "
                "could not be recorded. It runs again.")


def _release_dependents(conn: sa.Connection, items: Sequence[Finished], owner: str,
                        stamp: str) -> list[Finished]:
    """Of ``items``, in order, those that may be recorded: held by ``owner``, and every earlier
    run whose storage writes they read recorded before or here. The others ``owner`` holds go
    back to the queue, claimable at once, with a line saying why."""
    mine = queue.held(conn, [i.job.id for i in items], owner, lock=True)
    allowed: set[int] = set()
    kept: list[Finished] = []
    refused: list[Finished] = []
    for item in items:
        if item.job.id not in mine:
            continue
        if handover.may_record(item.requires, allowed):
            allowed.add(item.job.id)
            kept.append(item)
        else:
            refused.append(item)
    if refused:
        queue.release_on(conn, owner, [i.job.id for i in refused])
        run_store.append_logs(conn, [(i.job.run_pk, [(stamp, NOT_RECORDED)]) for i in refused])
    return kept


def finish(database: dbmod.Database, job: model.Job, owner: str, result: str, *,
           logs: Sequence[tuple[str, str]] = (), attempt: model.Attempt | None = None,
           public_url: str = "", health: Health | None = None) -> bool:
    """Record one final outcome; False (nothing written) if the lease was lost."""
    item = Finished(job=job, result=result, logs=logs, attempt=attempt, health=health)
    return job.id in finish_many(database, [item], owner, public_url)


def retry(database: dbmod.Database, job: model.Job, owner: str, when: float, *,
          logs: Sequence[tuple[str, str]] = (), attempt: model.Attempt | None = None,
          health: Health | None = None) -> bool:
    """Record an attempt that will be made again at ``when``; the run stays in progress."""
    item = Finished(job=job, retry_at=when, logs=logs, attempt=attempt, health=health)
    return job.id in finish_many(database, [item], owner)
