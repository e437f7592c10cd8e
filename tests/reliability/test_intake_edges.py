"""Intake of documents that are JSON to Python but not to everyone (SPEC §2.3), on a live
`firehook serve`, on SQLite and on PostgreSQL.

"Bad input gets a 400 … and nothing is stored"; "when the API answers 2xx, the activity … is
durably stored"; "a bad line never loses the good ones". Python's json module accepts
``NaN``, ``Infinity`` and lone surrogates (``"\\ud800"``), which no strict JSON parser — the
receivers' — accepts, and which some databases cannot store. Whatever firehook does with
them, the answer must say truthfully what happened, and what it delivers must be JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests import support
from tests.receivers import Receiver, wait_for
from tests.reliability.helpers import Api, run_finished, start_server

ERROR_KEYS = {"status", "code", "title", "detail"}


def strict_json(raw: bytes) -> Any:
    """RFC 8259 JSON only: no NaN/Infinity, UTF-8 without lone surrogates."""
    def refuse(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    return json.loads(raw.decode("utf-8"), parse_constant=refuse)


class Live:
    api: Api
    receiver: Receiver
    backend: str


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    env: dict[str, str] = {"FIREHOOK_RETRY_SCHEDULE": "0.2"}
    database = None
    if request.param == "postgres":
        try:
            database = support.PostgresDatabase()
        except Exception as exc:
            support.postgres_unavailable(str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc))
        upgrade_env = {k: v for k, v in os.environ.items() if not k.startswith("FIREHOOK_")}
        upgrade_env["FIREHOOK_DATABASE_URL"] = database.url
        subprocess.run(support.firehook_command() + ["db:upgrade"], env=upgrade_env, check=True,
                       capture_output=True)
        env["FIREHOOK_DATABASE_URL"] = database.url
    receiver = Receiver().start()
    server = start_server(tmp_path_factory.mktemp(f"edges-{request.param}"), env=env)
    live = Live()
    live.api = Api(server.base_url, server.token)
    live.receiver = receiver
    live.backend = request.param
    try:
        live.api.ok("POST", "/api/projects", {"id": "edge", "title": "edges"})
        live.api.ok("POST", "/api/projects/edge/integrations",
                    {"type": "webhook", "url": receiver.on("/edge", (200, {}, b"ok"))})
        yield live
    finally:
        live.api.close()
        server.stop()
        receiver.stop()
        if database is not None:
            database.drop()


def post_raw(live: Live, raw: bytes) -> Any:
    return live.api.request("POST", "/api/projects/edge/activities", content=raw,
                            headers={"Content-Type": "application/json"})


def stored(live: Live, activity_id: str) -> bool:
    return live.api.get(f"/api/projects/edge/activities/{activity_id}").status_code == 200


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_a_non_finite_number_is_refused_with_400_and_not_stored(live: Live, literal: str) -> None:
    activity_id = "nonfinite-" + {"NaN": "nan", "Infinity": "inf", "-Infinity": "minus-inf", "1e400": "overflow"}[literal]
    raw = ('{"id": "%s", "type": "environment.push", "payload": {"v": %s}}' % (activity_id, literal)).encode()
    response = post_raw(live, raw)
    assert response.status_code == 400, (
        f"{literal}: answered {response.status_code} {response.text[:200]}; stored: {stored(live, activity_id)}")
    body = response.json()
    assert ERROR_KEYS <= set(body) and body["code"] == 400
    assert not stored(live, activity_id), "refused, yet stored"


def test_a_lone_surrogate_is_refused_with_400_not_a_retry_me_503(live: Live) -> None:
    raw = b'{"id": "surrogate1", "type": "environment.push", "text": "\\ud800 alone"}'
    response = post_raw(live, raw)
    assert response.status_code == 400, f"{response.status_code} {response.text[:200]}"
    assert not stored(live, "surrogate1")


def test_an_answer_is_truthful_about_storing(live: Live) -> None:
    """Whatever the verdict on odd documents, 2xx ⇔ stored."""
    for n, raw in enumerate([
        b'{"id": "odd%d", "type": "environment.push", "payload": {"v": NaN}}',
        b'{"id": "odd%d", "type": "environment.push", "text": "\\ud83d"}',
        b'{"id": "odd%d", "type": "environment.push", "text": "nul \\u0000 inside"}',
        b'{"id": "odd%d", "type": "environment.push", "payload": {"big": 123456789012345678901234567890}}',
    ]):
        activity_id = f"odd{n}"
        response = post_raw(live, raw.replace(b"%d", str(n).encode()))
        assert response.status_code < 500 or not stored(live, activity_id), \
            f"{raw!r}: answered {response.status_code} but stored"
        assert (200 <= response.status_code < 300) == stored(live, activity_id), (raw, response.status_code)


def test_a_batch_with_odd_lines_keeps_the_good_ones(live: Live) -> None:
    lines = [
        b'{"id": "bgood1", "type": "environment.push"}',
        b'{"id": "bnan", "type": "environment.push", "payload": {"v": NaN}}',
        b'{"id": "bgood2", "type": "environment.push"}',
        b'{"id": "bsurrogate", "type": "environment.push", "text": "\\udfff"}',
        b'{"id": "bgood3", "type": "environment.push"}',
    ]
    response = live.api.request("POST", "/api/projects/edge/activities:batch", content=b"\n".join(lines),
                                headers={"Content-Type": "application/x-ndjson"})
    assert response.status_code == 200, f"{response.status_code} {response.text[:200]}"
    results = {r["line"]: r for r in response.json()["results"]}
    for line in (1, 3, 5):
        assert "id" in results[line], results[line]
    for line, activity_id in ((2, "bnan"), (4, "bsurrogate")):
        assert results[line].get("code") == 400, results[line]
        assert not stored(live, activity_id)
    for activity_id in ("bgood1", "bgood2", "bgood3"):
        assert stored(live, activity_id)


def test_what_is_delivered_is_strict_json_equal_to_what_was_accepted(live: Live) -> None:
    doc = {"id": "unicode1", "type": "environment.push", "environments": ["main"],
           "text": "Cloé \u2028 line sep, emoji \U0001f525, quote \" and backslash \\",
           "payload": {"big": 123456789012345678901234567890, "small": -1e-300, "nested": [[], {}, None, True]}}
    answer = live.api.post("/api/projects/edge/activities", doc)
    assert answer.status_code == 201, answer.text
    [run] = answer.json()["_embedded"]["runs"]
    wait_for(lambda: run_finished(live.api, "edge", run["id"]), timeout=60)
    [got] = [r for r in live.receiver.requests_to("/edge") if r.headers["x-firehook-delivery"] == run["id"]]
    delivered = strict_json(got.body)
    for key, value in doc.items():
        assert delivered[key] == value, key


def test_odd_documents_never_break_reading(live: Live) -> None:
    listing = live.api.get("/api/projects/edge/activities?count=1000")
    assert listing.status_code == 200, listing.text[:300]
    strict_json(listing.content)
    for item in listing.json():
        one = live.api.get(f"/api/projects/edge/activities/{item['id']}")
        assert one.status_code == 200, (item["id"], one.status_code)


def test_every_delivery_after_all_this_is_strict_json(live: Live) -> None:
    """Whatever was accepted above is delivered as JSON a strict parser reads (a receiver in
    JavaScript does ``JSON.parse``, which refuses ``NaN``)."""
    wait_for(lambda: live.api.get("/metrics").text.count('firehook_queue_depth{kind="webhook"} 0.0') == 1,
             timeout=60)
    received = live.receiver.requests_to("/edge")
    assert received
    bad = []
    for request in received:
        try:
            strict_json(request.body)
        except ValueError as exc:
            bad.append((request.headers["x-firehook-delivery"], str(exc), request.body[:120]))
    assert not bad, bad[:3]
