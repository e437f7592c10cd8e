"""The UI items of issue 15, each asserted in Chromium, with screenshots kept in
test-artifacts/screenshots (git-ignored): activities with their runs under them and paged,
webhook runs named by host, port and path, integration names everywhere, the code editor with
the error's line, no variables on webhooks, the signed-in identity in the header, the validate
page, 404 pages, reload after a form error, the favicon, and the storage page."""

from __future__ import annotations

from typing import Any

import httpx
from playwright.sync_api import expect

from tests import support
from tests.browser import helpers
from tests.browser.conftest import screenshot, sign_in
from tests.receivers import Receiver


def test_activities_with_their_runs_named_and_paged(page: Any, api: httpx.Client, receiver: Receiver) -> None:
    project_id = helpers.project(api, "Timeline")
    a = helpers.integration(api, project_id, type="webhook", url=receiver.on("/deploys/a", (200, {}, b"ok")))
    b = helpers.integration(api, project_id, type="webhook", url=receiver.on("/deploys/b", (200, {}, b"ok")))
    named = helpers.integration(api, project_id, type="script", description="Count pushes",
                                script="storage.set('n', (storage.get('n') || 0) + 1);")
    port = receiver.url("/").split(":")[2].split("/")[0]
    for n in range(22):  # more than a page (20); the webhooks (events "*") run for each
        assert api.post(f"/api/projects/{project_id}/activities", json={
            "id": f"cron{n:02d}", "type": "environment.cron", "environments": ["main"],
            "state": "complete", "result": "success", "text": f"cron {n}"}).status_code == 201
    pushed = helpers.push(api, project_id)  # the fixture's created_at is 2024: received last, listed first
    for run in pushed["runs"]:
        helpers.finished(api, project_id, run["id"])

    page.goto(f"/projects/{project_id}/activities")
    items = page.locator(".timeline-item")
    expect(items).to_have_count(20)
    first = items.first
    expect(first).to_contain_text(pushed["entity"]["id"])
    runs = first.locator(".run-row")
    expect(runs).to_have_count(3)
    expect(runs.filter(has_text=f"webhook → 127.0.0.1:{port}/deploys/a")).to_have_count(1)
    expect(runs.filter(has_text=f"webhook → 127.0.0.1:{port}/deploys/b")).to_have_count(1)
    expect(runs.filter(has_text="Count pushes")).to_have_count(1)
    assert "Sending webhook to" not in first.inner_text()
    expect(page.locator("table.list")).to_have_count(0)  # no flat list of activities and runs
    screenshot(page, "first-hour-activities")

    page.get_by_role("link", name="Older activities →").click()
    expect(items).to_have_count(3)
    expect(items.last).to_contain_text("cron 0")
    page.get_by_role("link", name="← Newest").click()
    expect(items).to_have_count(20)

    run_a = next(r["id"] for r in pushed["runs"] if r["integration"] == a["id"])
    page.goto(f"/projects/{project_id}/activities/{pushed['entity']['id']}")
    expect(page.locator("table.list tbody tr", has_text=f"127.0.0.1:{port}/deploys/b")).to_have_count(1)
    page.goto(f"/projects/{project_id}/activities/{run_a}")
    expect(page.locator(".run-of")).to_have_text(f"webhook → 127.0.0.1:{port}/deploys/a")
    assert b["id"] and named["id"]


def test_integration_names_shown_wherever_listed(page: Any, api: httpx.Client) -> None:
    project_id = helpers.project(api, "Names")
    script = helpers.integration(api, project_id, type="script", description="Notify the team",
                                 script="// first line of code\nconsole.log(1);")
    page.goto(f"/projects/{project_id}/integrations")
    expect(page.get_by_role("link", name="Notify the team")).to_be_visible()
    page.get_by_role("link", name="Notify the team").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Notify the team")
    screenshot(page, "first-hour-integration-named")
    page.goto(f"/projects/{project_id}/dry-run")
    expect(page.get_by_label("Script of").locator("option", has_text="Notify the team")).to_have_count(1)
    unnamed = helpers.integration(api, project_id, type="script", script="console.log(2);")
    page.goto(f"/projects/{project_id}/integrations/{unnamed['id']}/edit")
    page.get_by_label("Name").fill("Second script")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Second script")
    assert api.get(f"/api/projects/{project_id}/integrations/{unnamed['id']}").json()["description"] == "Second script"
    assert script["id"]


