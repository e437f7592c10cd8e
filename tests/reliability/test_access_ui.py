"""Access control of the web UI against a live `firehook serve`, route by route.

The UI is the HTML twin of the API, behind a sign-in session whose cookie carries the token:
it must let in exactly whom the API lets in. The route table comes from the app itself
(``firehook.api.create_app(...).routes``: UI routes are not in the OpenAPI schema). Every UI
route is called without a session, with the session of a revoked token, with a session limited
to project A on project B's pages, and (for forms) with a read-only session — forms carry a
valid CSRF token, so that only access control can be the reason for a refusal. Afterwards
project B must be unchanged, and no page shows a planted secret.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from tests.conftest import make_settings
from tests.reliability.test_access import (
    PLANTS,
    World,
    build_world,
    close_world,
    state_of,
)

PUBLIC = {"/signin", "/static/{name}", "/static/vendor/{package}/{name}", "/static/favicon.svg", "/favicon.ico",
          "/static/editor.js",
          "/healthz", "/metrics", "/hooks/upsun/{project}",
          "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}  # API docs: the schema only


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = build_world(tmp_path_factory.mktemp("access-ui"))
    yield w
    close_world(w)


@pytest.fixture(scope="module")
def ui_routes(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, str]]:
    """(method, path) of every UI route, from the application object itself."""
    from firehook import assembly
    from firehook.api import create_app

    tmp = tmp_path_factory.mktemp("routes")
    services = assembly.services(make_settings(tmp, f"sqlite:///{tmp / 'routes.db'}"), migrate=True)
    try:
        app = create_app(services)
        out = sorted({(method, path) for path, methods in _walk(app.routes) for method in methods
                      if method != "HEAD"})
    finally:
        services.database.dispose()
    ui = [(m, p) for m, p in out if not p.startswith("/api/") and p not in PUBLIC]
    return ui


def _walk(routes: list[Any]) -> Iterator[tuple[str, set[str]]]:
    """(path, methods) of every endpoint: plain routes, and included routers (which recent
    FastAPI keeps as lazy ``_IncludedRouter`` entries that expose their effective routes)."""
    for route in routes:
        if hasattr(route, "effective_route_contexts"):
            for context in route.effective_route_contexts():
                if hasattr(context, "effective_route_contexts"):
                    yield from _walk([context])
                elif getattr(context, "methods", None):
                    yield context.path, set(context.methods)
        elif isinstance(route, APIRoute) or (getattr(route, "methods", None) and hasattr(route, "path")):
            yield route.path, set(route.methods)


_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def session(world: World, secret: str) -> httpx.Client:
    """A browser signed in with ``secret`` through the sign-in form (a session cookie cannot be
    made from a token: the server keeps the sessions), with the CSRF token its pages carry."""
    client = httpx.Client(base_url=world.server.base_url, timeout=30, follow_redirects=False)
    form = client.get("/signin")
    presession = _CSRF.search(form.text)
    assert presession, form.text[:500]
    signed_in = client.post("/signin", data={"csrf_token": presession.group(1), "token": secret, "next": "/projects"})
    assert signed_in.status_code == 303 and client.cookies.get("fh_session"), signed_in.text[:300]
    page = client.get("/projects")
    found = _CSRF.search(page.text)
    assert page.status_code == 200 and found, page.text[:500]
    client.csrf = found.group(1)  # type: ignore[attr-defined]
    return client


def anonymous(world: World) -> httpx.Client:
    client = httpx.Client(base_url=world.server.base_url, timeout=30, follow_redirects=False)
    client.csrf = "not-a-session-token"  # type: ignore[attr-defined]
    return client


def fill(path: str, ids: dict[str, str]) -> str:
    values = {"project": ids["project"], "integration": ids["integration"], "name": ids["name"],
              "activity": ids["run"] if path.endswith("/cancel") else ids["activity"], "topic": "scripts"}
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)


def form_for(path: str, world: World, csrf: str) -> dict[str, Any]:
    """What the page's own form would send."""
    base: dict[str, Any] = {"csrf_token": csrf}
    if path == "/projects":
        base.update(id="intruder", title="intruder")
    elif path.endswith("/integrations"):
        base.update(type="webhook", url=world.receiver.url("/intruder"), events="*", states="complete")
    elif path.endswith("/integrations/{integration}"):
        base.update(url=world.receiver.url("/changed"), events="*", states="complete", description="changed")
    elif path.endswith("/variables"):
        base.update(name="INTRUDER", value="x")
    elif path.endswith("/variables/{name}"):
        base.update(value="changed by intruder")
    elif path.endswith("/dry-run"):
        base.update(activity_json='{"type": "environment.push"}', script="console.log(1)", variables_json="{}")
    return base


