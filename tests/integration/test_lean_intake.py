"""The lean intake path (issue 11) on SQLite and PostgreSQL, over real HTTP on loopback.

- the token is checked before the body is read or parsed, from a per-process cache, and a
  revoked token is refused at once: revoked here (the cache entry goes) or elsewhere (the
  writer checks the group's tokens again in the transaction that stores it);
- the lean path and the FastAPI routes it stands in front of answer alike;
- a group is one transaction with no savepoint per document; a statement that fails sends
  the group back one document per savepoint, so a unique-id race becomes an update (or a 409)
  and never costs the other documents.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import uvicorn

from firehook import assembly, errors, model, signing
from firehook.api import create_app
from firehook.service import batch, intake, projects, tokens
from firehook.store import activities as activity_store
from firehook.store import schema
from firehook.store import tokens as token_store
from tests import support
from tests.conftest import make_settings

ADMIN = model.Token(id="admin", project=None, read_only=False, description=None, created_at="")
LIMIT = 4096
PLANT = "plant-7f3a9c-do-not-log"  # a value that must never reach a log line


@contextlib.contextmanager
def serving(app: Any) -> Iterator[str]:
    """``app`` under uvicorn on a free loopback port, in a thread; its base URL."""
    port = support.free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


@pytest.fixture
def services(tmp_path: Path, database_url: str) -> Iterator[Any]:
    built = assembly.services(make_settings(tmp_path, database_url, max_document_bytes=LIMIT), migrate=True)
    projects.create(built, ADMIN, {"id": "lean", "title": "Lean"})
    projects.create(built, ADMIN, {"id": "relayed", "title": "Relayed", "relay_key": "relay-secret"})
    yield built
    built.database.dispose()


def secret(services: Any, **body: Any) -> str:
    return str(tokens.create(services, ADMIN, body)["token"])


def stored(services: Any, project_id: str, activity_id: str) -> dict[str, Any] | None:
    with services.database.read() as conn:
        row = activity_store.find(conn, project_id, activity_id)
    return row["doc"] if row else None


def count_savepoints(services: Any) -> list[int]:
    """A one-item list counting the savepoints begun on ``services``' engine from now on."""
    seen = [0]

    def on_savepoint(*_args: Any) -> None:
        seen[0] += 1

    sa.event.listen(services.database.engine, "savepoint", on_savepoint)
    return seen


def test_the_token_is_checked_before_the_body(services: Any) -> None:
    reader = secret(services, read_only=True)
    other = secret(services, project="relayed")
    too_big = b'{"type": "environment.push", "log": "' + b"x" * (LIMIT * 2) + b'"}'
    with serving(create_app(services)) as base, httpx.Client(base_url=base, timeout=30) as client:
        for path in ("/api/projects/lean/activities", "/api/projects/lean/activities:batch"):
            missing = client.post(path, content=too_big)
            assert missing.status_code == 401, missing.text  # not 413: the body was never read
            assert missing.headers["www-authenticate"] == "Bearer"
            assert missing.json()["status"] == "error" and "Authorization" in missing.json()["detail"]
            wrong = client.post(path, content=b"{not json", headers={"Authorization": "Bearer fh_wrong"})
            assert wrong.status_code == 401 and wrong.json()["detail"] == "invalid or revoked token"
            read_only = client.post(path, content=b"{not json", headers={"Authorization": f"Bearer {reader}"})
            assert read_only.status_code == 403 and "read-only" in read_only.json()["detail"]
            elsewhere = client.post(path, content=too_big, headers={"Authorization": f"Bearer {other}"})
            assert elsewhere.status_code == 403, elsewhere.text
    with services.database.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.activities)).scalar_one() == 0


