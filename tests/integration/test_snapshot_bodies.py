"""A snapshot's body is stored once: NULL while it is the activity's current document, written
out in the transaction that changes the document. Every read returns the document as it was
when the state was reached, byte for byte, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from firehook import model
from firehook.service import activities, batch, intake, integrations, projects
from firehook.store import activities as store
from firehook.store import runs as run_store
from firehook.store import schema

S = schema.snapshots.c
A = schema.activities.c


def _project(services: Any, admin: model.Token) -> str:
    projects.create(services, admin, {"id": "demo", "title": "Demo", "region": "eu-3"})
    return "demo"


def _stored(services: Any, activity_id: str) -> tuple[int, str, dict[str, str | None]]:
    """(pk, the activity's stored text, state → the snapshot column as stored)."""
    with services.database.read() as conn:
        pk, doc = conn.execute(sa.select(A.pk, A.doc).where(A.id == activity_id)).one()
        rows = conn.execute(sa.select(S.state, S.body).where(S.activity_pk == pk)).all()
    return pk, doc, dict(rows)  # type: ignore[arg-type]


def _read(services: Any, pk: int, state: str) -> str:
    with services.database.read() as conn:
        snap = store.find_snapshot(conn, pk, state)
    assert snap is not None
    return snap["body"]  # type: ignore[no-any-return]


def test_a_document_is_stored_once_until_it_changes(services: Any, admin: model.Token) -> None:
    pid = _project(services, admin)
    first = intake.ingest(services, admin, pid, {"id": "a1", "type": "environment.push", "state": "pending",
                                                  "text": "é pending"})
    pk, text, bodies = _stored(services, "a1")
    assert bodies == {"pending": None}  # no run takes it: the activity's row holds the only copy
    assert _read(services, pk, "pending") == text == first.text
    assert first.raw == text.encode("utf-8")

    intake.ingest(services, admin, pid, {"id": "a1", "type": "environment.push", "state": "complete",
                                         "text": "done"})
    pk, latest, bodies = _stored(services, "a1")
    assert bodies == {"pending": text, "complete": None}  # written out before the document changed
    assert _read(services, pk, "pending") == text
    assert _read(services, pk, "complete") == latest != text

    # A change within a state (PATCH) writes out the snapshot of that state as it was.
    intake.patch(services, admin, pid, "a1", {"text": "edited later"})
    pk, edited, bodies = _stored(services, "a1")
    assert bodies == {"pending": text, "complete": latest}
    assert "edited later" in edited and _read(services, pk, "complete") == latest


def test_a_batch_with_two_states_of_one_activity(services: Any, admin: model.Token) -> None:
    pid = _project(services, admin)
    lines = b'{"id":"b1","type":"environment.push","state":"pending"}\n' \
            b'{"id":"b1","type":"environment.push","state":"complete","text":"x"}\n'
    report = batch.ingest_batch(services, admin, pid, lines)
    assert report["accepted"] == 2
    pk, latest, bodies = _stored(services, "b1")
    assert bodies["complete"] is None and bodies["pending"] is not None
    assert '"state":"pending"' in bodies["pending"] and '"text":"x"' not in bodies["pending"]
    assert _read(services, pk, "complete") == latest


def test_a_snapshot_a_run_takes_holds_its_body(services: Any, admin: model.Token) -> None:
    pid = _project(services, admin)
    integrations.create(services, admin, pid, {"type": "webhook", "url": "http://127.0.0.1:9/hook",
                                               "states": ["pending"]})
    accepted = intake.ingest(services, admin, pid, {"id": "c1", "type": "environment.push", "state": "pending"})
    assert len(accepted.runs) == 1
    _, text, bodies = _stored(services, "c1")
    assert bodies == {"pending": text}


def test_replay_writes_the_body_out_for_its_runs(services: Any, admin: model.Token) -> None:
    pid = _project(services, admin)
    intake.ingest(services, admin, pid, {"id": "d1", "type": "environment.push", "state": "complete"})
    pk, text, bodies = _stored(services, "d1")
    assert bodies == {"complete": None}
    integrations.create(services, admin, pid, {"type": "webhook", "url": "http://127.0.0.1:9/hook"})
    replayed = activities.replay(services, admin, pid, "d1", None)["_embedded"]["runs"]
    assert len(replayed) == 1
    assert _stored(services, "d1")[2] == {"complete": text}
    # The worker reads a run's snapshot alone: it gets the document as it was, even once the
    # activity has changed since.
    intake.patch(services, admin, pid, "d1", {"text": "changed after the replay"})
    with services.database.read() as conn:
        run_pk = conn.execute(sa.select(A.pk).where(A.id == replayed[0]["id"])).scalar_one()
        [loaded] = run_store.load(conn, [run_pk]).values()
    assert loaded.body == text


def test_an_activity_posted_again_unchanged_is_not_rewritten(services: Any, admin: model.Token) -> None:
    pid = _project(services, admin)
    doc = {"id": "e1", "type": "environment.push", "state": "complete", "created_at": "2025-01-01T00:00:00Z",
           "updated_at": "2025-01-01T00:00:00Z"}
    intake.ingest(services, admin, pid, dict(doc))
    again = intake.ingest(services, admin, pid, dict(doc))
    assert not again.created
    pk, text, bodies = _stored(services, "e1")
    assert bodies == {"complete": None} and _read(services, pk, "complete") == text
