"""Intake hardening (issue 13, items 2, 3 and 6; issue 14, item 6) on SQLite and PostgreSQL,
over real HTTP on loopback (the app under uvicorn, both the lean path and FastAPI's routes).

- every field of SPEC §2.1 is type-checked: a wrong type is a 400 naming the field, never a
  500, and nothing is stored; in a batch such a line fails alone and the good lines are kept;
- a document nested deeper than the documented limit (``jsonutil.MAX_DEPTH``) is a 400, and
  one at the limit reads back through every reader (the API's list and one, its run's script);
- no client input writes a traceback to the log;
- the relay is closed by default: a project without a relay key, an unknown project and a
  wrong signature all get the same 401, which says how to set a key;
- the document passes through: a sender's ``project`` and ``_links`` are kept.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from firehook import assembly, model, signing
from firehook.api import create_app
from firehook.service import batch, projects, tokens
from firehook.store import jsonutil
from tests.conftest import make_settings
from tests.integration.test_lean_intake import serving, stored

ADMIN = model.Token(id="admin", project=None, read_only=False, description=None, created_at="")

# Wrong values for each field of SPEC §2.1 (and what a client might send by mistake).
WRONG: dict[str, list[Any]] = {
    "id": [5, [], {}, True, "a/b"],
    "type": [5, [], {}, True, "has spaces"],
    "state": [[], {}, 5, True, "done"],
    "result": [[], {}, 5, True, "ok"],
    "project": [5, [], {}, True],
    "environments": ["main", 5, {}, [1], [None]],
    "parameters": ["x", 5, [1], True],
    "payload": ["x", 5, [1], True],
    "description": [5, [], {}, True],
    "text": [5, [], {}, True],
    "log": [5, [], {}, True],
    "created_at": [5, [], {}, True, "not-a-date", "9" * 50, "2025-13-45T00:00:00"],
    "updated_at": [5, [], {}, "yesterday"],
    "started_at": [[], "2025-01-01T25:00:00+00:00"],
    "completed_at": [{}, "soon"],
    "cancelled_at": [True, "x"],
    "expires_at": [1.5, "never"],
    "completion_percent": ["50", [], {}, True, -1, 101],
    "timings": ["x", 5, [1], {"wait": "long"}, {"build": []}],
    "failure_reason": [5, [], {}],
    "commands": ["x", 5, True],
    "_links": ["x", 5, [1], True],
}


@pytest.fixture
def services(tmp_path: Path, database_url: str) -> Iterator[Any]:
    built = assembly.services(make_settings(tmp_path, database_url), migrate=True)
    projects.create(built, ADMIN, {"id": "hard", "title": "Hard"})
    projects.create(built, ADMIN, {"id": "keyless", "title": "No relay key"})
    projects.create(built, ADMIN, {"id": "keyed", "title": "Keyed", "relay_key": "relay-secret-42"})
    yield built
    built.database.dispose()


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    """Every log record written while the test runs, formatted with its traceback if any."""
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(logging.Formatter().format(record))

    handler = Keep(level=logging.DEBUG)
    root = logging.getLogger()
    root.addHandler(handler)
    yield lines
    root.removeHandler(handler)


def _count(client: httpx.Client, headers: dict[str, str], project: str = "hard") -> int:
    listed = client.get(f"/api/projects/{project}/activities", params={"count": 100}, headers=headers)
    assert listed.status_code == 200, listed.text
    return len(listed.json())


@pytest.mark.parametrize("lean", [True, False], ids=["lean", "fastapi"])
def test_every_field_of_the_document_is_type_checked(services: Any, log_lines: list[str], lean: bool) -> None:
    auth = {"Authorization": "Bearer " + str(tokens.create(services, ADMIN, {})["token"])}
    app = create_app(services)
    if not lean:
        app.lean = None
    with serving(app) as base, httpx.Client(base_url=base, timeout=30) as client:
        for field, values in WRONG.items():
            for value in values:
                body = {"type": "environment.push", field: value}
                answer = client.post("/api/projects/hard/activities", json=body, headers=auth)
                assert answer.status_code == 400, (field, value, answer.status_code, answer.text)
                error = answer.json()
                assert error["status"] == "error" and error["code"] == 400 and field in error["detail"], error
        # PATCH: the same checks on the fields it merges.
        created = client.post("/api/projects/hard/activities", json={"type": "x.y", "id": "patched"}, headers=auth)
        assert created.status_code == 201, created.text
        for field in ("state", "result", "created_at", "completion_percent", "timings"):
            for value in WRONG[field]:
                answer = client.patch("/api/projects/hard/activities/patched", json={field: value}, headers=auth)
                assert answer.status_code == 400 and field in answer.json()["detail"], (field, value, answer.text)
        assert _count(client, auth) == 1  # only the good one
    assert not [line for line in log_lines if "Traceback" in line or "unexpected_error" in line], log_lines


def test_a_bad_line_never_loses_the_good_ones(services: Any, log_lines: list[str]) -> None:
    auth = {"Authorization": "Bearer " + str(tokens.create(services, ADMIN, {})["token"])}
    deep = '{"type": "x.y", "a": ' + "[" * 300 + "]" * 300 + "}"
    deeper = '{"type": "x.y", "a": ' + "[" * 5000 + "]" * 5000 + "}"
    lines = ['{"type": "x.y", "id": "good1"}', '{"type": "x", "state": []}', '{"type": "x", "result": {}}',
             deep, deeper, '{"type": "x.y", "created_at": "' + "9" * 50 + '"}', '{"type": "x.y", "id": "good2"}',
             '{"type": "x.y", "created_at": "not-a-date"}', '{"type": "x.y", "id": "good3"}']
    with serving(create_app(services)) as base, httpx.Client(base_url=base, timeout=30) as client:
        answer = client.post("/api/projects/hard/activities:batch", content="\n".join(lines).encode(), headers=auth)
        assert answer.status_code == 200, answer.text
        report = answer.json()
        assert report["accepted"] == 3 and report["rejected"] == 6, report
        assert [r.get("id") for r in report["results"]] == ["good1", None, None, None, None, None, "good2", None,
                                                             "good3"]
        assert all(r["code"] == 400 for r in report["results"] if "id" not in r), report
        assert _count(client, auth) == 3
    for good in ("good1", "good2", "good3"):
        assert stored(services, "hard", good) is not None
    assert not [line for line in log_lines if "Traceback" in line], log_lines


def _nested(levels: int) -> dict[str, Any]:
    doc: dict[str, Any] = {"type": "x.y", "id": f"deep{levels}"}
    inner = doc
    for _ in range(levels - 1):
        inner["a"] = {}
        inner = inner["a"]
    return doc


def test_the_depth_limit_is_documented_refused_beyond_and_readable_at(services: Any, log_lines: list[str]) -> None:
    auth = {"Authorization": "Bearer " + str(tokens.create(services, ADMIN, {})["token"])}
    limit = jsonutil.MAX_DEPTH
    docs = Path(__file__).resolve().parents[2] / "docs"
    assert f"{limit} levels" in (docs / "receiving.md").read_text() + (docs / "operations.md").read_text()
    with serving(create_app(services)) as base, httpx.Client(base_url=base, timeout=30) as client:
        for levels in (limit + 1, 300, 990, 5000):
            raw = json.dumps(_nested(levels)) if levels < 900 else \
                '{"type": "x.y", "a": ' + "[" * levels + "]" * levels + "}"
            answer = client.post("/api/projects/hard/activities", content=raw, headers=auth)
            assert answer.status_code == 400 and "body" in answer.json()["detail"], (levels, answer.text)
            relayed = client.post("/hooks/upsun/keyed", content=raw.encode(), headers={
                "X-JWS-Signature": signing.sign_detached(raw.encode(), "relay-secret-42")})
            assert relayed.status_code == 400, relayed.text
            # An unknown token is refused before the body is parsed.
            refused = client.post("/api/projects/hard/activities", content=raw, headers={"Authorization": "Bearer x"})
            assert refused.status_code == 401
        at_limit = client.post("/api/projects/hard/activities", json=_nested(limit), headers=auth)
        assert at_limit.status_code == 201, at_limit.text
        assert client.get("/api/projects/hard/activities", headers=auth).status_code == 200
        one = client.get(f"/api/projects/hard/activities/deep{limit}", headers=auth)
        assert one.status_code == 200 and one.json()["a"]["a"] == _nested(limit)["a"]["a"]
    assert not [line for line in log_lines if "Traceback" in line], log_lines


def test_the_relay_is_closed_by_default_and_answers_alike(services: Any) -> None:
    body = json.dumps({"type": "environment.push", "id": "relayed1"}).encode()
    good = signing.sign_detached(body, "relay-secret-42")
    with serving(create_app(services)) as base, httpx.Client(base_url=base, timeout=30) as client:
        answers = {
            "keyless, unsigned": client.post("/hooks/upsun/keyless", content=body),
            "keyless, signed": client.post("/hooks/upsun/keyless", content=body, headers={"X-JWS-Signature": good}),
            "unknown": client.post("/hooks/upsun/nosuchproject", content=body),
            "unknown, signed": client.post("/hooks/upsun/nosuchproject", content=body,
                                           headers={"X-JWS-Signature": good}),
            "keyed, unsigned": client.post("/hooks/upsun/keyed", content=body),
            "keyed, wrong": client.post("/hooks/upsun/keyed", content=body,
                                        headers={"X-JWS-Signature": signing.sign_detached(body, "other")}),
        }
        big = b'{"type": "x.y", "log": "' + b"x" * services.settings.max_document_bytes + b'"}'
        too_large = [client.post(f"/hooks/upsun/{p}", content=big, headers={"X-JWS-Signature": good})
                     for p in ("keyless", "nosuchproject", "keyed")]
        assert {(a.status_code, a.text) for a in too_large} == {(413, too_large[0].text)}
        first = answers["keyless, unsigned"]
        assert first.status_code == 401 and "relay_key" in first.json()["detail"], first.text
        for name, answer in answers.items():
            assert (answer.status_code, answer.json()) == (401, first.json()), name
        assert stored(services, "keyless", "relayed1") is None
        accepted = client.post("/hooks/upsun/keyed", content=body, headers={"X-JWS-Signature": good})
        assert accepted.status_code == 201, accepted.text


def test_the_document_passes_through(services: Any) -> None:
    """A sender's `project` and `_links` are kept as sent; firehook fills them only when absent,
    and its own links never overwrite the sender's (SPEC §2.1)."""
    auth = {"Authorization": "Bearer " + str(tokens.create(services, ADMIN, {})["token"])}
    upsun = {"self": {"href": "https://eu-3.upsun.com/api/projects/abc/activities/pass1"}}
    with serving(create_app(services)) as base, httpx.Client(base_url=base, timeout=30) as client:
        sent = client.post("/api/projects/hard/activities", headers=auth, json={
            "type": "environment.push", "id": "pass1", "project": "abcdefgh1234567", "_links": upsun})
        assert sent.status_code == 201, sent.text
        bare = client.post("/api/projects/hard/activities", headers=auth, json={"type": "x.y", "id": "pass2"})
        assert bare.status_code == 201
        # An update keeps what the first document said, whatever the update sends.
        again = client.post("/api/projects/hard/activities", headers=auth, json={
            "type": "environment.push", "id": "pass1", "state": "complete", "project": "other", "_links": {}})
        assert again.status_code == 200
    kept = stored(services, "hard", "pass1")
    assert kept is not None and kept["project"] == "abcdefgh1234567"
    assert kept["_links"]["self"] == upsun["self"]  # the sender's own, not overwritten
    assert kept["_links"]["log"]["href"] == "/api/projects/hard/activities/pass1/log"  # firehook's, where free
    filled = stored(services, "hard", "pass2")
    assert filled is not None and filled["project"] == "hard"
    assert filled["_links"]["self"]["href"].endswith("/api/projects/hard/activities/pass2")


