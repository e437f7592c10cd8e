"""Access control against a live `firehook serve`, route by route (SPEC §8, §3.1, §3.3).

The route table comes from the server's own ``/openapi.json``, so a route added later is
covered without touching this file. Every ``/api/...`` route and method is called:
- without a token, with a malformed header and with an unknown token → 401;
- with a token that was just revoked → 401 on the very next request;
- with a read-only token → 403 on every method other than GET (and nothing changes);
- with a token limited to project A, on project B's resources → 403/404 (and nothing changes),
  and on project A's URL naming B's integration, variable, activity or run → 404.
Secrets planted on purpose (a sensitive variable's value, a webhook shared key, a relay key, a
token secret) must appear in no API response, error response or server log line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import support
from tests.receivers import Receiver, wait_for
from tests.reliability.helpers import Api, run_finished, start_server

PLANT_SENSITIVE = "PLANTsensitiveVALUE7c1e0b"
PLANT_SHARED_KEY = "PLANTsharedKEY5d33a9"
PLANT_ROTATED_KEY = "PLANTrotatedKEY4b8e02"
PLANT_RELAY_KEY = "PLANTrelayKEY91f2cd"
PLANT_JSON_SENSITIVE = "PLANTjsonSECRET0aa7"
PLANTS = (PLANT_SENSITIVE, PLANT_SHARED_KEY, PLANT_ROTATED_KEY, PLANT_RELAY_KEY, PLANT_JSON_SENSITIVE)

ERROR_KEYS = {"status", "code", "title", "detail"}


class World:
    """Two tenants with every kind of resource, and the tokens to probe them with."""

    server: support.ServerProcess
    admin: Api
    receiver: Receiver
    ids: dict[str, dict[str, str]]
    tokens: dict[str, dict[str, Any]]
    token_secrets: list[str]
    routes: list[tuple[str, str]]


def _make_tenant(admin: Api, receiver: Receiver, project: str) -> dict[str, str]:
    admin.ok("POST", "/api/projects", {"id": project, "title": f"Tenant {project}", "relay_key": PLANT_RELAY_KEY,
                                       "region": "eu-1"})
    hook = admin.ok("POST", f"/api/projects/{project}/integrations", {
        "type": "webhook", "url": receiver.on(f"/{project}", (200, {}, b"ok")), "shared_key": PLANT_SHARED_KEY,
        "events": ["*"], "states": ["complete"]})["_embedded"]["entity"]
    # Rotate once so a previous key is held too.
    admin.ok("PATCH", f"/api/projects/{project}/integrations/{hook['id']}",
             {"shared_key": PLANT_ROTATED_KEY, "keep_previous_key_for": 3600})
    script = admin.ok("POST", f"/api/projects/{project}/integrations", {
        "type": "script", "events": ["environment.push"], "states": ["complete"],
        "script": "console.log('seen ' + activity.id + ' ' + Object.keys(variables).length);\n"
                  "storage.set('counter', (storage.get('counter') || 0) + 1);"})["_embedded"]["entity"]
    admin.ok("POST", f"/api/projects/{project}/integrations/{hook['id']}/variables",
             {"name": "SECRET", "value": PLANT_SENSITIVE, "is_sensitive": True})
    admin.ok("POST", f"/api/projects/{project}/integrations/{script['id']}/variables",
             {"name": "SECRET_JSON", "value": json.dumps({"k": PLANT_JSON_SENSITIVE}), "is_json": True,
              "is_sensitive": True})
    admin.ok("POST", f"/api/projects/{project}/integrations/{script['id']}/variables",
             {"name": "PLAIN", "value": "visible"})
    accepted = admin.ok("POST", f"/api/projects/{project}/activities", {
        "type": "environment.push", "state": "complete", "result": "success", "environments": ["main"],
        "text": f"push on {project}"})
    runs = accepted["_embedded"]["runs"]
    assert len(runs) == 2, runs
    for run in runs:
        wait_for(lambda rid=run["id"]: run_finished(admin, project, rid), timeout=60)
    hook_run = next(r["id"] for r in runs if r["integration"] == hook["id"])
    return {"project": project, "integration": hook["id"], "script": script["id"], "name": "SECRET",
            "activity": accepted["_embedded"]["entity"]["id"], "run": hook_run}


def build_world(tmp: Path) -> World:
    """A live server with tenants A and B, tokens, and the route table of its OpenAPI schema."""
    w = World()
    w.receiver = Receiver().start()
    w.server = start_server(tmp, env={"FIREHOOK_RETRY_SCHEDULE": "0.2"})
    w.admin = Api(w.server.base_url, w.server.token)
    try:
        w.ids = {"A": _make_tenant(w.admin, w.receiver, "tenant-a"), "B": _make_tenant(w.admin, w.receiver, "tenant-b")}
        tokens = {}
        for name, body in {"a": {"project": "tenant-a", "description": "A only"},
                           "b": {"project": "tenant-b"},
                           "ro": {"read_only": True}}.items():
            tokens[name] = w.admin.ok("POST", "/api/tokens", body)
        w.tokens = tokens
        w.token_secrets = [t["token"] for t in tokens.values()] + [w.server.token]
        spec = w.admin.ok("GET", "/openapi.json")
        w.routes = sorted((method.upper(), path) for path, ops in spec["paths"].items() for method in ops
                          if path.startswith("/api/"))
    except BaseException:
        close_world(w)
        raise
    return w


def close_world(w: World) -> None:
    w.admin.close()
    w.server.stop()
    w.receiver.stop()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = build_world(tmp_path_factory.mktemp("access"))
    yield w
    close_world(w)


def fill(path: str, ids: dict[str, str], token_id: str = "nosuchtoken01") -> str:
    """A concrete URL for a route template, with the tenant's ids."""
    values = {"project": ids["project"], "integration": ids["integration"], "name": ids["name"],
              "variable": ids["name"], "key": "counter",
              "activity": ids["activity"], "token_id": token_id}
    if path.endswith("/cancel"):
        values["activity"] = ids["run"]
    if "/storage" in path:  # the script's: it stored a counter
        values["integration"] = ids["script"]
    out = re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: values[m.group(1)], path)
    assert "{" not in out, out
    return out