def test_script_editor_highlights_numbers_lines_and_marks_the_error(page: Any, api: httpx.Client) -> None:
    project_id = helpers.project(api, "Editor")
    page.goto(f"/projects/{project_id}/integrations/new?type=script")
    editor = page.locator(".CodeMirror[data-editor-for=script]")
    expect(editor).to_be_visible()
    expect(page.locator("#script")).to_be_hidden()
    long_line = "var message = '" + "x" * 300 + "';"
    helpers.fill_script(page, "function hello() {\n  return 1;\n}\nvar = 3;\n" + long_line + "\n")
    expect(editor.locator(".CodeMirror-linenumber", has_text="4")).to_have_count(1)
    expect(editor.locator(".cm-keyword", has_text="function")).to_have_count(1)
    assert "CodeMirror-wrap" not in (editor.get_attribute("class") or "")  # code is not soft-wrapped
    # the help beside the editor, with the way to try a script
    help_box = page.get_by_role("complementary", name="What a script can use")
    expect(help_box).to_contain_text("storage.get/set/remove/clear")
    expect(help_box).to_contain_text("docs/scripts.md")
    reference = help_box.get_by_role("link", name="the script reference")
    expect(reference).to_have_attribute("href", "/help/scripts")
    expect(help_box.get_by_role("link", name="Dry run")).to_have_attribute("href", f"/projects/{project_id}/dry-run")
    page.get_by_role("button", name="Create script").click()
    expect(page.locator("#script-error")).to_contain_text("line 4")
    marked = editor.locator(".cm-error-line")
    expect(marked).to_have_count(1)
    expect(marked).to_contain_text("var = 3;")
    expect(editor.locator(".cm-error-gutter", has_text="●")).to_have_count(1)
    screenshot(page, "first-hour-editor-error")
    # the editor keeps what was typed, and saving a fix works
    helpers.fill_script(page, "console.log('fixed');\n")
    page.get_by_role("button", name="Create script").click()
    expect(page.get_by_role("status")).to_contain_text("Created script")
    expect(page.locator("pre.code")).to_contain_text("console.log('fixed');")


def test_dry_run_marks_the_line_that_failed(page: Any, api: httpx.Client) -> None:
    project_id = helpers.project(api, "Dry editor")
    page.goto(f"/projects/{project_id}/dry-run")
    page.locator("#activity_json").fill('{"type": "environment.push", "environments": ["main"]}')
    helpers.fill_script(page, "console.log('a');\nconsole.log('b');\nnull.boom;\n")
    page.get_by_role("button", name="Run").click()
    expect(page.locator("#dry-run-result")).to_contain_text("✗ failure")
    expect(page.locator(".CodeMirror .cm-error-line")).to_contain_text("null.boom;")
    screenshot(page, "first-hour-dry-run-error")


def test_webhook_pages_offer_no_variables(page: Any, api: httpx.Client, receiver: Receiver) -> None:
    project_id = helpers.project(api, "Hooks only")
    hook = helpers.integration(api, project_id, type="webhook", url=receiver.on("/novars", (200, {}, b"ok")))
    script = helpers.integration(api, project_id, type="script", script="console.log(1)")
    page.goto(f"/projects/{project_id}/integrations/{hook['id']}")
    expect(page.get_by_role("button", name="Add variable")).to_have_count(0)
    expect(page.locator("#variables")).to_have_count(0)
    screenshot(page, "first-hour-webhook")
    page.goto(f"/projects/{project_id}/integrations/{script['id']}")
    expect(page.get_by_role("button", name="Add variable")).to_have_count(1)


def test_header_shows_who_is_signed_in(context: Any, api: httpx.Client, server: support.ServerProcess) -> None:
    project_id = helpers.project(api, "Who")
    made = api.post("/api/tokens", json={"project": project_id, "description": "laptop of Cloé"}).json()
    tab = context.new_page()
    sign_in(tab, made["token"])
    who = tab.locator(".whoami .identity")
    expect(who).to_contain_text("Signed in as")
    expect(who.locator(".identity-name")).to_have_text(f"project {project_id}")
    expect(who).to_contain_text(f"token {made['id']}")
    assert "laptop of Cloé" not in who.inner_text()
    assert who.get_attribute("title") == "Token: laptop of Cloé"
    screenshot(tab, "first-hour-header")
    other = context.browser.new_context(base_url=server.base_url)
    try:
        admin = other.new_page()
        sign_in(admin, server.token)
        expect(admin.locator(".whoami .identity-name")).to_have_text("admin")
    finally:
        other.close()


def test_validate_page_keeps_errors_apart_from_the_test_delivery(page: Any, api: httpx.Client) -> None:
    project_id = helpers.project(api, "Validate")
    hook = helpers.integration(api, project_id, type="webhook", url=f"http://127.0.0.1:{support.free_port()}/closed")
    page.goto(f"/projects/{project_id}/integrations/{hook['id']}")
    page.get_by_role("button", name="Validate").click()
    expect(page.locator("#validation-result")).to_contain_text("invalid")
    expect(page.get_by_role("heading", name="Test delivery", exact=True)).to_have_count(1)
    errors = page.locator("#validation-errors")
    expect(errors).to_be_visible()
    assert page.locator("#test-delivery").count() == 1
    # the error rows are in their own section, not in the heading's
    assert page.locator("#test-delivery h2").inner_text() == "Test delivery"
    screenshot(page, "first-hour-validate")


