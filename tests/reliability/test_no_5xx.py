"""Nothing a client sends causes a 5xx (issue 13, SPEC §2.3), against a real `firehook serve`
on PostgreSQL, route by route and field by field.

The route table is the server's own ``/openapi.json`` (a route added later is covered without
touching this file). Every route is called with real ids and with odd ones (unknown, very
long, NUL, non-ASCII, percent-escapes); every route that takes a body gets each of its fields
set to each JSON type and to the values that broke things before (deep nesting, lone
surrogates, huge numbers, NUL in a string, long strings), and whole bodies that are not what
it expects (not JSON, not UTF-8, not an object, empty); listings get odd query parameters.
Every answer must be below 500, and the server's log must hold no traceback and no
``unexpected_error``. Secrets are planted on the way (a sensitive variable, shared and relay
keys) for the log scan that ends the tier (``test_zz_log_secrets``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import support
from tests.reliability.helpers import PLANTED, Api, postgres_database, start_server

PLANT_VALUE = "PLANTno5xxSENSITIVEa41c"
PLANT_SHARED = "PLANTno5xxSHAREDb7e2"
PLANT_RELAY = "PLANTno5xxRELAYc90d"

DEEP = "[" * 300 + "]" * 300
DEEPER = "[" * 3000 + "]" * 3000
# Each field gets each of these (raw JSON texts, so that invalid Unicode can be sent too).
WRONG_VALUES = ["null", "true", "false", "0", "-1", "1.5", "1e308", "123456789012345678901234567890", '""',
                '"x"', json.dumps("y" * 5000), '"\\u0000"', '"\\ud800"', '"not-a-date"', "[]", "[1]", '["a", 1]',
                "{}", '{"a": 1}', DEEP, DEEPER]
# Whole bodies that are not what any route expects.
BAD_BODIES = [b"", b"null", b"[]", b"5", b'"text"', b"{", b"\xff\xfe", b'{"a": NaN}', b"1e999",
              ("{" * 3000).encode(), b'{"type": ' + DEEPER.encode() + b"}"]
ODD_IDS = ["nosuchthing", "x" * 300, "%00", "%C3%A9", "a%2Fb", "..", "%ff", "-", "_"]
ODD_QUERIES = [{"count": "-1"}, {"count": "abc"}, {"count": "99999999999999999999"}, {"starts_at": "garbage"},
               {"starts_at": "2025-13-45T99:00:00+00:00"}, {"type": ["a", "b"] * 20}, {"state": "x" * 2000},
               {"result": "maybe"}, {"environment": "\x00"}, {"since": "-5"}]


class World:
    server: support.ServerProcess
    ids: dict[str, str]
    bodies: dict[tuple[str, str], dict[str, Any]]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    database = postgres_database()
    PLANTED.update({PLANT_VALUE, PLANT_SHARED, PLANT_RELAY})
    server = start_server(tmp_path_factory.mktemp("no5xx"), env={
        "FIREHOOK_DATABASE_URL": database.url, "FIREHOOK_RETRY_SCHEDULE": "0.2", "FIREHOOK_WEBHOOK_TIMEOUT": "2",
        "FIREHOOK_SCRIPT_TIMEOUT": "2"})
    admin = Api(server.base_url, server.token)
    try:
        admin.ok("POST", "/api/projects", {"id": "nf", "title": "No 5xx", "relay_key": PLANT_RELAY})
        hook = admin.ok("POST", "/api/projects/nf/integrations", {
            "type": "webhook", "url": "http://127.0.0.1:9/", "shared_key": PLANT_SHARED})["_embedded"]["entity"]
        script = admin.ok("POST", "/api/projects/nf/integrations", {
            "type": "script", "events": ["*"], "script": "console.log(variables.SECRET);"})["_embedded"]["entity"]
        for integration in (hook, script):
            admin.ok("POST", f"/api/projects/nf/integrations/{integration['id']}/variables",
                     {"name": "SECRET", "value": PLANT_VALUE, "is_sensitive": True})
        accepted = admin.ok("POST", "/api/projects/nf/activities", {
            "type": "environment.push", "state": "complete", "environments": ["main"]})["_embedded"]
        token = admin.ok("POST", "/api/tokens", {"description": "spare"})
        w = World()
        w.server = server
        w.ids = {"project": "nf", "integration": script["id"], "variable": "SECRET", "name": "SECRET",
                 "activity": accepted["entity"]["id"], "token_id": token["id"], "key": "k1"}
        activity = {"type": "environment.push", "state": "complete", "result": "success", "environments": ["main"],
                    "created_at": "2025-12-14T15:41:05.821145+00:00", "completion_percent": 100,
                    "timings": {"wait": 0}, "parameters": {}, "payload": {}, "text": "t", "project": "nf",
                    "_links": {}, "id": "fuzzed1"}
        w.bodies = {
            ("POST", "/api/projects"): {"id": "fz1", "title": "t", "relay_key": "k" * 8},
            ("PATCH", "/api/projects/{project}"): {"title": "t", "relay_key": PLANT_RELAY},
            ("POST", "/api/projects/{project}/integrations"): {
                "type": "webhook", "url": "http://127.0.0.1:9/", "events": ["*"], "states": ["complete"],
                "result": "*", "environments": ["*"], "excluded_environments": [], "enabled": True,
                "shared_key": "kkkkkkkk", "retry": [1], "standard_webhooks": False, "description": "d"},
            ("PATCH", "/api/projects/{project}/integrations/{integration}"): {
                "script": "console.log(1)", "events": ["*"], "states": ["*"], "enabled": True, "ordered": False,
                "description": "d"},
            ("POST", "/api/projects/{project}/integrations/{integration}/variables"): {
                "name": "V1", "value": "vvvv", "is_json": False, "is_sensitive": False, "attributes": {}},
            ("PATCH", "/api/projects/{project}/integrations/{integration}/variables/{variable}"): {
                "value": PLANT_VALUE, "is_json": False, "is_sensitive": True, "attributes": {}},
            ("POST", "/api/projects/{project}/activities"): activity,
            ("PATCH", "/api/projects/{project}/activities/{activity}"): {
                k: v for k, v in activity.items() if k not in ("id", "type")},
            ("POST", "/api/projects/{project}/activities/{activity}/replay"): {"integrations": [script["id"]],
                                                                              "state": "complete"},
            ("POST", "/api/projects/{project}/dry-run"): {"integration": script["id"], "script": "1",
                                                          "activity": {"type": "x.y"}, "activity_id": "x",
                                                          "variables": {"A": "b"}},
            ("POST", "/api/tokens"): {"project": "nf", "read_only": True, "description": "d"},
            ("POST", "/hooks/upsun/{project}"): activity,
        }
        yield w
    finally:
        admin.close()
        server.stop()
        database.drop()


def _routes(server: support.ServerProcess) -> list[tuple[str, str]]:
    spec = httpx.get(server.base_url + "/openapi.json", timeout=30).json()
    return [(method.upper(), path) for path, item in spec["paths"].items() for method in item
            if method in ("get", "post", "put", "patch", "delete")]


def _fill(path: str, ids: dict[str, str], odd: str | None = None) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: odd if odd is not None else ids.get(m.group(1), "x"), path)


def _with_field(template: dict[str, Any], field: str, raw_value: str) -> bytes:
    """``template`` as JSON with ``field`` set to the raw JSON text ``raw_value``."""
    rest = {k: v for k, v in template.items() if k != field}
    inner = json.dumps(rest)[1:-1]
    return ("{" + json.dumps(field) + ": " + raw_value + (", " + inner if inner else "") + "}").encode()


def test_nothing_a_client_sends_causes_a_5xx(world: World) -> None:
    server = world.server
    routes = _routes(server)
    assert len(routes) >= 30, routes
    failures: list[str] = []
    calls = 0
    headers = {"Authorization": f"Bearer {server.token}", "Content-Type": "application/json"}
    with httpx.Client(base_url=server.base_url, timeout=60) as client:

        def send(method: str, url: str, content: bytes | None = None, params: Any = None) -> None:
            nonlocal calls
            calls += 1
            answer = client.request(method, url, content=content, params=params, headers=headers)
            if answer.status_code >= 500:
                shown = (content or b"")[:120]
                failures.append(f"{method} {url} {params or ''} {shown!r} -> {answer.status_code} {answer.text[:200]}")

        for method, path in routes:
            destructive = method == "DELETE"
            for odd in ODD_IDS:
                if "{" in path:
                    send(method, _fill(path, world.ids, odd), b"{}" if method in ("POST", "PATCH") else None)
            if method == "GET":
                for query in ODD_QUERIES:
                    send(method, _fill(path, world.ids), params=query)
            if destructive:
                continue
            template = world.bodies.get((method, path))
            if method in ("POST", "PATCH", "PUT"):
                for body in BAD_BODIES:
                    send(method, _fill(path, world.ids), body)
            if template is None:
                continue
            for field in [*template, "unknown_field"]:
                for raw in WRONG_VALUES:
                    send(method, _fill(path, world.ids), _with_field(template, field, raw))
    assert calls > 2000, calls
    assert not failures, "\n".join(failures[:40])
    log = Path(server.log_path).read_text(errors="replace")
    assert "Traceback" not in log and "unexpected_error" not in log, log[-4000:]


UI_FIELDS = ["title", "id", "type", "url", "events", "states", "result", "environments", "excluded_environments",
             "script", "shared_key", "description", "name", "value", "is_json", "is_sensitive", "integrations",
             "state", "activity", "activity_id", "variables", "key", "enabled"]
UI_VALUES = ["\x00", "a\x00b", "x" * 5000, "", "[]", "{", "-1", "é", "*", "{\"a\": 1}", "\ud7ff"]


def _ui_routes(server: support.ServerProcess) -> list[tuple[str, str]]:
    """The UI's routes, read from its router (the UI is not in /openapi.json)."""
    from firehook.web import routes as web_routes
    from tests.reliability.test_access_ui import _walk

    return sorted({(method, path) for path, methods in _walk(web_routes.router.routes) for method in methods
                   if method != "HEAD"})


