"""The UI shows and does no more than its token may through the API; forms need their CSRF
token; every response carries the security headers."""

from __future__ import annotations

import re
from typing import Any

import httpx
from playwright.sync_api import expect

from tests import support
from tests.browser import helpers
from tests.browser.conftest import sign_in

UI_HEADERS = {"x-frame-options": "DENY", "referrer-policy": "same-origin"}


def _token(api: httpx.Client, **fields: Any) -> str:
    answer = api.post("/api/tokens", json=fields)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["token"])


def _csrf(tab: Any) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', tab.content())
    assert match, "no CSRF field on the page"
    return match.group(1)


def test_every_ui_response_has_the_security_headers(context: Any, server: support.ServerProcess,
                                                    api: httpx.Client) -> None:
    project_id = helpers.project(api, "Headers")
    tab = context.new_page()
    answers: list[Any] = []
    tab.on("response", lambda response: answers.append(response))
    tab.goto("/projects")  # → sign-in
    sign_in(tab, server.token, f"/projects/{project_id}/activities")
    tab.goto(f"/projects/{project_id}/activities/nope")  # an error page
    assert tab.get_by_role("heading", name="Not Found").is_visible()
    documents = [r for r in answers if r.request.resource_type == "document"]
    assert len(documents) >= 5
    for response in documents:
        headers = response.all_headers()
        csp = headers.get("content-security-policy", "")
        assert "default-src 'self'" in csp and "'unsafe-inline'" not in csp, response.url
        for name, value in UI_HEADERS.items():
            assert headers.get(name) == value, (response.url, name)
    # No inline script anywhere: the CSP would block it.
    assert tab.locator("script:not([src])").count() == 0
    static = httpx.get(server.base_url + "/static/app.js")
    assert static.status_code == 200 and "javascript" in static.headers["content-type"]


def test_a_post_without_the_csrf_token_is_refused(page: Any, api: httpx.Client, receiver: Any) -> None:
    project_id = helpers.project(api, "Forgery")
    hook = helpers.integration(api, project_id, type="webhook", url=receiver.on("/csrf", (200, {}, b"ok")))
    target = f"/projects/{project_id}/integrations/{hook['id']}/delete"
    page.goto(f"/projects/{project_id}/integrations/{hook['id']}")
    token = _csrf(page)

    missing = page.request.post(target, form={}, max_redirects=0)
    wrong = page.request.post(target, form={"csrf_token": "0" * len(token)}, max_redirects=0)
    assert missing.status == 403 and wrong.status == 403
    assert "security token" in missing.text()
    assert api.get(f"/api/projects/{project_id}/integrations/{hook['id']}").status_code == 200

    # A signed-out browser cannot post either, and no form works without its session.
    signed_out = page.context.browser.new_context(base_url=page.url.split("/projects")[0])
    try:
        answer = signed_out.request.post(target, form={"csrf_token": token}, max_redirects=0)
        assert answer.status == 303 and answer.headers["location"].startswith("/signin")
    finally:
        signed_out.close()
    assert api.get(f"/api/projects/{project_id}/integrations/{hook['id']}").status_code == 200

    ok = page.request.post(target, form={"csrf_token": token}, max_redirects=0)
    assert ok.status == 303
    assert api.get(f"/api/projects/{project_id}/integrations/{hook['id']}").status_code == 404


def test_sign_in_form_needs_its_csrf_token(context: Any, server: support.ServerProcess) -> None:
    answer = context.request.post("/signin", form={"token": server.token, "next": "/projects"}, max_redirects=0)
    assert answer.status == 403
    assert not [c for c in context.cookies() if c["name"] == "fh_session"]


