"""The API side of issue 15 against a real ``firehook serve``: event names checked with a
"did you mean", an integration's script storage read and cleared (typed values, tenancy and
read-only tokens as elsewhere), and listings in the order firehook received the activities,
with type globs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests import support
from tests.receivers import wait_for


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[support.ServerProcess]:
    yield from support.running_server(tmp_path_factory.mktemp("first-hour"))


@pytest.fixture(scope="module")
def api(server: support.ServerProcess) -> Iterator[httpx.Client]:
    yield from support.api_client(server)


def project(api: httpx.Client, project_id: str) -> str:
    made = api.post("/api/projects", json={"id": project_id, "title": project_id})
    assert made.status_code == 201, made.text
    return project_id


def token(api: httpx.Client, **fields: Any) -> httpx.Client:
    made = api.post("/api/tokens", json=fields)
    assert made.status_code == 201, made.text
    return httpx.Client(base_url=str(api.base_url), headers={"Authorization": f"Bearer {made.json()['token']}"},
                        timeout=30)


def finished(api: httpx.Client, p: str, run_id: str) -> dict[str, Any]:
    return wait_for(lambda: (doc := api.get(f"/api/projects/{p}/activities/{run_id}").json())["state"] == "complete"
                    and doc)


# -- events ----------------------------------------------------------------------------------


def test_event_names_are_checked_and_near_misses_warned(api: httpx.Client) -> None:
    p = project(api, "events")
    base = {"type": "script", "script": "console.log(1)"}
    for bad in ("bad event!", "push", "environment..push"):
        refused = api.post(f"/api/projects/{p}/integrations", json={**base, "events": [bad]})
        assert refused.status_code == 400 and set(refused.json()["detail"]) == {"events"}, refused.text
        assert "dotted event name" in refused.json()["detail"]["events"]
    typo = api.post(f"/api/projects/{p}/integrations", json={**base, "events": ["environment.psh"]})
    assert typo.status_code == 201
    assert typo.json()["warnings"] == [
        "events: 'environment.psh' is not a known activity type; did you mean 'environment.push'?"]
    own = api.post(f"/api/projects/{p}/integrations", json={**base, "events": ["acme.release.done", "environment.*"]})
    assert own.status_code == 201 and "warnings" not in own.json()
    entity = typo.json()["_embedded"]["entity"]
    fixed = api.patch(f"/api/projects/{p}/integrations/{entity['id']}", json={"events": ["environment.push"]})
    assert fixed.status_code == 200 and "warnings" not in fixed.json()
    again = api.patch(f"/api/projects/{p}/integrations/{entity['id']}", json={"events": ["environment.redeplay"]})
    assert "did you mean 'environment.redeploy'" in again.json()["warnings"][0]


# -- storage ---------------------------------------------------------------------------------

COUNTER = """
var count = (storage.get('pushes') || 0) + 1;
storage.set('pushes', count);
storage.set('last', activity.id);
storage.set('green', activity.result === 'success');
storage.set('path/with spaces', 'ok');
"""


def test_storage_read_typed_and_cleared(api: httpx.Client) -> None:
    p = project(api, "stored")
    script = api.post(f"/api/projects/{p}/integrations", json={"type": "script", "script": COUNTER}).json()
    sid = script["_embedded"]["entity"]["id"]
    url = f"/api/projects/{p}/integrations/{sid}/storage"
    assert api.get(url).json()["items"] == []
    for n in (1, 2):
        accepted = api.post(f"/api/projects/{p}/activities", json={
            "id": f"push{n}", "type": "environment.push", "state": "complete", "result": "success",
            "environments": ["main"]}).json()
        finished(api, p, accepted["_embedded"]["runs"][0]["id"])
    listing = api.get(url).json()
    assert listing["count"] == 4 and listing["limit_bytes"] == 1024 * 1024
    values = {e["key"]: e["value"] for e in listing["items"]}
    assert values == {"green": True, "last": "push2", "path/with spaces": "ok", "pushes": 2}
    assert [e["key"] for e in listing["items"]] == sorted(values)
    assert listing["bytes"] == sum(e["bytes"] for e in listing["items"]) == sum(
        len(k) + len(v) for k, v in (("green", "true"), ("last", '"push2"'), ("path/with spaces", '"ok"'),
                                     ("pushes", "2")))
    assert api.get(url + "/pushes").json() == {"key": "pushes", "value": 2, "bytes": 7}
    assert api.get(url + "/path/with spaces").json()["value"] == "ok"
    missing = api.get(url + "/nothing")
    assert missing.status_code == 404 and "nothing" in missing.json()["detail"]

    reader = token(api, read_only=True)
    other = token(api, project="events")
    try:
        assert reader.get(url).json()["count"] == 4
        assert reader.delete(url).status_code == 403 and reader.delete(url + "/pushes").status_code == 403
        assert other.get(url).status_code == 403 and other.delete(url).status_code == 403
        assert api.get(url).json()["count"] == 4
    finally:
        reader.close()
        other.close()

    assert api.delete(url + "/last").status_code == 204
    assert api.delete(url + "/last").status_code == 404
    cleared = api.delete(url)
    assert cleared.status_code == 200 and cleared.json()["removed"] == 3
    assert api.get(url).json() == {"integration": sid, "count": 0, "bytes": 0, "limit_bytes": 1024 * 1024,
                                   "items": []}
    # the next run counts from one again
    accepted = api.post(f"/api/projects/{p}/activities", json={
        "id": "push3", "type": "environment.push", "state": "complete", "result": "success",
        "environments": ["main"]}).json()
    finished(api, p, accepted["_embedded"]["runs"][0]["id"])
    assert api.get(url + "/pushes").json()["value"] == 1
    assert api.get(f"/api/projects/{p}/integrations/nosuchintegr/storage").status_code == 404


# -- listings --------------------------------------------------------------------------------


def test_listing_is_by_when_firehook_received_them(api: httpx.Client) -> None:
    p = project(api, "received")
    old = support.fixture_doc("push-complete")  # created_at in 2024: posted now, it is the newest
    old["id"] = "fixture01"
    assert api.post(f"/api/projects/{p}/activities", json={
        "id": "first", "type": "environment.deploy", "environments": ["main"], "state": "complete",
        "created_at": "2030-01-01T00:00:00.000000+00:00"}).status_code == 201
    assert api.post(f"/api/projects/{p}/activities", json=old).status_code == 201
    assert api.post(f"/api/projects/{p}/activities", json={
        "id": "backup", "type": "environment.backup", "environments": ["main"], "state": "complete"}).status_code == 201
    listed = [a["id"] for a in api.get(f"/api/projects/{p}/activities").json()]
    assert listed == ["backup", "fixture01", "first"]
    # type globs, as integration filters take them
    envs = api.get(f"/api/projects/{p}/activities", params={"type": "environment.*"}).json()
    assert [a["id"] for a in envs] == ["backup", "fixture01", "first"]
    some = api.get(f"/api/projects/{p}/activities", params=[("type", "environment.p?sh"), ("type", "environment.backup")])
    assert [a["id"] for a in some.json()] == ["backup", "fixture01"]
    assert api.get(f"/api/projects/{p}/activities", params={"type": "environment_*"}).json() == []
    refused = api.get(f"/api/projects/{p}/activities", params={"type": "environment.[pb]*"})
    assert refused.status_code == 400 and "type" in refused.json()["detail"]
    # starts_at pages by the time firehook received them: the 2030 document is not "in the future"
    assert [a["id"] for a in api.get(f"/api/projects/{p}/activities",
                                     params={"starts_at": "2029-01-01T00:00:00+00:00"}).json()] == [
        "backup", "fixture01", "first"]
    assert api.get(f"/api/projects/{p}/activities", params={"starts_at": "2000-01-01T00:00:00+00:00"}).json() == []