def body_for(method: str, path: str, world: World,
             ids: dict[str, str] | None = None) -> tuple[bytes | None, dict[str, str]]:
    """A body that would be accepted from an authorised caller, so that only access control
    can be the reason for a refusal. A route this table does not know yet gets ``{}``: access
    control must refuse before the body is even looked at."""
    ids = ids or world.ids["B"]
    js = {"Content-Type": "application/json"}
    if method in ("GET", "DELETE") or path.endswith(("/validate", "/cancel")):
        return None, {}
    if path.endswith("activities:batch"):
        return b'{"type": "environment.push", "environments": ["main"]}\n', {"Content-Type": "application/x-ndjson"}
    templates: dict[str, Any] = {
        "/api/projects": {"title": "intruder"},
        "/api/projects/{project}": {"title": "renamed by intruder"},
        "/api/projects/{project}/integrations": {"type": "webhook", "url": world.receiver.url("/intruder")},
        "/api/projects/{project}/integrations/{integration}": {"description": "changed by intruder"},
        "/api/projects/{project}/integrations/{integration}/variables": {"name": "INTRUDER", "value": "x"},
        "/api/projects/{project}/integrations/{integration}/variables/{variable}": {"value": "changed by intruder"},
        "/api/projects/{project}/activities": {"type": "environment.push", "environments": ["main"]},
        "/api/projects/{project}/activities/{activity}": {"text": "changed by intruder"},
        "/api/projects/{project}/activities/{activity}/replay": {},
        "/api/projects/{project}/dry-run": {"integration": ids["script"], "activity_id": ids["activity"]},
        "/api/tokens": {},
    }
    return json.dumps(templates.get(path, {})).encode(), js