def test_nothing_the_ui_is_sent_causes_a_5xx(world: World) -> None:
    server = world.server
    ui = _ui_routes(server)
    assert len(ui) >= 20, ui
    failures: list[str] = []
    with httpx.Client(base_url=server.base_url, timeout=60, follow_redirects=False) as client:
        form = client.get("/signin")
        presession = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert presession
        signed = client.post("/signin", data={"csrf_token": presession.group(1), "token": server.token})
        assert signed.status_code == 303
        page = client.get("/projects")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf
        for method, path in ui:
            if path in ("/signout", "/signin") or path.endswith("/delete") or path.endswith("/clear"):
                continue
            ids = {**world.ids, "name": "SECRET", "topic": "scripts"}
            for odd in [None, *ODD_IDS]:
                url = _fill(path, ids, odd)
                if method == "GET":
                    answer = client.get(url)
                    if answer.status_code >= 500:
                        failures.append(f"GET {url} -> {answer.status_code}")
                    continue
                for value in UI_VALUES if odd is None else UI_VALUES[:1]:
                    data = {"csrf_token": csrf.group(1), **{name: value for name in UI_FIELDS}}
                    answer = client.post(url, data=data)
                    if answer.status_code >= 500:
                        failures.append(f"POST {url} {value[:20]!r} -> {answer.status_code} {answer.text[:200]}")
    assert not failures, "\n".join(failures[:40])
    log = Path(server.log_path).read_text(errors="replace")
    assert "Traceback" not in log and "unexpected_error" not in log, log[-4000:]