def test_a_revoked_token_is_refused_at_once_here_and_from_elsewhere(services: Any) -> None:
    here = tokens.create(services, ADMIN, {})
    elsewhere = tokens.create(services, ADMIN, {})
    cache = tokens.cache_of(services)
    with serving(create_app(services)) as base, httpx.Client(base_url=base, timeout=30) as client:
        def post(token: str, activity_id: str) -> httpx.Response:
            return client.post("/api/projects/lean/activities", json={"id": activity_id, "type": "environment.push"},
                               headers={"Authorization": f"Bearer {token}"})

        assert post(here["token"], "a1").status_code == 201
        assert post(elsewhere["token"], "a2").status_code == 201
        assert cache.get(token_store.hash_secret(here["token"])) is not None  # the next request asks no SQL
        tokens.revoke(services, ADMIN, here["id"])  # in this process: the entry goes with it
        assert cache.get(token_store.hash_secret(here["token"])) is None
        assert post(here["token"], "a3").status_code == 401
        # Another process revokes the other token: this one's cache still holds it, and the
        # writer's check in the storing transaction refuses it.
        with services.database.write() as conn:
            conn.execute(schema.tokens.update().where(schema.tokens.c.id == elsewhere["id"]).values(revoked_at="x"))
        assert cache.get(token_store.hash_secret(elsewhere["token"])) is not None
        refused = post(elsewhere["token"], "a4")
        assert refused.status_code == 401 and refused.json()["detail"] == "invalid or revoked token"
        assert cache.get(token_store.hash_secret(elsewhere["token"])) is None
        # The same for a batch, whose chunks check the token in their own transactions.
        batch = tokens.create(services, ADMIN, {})
        lines = b'{"id": "b1", "type": "environment.push"}\n{"id": "b2", "type": "environment.push"}'
        headers = {"Authorization": f"Bearer {batch['token']}"}
        assert client.post("/api/projects/lean/activities:batch", content=lines, headers=headers).json()["accepted"] == 2
        with services.database.write() as conn:
            conn.execute(schema.tokens.update().where(schema.tokens.c.id == batch["id"]).values(revoked_at="x"))
        refused = client.post("/api/projects/lean/activities:batch", content=lines.replace(b'"b', b'"c'),
                              headers=headers)
        assert refused.status_code == 401 and refused.json()["detail"] == "invalid or revoked token"
    assert stored(services, "lean", "a3") is None and stored(services, "lean", "a4") is None
    assert stored(services, "lean", "c1") is None and stored(services, "lean", "b1") is not None


def _requests(token: str, reader: str) -> list[tuple[str, str, bytes, dict[str, str]]]:
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    good = b'{"id": "same", "type": "environment.push", "state": "pending"}'
    body = b'{"id": "relay1", "type": "environment.push"}'
    return [
        ("missing token", "/api/projects/lean/activities", good, {}),
        ("malformed header", "/api/projects/lean/activities", good, {"Authorization": "Basic abc"}),
        ("unknown token", "/api/projects/lean/activities", good, {"Authorization": "Bearer fh_nope"}),
        ("read-only", "/api/projects/lean/activities", good, {"Authorization": f"Bearer {reader}"}),
        ("too large", "/api/projects/lean/activities", b"{" + b" " * LIMIT + b"}", auth),
        ("not JSON", "/api/projects/lean/activities", b'{"type": ', auth),
        ("empty", "/api/projects/lean/activities", b"", auth),
        ("NaN", "/api/projects/lean/activities", b'{"type": "environment.push", "v": NaN}', auth),
        ("surrogate", "/api/projects/lean/activities", b'{"type": "environment.push", "text": "\\ud800"}', auth),
        ("bad field", "/api/projects/lean/activities", b'{"type": "environment.push", "environments": "main"}', auth),
        ("NUL in a timestamp", "/api/projects/lean/activities",
         b'{"type": "environment.push", "created_at": "2025\\u0000"}', auth),
        ("long timestamp", "/api/projects/lean/activities", b'{"type": "x.y", "updated_at": "' + b"9" * 41 + b'"}', auth),
        ("unknown project", "/api/projects/nope/activities", good, auth),
        ("created", "/api/projects/lean/activities", good, auth),
        ("updated", "/api/projects/lean/activities", good.replace(b"pending", b"complete"), auth),
        ("type change", "/api/projects/lean/activities", b'{"id": "same", "type": "environment.deploy"}', auth),
        ("batch", "/api/projects/lean/activities:batch", b'{"type": "x.y", "id": "b1"}\n{bad\n\n{"state": 1}', auth),
        ("empty batch", "/api/projects/lean/activities:batch", b"\n\n", auth),
        ("batch elsewhere", "/api/projects/nope/activities:batch", b'{"type": "x.y"}', auth),
        ("relay unsigned", "/hooks/upsun/relayed", body, {}),
        ("relay wrong", "/hooks/upsun/relayed", body, {"X-JWS-Signature": signing.sign_detached(body, "other")}),
        ("relay unknown", "/hooks/upsun/nope", body, {}),
        ("relay good", "/hooks/upsun/relayed", body,
         {"X-JWS-Signature": signing.sign_detached(body, "relay-secret")}),
    ]