def call(api: Api, method: str, url: str, body: bytes | None, headers: dict[str, str]) -> Any:
    return api.request(method, url, content=body, headers=headers)


def assert_error(response: Any, code: int) -> None:
    request = response.request
    assert response.status_code == code, f"{request.method} {request.url}: {response.status_code} {response.text}"
    body = response.json()
    assert ERROR_KEYS <= set(body) and body["status"] == "error" and body["code"] == code, body


def state_of(world: World, tenant: str) -> dict[str, Any]:
    """Everything an intruder could have changed in a tenant, as the admin sees it."""
    ids = world.ids[tenant]
    p = ids["project"]
    admin = world.admin
    integrations = admin.ok("GET", f"/api/projects/{p}/integrations")
    return {
        "project": admin.ok("GET", f"/api/projects/{p}"),
        "integrations": sorted(json.dumps(i, sort_keys=True) for i in integrations),
        "variables": {i["id"]: admin.ok("GET", f"/api/projects/{p}/integrations/{i['id']}/variables")
                      for i in integrations},
        "storage": {i["id"]: admin.ok("GET", f"/api/projects/{p}/integrations/{i['id']}/storage")["items"]
                    for i in integrations},
        "activities": sorted((a["id"], a.get("text")) for a in admin.ok("GET", f"/api/projects/{p}/activities")
                             if a["type"].startswith("environment")),
        "run_ids": sorted(a["id"] for a in admin.ok("GET", f"/api/projects/{p}/activities?count=1000")),
        "tokens": sorted(t["id"] for t in admin.ok("GET", "/api/tokens")),
    }


def test_route_table_is_complete(world: World) -> None:
    """The loops below are only as good as the table: it must hold every route family."""
    paths = {p for _, p in world.routes}
    assert len(world.routes) >= 25, world.routes
    for needed in ("/api/projects", "/api/projects/{project}/integrations/{integration}/variables/{variable}",
                   "/api/projects/{project}/activities/{activity}/log", "/api/tokens/{token_id}",
                   "/api/projects/{project}/activities:batch"):
        assert needed in paths


def test_no_token_bad_token_unknown_token_get_401(world: World) -> None:
    anonymous = Api(world.server.base_url)
    try:
        for method, path in world.routes:
            url = fill(path, world.ids["A"])
            body, headers = body_for(method, path, world)
            for auth in (None, "Basic dXNlcjpwYXNz", "Bearer", "Bearer fh_unknownTOKENnotissued", "fh_raw"):
                extra = dict(headers)
                if auth is not None:
                    extra["Authorization"] = auth
                response = call(anonymous, method, url, body, extra)
                assert_error(response, 401)
                assert response.headers.get("www-authenticate", "").lower().startswith("bearer")
    finally:
        anonymous.close()
    assert world.admin.ok("GET", f"/api/projects/{world.ids['A']['project']}")["title"] == "Tenant tenant-a"


def test_revoked_token_gets_401_at_once(world: World) -> None:
    created = world.admin.ok("POST", "/api/tokens", {"description": "short-lived"})
    api = Api(world.server.base_url, created["token"])
    try:
        assert api.get("/api/projects").status_code == 200
        assert api.get("/api/tokens").status_code == 200
        assert world.admin.delete(f"/api/tokens/{created['id']}").status_code == 204
        for method, path in world.routes:
            body, headers = body_for(method, path, world)
            assert_error(call(api, method, fill(path, world.ids["B"]), body, headers), 401)
        # and revoking it twice is a 404, not a resurrection
        assert world.admin.delete(f"/api/tokens/{created['id']}").status_code == 404
        assert_error(api.get("/api/projects"), 401)
    finally:
        api.close()
    assert created["id"] not in {t["id"] for t in world.admin.ok("GET", "/api/tokens")}