def test_not_found_pages_speak_to_people(page: Any) -> None:
    answer = page.goto("/projects/no-such-project/activities")
    assert answer is not None and answer.status == 404
    lead = page.locator(".error-card .lead")
    expect(lead.locator("code")).to_have_text("firehook project:create")
    assert "`" not in lead.inner_text()
    screenshot(page, "first-hour-404")


def test_reloading_after_a_form_error_does_not_send_it_again(page: Any, api: httpx.Client) -> None:
    project_id = helpers.project(api, "Reload")
    page.goto(f"/projects/{project_id}/integrations/new?type=webhook")
    page.get_by_label("URL").fill("http://10.1.2.3/hook")  # refused by the outbound guard
    page.get_by_role("button", name="Create webhook").click()
    expect(page.get_by_role("alert").first).to_contain_text("blocked")
    assert page.url.endswith(f"/projects/{project_id}/integrations/new?type=webhook")
    methods: list[str] = []
    page.on("request", lambda request: methods.append(request.method) if request.resource_type == "document" else None)
    page.reload()
    expect(page.get_by_role("heading", name="New webhook")).to_be_visible()
    assert methods == ["GET"]
    assert api.get(f"/api/projects/{project_id}/integrations").json() == []


def test_favicon(page: Any, server: support.ServerProcess) -> None:
    page.goto("/projects")
    href = page.locator("link[rel=icon]").get_attribute("href")
    assert href == "/static/favicon.svg"
    icon = httpx.get(server.base_url + href)
    assert icon.status_code == 200 and icon.text.startswith("<svg")


def test_storage_page_shows_typed_values_and_clears(page: Any, api: httpx.Client) -> None:
    project_id = helpers.project(api, "Storage")
    script = helpers.integration(api, project_id, type="script", description="Counter", script=(
        "storage.set('pushes', (storage.get('pushes') || 0) + 1);\n"
        "storage.set('last', activity.id);\nstorage.set('green', true);\n"))
    pushed = helpers.push(api, project_id)
    helpers.finished(api, project_id, pushed["runs"][0]["id"])
    page.goto(f"/projects/{project_id}/integrations/{script['id']}")
    page.locator(".toolbar").get_by_role("link", name="Storage", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Storage of Counter")
    rows = page.locator("#storage-table tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.filter(has_text="pushes").locator("code")).to_have_text("1")
    expect(rows.filter(has_text="pushes")).to_contain_text("number")
    expect(rows.filter(has_text="green")).to_contain_text("boolean")
    expect(rows.filter(has_text="last").locator("code")).to_have_text(f'"{pushed["entity"]["id"]}"')
    screenshot(page, "first-hour-storage")
    rows.filter(has_text="green").get_by_role("button", name="Remove").click()
    expect(page.get_by_role("status")).to_contain_text("Removed 'green'.")
    expect(rows).to_have_count(2)
    page.get_by_role("button", name="Clear all").click()
    expect(page.get_by_role("status")).to_contain_text("2 keys removed")
    expect(page.get_by_text("Nothing stored yet")).to_be_visible()
    assert api.get(f"/api/projects/{project_id}/integrations/{script['id']}/storage").json()["count"] == 0



def test_an_event_typo_is_refused_or_warned_on_the_form(page: Any, api: httpx.Client, receiver: Receiver) -> None:
    project_id = helpers.project(api, "Typos")
    page.goto(f"/projects/{project_id}/integrations/new?type=webhook")
    page.get_by_label("URL").fill(receiver.on("/typo", (200, {}, b"ok")))
    page.get_by_label("Events").fill("bad event!")
    page.get_by_role("button", name="Create webhook").click()
    expect(page.locator(".alert")).to_contain_text("not a dotted event name")
    page.get_by_label("Events").fill("environment.psh")
    page.get_by_role("button", name="Create webhook").click()
    expect(page.get_by_role("status")).to_contain_text("did you mean 'environment.push'?")


def test_the_script_reference_is_served_from_the_package(page: Any) -> None:
    page.goto("/help/scripts")
    expect(page.get_by_role("heading", level=1)).to_have_text("Activity scripts")
    text = page.locator("#help-text")
    expect(text).to_contain_text("## `storage`")
    expect(text).to_contain_text("FIREHOOK_SCRIPT_TIMEOUT")
    assert page.goto("/help/nothing").status == 404