def _comparable(response: httpx.Response) -> tuple[int, Any, dict[str, str | None]]:
    body = response.json()
    if isinstance(body, dict) and "_embedded" in body:  # times differ between two writes
        entity = body["_embedded"]["entity"]
        for key in ("created_at", "updated_at"):
            entity.pop(key, None)
    headers = {name: response.headers.get(name) for name in ("content-type", "www-authenticate")}
    return response.status_code, body, headers


def test_the_lean_path_answers_like_the_fastapi_routes(tmp_path: Path, database_url: str) -> None:
    answers = []
    for lean in (True, False):
        built = assembly.services(make_settings(tmp_path / str(lean), database_url, max_document_bytes=LIMIT),
                                  migrate=True)
        try:
            with built.database.write() as conn:  # the same database twice on PostgreSQL: start clean
                for table in reversed(schema.metadata.sorted_tables):
                    conn.execute(table.delete())
            projects.create(built, ADMIN, {"id": "lean", "title": "Lean"})
            projects.create(built, ADMIN, {"id": "relayed", "title": "Relayed", "relay_key": "relay-secret"})
            token, reader = secret(built), secret(built, read_only=True)
            app = create_app(built)
            if not lean:
                app.lean = None  # every request goes through FastAPI's routing
            with serving(app) as base, httpx.Client(base_url=base, timeout=30) as client:
                answers.append([(name, _comparable(client.post(path, content=body, headers=headers)))
                                for name, path, body, headers in _requests(token, reader)])
        finally:
            built.database.dispose()
    lean_answers, routed = answers
    for (name, got), (_, expected) in zip(lean_answers, routed, strict=True):
        assert got == expected, name
    statuses = {name: status for name, (status, _, _) in lean_answers}
    assert statuses == {
        "missing token": 401, "malformed header": 401, "unknown token": 401, "read-only": 403, "too large": 413,
        "not JSON": 400, "empty": 400, "NaN": 400, "surrogate": 400, "bad field": 400, "NUL in a timestamp": 400,
        "long timestamp": 400, "unknown project": 404,
        "created": 201, "updated": 200, "type change": 400, "batch": 200, "empty batch": 400,
        "batch elsewhere": 404, "relay unsigned": 401, "relay wrong": 401, "relay unknown": 401, "relay good": 201,
    }