def test_read_only_token_gets_403_on_every_write(world: World) -> None:
    victim = world.admin.ok("POST", "/api/tokens", {"description": "must survive"})
    before = {t: state_of(world, t) for t in ("A", "B")}
    api = Api(world.server.base_url, world.tokens["ro"]["token"])
    checked = 0
    try:
        for method, path in world.routes:
            url = fill(path, world.ids["B"], token_id=victim["id"])
            body, headers = body_for(method, path, world)
            response = call(api, method, url, body, headers)
            if method == "GET":
                wanted = 403 if path.startswith("/api/tokens") else 200
                assert response.status_code == wanted, f"GET {url}: {response.status_code} {response.text}"
                continue
            assert_error(response, 403)
            checked += 1
    finally:
        api.close()
    assert checked >= 14
    after = {t: state_of(world, t) for t in ("A", "B")}
    assert before["A"] == after["A"] and before["B"]["project"] == after["B"]["project"]
    assert before["B"]["integrations"] == after["B"]["integrations"]
    assert before["B"]["variables"] == after["B"]["variables"]
    assert before["B"]["run_ids"] == after["B"]["run_ids"]
    assert victim["id"] in {t["id"] for t in world.admin.ok("GET", "/api/tokens")}


def test_project_token_cannot_reach_another_project(world: World) -> None:
    victim = world.admin.ok("POST", "/api/tokens", {"project": "tenant-b", "description": "must survive"})
    before = state_of(world, "B")
    api = Api(world.server.base_url, world.tokens["a"]["token"])
    tried = 0
    try:
        for method, path in world.routes:
            body, headers = body_for(method, path, world)
            url = fill(path, world.ids["B"], token_id=victim["id"])
            response = call(api, method, url, body, headers)
            if "{project}" in path:
                assert response.status_code in (403, 404), f"{method} {url}: {response.status_code} {response.text}"
                assert_error(response, response.status_code)
                assert "Tenant tenant-b" not in response.text and "push on tenant-b" not in response.text
                tried += 1
            elif path == "/api/projects" and method == "GET":
                assert response.status_code == 200
                assert [p["id"] for p in response.json()] == ["tenant-a"], response.text
            else:  # creating projects, managing tokens: admins only
                assert_error(response, 403)
    finally:
        api.close()
    assert tried >= 20
    assert state_of(world, "B") == before


def test_project_token_cannot_reach_another_projects_ids_through_its_own_project(world: World) -> None:
    """IDOR: project A's URL with B's integration, variable, activity or run ids."""
    before = state_of(world, "B")
    api = Api(world.server.base_url, world.tokens["a"]["token"])
    mixed = dict(world.ids["B"], project=world.ids["A"]["project"])
    tried = 0
    try:
        for method, path in world.routes:
            if not re.search(r"\{(integration|activity|name)\}", path):
                continue
            body, headers = body_for(method, path, world)
            response = call(api, method, fill(path, mixed), body, headers)
            assert_error(response, 404)
            tried += 1
        # Replaying A's own activity into B's integration must be refused too.
        a = world.ids["A"]
        response = api.post(f"/api/projects/{a['project']}/activities/{a['activity']}/replay",
                            {"integrations": [world.ids["B"]["integration"]]})
        assert response.status_code in (400, 404), response.text
        # The dry run names its integration and activity in the body: B's must not be reachable.
        b = world.ids["B"]
        for body in ({"integration": b["script"], "activity_id": a["activity"]},
                     {"script": "console.log(JSON.stringify(activity))", "activity_id": b["activity"]},
                     {"integration": b["script"], "activity": {"type": "environment.push"}}):
            response = api.post(f"/api/projects/{a['project']}/dry-run", body)
            assert response.status_code in (400, 404), f"{body}: {response.status_code} {response.text}"
            assert "push on tenant-b" not in response.text and PLANT_JSON_SENSITIVE not in response.text
    finally:
        api.close()
    assert tried >= 15
    assert state_of(world, "B") == before