def call(client: httpx.Client, method: str, path: str, world: World, ids: dict[str, str]) -> httpx.Response:
    url = fill(path, ids)
    if method == "GET":
        return client.get(url)
    return client.request(method, url, data=form_for(path, world, client.csrf))  # type: ignore[attr-defined]


def refused_signin(response: httpx.Response) -> bool:
    """Sent to sign in (a redirect to /signin, or the sign-in page with 401)."""
    if response.status_code in (302, 303, 307):
        return response.headers.get("location", "").startswith("/signin")
    return response.status_code == 401


def test_ui_route_table_is_complete(ui_routes: list[tuple[str, str]]) -> None:
    paths = {p for _, p in ui_routes}
    assert len(ui_routes) >= 20, ui_routes
    for needed in ("/projects/{project}", "/projects/{project}/integrations/{integration}/variables/{name}",
                   "/projects/{project}/activities/{activity}/log.json", "/projects/{project}/dry-run"):
        assert needed in paths, paths


def test_ui_without_a_session_or_with_a_revoked_one_sends_to_sign_in(world: World,
                                                                     ui_routes: list[tuple[str, str]]) -> None:
    before = state_of(world, "B")
    revoked = world.admin.ok("POST", "/api/tokens", {"description": "signed in, then revoked"})
    signed_in = session(world, revoked["token"])
    assert world.admin.delete(f"/api/tokens/{revoked['id']}").status_code == 204
    # A cookie made from a valid token (the old `nonce.<token>` form) and a made-up one open nothing.
    minted, made_up = anonymous(world), anonymous(world)
    minted.cookies.set("fh_session", "testnonce0123456789." + world.admin.token)  # type: ignore[operator]
    made_up.cookies.set("fh_session", "fs_not_a_session")
    for client in (anonymous(world), signed_in, minted, made_up):
        try:
            for method, path in ui_routes:
                response = call(client, method, path, world, world.ids["B"])
                if method == "GET":
                    assert refused_signin(response), f"GET {path}: {response.status_code} {response.text[:300]}"
                else:
                    assert refused_signin(response) or response.status_code == 403, \
                        f"{method} {path}: {response.status_code} {response.text[:300]}"
                assert "Tenant tenant-b" not in response.text and "push on tenant-b" not in response.text
        finally:
            client.close()
    after = state_of(world, "B")
    after["tokens"] = [t for t in after["tokens"] if t != revoked["id"]]
    before["tokens"] = [t for t in before["tokens"] if t != revoked["id"]]
    assert after == before


def test_ui_session_of_project_a_cannot_reach_project_b(world: World, ui_routes: list[tuple[str, str]]) -> None:
    before = state_of(world, "B")
    client = session(world, world.tokens["a"]["token"])
    tried = 0
    try:
        assert client.get("/projects/tenant-a/activities").status_code == 200  # the session works
        listing = client.get("/projects")
        assert listing.status_code == 200 and "tenant-b" not in listing.text
        for method, path in ui_routes:
            if "{project}" not in path:
                continue
            response = call(client, method, path, world, world.ids["B"])
            assert response.status_code in (403, 404), f"{method} {path}: {response.status_code} {response.text[:300]}"
            assert "Tenant tenant-b" not in response.text and "push on tenant-b" not in response.text
            tried += 1
        # Project A's pages naming B's integration, variable, activity or run.
        mixed = dict(world.ids["B"], project="tenant-a")
        for method, path in ui_routes:
            if re.search(r"\{(integration|activity|name)\}", path):
                response = call(client, method, path, world, mixed)
                assert response.status_code in (400, 404), \
                    f"{method} {fill(path, mixed)}: {response.status_code} {response.text[:300]}"
    finally:
        client.close()
    assert tried >= 15
    assert state_of(world, "B") == before


