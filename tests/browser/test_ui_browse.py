"""Signing in and out, and walking from a project to a run's log — on a laptop and a phone."""

from __future__ import annotations

import threading
from typing import Any

import httpx
from playwright.sync_api import expect

from tests import support
from tests.browser import helpers
from tests.browser.conftest import screenshot, sign_in
from tests.receivers import Receiver, wait_for


def test_pages_need_a_session_and_sign_out_ends_it(context: Any, server: support.ServerProcess) -> None:
    tab = context.new_page()
    tab.goto("/projects")
    expect(tab).to_have_url(server.base_url + "/signin?next=%2Fprojects")
    expect(tab.get_by_role("heading", name="Sign in")).to_be_visible()
    screenshot(tab, "signin")

    tab.get_by_label("Token").fill("fh_not-a-real-token")
    tab.get_by_role("button", name="Sign in").click()
    expect(tab.get_by_role("alert")).to_contain_text("not valid")

    tab.get_by_label("Token").fill(server.token)
    tab.get_by_role("button", name="Sign in").click()
    expect(tab).to_have_url(server.base_url + "/projects")
    expect(tab.get_by_role("heading", name="Projects")).to_be_visible()
    cookie = next(c for c in context.cookies() if c["name"] == "fh_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert not cookie["secure"]  # plain http on loopback; Secure is set over https

    tab.get_by_role("button", name="Sign out").click()
    expect(tab.get_by_role("heading", name="Sign in")).to_be_visible()
    assert not [c for c in context.cookies() if c["name"] == "fh_session"]
    tab.goto("/projects")
    expect(tab.get_by_role("heading", name="Sign in")).to_be_visible()


def test_walk_from_project_to_run_log(page: Any, api: httpx.Client, receiver: Receiver) -> None:
    project_id = helpers.project(api, "Storefront")
    hook = helpers.integration(api, project_id, type="webhook", url=receiver.on("/walk", (200, {}, b"thanks")),
                               shared_key="walk-key")
    script = helpers.integration(api, project_id, type="script", description="Say hello",
                                 script="console.log('hello from', activity.type);")
    answer = helpers.push(api, project_id)
    source_id = answer["entity"]["id"]
    run_ids = {r["integration"]: r["id"] for r in answer["runs"]}
    for run_id in run_ids.values():
        helpers.finished(api, project_id, run_id)
    helpers.push(api, project_id, environments=["staging"], state="in_progress", result=None)

    page.goto("/projects")
    page.get_by_role("link", name="Storefront").click()
    expect(page.get_by_role("heading", name="Storefront")).to_be_visible()
    rows = page.locator(".timeline-item")
    expect(rows).to_have_count(2)  # two activities, the push's two runs under the first one
    expect(rows.nth(1).locator(".run-row")).to_have_count(2)
    screenshot(page, "activities")

    # Filters: by state, then by environment.
    page.get_by_label("State").select_option("in_progress")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("in progress")
    page.get_by_role("link", name="Clear").click()
    page.get_by_label("Environment").fill("main")
    page.get_by_label("Type").fill("environment.push")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(1)

    rows.first.get_by_role("link").first.click()
    expect(page).to_have_url(f"{page.url.split('/projects')[0]}/projects/{project_id}/activities/{source_id}")
    runs = page.locator("section", has=page.get_by_role("heading", name="Runs")).locator("tbody tr")
    expect(runs).to_have_count(2)
    screenshot(page, "activity")

    page.get_by_role("link", name=run_ids[hook["id"]]).click() if False else \
        page.locator(f"a[href$='/activities/{run_ids[hook['id']]}']").click()
    expect(page.locator("#run-status")).to_contain_text("complete")
    expect(page.locator("#run-status")).to_contain_text("✓ success")
    attempts = page.locator("section", has=page.get_by_role("heading", name="Attempts")).locator("tbody tr")
    expect(attempts).to_have_count(1)
    expect(attempts.first).to_contain_text("200")
    expect(attempts.first).to_contain_text("thanks")
    expect(page.locator("#log")).to_contain_text("HTTP response: 200")
    expect(page.locator(".timings")).to_contain_text("execute")
    screenshot(page, "run-webhook")

    page.goto(f"/projects/{project_id}/activities/{run_ids[script['id']]}")
    expect(page.locator("#log")).to_contain_text("hello from environment.push")
    expect(page.get_by_text("Scripts run once")).to_be_visible()


def test_a_running_run_log_follows_live(page: Any, api: httpx.Client, receiver: Receiver) -> None:
    release = threading.Event()

    def slow(_request: Any) -> tuple[int, dict[str, str], bytes]:
        release.wait(20)
        return 200, {}, b"{}"

    project_id = helpers.project(api, "Live")
    url = receiver.on("/slow", slow)
    helpers.integration(api, project_id, type="script", events=["*"], script=(
        "console.log('before the call');\n"
        f"var res = fetch({url!r}, {{method: 'POST', body: 'x'}});\n"
        "console.log('after the call', res.status);\n"))
    run_id = helpers.push(api, project_id)["runs"][0]["id"]
    try:
        wait_for(lambda: receiver.requests_to("/slow"))
        page.goto(f"/projects/{project_id}/activities/{run_id}")
        expect(page.locator("#log")).to_have_attribute("data-sealed", "false")
        expect(page.locator("#run-status")).to_contain_text("in progress")
        expect(page.locator("#log")).to_contain_text("before the call")
        screenshot(page, "run-live")
    finally:
        release.set()
    expect(page.locator("#log")).to_contain_text("after the call 200")
    expect(page.locator("#run-status")).to_contain_text("✓ success")
    expect(page.locator("#log")).to_have_attribute("data-sealed", "true")


def test_phone_layout(browser: Any, server: support.ServerProcess, api: httpx.Client) -> None:
    project_id = helpers.project(api, "Pocket")
    helpers.integration(api, project_id, type="script", script="console.log(1)")
    helpers.push(api, project_id)
    ctx = browser.new_context(base_url=server.base_url, viewport={"width": 390, "height": 844},
                              device_scale_factor=2, is_mobile=True, has_touch=True)
    try:
        tab = ctx.new_page()
        sign_in(tab, server.token, f"/projects/{project_id}/activities")
        expect(tab.locator(".timeline-item")).to_have_count(1)
        expect(tab.locator(".run-row")).to_have_count(1)
        # Nothing wider than the screen but the tables' own scrolling boxes.
        width = tab.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, width
        screenshot(tab, "phone-activities")
        tab.get_by_role("link", name="Integrations").click()
        expect(tab.locator("table.list tbody tr")).to_have_count(1)
        assert tab.evaluate("document.documentElement.scrollWidth") <= 390
        screenshot(tab, "phone-integrations")
    finally:
        ctx.close()