def test_a_batch_stops_at_its_limits_and_keeps_what_it_took(services: Any) -> None:
    auth = {"Authorization": "Bearer " + str(tokens.create(services, ADMIN, {})["token"])}
    lines = b"\n".join(b'{"type": "x.y"}' for _ in range(batch.MAX_LINES + 5))
    with serving(create_app(services)) as base, httpx.Client(base_url=base, timeout=120) as client:
        answer = client.post("/api/projects/hard/activities:batch", content=lines, headers=auth)
        assert answer.status_code == 200, answer.text
        report = answer.json()
        assert report["accepted"] == batch.MAX_LINES
        assert report["results"][-1]["line"] == batch.MAX_LINES + 1 and report["results"][-1]["code"] == 413
        assert "at most" in report["results"][-1]["detail"]
        # A line over the document limit fails alone, as it streams.
        big = b'{"type": "x.y", "log": "' + b"x" * (services.settings.max_document_bytes + 4096) + b'"}'
        mixed = b'{"type": "x.y", "id": "before"}\n' + big + b'\n{"type": "x.y", "id": "after"}'
        answer = client.post("/api/projects/hard/activities:batch", content=mixed, headers=auth)
        report = answer.json()
        assert answer.status_code == 200 and [r.get("code", r.get("status")) for r in report["results"]] == \
            ["created", 413, "created"], report