def test_ui_read_only_session_cannot_change_anything(world: World, ui_routes: list[tuple[str, str]]) -> None:
    before = {t: state_of(world, t) for t in ("A", "B")}
    client = session(world, world.tokens["ro"]["token"])
    writes = 0
    try:
        for method, path in ui_routes:
            response = call(client, method, path, world, world.ids["B"])
            if method == "GET":
                assert response.status_code in (200, 303, 403, 404), f"GET {path}: {response.status_code}"
                continue
            if path == "/signout":
                continue
            assert response.status_code == 403, f"{method} {path}: {response.status_code} {response.text[:300]}"
            writes += 1
    finally:
        client.close()
    assert writes >= 10
    assert {t: state_of(world, t) for t in ("A", "B")} == before


def test_ui_pages_show_no_secret(world: World, ui_routes: list[tuple[str, str]]) -> None:
    client = session(world, world.server.token)
    texts: list[tuple[str, str]] = []
    try:
        for tenant in ("A", "B"):
            ids = world.ids[tenant]
            for method, path in ui_routes:
                if method == "GET":
                    url = fill(path, ids)
                    response = client.get(url)
                    assert response.status_code in (200, 303), f"GET {url}: {response.status_code}"
                    texts.append((url, response.text))
            p = ids["project"]
            for run in world.admin.ok("GET", f"/api/projects/{p}/activities?count=1000"):
                for suffix in ("", "/log.json"):
                    url = f"/projects/{p}/activities/{run['id']}{suffix}"
                    response = client.get(url)
                    assert response.status_code == 200, url
                    texts.append((url, response.text))
            for integration in (ids["integration"], ids["script"]):
                for suffix in ("", "/edit"):
                    url = f"/projects/{p}/integrations/{integration}{suffix}"
                    response = client.get(url)
                    assert response.status_code == 200, url
                    texts.append((url, response.text))
    finally:
        client.close()
    secrets = [s for s in PLANTS] + [t for t in world.token_secrets if t != world.server.token]
    leaks = [(url, s) for url, text in texts for s in secrets if s in text]
    assert not leaks, leaks[:5]
    assert len(texts) >= 20


def test_ui_session_cookie_is_http_only_and_strict(world: World) -> None:
    client = httpx.Client(base_url=world.server.base_url, timeout=30, follow_redirects=False)
    try:
        page = client.get("/signin")
        assert page.status_code == 200
        csrf = client.cookies.get("fh_signin")
        assert csrf
        response = client.post("/signin", data={"csrf_token": csrf, "token": world.tokens["a"]["token"],
                                                "next": "/projects"})
        assert response.status_code == 303, response.text[:300]
        cookie = next(v for k, v in response.headers.multi_items()
                      if k.lower() == "set-cookie" and v.startswith("fh_session="))
        assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower(), cookie
        # after sign-in, `next` never leads off the site (browsers drop tabs and newlines in URLs)
        for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "/\t/evil.example",
                       "javascript:alert(1)"):
            fresh = httpx.Client(base_url=world.server.base_url, timeout=30, follow_redirects=False)
            try:
                fresh.get("/signin")
                again = fresh.post("/signin", data={"csrf_token": fresh.cookies.get("fh_signin"),
                                                    "token": world.tokens["a"]["token"], "next": target})
            finally:
                fresh.close()
            # what a browser follows: the raw header, literal tabs and newlines dropped
            location = again.headers.get("location", "").replace("\t", "").replace("\n", "").replace("\r", "")
            assert again.status_code == 303, (target, again.status_code)
            assert location.startswith("/") and not location.startswith(("//", "/\\")), (target, location)
        # a sign-in without the form's token is refused
        other = httpx.Client(base_url=world.server.base_url, timeout=30, follow_redirects=False)
        try:
            refused = other.post("/signin", data={"token": world.tokens["a"]["token"]})
            assert refused.status_code == 403 and "fh_session" not in refused.headers.get("set-cookie", "")
        finally:
            other.close()
    finally:
        client.close()