def test_a_read_only_token_sees_but_cannot_act(context: Any, server: support.ServerProcess, api: httpx.Client,
                                                receiver: Any) -> None:
    project_id = helpers.project(api, "Read only")
    hook = helpers.integration(api, project_id, type="webhook", url=receiver.on("/ro", (500, {}, b"no")))
    script = helpers.integration(api, project_id, type="script", script="console.log(1)")
    api.post(f"/api/projects/{project_id}/integrations/{script['id']}/variables",
             json={"name": "KEY", "value": "ro-secret-value-77", "is_sensitive": True})
    answer = helpers.push(api, project_id)
    source_id = answer["entity"]["id"]
    webhook_run = next(r["id"] for r in answer["runs"] if r["integration"] == hook["id"])
    tab = context.new_page()
    sign_in(tab, _token(api, project=project_id, read_only=True, description="auditor"))
    expect(tab.locator(".whoami")).to_contain_text("read-only")
    expect(tab.locator(".project-card")).to_have_count(1)  # only its own project

    tab.goto(f"/projects/{project_id}/activities/{source_id}")
    expect(tab.get_by_role("heading", name="Runs")).to_be_visible()
    expect(tab.get_by_role("button", name="Replay")).to_have_count(0)
    tab.goto(f"/projects/{project_id}/activities/{webhook_run}")
    expect(tab.get_by_role("button", name="Cancel run")).to_have_count(0)
    tab.goto(f"/projects/{project_id}/integrations")
    expect(tab.locator("table.list tbody tr")).to_have_count(2)
    for name in ("New script", "New webhook", "Disable"):
        expect(tab.get_by_role("link", name=name).or_(tab.get_by_role("button", name=name))).to_have_count(0)
    tab.goto(f"/projects/{project_id}/integrations/{script['id']}")
    for name in ("Edit", "Delete", "Validate", "Add variable", "Save"):
        expect(tab.get_by_role("link", name=name, exact=True).or_(
            tab.get_by_role("button", name=name, exact=True))).to_have_count(0)
    assert "ro-secret-value-77" not in tab.content()
    expect(tab.locator("#variables")).to_contain_text("hidden (sensitive)")

    # Forged posts with a valid CSRF token are refused by the service, as the API would.
    csrf = _csrf(tab)
    base = f"/projects/{project_id}"
    for path, form in ((f"{base}/activities/{source_id}/replay", {}),
                       (f"{base}/activities/{webhook_run}/cancel", {}),
                       (f"{base}/integrations/{script['id']}/delete", {}),
                       (f"{base}/integrations/{script['id']}/disable", {}),
                       (f"{base}/integrations", {"type": "script", "script": "1"}),
                       (f"{base}/integrations/{script['id']}/variables", {"name": "X", "value": "y"}),
                       (f"{base}/dry-run", {"activity_json": "{}", "script": "1", "variables_json": "{}"})):
        refused = tab.request.post(path, form={"csrf_token": csrf, **form}, max_redirects=0)
        assert refused.status == 403, (path, refused.status)
        assert "read-only" in refused.text()
    assert len(api.get(f"{'/api'}{base}/integrations").json()) == 2
    assert len(api.get(f"/api/projects/{project_id}/activities/{source_id}/runs").json()) == 2


def test_a_token_of_another_project_cannot_read_this_one(context: Any, server: support.ServerProcess,
                                                         api: httpx.Client) -> None:
    mine = helpers.project(api, "Mine")
    theirs = helpers.project(api, "Theirs")
    tab = context.new_page()
    sign_in(tab, _token(api, project=mine))
    expect(tab.locator(".project-card")).to_have_count(1)
    expect(tab.locator(".project-card")).to_contain_text("Mine")
    answer = tab.goto(f"/projects/{theirs}/activities")
    assert answer is not None and answer.status == 403
    expect(tab.get_by_role("heading", name="Forbidden")).to_be_visible()


def test_a_session_ends_on_the_server_at_sign_out_and_when_its_token_is_revoked(
        browser: Any, api: httpx.Client, server: support.ServerProcess) -> None:
    """A cookie captured before sign-out (or before the token's revocation) opens nothing after;
    the cookie holds no token, and none can be made from one (issue 13, item 5)."""
    token = _token(api, description="session test")
    token_id = next(t["id"] for t in api.get("/api/tokens").json() if t.get("description") == "session test")
    tabs = []
    for _ in range(2):  # two browsers signed in with the same token
        ctx = browser.new_context(base_url=server.base_url)
        tab = ctx.new_page()
        sign_in(tab, token)
        tabs.append((ctx, tab))
    try:
        (first_ctx, first), (second_ctx, second) = tabs
        captured = [c for c in first_ctx.cookies() if c["name"] == "fh_session"]
        assert captured and token not in captured[0]["value"]
        first.get_by_role("button", name="Sign out").click()
        expect(first.get_by_role("heading", name="Sign in")).to_be_visible()
        # The captured cookie, replayed by another browser, is sent to sign in.
        replay = browser.new_context(base_url=server.base_url)
        replay.add_cookies(captured)
        tab = replay.new_page()
        tab.goto("/projects")
        expect(tab.get_by_role("heading", name="Sign in")).to_be_visible()
        # A cookie made from the token itself opens nothing either.
        minted = browser.new_context(base_url=server.base_url)
        minted.add_cookies([{**captured[0], "value": "n0nce." + token}])
        tab = minted.new_page()
        tab.goto("/projects")
        expect(tab.get_by_role("heading", name="Sign in")).to_be_visible()
        # The other browser's session lives until the token is revoked, then ends at once.
        second.goto("/projects")
        expect(second.get_by_role("heading", name="Projects")).to_be_visible()
        assert api.delete(f"/api/tokens/{token_id}").status_code == 204
        second.goto("/projects")
        expect(second.get_by_role("heading", name="Sign in")).to_be_visible()
        replay.close()
        minted.close()
    finally:
        for ctx, _ in tabs:
            ctx.close()
