"""Intake, snapshots, fan-out and the integration API's service layer, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa

from firehook import errors, model
from firehook.service import activities, batch, intake, integrations, projects, tokens
from firehook.store import schema
from tests import support


def project(services: Any, admin: model.Token, pid: str = "demo") -> str:
    projects.create(services, admin, {"id": pid, "title": "Demo", "region": "eu-3"})
    return pid


def webhook(services: Any, admin: model.Token, pid: str, **extra: Any) -> dict[str, Any]:
    body = {"type": "webhook", "url": "http://127.0.0.1:9/hook", **extra}
    return integrations.create(services, admin, pid, body)


def count(services: Any, table: sa.Table) -> int:
    with services.database.read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_fixture_states_snapshot_and_fan_out(services: Any, admin: model.Token) -> None:
    pid = project(services, admin)
    every_state = webhook(services, admin, pid, states=["*"])
    on_complete = webhook(services, admin, pid)
    created = []
    for name in ("redeploy-pending", "redeploy-in-progress", "redeploy-complete"):
        created.append(intake.ingest(services, admin, pid, support.fixture_doc(name)))
    assert [a.created for a in created] == [True, False, False]
    assert [len(a.runs) for a in created] == [1, 1, 2]
    assert {r["integration"] for r in created[2].runs} == {every_state["id"], on_complete["id"]}
    # the same state again does not run again
    again = intake.ingest(services, admin, pid, support.fixture_doc("redeploy-complete"))
    assert again.runs == [] and not again.created
    stored = activities.get(services, admin, pid, "7txhbujm4umsy")
    sent = support.fixture_doc("redeploy-complete")
    # The document passes through: Upsun's project id and links are kept as sent (SPEC §2.1).
    assert stored["state"] == "complete" and stored["project"] == sent["project"] == "z3zxy3oknvllq"
    assert stored["timings"] == {"wait": 0, "build": 0.029, "deploy": 3.786, "execute": 4.287}
    assert stored["_links"] == sent["_links"]
    with services.database.read() as conn:
        states = conn.execute(sa.select(schema.snapshots.c.state).order_by(schema.snapshots.c.pk)).scalars().all()
    assert states == ["pending", "in_progress", "complete"]
    assert count(services, schema.jobs) == 4


def test_snapshot_is_the_document_as_it_was(services: Any, admin: model.Token) -> None:
    pid = project(services, admin)
    webhook(services, admin, pid, states=["pending"])
    doc = support.fixture_doc("redeploy-pending")
    accepted = intake.ingest(services, admin, pid, doc)
    intake.patch(services, admin, pid, doc["id"], {"text": "changed later", "completion_percent": 50})
    with services.database.read() as conn:
        body = conn.execute(sa.select(schema.snapshots.c.body)).scalar_one()
    snap = json.loads(body)
    assert snap["text"] == "Guillaume Moigneu redeployed environment Main"
    assert snap["timings"] == [] and snap["state"] == "pending"
    assert activities.get(services, admin, pid, doc["id"])["text"] == "changed later"
    assert accepted.runs[0]["state"] == "pending"


def test_unknown_fields_are_kept_and_push_fixture_round_trips(services: Any, admin: model.Token) -> None:
    pid = project(services, admin)
    doc = support.fixture_doc("push-complete")
    doc["x_custom"] = {"kept": [1, 2]}
    intake.ingest(services, admin, pid, doc)
    stored = activities.get(services, admin, pid, doc["id"])
    assert stored["x_custom"] == {"kept": [1, 2]}
    assert stored["payload"] == doc["payload"]
    assert stored["text"] == "Cloé Weber pushed to Main"


def test_documents_beyond_ascii_are_stored_as_text(services: Any, admin: model.Token) -> None:
    # On SQLite the documents are bound as their UTF-8 bytes and cast to text in the statement
    # (store.activities.doc_value): what is stored must be text of the same characters, through
    # a single document, a batch line, an update and a run's snapshot body.
    pid = project(services, admin)
    webhook(services, admin, pid, states=["complete"])
    intake.ingest(services, admin, pid, {"id": "u1", "type": "environment.push", "state": "pending",
                                         "text": "Cloé pushed “main” — 日本"})
    batch.ingest_batch(services, admin, pid, json.dumps(
        {"id": "u2", "type": "environment.push", "text": "Zoë ✓"}, ensure_ascii=False).encode())
    intake.ingest(services, admin, pid, {"id": "u1", "type": "environment.push", "state": "complete",
                                         "text": "Cloé a poussé “main” — 日本"})
    a, s = schema.activities, schema.snapshots
    with services.database.read() as conn:
        rows = conn.execute(sa.select(a.c.id, a.c.doc, sa.func.length(a.c.doc)).where(a.c.integration_id.is_(None))
                            .order_by(a.c.id)).all()
        bodies = conn.execute(sa.select(s.c.body, sa.func.length(s.c.body)).where(s.c.body.is_not(None))).all()
        if services.database.is_sqlite:
            kinds = set(conn.execute(sa.text("SELECT typeof(doc) FROM activities UNION "
                                             "SELECT typeof(body) FROM snapshots WHERE body IS NOT NULL")).scalars())
            assert kinds == {"text"}
    assert [r.id for r in rows] == ["u1", "u2"]
    for _, doc, length in rows:
        assert isinstance(doc, str) and length == len(doc)  # characters, not bytes
    assert json.loads(rows[0].doc)["text"] == "Cloé a poussé “main” — 日本"
    assert json.loads(rows[1].doc)["text"] == "Zoë ✓"
    # the run's snapshot holds its body; the pending one's was written out when u1 changed
    assert {json.loads(body)["text"] for body, _ in bodies} >= {"Cloé pushed “main” — 日本", "Cloé a poussé “main” — 日本"}
    assert all(length == len(body) for body, length in bodies)
    assert activities.get(services, admin, pid, "u1")["text"] == "Cloé a poussé “main” — 日本"


def test_generated_ids_and_defaults(services: Any, admin: model.Token) -> None:
    pid = project(services, admin)
    accepted = intake.ingest(services, admin, pid, {"type": "environment.deploy", "environments": ["main"]})
    assert len(accepted.doc["id"]) == 13 and accepted.doc["state"] == "complete"
    assert accepted.doc["created_at"].endswith("+00:00")


def test_bad_input_stores_nothing(services: Any, admin: model.Token) -> None:
    pid = project(services, admin)
    for body in ({"state": "complete"}, {"type": "x.y", "state": "bogus"}, {"type": "x.y", "environments": "main"}, []):
        with pytest.raises(errors.InvalidInput):
            intake.ingest(services, admin, pid, body)
    with pytest.raises(errors.NotFound, match="project nope not found"):
        intake.ingest(services, admin, "nope", {"type": "environment.push"})
    # a type change on update is refused, and the stored activity is untouched
    intake.ingest(services, admin, pid, {"id": "a1", "type": "environment.push", "state": "pending"})
    with pytest.raises(errors.InvalidInput, match="type"):
        intake.ingest(services, admin, pid, {"id": "a1", "type": "environment.deploy", "state": "complete"})
    assert activities.get(services, admin, pid, "a1")["state"] == "pending"
    assert count(services, schema.activities) == 1


def test_batch_keeps_good_lines(services: Any, admin: model.Token) -> None:
    pid = project(services, admin)
    webhook(services, admin, pid, states=["*"])
    lines = [
        json.dumps({"id": "b1", "type": "environment.push", "state": "pending"}),
        "{not json",
        json.dumps({"id": "b1", "type": "environment.push", "state": "complete", "result": "success"}),
        "",
        json.dumps({"type": "environment.push", "state": "exploded"}),
        json.dumps({"id": "b2", "type": "environment.deploy"}),
    ]
    report = batch.ingest_batch(services, admin, pid, "\n".join(lines).encode())
    assert report["accepted"] == 3 and report["rejected"] == 2
    by_line = {r["line"]: r for r in report["results"]}
    assert by_line[1]["status"] == "created" and by_line[3]["status"] == "updated"
    assert by_line[2]["code"] == 400 and "invalid JSON" in by_line[2]["detail"]
    assert by_line[5]["detail"] == {"state": by_line[5]["detail"]["state"]}
    assert by_line[6]["id"] == "b2"
    assert activities.get(services, admin, pid, "b1")["state"] == "complete"
    assert count(services, schema.jobs) == 3
    with pytest.raises(errors.InvalidInput, match="no documents"):
        batch.ingest_batch(services, admin, pid, b"\n\n")


def test_integration_secrets_and_defaults(services: Any, admin: model.Token) -> None:
    pid = project(services, admin)
    hook = webhook(services, admin, pid, shared_key="s3cret-key")
    assert hook["shared_key"] == "******" and hook["events"] == ["*"] and hook["states"] == ["complete"]
    assert "s3cret-key" not in json.dumps(integrations.list_(services, admin, pid))
    script = integrations.create(services, admin, pid, {"type": "script", "script": "console.log(1)"})
    assert script["events"] == ["environment.push"] and "url" not in script
    updated = integrations.update(services, admin, pid, script["id"], {"script": "console.log(2)", "enabled": False})
    assert updated["id"] == script["id"] and updated["script"] == "console.log(2)" and updated["enabled"] is False
    with pytest.raises(errors.InvalidInput) as info:
        integrations.create(services, admin, pid, {"type": "script", "script": "function ("})
    assert "script" in info.value.detail and "line" in info.value.detail["script"]
    with pytest.raises(errors.InvalidInput, match="cannot be changed"):
        integrations.update(services, admin, pid, script["id"], {"type": "webhook"})


def test_webhook_url_checked_by_outbound_guard(tmp_path: Any, database_url: str) -> None:
    from firehook import assembly
    from tests.conftest import make_settings

    built = assembly.services(make_settings(tmp_path, database_url, outbound_allow=()), migrate=True)
    admin = model.Token(id="a", project=None, read_only=False, description=None, created_at="")
    pid = project(built, admin)
    with pytest.raises(errors.InvalidInput) as info:
        integrations.create(built, admin, pid, {"type": "webhook", "url": "http://127.0.0.1:8080/x"})
    assert "127.0.0.1" in info.value.detail["url"] and "FIREHOOK_OUTBOUND_ALLOW" in info.value.detail["url"]
    built.database.dispose()


def test_variables(services: Any, admin: model.Token) -> None:
    pid = project(services, admin)
    hook = webhook(services, admin, pid)
    iid = hook["id"]
    integrations.create_variable(services, admin, pid, iid, {"name": "TOKEN", "value": "hunter2", "is_sensitive": True})
    integrations.create_variable(services, admin, pid, iid, {"name": "CONF", "value": '{"a": 1}', "is_json": True})
    listed = integrations.list_variables(services, admin, pid, iid)
    assert [v["name"] for v in listed] == ["CONF", "TOKEN"]
    assert "value" not in listed[1] and "hunter2" not in json.dumps(listed)
    with pytest.raises(errors.InvalidInput, match="non-sensitive"):
        integrations.update_variable(services, admin, pid, iid, "TOKEN", {"is_sensitive": False})
    with pytest.raises(errors.InvalidInput, match="not JSON"):
        integrations.create_variable(services, admin, pid, iid, {"name": "BAD", "value": "{", "is_json": True})
    with pytest.raises(errors.Conflict):
        integrations.create_variable(services, admin, pid, iid, {"name": "CONF", "value": "1"})
    with pytest.raises(errors.InvalidInput, match="at least 4 characters"):  # too short to mask in a log
        integrations.update_variable(services, admin, pid, iid, "TOKEN", {"value": "new"})
    with pytest.raises(errors.InvalidInput, match="at least 4 characters"):
        integrations.create_variable(services, admin, pid, iid, {"name": "PIN", "value": "123", "is_sensitive": True})
    integrations.update_variable(services, admin, pid, iid, "TOKEN", {"value": "newer"})
    integrations.delete_variable(services, admin, pid, iid, "CONF")
    assert [v["name"] for v in integrations.list_variables(services, admin, pid, iid)] == ["TOKEN"]


def test_delete_integration_keeps_runs(services: Any, admin: model.Token) -> None:
    from firehook.store import kv

    pid = project(services, admin)
    hook = webhook(services, admin, pid)
    integrations.create_variable(services, admin, pid, hook["id"], {"name": "A", "value": "1"})
    kv.IntegrationStorage(services.database, hook["id"]).set("k", "1")
    accepted = intake.ingest(services, admin, pid, {"type": "environment.push", "environments": ["main"]})
    run_id = accepted.runs[0]["id"]
    integrations.delete(services, admin, pid, hook["id"])
    assert count(services, schema.variables) == 0 and count(services, schema.script_storage) == 0
    assert activities.get(services, admin, pid, run_id)["integration"] == hook["id"]
    assert [r["id"] for r in activities.list_(services, admin, pid, {}, hook["id"])] == [run_id]


def test_listing_filters(services: Any, admin: model.Token) -> None:
    pid = project(services, admin)
    for i, (t, env, result) in enumerate([("environment.push", "main", "success"),
                                          ("environment.deploy", "dev", "failure"),
                                          ("environment.push", "dev", "failure")]):
        intake.ingest(services, admin, pid, {"id": f"a{i}", "type": t, "environments": [env], "result": result,
                                              "created_at": f"2025-01-0{i + 1}T00:00:00.000000+00:00"})
    ids = lambda params: [a["id"] for a in activities.list_(services, admin, pid, params)]  # noqa: E731
    assert ids({}) == ["a2", "a1", "a0"]
    assert ids({"type": ["environment.push"]}) == ["a2", "a0"]
    assert ids({"result": "failure"}) == ["a2", "a1"]
    assert ids({"environment": "dev"}) == ["a2", "a1"]
    assert ids({"count": "1"}) == ["a2"]
    intake.patch(services, admin, pid, "a1", {"state": "in_progress"})
    assert ids({"state": ["in_progress", "pending"]}) == ["a1"]
    assert ids({"state": "complete,in_progress"}) == ["a2", "a1", "a0"]
    # by when firehook received them, not by the documents' own created_at (issue 15)
    assert ids({"starts_at": "2025-01-03T00:00:00Z"}) == []
    assert ids({"starts_at": "2999-01-01T00:00:00Z"}) == ["a2", "a1", "a0"]
    intake.ingest(services, admin, pid, {"id": "early", "type": "environment.backup", "environments": ["main"],
                                         "created_at": "2001-01-01T00:00:00.000000+00:00"})
    assert ids({})[0] == "early"
    assert ids({"type": "environment.*"}) == ["early", "a2", "a1", "a0"]
    assert ids({"type": ["environment.d*", "environment.b?ckup"]}) == ["early", "a1"]
    assert ids({"type": "environment_*"}) == []  # _ is a character, not LIKE's wildcard
    for bad in ({"count": "0"}, {"count": "x"}, {"state": "nope"}, {"starts_at": "later"}, {"type": "env.[ab]"}):
        with pytest.raises(errors.InvalidInput):
            activities.list_(services, admin, pid, bad)


def test_replay_and_cancel(services: Any, admin: model.Token) -> None:
    pid = project(services, admin)
    first = webhook(services, admin, pid)
    accepted = intake.ingest(services, admin, pid, support.fixture_doc("push-complete"))
    assert len(accepted.runs) == 1
    later = webhook(services, admin, pid, events=["environment.push"])  # added after the activity
    replayed = activities.replay(services, admin, pid, accepted.doc["id"], None)["_embedded"]["runs"]
    assert {r["integration"] for r in replayed} == {first["id"], later["id"]}
    only = activities.replay(services, admin, pid, accepted.doc["id"], {"integrations": [later["id"]]})
    assert [r["integration"] for r in only["_embedded"]["runs"]] == [later["id"]]
    with pytest.raises(errors.InvalidInput, match="never reached"):
        activities.replay(services, admin, pid, accepted.doc["id"], {"state": "pending"})
    run_id = replayed[0]["id"]
    cancelled = activities.cancel(services, admin, pid, run_id)
    assert cancelled["state"] == "cancelled" and cancelled["cancelled_at"]
    with pytest.raises(errors.Conflict):
        activities.cancel(services, admin, pid, run_id)
    with pytest.raises(errors.InvalidInput, match="not a run"):
        activities.cancel(services, admin, pid, accepted.doc["id"])
    cursor = activities.LogCursor(services, admin, pid, run_id)
    lines, sealed = cursor.read()
    assert sealed and lines[-1]["data"]["message"] == "Run cancelled."
    assert count(services, schema.jobs) == 3


def test_token_scopes(services: Any, admin: model.Token) -> None:
    a = project(services, admin, "proj-a")
    b = project(services, admin, "proj-b")
    made = tokens.create(services, admin, {"project": a})
    scoped = tokens.authenticate(services, f"Bearer {made['token']}")
    assert scoped.project == a and not scoped.is_admin
    assert [p["id"] for p in projects.list_(services, scoped)] == [a]
    with pytest.raises(errors.Forbidden):
        projects.get(services, scoped, b)
    with pytest.raises(errors.Forbidden):
        intake.ingest(services, scoped, b, {"type": "environment.push"})
    with pytest.raises(errors.Forbidden):
        tokens.create(services, scoped, {})
    reader = tokens.authenticate(services, "Bearer " + tokens.create(services, admin, {"read_only": True})["token"])
    assert projects.get(services, reader, b)["id"] == b
    with pytest.raises(errors.Forbidden, match="read-only"):
        intake.ingest(services, reader, b, {"type": "environment.push"})
    tokens.revoke(services, admin, made["id"])
    with pytest.raises(errors.Unauthorized):
        tokens.authenticate(services, f"Bearer {made['token']}")
    with pytest.raises(errors.Unauthorized):
        tokens.authenticate(services, "Basic abc")
    assert all("token" not in t for t in tokens.list_(services, admin))


def test_admin_token_file(services: Any) -> None:
    import stat

    path = tokens.ensure_admin_token(services)
    assert path is not None and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert tokens.authenticate(services, "Bearer " + path.read_text().strip()).is_admin
    assert tokens.ensure_admin_token(services) is None  # only on an empty database


def test_two_first_starts_at_once_make_one_admin_token(tmp_path: Any, database_url: str, monkeypatch: Any) -> None:
    """Two processes starting at once on one empty database (two `serve`, each its data dir):
    one admin token. Each check is held until the other has checked too, or 2 s have passed:
    a check and its creation not taken in turn would both find no token."""
    import threading

    from firehook import assembly
    from firehook.store import tokens as token_store
    from tests.conftest import make_settings

    both_checked = threading.Barrier(2, timeout=2)
    counted = token_store.count_active

    def count_then_wait(conn: Any) -> int:
        found = counted(conn)
        try:
            both_checked.wait()
        except threading.BrokenBarrierError:  # the other one waits for this one's turn to end
            pass
        return found

    monkeypatch.setattr(token_store, "count_active", count_then_wait)
    built = [assembly.services(make_settings(tmp_path / name, database_url), migrate=True) for name in ("a", "b")]
    made: list[Any] = []
    try:
        starts = [threading.Thread(target=lambda s=s: made.append(tokens.ensure_admin_token(s))) for s in built]
        for start in starts:
            start.start()
        for start in starts:
            start.join(30)
        paths = [p for p in made if p is not None]
        assert len(made) == 2 and len(paths) == 1
        with built[0].database.read() as conn:
            assert counted(conn) == 1
        assert tokens.authenticate(built[1], "Bearer " + paths[0].read_text().strip()).is_admin
    finally:
        for services in built:
            services.script_runner.close()
            services.database.dispose()


def test_script_storage_counts_bytes_not_characters(services: Any, admin: model.Token) -> None:
    from firehook.store import kv

    pid = project(services, admin)
    hook = webhook(services, admin, pid)
    storage = kv.IntegrationStorage(services.database, hook["id"])
    assert storage.total_bytes() == 0
    storage.set("clé", '"€uro"')  # 4 + 8 bytes in UTF-8, 3 + 6 characters
    storage.set("n", "42")
    assert storage.total_bytes() == 4 + 8 + 1 + 2
    assert storage.total_bytes() == sum(len(k.encode()) + len(v.encode()) for k, v in storage.items().items())