def _gets(world: World) -> list[str]:
    urls = ["/healthz", "/metrics", "/openapi.json", "/api/tokens", "/api/projects"]
    for tenant in ("A", "B"):
        ids = world.ids[tenant]
        p = ids["project"]
        for method, path in world.routes:
            if method == "GET":
                urls.append(fill(path, ids))
        for integration in (ids["integration"], ids["script"]):
            urls.append(f"/api/projects/{p}/integrations/{integration}")
            urls.append(f"/api/projects/{p}/integrations/{integration}/variables")
            urls.append(f"/api/projects/{p}/integrations/{integration}/activities")
        urls.append(f"/api/projects/{p}/integrations/{ids['script']}/variables/SECRET_JSON")
        for run in world.admin.ok("GET", f"/api/projects/{p}/activities?count=1000"):
            for suffix in ("", "/log", "/attempts", "/runs"):
                urls.append(f"/api/projects/{p}/activities/{run['id']}{suffix}")
    return urls


def test_secrets_appear_in_no_response_and_no_log(world: World) -> None:
    admin = world.admin
    b = world.ids["B"]
    p = b["project"]
    bodies: list[tuple[str, str]] = []
    # Errors that name the secret-bearing fields.
    errors_to_provoke = [
        ("PATCH", f"/api/projects/{p}/integrations/{b['integration']}/variables/SECRET", {"is_sensitive": False}),
        ("POST", f"/api/projects/{p}/integrations/{b['integration']}/variables",
         {"name": "BROKEN", "value": "{" + PLANT_SENSITIVE, "is_json": True, "is_sensitive": True}),
        ("POST", f"/api/projects/{p}/integrations/{b['integration']}/variables",
         {"name": "SECRET", "value": PLANT_SENSITIVE, "is_sensitive": True}),
        ("POST", f"/api/projects/{p}/integrations",
         {"type": "webhook", "url": "http://169.254.169.254/latest", "shared_key": PLANT_SHARED_KEY}),
        ("POST", f"/api/projects/{p}/integrations",
         {"type": "webhook", "url": "ftp://example.com/", "shared_key": PLANT_SHARED_KEY}),
        ("PATCH", f"/api/projects/{p}/integrations/{b['integration']}", {"shared_key": 42}),
        ("PATCH", f"/api/projects/{p}", {"relay_key": 7}),
        ("POST", "/api/projects", {"id": p, "title": "dup", "relay_key": PLANT_RELAY_KEY}),
        ("POST", "/api/tokens", {"project": "no-such-project"}),
    ]
    for method, url, body in errors_to_provoke:
        response = admin.request(method, url, json_body=body)
        assert 400 <= response.status_code < 500, f"{method} {url}: {response.status_code} {response.text}"
        bodies.append((f"{method} {url}", response.text))
    # A relay delivery with a wrong signature, one without, and a good one.
    for headers in ({"X-JWS-Signature": "eyJhbGciOiJIUzI1NiIsImI2NCI6ZmFsc2UsImNyaXQiOlsiYjY0Il19..AAAA"}, {}):
        response = admin.client.post(f"/hooks/upsun/{p}", content=b'{"type": "environment.push"}', headers=headers)
        assert response.status_code == 401, response.text
        bodies.append((f"relay {headers}", response.text))
    # A dry run of the script with its stored variables (the script does not print them).
    response = admin.post(f"/api/projects/{p}/dry-run", {"integration": b["script"], "activity_id": b["activity"]})
    assert response.status_code == 200 and "seen " in response.text, response.text
    bodies.append(("dry-run", response.text))
    # The webhook's test delivery (validate) and the script's dry run report what happened.
    for integration in (b["integration"], b["script"]):
        response = admin.post(f"/api/projects/{p}/integrations/{integration}/validate")
        assert response.status_code in (200, 400), response.text
        bodies.append((f"validate {integration}", response.text))
    for url in _gets(world):
        response = admin.get(url)
        assert response.status_code == 200, f"GET {url}: {response.status_code} {response.text}"
        bodies.append((url, response.text))
    # The variables and integrations are readable, masked.
    variable = admin.ok("GET", f"/api/projects/{p}/integrations/{b['integration']}/variables/SECRET")
    assert variable["is_sensitive"] is True and "value" not in variable or variable.get("value") in (None, "******")
    hook = admin.ok("GET", f"/api/projects/{p}/integrations/{b['integration']}")
    assert hook["shared_key"] == "******"
    assert admin.ok("GET", f"/api/projects/{p}")["has_relay_key"] is True
    listed = admin.ok("GET", "/api/tokens")
    assert len(listed) >= 4 and all("token" not in t for t in listed)
    secrets = list(PLANTS) + world.token_secrets
    leaks = [(where, s) for where, text in bodies for s in secrets if s in text]
    assert not leaks, f"secrets in API responses: {leaks[:5]}"
    log = world.server.output()
    assert "event=worker.start" in log  # the log is the server's
    leaks = [s for s in secrets if s in log]
    assert not leaks, f"secrets in the server log: {leaks}"
    # The receiver got signed deliveries: the key is used, never sent.
    for request in world.receiver.received:
        text = request.body.decode("utf-8", "replace") + json.dumps(request.headers)
        assert not [s for s in secrets if s in text], request.path


