"""`firehook serve` as a subprocess on a temporary data directory, driven over HTTP."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import support
from tests.receivers import Receiver, wait_for


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[support.ServerProcess]:
    yield from support.running_server(tmp_path_factory.mktemp("serve"),
                                      env={"FIREHOOK_OUTBOUND_ALLOW": "127.0.0.1/32,localhost",
                                           "FIREHOOK_MAX_DOCUMENT_BYTES": "65536",
                                           "FIREHOOK_RETRY_SCHEDULE": "0.2"})


@pytest.fixture(scope="module")
def api(server: support.ServerProcess) -> Iterator[httpx.Client]:
    yield from support.api_client(server)


def test_admin_token_written_0600(server: support.ServerProcess) -> None:
    path = server.data_dir / "admin.token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert server.token.startswith("fh_")
    assert (server.data_dir / "firehook.db").exists()


def test_health_and_openapi(server: support.ServerProcess) -> None:
    assert httpx.get(server.base_url + "/healthz").json() == {"status": "ok", "database": "ok"}
    spec = httpx.get(server.base_url + "/openapi.json").json()
    for path in ("/api/projects/{project}/activities", "/api/projects/{project}/activities:batch",
                 "/api/projects/{project}/integrations/{integration}/validate", "/hooks/upsun/{project}",
                 "/api/projects/{project}/activities/{activity}/log", "/api/tokens"):
        assert path in spec["paths"], path


def test_newcomer_path_end_to_end(api: httpx.Client, receiver: Receiver) -> None:
    assert api.post("/api/projects", json={"id": "shop", "title": "Shop"}).status_code == 201
    hook_url = receiver.on("/shop", (200, {}, b"ok"))
    created = api.post("/api/projects/shop/integrations",
                       json={"type": "webhook", "url": hook_url, "shared_key": "topsecret"})
    assert created.status_code == 201
    hook = created.json()["_embedded"]["entity"]
    assert hook["shared_key"] == "******"
    got = api.get(f"/api/projects/shop/integrations/{hook['id']}").json()
    assert set(got["_links"]) == {"self", "#edit", "#delete", "#validate"}
    doc = support.fixture_doc("push-complete")
    answer = api.post("/api/projects/shop/activities", json=doc)
    assert answer.status_code == 201
    run_id = answer.json()["_embedded"]["runs"][0]["id"]
    run = wait_for(lambda: (r := api.get(f"/api/projects/shop/activities/{run_id}").json())["state"] == "complete" and r)
    assert run["result"] == "success" and run["type"] == "integration.webhook"
    assert run["parameters"]["activity"] == doc["id"]
    listed = api.get(f"/api/projects/shop/integrations/{hook['id']}/activities").json()
    assert [r["id"] for r in listed] == [run_id]
    log = api.get(f"/api/projects/shop/activities/{run_id}/log").text.strip().splitlines()
    items = [json.loads(line) for line in log]
    assert items[-1] == {"seal": True}
    assert items[0]["_id"] == 1 and "timestamp" in items[0]["data"]
    [delivered] = receiver.requests_to("/shop")
    body = json.loads(delivered.body)
    assert body["id"] == doc["id"] and body["project"] == doc["project"] and body["timings"] == doc["timings"]
    assert "topsecret" not in api.get("/api/projects/shop/integrations").text


def test_error_format_and_nothing_stored(api: httpx.Client, server: support.ServerProcess) -> None:
    api.post("/api/projects", json={"id": "errs", "title": "Errors"})
    cases = [
        (api.post("/api/projects/errs/activities", content=b'{"type": ', headers={"content-type": "application/json"}),
         400, "body"),
        (api.post("/api/projects/errs/activities", json={"state": "complete"}), 400, "type"),
        (api.post("/api/projects/errs/activities", json={"type": "environment.push", "environments": "main"}),
         400, "environments"),
        (api.post("/api/projects/errs/activities", json={"type": "environment.push", "result": 3}), 400, "result"),
        (api.post("/api/projects/nope/activities", json={"type": "environment.push"}), 404, None),
        (api.post("/api/projects/errs/activities", json={"type": "environment.push", "log": "x" * 70000}), 413, "body"),
        (api.post("/api/projects/errs/integrations", json={"type": "webhook", "url": "gopher://x"}), 400, "url"),
    ]
    for response, status, field in cases:
        body = response.json()
        assert response.status_code == status, body
        assert body["status"] == "error" and body["code"] == status and body["title"]
        if field:
            assert field in body["detail"], body
    assert "project nope not found" in cases[4][0].json()["detail"]
    assert api.get("/api/projects/errs/activities").json() == []
    bad = httpx.get(server.base_url + "/api/projects", headers={"Authorization": "Bearer fh_wrong"})
    assert bad.status_code == 401 and bad.json()["detail"] == "invalid or revoked token"
    none = httpx.get(server.base_url + "/api/projects")
    assert none.status_code == 401 and "Authorization" in none.json()["detail"]
    assert api.get("/api/projects/errs/activities/zzz").status_code == 404
    assert api.get("/no/such/route").json()["code"] == 404


def test_batch_endpoint(api: httpx.Client) -> None:
    api.post("/api/projects", json={"id": "bulk", "title": "Bulk"})
    lines = b"\n".join([json.dumps({"type": "environment.push", "id": f"n{i}"}).encode() for i in range(50)]
                       + [b"nonsense"])
    answer = api.post("/api/projects/bulk/activities:batch", content=lines,
                      headers={"content-type": "application/x-ndjson"})
    assert answer.status_code == 200
    report = answer.json()
    assert report["accepted"] == 50 and report["rejected"] == 1
    assert report["results"][-1]["line"] == 51
    assert len(api.get("/api/projects/bulk/activities", params={"count": 100}).json()) == 50


def test_tokens_over_http(api: httpx.Client, server: support.ServerProcess) -> None:
    api.post("/api/projects", json={"id": "tok-a", "title": "A"})
    api.post("/api/projects", json={"id": "tok-b", "title": "B"})
    made = api.post("/api/tokens", json={"project": "tok-a", "read_only": True}).json()
    scoped = httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {made['token']}"})
    assert scoped.get("/api/projects/tok-a").status_code == 200
    assert scoped.get("/api/projects/tok-b").status_code == 403
    assert scoped.post("/api/projects/tok-a/activities", json={"type": "environment.push"}).status_code == 403
    assert made["token"] not in api.get("/api/tokens").text
    assert api.delete(f"/api/tokens/{made['id']}").status_code == 204
    assert scoped.get("/api/projects/tok-a").status_code == 401


def test_relay_verifies_signature(api: httpx.Client, server: support.ServerProcess) -> None:
    from firehook import signing

    api.post("/api/projects", json={"id": "relay", "title": "Relay", "relay_key": "relay-secret"})
    assert api.get("/api/projects/relay").json()["has_relay_key"] is True
    assert "relay-secret" not in api.get("/api/projects/relay").text
    body = json.dumps(support.fixture_doc("redeploy-pending")).encode()
    unsigned = httpx.post(server.base_url + "/hooks/upsun/relay", content=body)
    assert unsigned.status_code == 401
    wrong = httpx.post(server.base_url + "/hooks/upsun/relay", content=body,
                       headers={"X-JWS-Signature": signing.sign_detached(body, "other")})
    assert wrong.status_code == 401
    good = httpx.post(server.base_url + "/hooks/upsun/relay", content=body,
                      headers={"X-JWS-Signature": signing.sign_detached(body, "relay-secret")})
    assert good.status_code == 201
    assert api.get("/api/projects/relay/activities/7txhbujm4umsy").json()["state"] == "pending"


def test_sigterm_is_a_clean_shutdown(tmp_path: Path) -> None:
    proc = support.ServerProcess(tmp_path / "data")
    proc.wait_ready()
    wait_for(lambda: "event=worker.start" in proc.output())  # the worker child is up and polling
    assert proc.stop() == 0
    assert "Traceback" not in proc.output()
    assert "event=worker.stop" in proc.output()


def test_data_dir_from_environment_is_used(tmp_path: Path) -> None:
    proc = support.ServerProcess(tmp_path / "elsewhere")
    try:
        proc.wait_ready()
        assert (tmp_path / "elsewhere" / "firehook.db").exists()
        assert os.stat(tmp_path / "elsewhere" / "admin.token").st_size > 10
    finally:
        proc.stop()


def test_metrics_after_traffic(api: httpx.Client, server: support.ServerProcess, receiver: Receiver) -> None:
    api.post("/api/projects", json={"id": "metered", "title": "Metered"})
    api.post("/api/projects/metered/integrations", json={"type": "webhook", "url": receiver.on("/m", (200, {}, b""))})
    run_id = api.post("/api/projects/metered/activities", json={"type": "environment.push"}).json()["_embedded"]["runs"][0]["id"]
    wait_for(lambda: api.get(f"/api/projects/metered/activities/{run_id}").json()["state"] == "complete")
    text = httpx.get(server.base_url + "/metrics").text

    def value(prefix: str) -> float:
        lines = [line for line in text.splitlines() if line.startswith(prefix)]
        assert lines, f"{prefix} missing from /metrics"
        return float(lines[0].rsplit(" ", 1)[1])

    assert value('firehook_activities_accepted_total{source="api"}') >= 1
    assert value('firehook_runs_total{result="success",type="integration.webhook"}') >= 1
    assert value('firehook_webhook_attempts_total{outcome="success"}') >= 1
    assert value('firehook_run_latency_seconds_count{type="integration.webhook"}') >= 1
    assert 'firehook_queue_depth{kind="webhook"}' in text


def test_validate_over_http(api: httpx.Client, receiver: Receiver) -> None:
    api.post("/api/projects", json={"id": "val", "title": "Validate"})
    script = api.post("/api/projects/val/integrations", json={
        "type": "script", "script": "console.log('seen', activity.id); fetch('https://example.com/x');"
    }).json()["_embedded"]["entity"]
    alone = api.post(f"/api/projects/val/integrations/{script['id']}/validate")
    assert alone.status_code == 200 and alone.json()["valid"] is True and alone.json()["dry_run"] is None
    api.post("/api/projects/val/activities", json={"id": "push1", "type": "environment.push",
                                                    "environments": ["main"]})
    dry = api.post(f"/api/projects/val/integrations/{script['id']}/validate").json()
    assert dry["valid"] is True and dry["dry_run"]["activity"] == "push1"
    messages = [line["message"] for line in dry["dry_run"]["log"]]
    assert "seen push1" in messages and any("https://example.com/x" in m for m in messages)
    thrower = api.post("/api/projects/val/integrations", json={
        "type": "script", "script": "throw new Error('nope');"}).json()["_embedded"]["entity"]
    bad = api.post(f"/api/projects/val/integrations/{thrower['id']}/validate")
    assert bad.status_code == 400
    body = bad.json()
    assert body["status"] == "error" and body["valid"] is False and "nope" in body["detail"]["script"]
    good_hook = api.post("/api/projects/val/integrations", json={
        "type": "webhook", "url": receiver.on("/val-ok", (200, {}, b"")), "shared_key": "k"}).json()["_embedded"]["entity"]
    assert api.post(f"/api/projects/val/integrations/{good_hook['id']}/validate").json()["valid"] is True
    [ping] = receiver.requests_to("/val-ok")
    assert json.loads(ping.body)["type"] == "integration.webhook" and "x-jws-signature" in ping.headers
    bad_hook = api.post("/api/projects/val/integrations", json={
        "type": "webhook", "url": receiver.on("/val-500", (500, {}, b"broken"))}).json()["_embedded"]["entity"]
    refused = api.post(f"/api/projects/val/integrations/{bad_hook['id']}/validate")
    assert refused.status_code == 400 and refused.json()["delivery"]["status"] == 500


def test_dry_run_api(api: httpx.Client, receiver: Receiver) -> None:
    api.post("/api/projects", json={"id": "dry", "title": "Dry"})
    hook_url = receiver.on("/dry", (200, {}, b""))
    script = api.post("/api/projects/dry/integrations", json={
        "type": "script", "script": f"console.log('token is', variables.TOKEN); fetch('{hook_url}', {{method: 'POST'}});"
    }).json()["_embedded"]["entity"]
    api.post(f"/api/projects/dry/integrations/{script['id']}/variables",
             json={"name": "TOKEN", "value": "sup3r-s3cret", "is_sensitive": True})
    report = api.post("/api/projects/dry/dry-run", json={
        "integration": script["id"], "activity": {"type": "environment.push", "id": "x1"}}).json()
    assert report["result"] == "success"
    messages = [line["message"] for line in report["log"]]
    assert "token is ******" in messages  # the script got the value; the answer masks it
    assert "sup3r-s3cret" not in json.dumps(report)
    assert receiver.requests_to("/dry") == []  # fetch was answered canned
    pasted = api.post("/api/projects/dry/dry-run", json={
        "script": "throw new TypeError('bad ' + activity.type)", "activity": {"type": "environment.deploy"}}).json()
    assert pasted["result"] == "failure" and "TypeError: bad environment.deploy" in pasted["error"]
    missing = api.post("/api/projects/dry/dry-run", json={"script": "1"})
    assert missing.status_code == 400 and "activity" in missing.json()["detail"]