def test_a_group_is_one_transaction_without_savepoints(services: Any) -> None:
    header = secret(services)
    savepoints = count_savepoints(services)
    items = [intake.Item("lean", {"id": f"g{n}", "type": "environment.push", "state": "pending"},
                         token_store.hash_secret(header)) for n in range(20)]
    items.append(intake.Item("lean", {"id": "g3", "type": "environment.push", "state": "complete"}))  # an update
    items.append(intake.Item("nope", {"id": "lost", "type": "environment.push"}))  # fails on its own
    items.append(intake.Item("lean", {"id": "g4", "type": "environment.deploy"}))  # a type change: fails alone
    items.append(intake.Item("lean", {"id": "bad", "type": "environment.push"}, "0" * 64))  # unknown token
    outcomes = intake.write(services, items)
    assert savepoints[0] == 0
    assert [type(o).__name__ for o in outcomes[-4:]] == ["Accepted", "NotFound", "InvalidInput", "Unauthorized"]
    assert all(isinstance(o, intake.Accepted) and o.created for o in outcomes[:20])
    assert not outcomes[20].created  # type: ignore[union-attr]
    assert stored(services, "lean", "g3")["state"] == "complete"  # type: ignore[index]
    with services.database.read() as conn:
        states = conn.execute(sa.select(schema.snapshots.c.state).join(
            schema.activities, schema.activities.c.pk == schema.snapshots.c.activity_pk).where(
            schema.activities.c.id == "g3").order_by(schema.snapshots.c.pk)).scalars().all()
    assert states == ["pending", "complete"]
    report = batch.ingest_batch(services, ADMIN, "lean", b'{"type": "x.y"}\n{nope\n{"type": "x.y", "id": "new5"}')
    assert report["accepted"] == 2 and report["rejected"] == 1 and savepoints[0] == 0


def test_a_unique_race_becomes_an_update_and_costs_no_one_else(services: Any, monkeypatch: pytest.MonkeyPatch,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    intake.write(services, [intake.Item("lean", {"id": "raced", "type": "environment.push", "state": "pending"})])
    real = activity_store.find_for_update
    blind = [1]  # the group's read misses the activity, as if another writer created it meanwhile

    def racing(conn: Any, project_id: str, ids: Any) -> Any:
        if blind[0]:
            blind[0] -= 1
            return {}
        return real(conn, project_id, ids)

    monkeypatch.setattr(activity_store, "find_for_update", racing)
    savepoints = count_savepoints(services)
    caplog.set_level(logging.DEBUG)
    outcomes = intake.write(services, [
        intake.Item("lean", {"id": "before", "type": "environment.push"}),
        intake.Item("lean", {"id": "raced", "type": "environment.push", "state": "complete", "text": PLANT}),
        intake.Item("lean", {"id": "after", "type": "environment.push"}),
    ])
    assert [o.created for o in outcomes] == [True, False, True]  # type: ignore[union-attr]
    assert stored(services, "lean", "raced")["text"] == PLANT  # type: ignore[index]
    assert savepoints[0] == 3  # only because a statement failed: one per document
    assert PLANT not in caplog.text and "event=intake.group_isolated" in caplog.text
    # A race that does not resolve on the second try is a 409, never a 500.
    monkeypatch.setattr(activity_store, "find_for_update", lambda *_args: {})
    outcomes = intake.write(services, [
        intake.Item("lean", {"id": "raced", "type": "environment.push", "state": "cancelled", "text": PLANT}),
        intake.Item("lean", {"id": "fine", "type": "environment.push"}),
    ])
    assert isinstance(outcomes[0], errors.Conflict) and outcomes[0].status == 409
    assert isinstance(outcomes[1], intake.Accepted)
    assert stored(services, "lean", "raced")["state"] == "complete"  # type: ignore[index]
    assert PLANT not in caplog.text


def test_a_project_deleted_after_it_was_seen_is_404(services: Any) -> None:
    projects.create(services, ADMIN, {"id": "short", "title": "Short-lived"})
    [first] = intake.write(services, [intake.Item("short", {"id": "one", "type": "environment.push"})])
    assert isinstance(first, intake.Accepted)  # the project is now known to this process
    projects.delete(services, ADMIN, "short")
    outcomes = intake.write(services, [intake.Item("short", {"id": "two", "type": "environment.push"}),
                                       intake.Item("lean", {"id": "kept", "type": "environment.push"})])
    assert isinstance(outcomes[0], errors.NotFound) and isinstance(outcomes[1], intake.Accepted)
    assert stored(services, "short", "two") is None and stored(services, "lean", "kept") is not None