def test_read_only_and_project_tokens_do_not_see_secrets_either(world: World) -> None:
    texts = []
    for name in ("ro", "b"):
        api = Api(world.server.base_url, world.tokens[name]["token"])
        try:
            for url in _gets(world):
                if "tenant-a" in url and name == "b":
                    continue
                response = api.get(url)
                if url.startswith("/api/tokens"):
                    assert response.status_code == 403
                    continue
                assert response.status_code == 200, f"{name} GET {url}: {response.status_code}"
                texts.append(response.text)
        finally:
            api.close()
    secrets = list(PLANTS) + world.token_secrets
    assert not [s for t in texts for s in secrets if s in t]


def test_secret_files_are_private(world: World) -> None:
    path = Path(world.server.data_dir) / "admin.token"
    assert path.stat().st_mode & 0o077 == 0


def test_dry_run_masks_a_sensitive_json_variable_it_prints(world: World) -> None:
    """The dry run masks sensitive values in the log it returns; a sensitive *JSON* variable is
    a value too, whether printed whole (re-serialised) or a part of it."""
    b = world.ids["B"]
    for script in ("console.log('json secret: ' + JSON.stringify(variables.SECRET_JSON));",
                   "console.log('json secret: ' + variables.SECRET_JSON.k);"):
        response = world.admin.post(f"/api/projects/{b['project']}/dry-run",
                                    {"integration": b["script"], "activity_id": b["activity"], "script": script})
        assert response.status_code == 200 and "json secret: " in response.text, response.text
        assert PLANT_JSON_SENSITIVE not in response.text, f"{script} -> {response.text}"


PLANT_LOGGED = "PLANTloggedSECRET3e9d41"


def test_a_sensitive_value_printed_by_a_script_is_not_returned_in_its_run_log(world: World) -> None:
    """SPEC §3.3: a sensitive value is never returned by the API and never logged. The dry run
    and validate mask it in the log they return; a real run's log (readable with a read-only
    token) must not hand it out either."""
    admin = world.admin
    p = world.ids["B"]["project"]
    script = admin.ok("POST", f"/api/projects/{p}/integrations", {
        "type": "script", "events": ["environment.cron"], "states": ["complete"],
        "script": "console.log('the token is ' + variables.API_TOKEN);"})["_embedded"]["entity"]
    admin.ok("POST", f"/api/projects/{p}/integrations/{script['id']}/variables",
             {"name": "API_TOKEN", "value": PLANT_LOGGED, "is_sensitive": True})
    # The dry run masks it…
    dry = admin.post(f"/api/projects/{p}/dry-run", {"integration": script["id"],
                                                    "activity": {"type": "environment.cron"}})
    assert dry.status_code == 200 and "the token is" in dry.text, dry.text
    assert PLANT_LOGGED not in dry.text
    # …and so must the run.
    runs = admin.ok("POST", f"/api/projects/{p}/activities", {"type": "environment.cron",
                                                              "environments": ["main"]})["_embedded"]["runs"]
    [run] = [r for r in runs if r["integration"] == script["id"]]
    done = wait_for(lambda: run_finished(admin, p, run["id"]), timeout=60)
    assert done["result"] == "success"
    reader = Api(world.server.base_url, world.tokens["ro"]["token"])
    try:
        log = reader.get(f"/api/projects/{p}/activities/{run['id']}/log").text
    finally:
        reader.close()
    assert "the token is" in log, log
    assert PLANT_LOGGED not in log, f"a read-only token reads the sensitive value in the run log: {log}"


PLANT_LOGGED_JSON = "PLANTloggedJSON77b2c0"


def test_a_sensitive_json_value_printed_by_a_script_is_not_returned_in_its_run_log(world: World) -> None:
    """The same for an ``is_json`` sensitive variable: scripts get the parsed value, so what
    they print is a re-serialisation of it, or a part of it."""
    admin = world.admin
    p = world.ids["B"]["project"]
    script = admin.ok("POST", f"/api/projects/{p}/integrations", {
        "type": "script", "events": ["environment.backup"], "states": ["complete"],
        "script": "console.log('whole ' + JSON.stringify(variables.CREDS));\n"
                  "console.log('part ' + variables.CREDS.password);"})["_embedded"]["entity"]
    admin.ok("POST", f"/api/projects/{p}/integrations/{script['id']}/variables",
             {"name": "CREDS", "value": json.dumps({"user": "bot", "password": PLANT_LOGGED_JSON}),
              "is_json": True, "is_sensitive": True})
    runs = admin.ok("POST", f"/api/projects/{p}/activities", {"type": "environment.backup",
                                                              "environments": ["main"]})["_embedded"]["runs"]
    [run] = [r for r in runs if r["integration"] == script["id"]]
    done = wait_for(lambda: run_finished(admin, p, run["id"]), timeout=60)
    assert done["result"] == "success"
    reader = Api(world.server.base_url, world.tokens["ro"]["token"])
    try:
        log = reader.get(f"/api/projects/{p}/activities/{run['id']}/log").text
    finally:
        reader.close()
    assert "whole " in log and "part " in log, log
    assert PLANT_LOGGED_JSON not in log, f"a read-only token reads the sensitive JSON value in the run log: {log}"


def test_a_token_limited_to_a_deleted_project_does_not_open_its_successor(world: World) -> None:
    """Deleting a project ends its tokens: a project created later under the same id (by
    another team, say) is not open to the tokens of the one that was deleted."""
    admin = world.admin
    admin.ok("POST", "/api/projects", {"id": "recycled", "title": "first owner"})
    old = admin.ok("POST", "/api/tokens", {"project": "recycled", "description": "first owner's CI"})
    api = Api(world.server.base_url, old["token"])
    try:
        assert api.get("/api/projects/recycled").status_code == 200
        assert admin.delete("/api/projects/recycled").status_code == 204
        assert api.get("/api/projects/recycled").status_code in (401, 404)
        admin.ok("POST", "/api/projects", {"id": "recycled", "title": "second owner"})
        admin.ok("POST", "/api/projects/recycled/activities", {"type": "environment.push", "text": "second owner's"})
        response = api.get("/api/projects/recycled")
        assert response.status_code in (401, 403), \
            f"the deleted project's token reads its successor: {response.status_code} {response.text}"
        listed = api.get("/api/projects/recycled/activities")
        assert listed.status_code in (401, 403) and "second owner's" not in listed.text, listed.text
        write = api.post("/api/projects/recycled/activities", {"type": "environment.push"})
        assert write.status_code in (401, 403), write.text
    finally:
        api.close()
