"""Acting from the UI: replay, cancel, integrations and variables, validation, the dry run."""

from __future__ import annotations

from typing import Any

import httpx
from playwright.sync_api import expect

from tests.browser import helpers
from tests.browser.conftest import screenshot
from tests.receivers import Receiver, wait_for


def test_replay_to_all_matching_and_to_chosen_integrations(page: Any, api: httpx.Client,
                                                            receiver: Receiver) -> None:
    project_id = helpers.project(api, "Replays")
    first = helpers.integration(api, project_id, type="webhook", url=receiver.on("/replay-a", (200, {}, b"ok")))
    answer = helpers.push(api, project_id)
    source_id = answer["entity"]["id"]
    helpers.finished(api, project_id, answer["runs"][0]["id"])
    # Added after the activity happened: a replay reaches it too.
    second = helpers.integration(api, project_id, type="webhook", url=receiver.on("/replay-b", (200, {}, b"ok")))

    page.goto(f"/projects/{project_id}/activities/{source_id}")
    runs = page.locator("section", has=page.get_by_role("heading", name="Runs")).locator("tbody tr")
    expect(runs).to_have_count(1)
    page.get_by_role("button", name="Replay").click()
    expect(page.get_by_role("status")).to_contain_text("Replayed: 2 new runs.")
    expect(runs).to_have_count(3)
    wait_for(lambda: len(receiver.requests_to("/replay-b")) == 1)

    page.locator(f"input[name=integrations][value='{first['id']}']").check()
    page.get_by_role("button", name="Replay").click()
    expect(page.get_by_role("status")).to_contain_text("Replayed: 1 new run.")
    expect(runs).to_have_count(4)
    wait_for(lambda: len(receiver.requests_to("/replay-a")) == 3)
    assert len(receiver.requests_to("/replay-b")) == 1
    assert second["id"] != first["id"]


def test_cancel_a_run_waiting_for_its_next_attempt(page: Any, api: httpx.Client, receiver: Receiver) -> None:
    project_id = helpers.project(api, "Cancels")
    helpers.integration(api, project_id, type="webhook", url=receiver.on("/down", (500, {}, b"down for maintenance")))
    run_id = helpers.push(api, project_id)["runs"][0]["id"]
    # The first attempt fails; the next one is an hour away (FIREHOOK_RETRY_SCHEDULE=3600).
    wait_for(lambda: api.get(f"/api/projects/{project_id}/activities/{run_id}/attempts").json())

    page.goto(f"/projects/{project_id}/activities/{run_id}")
    attempts = page.locator("section", has=page.get_by_role("heading", name="Attempts")).locator("tbody tr")
    expect(attempts).to_have_count(1)
    expect(attempts.first).to_contain_text("✗ 500")
    expect(attempts.first).to_contain_text("down for maintenance")
    screenshot(page, "run-retrying")
    page.get_by_role("button", name="Cancel run").click()
    expect(page.get_by_role("status")).to_contain_text("Run cancelled.")
    expect(page.locator("#run-status")).to_contain_text("cancelled")
    expect(page.locator("#log")).to_contain_text("Run cancelled.")
    expect(page.get_by_role("button", name="Cancel run")).to_have_count(0)
    assert helpers.activity(api, project_id, run_id)["state"] == "cancelled"

    # Replaying the run makes a new run of the same integration for the same activity.
    page.get_by_role("button", name="Replay this run").click()
    expect(page.get_by_role("status")).to_contain_text("Replayed: 1 new run.")
    assert not page.url.endswith(run_id)
    expect(page.locator("#run-status")).not_to_contain_text("cancelled")
    wait_for(lambda: len(receiver.requests_to("/down")) == 2)


def test_create_edit_validate_disable_and_delete_an_integration(page: Any, api: httpx.Client,
                                                                 receiver: Receiver) -> None:
    project_id = helpers.project(api, "Integrations")
    url = receiver.on("/created", (200, {}, b"pong"))
    page.goto(f"/projects/{project_id}/integrations")
    expect(page.get_by_text("No integrations yet.")).to_be_visible()
    page.get_by_role("link", name="New webhook").click()

    # A refused save shows the form again with the error, nothing is stored.
    page.get_by_label("URL").fill("ftp://example.com/x")
    page.evaluate("document.getElementById('url').type = 'text'")  # past the browser's own URL check
    page.get_by_role("button", name="Create webhook").click()
    expect(page.get_by_role("alert").first).to_contain_text("http or https")
    assert api.get(f"/api/projects/{project_id}/integrations").json() == []

    page.get_by_label("URL").fill(url)
    page.get_by_label("Shared key").fill("hush-hush-key")
    page.get_by_label("Events").fill("environment.push, environment.deploy")
    page.get_by_label("Excluded environments").fill("pr-*")
    page.get_by_label("Name").fill("Chat notifications")
    screenshot(page, "integration-new")
    page.get_by_role("button", name="Create webhook").click()
    expect(page.get_by_role("status")).to_contain_text("Created webhook")
    integration_id = page.url.rsplit("/", 1)[-1]
    stored = api.get(f"/api/projects/{project_id}/integrations/{integration_id}").json()
    assert stored["events"] == ["environment.push", "environment.deploy"]
    assert stored["excluded_environments"] == ["pr-*"] and stored["shared_key"] == "******"
    assert "hush-hush-key" not in page.content()
    expect(page.locator("dd", has_text="set")).to_be_visible()
    screenshot(page, "integration")

    page.get_by_role("link", name="Edit").click()
    assert "hush-hush-key" not in page.content()
    page.get_by_label("States").fill("in_progress, complete")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("status")).to_contain_text("Saved.")
    stored = api.get(f"/api/projects/{project_id}/integrations/{integration_id}").json()
    assert stored["states"] == ["in_progress", "complete"] and stored["shared_key"] == "******"

    page.get_by_role("button", name="Validate").click()
    expect(page.locator("#validation-result")).to_contain_text("✓ valid")
    expect(page.get_by_text("pong")).to_be_visible()
    delivered = wait_for(lambda: receiver.requests_to("/created"))
    assert "x-jws-signature" in delivered[0].headers
    screenshot(page, "integration-validated")
    page.get_by_role("link", name="Back to the integration").click()

    page.get_by_role("button", name="Disable").click()
    expect(page.get_by_role("status")).to_contain_text("disabled")
    expect(page.locator(".head-badges")).to_contain_text("○ disabled")
    assert api.get(f"/api/projects/{project_id}/integrations/{integration_id}").json()["enabled"] is False
    page.get_by_role("button", name="Enable").click()
    expect(page.locator(".head-badges")).to_contain_text("● enabled")

    page.get_by_role("button", name="Delete").click()
    expect(page.get_by_role("status")).to_contain_text(f"Deleted integration {integration_id}.")
    expect(page.get_by_text("No integrations yet.")).to_be_visible()
    assert api.get(f"/api/projects/{project_id}/integrations/{integration_id}").status_code == 404


def test_a_script_that_does_not_compile_is_refused_with_its_position(page: Any, api: httpx.Client) -> None:
    project_id = helpers.project(api, "Scripts")
    page.goto(f"/projects/{project_id}/integrations/new?type=script")
    helpers.fill_script(page, "console.log('ok');\nvar = 3;\n")
    page.get_by_role("button", name="Create script").click()
    expect(page.locator(".field-error")).to_contain_text("line 2")
    assert api.get(f"/api/projects/{project_id}/integrations").json() == []


def test_variables_sensitive_values_never_reach_the_page(page: Any, api: httpx.Client) -> None:
    project_id = helpers.project(api, "Variables")
    script = helpers.integration(api, project_id, type="script", script="console.log(variables.REGION)")
    page.goto(f"/projects/{project_id}/integrations/{script['id']}")
    form = page.locator("form.add-var")
    form.get_by_label("Name", exact=True).fill("API_TOKEN")
    form.get_by_label("Value", exact=True).fill("tok-very-secret-4242")
    form.get_by_label("sensitive (never shown again)").check()
    form.get_by_role("button", name="Add variable").click()
    expect(page.get_by_role("status")).to_contain_text("Added variable API_TOKEN.")
    form.get_by_label("Name", exact=True).fill("REGION")
    form.get_by_label("Value", exact=True).fill("eu-3")
    form.get_by_role("button", name="Add variable").click()
    expect(page.get_by_role("status")).to_contain_text("Added variable REGION.")

    rows = page.locator("#variables tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="API_TOKEN")).to_contain_text("hidden (sensitive)")
    expect(rows.filter(has_text="REGION").locator("code")).to_have_text("eu-3")
    assert "tok-very-secret-4242" not in page.content()
    screenshot(page, "integration-variables")

    # Replacing the sensitive value keeps it hidden; the non-sensitive one is edited in place.
    rows.filter(has_text="API_TOKEN").get_by_label("New value of API_TOKEN").fill("tok-rotated-9999")
    rows.filter(has_text="API_TOKEN").get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("Saved variable API_TOKEN.")
    rows.filter(has_text="REGION").get_by_label("New value of REGION").fill("us-2")
    rows.filter(has_text="REGION").get_by_role("button", name="Save").click()
    expect(rows.filter(has_text="REGION").locator("code")).to_have_text("us-2")
    for path in (f"/projects/{project_id}/integrations/{script['id']}",
                 f"/projects/{project_id}/integrations/{script['id']}/edit",
                 f"/projects/{project_id}/dry-run?integration={script['id']}"):
        page.goto(path)
        html = page.content()
        assert "tok-very-secret-4242" not in html and "tok-rotated-9999" not in html, path
    expect(page.locator("#variables_json")).to_have_value('{\n  "REGION": "us-2"\n}')
    expect(page.get_by_text("Sensitive variables are not filled in")).to_contain_text("API_TOKEN")

    page.goto(f"/projects/{project_id}/integrations/{script['id']}")
    rows.filter(has_text="REGION").get_by_role("button", name="Delete").click()
    expect(page.get_by_role("status")).to_contain_text("Deleted variable REGION.")
    expect(rows).to_have_count(1)


def test_dry_run_with_a_recorded_activity(page: Any, api: httpx.Client, receiver: Receiver) -> None:
    project_id = helpers.project(api, "Dry runs")
    url = receiver.on("/never", (200, {}, b"ok"))
    script = helpers.integration(api, project_id, type="script", events=["environment.deploy"], script=(
        f"var res = fetch({url!r}, {{method: 'POST', body: JSON.stringify({{id: activity.id}})}});\n"
        "console.log('status', res.status, 'region', variables.REGION);\n"))
    api.post(f"/api/projects/{project_id}/integrations/{script['id']}/variables", json={"name": "REGION", "value": "eu-3"})
    source_id = helpers.push(api, project_id)["entity"]["id"]

    page.goto(f"/projects/{project_id}/activities")
    page.get_by_role("link", name="Dry run").click()
    page.get_by_label("Recorded activity").select_option(source_id)
    page.get_by_label("Script of").select_option(script["id"])
    page.get_by_role("button", name="Load").click()
    expect(page.locator("#activity_json")).to_contain_text(source_id)
    page.get_by_role("button", name="Run").click()
    result = page.locator("#dry-run-result")
    expect(result).to_contain_text("✓ success")
    expect(page.locator("#dry-run-log")).to_contain_text(f"HTTP request: POST {url}")
    expect(page.locator("#dry-run-log")).to_contain_text("status 200 region eu-3")
    screenshot(page, "dry-run")
    assert receiver.requests_to("/never") == []  # fetch was answered canned

    # An edited script that throws reports the error and where.
    helpers.fill_script(page, "console.log('start');\nnull.boom;\n")
    page.get_by_role("button", name="Run").click()
    expect(result).to_contain_text("✗ failure")
    expect(result.get_by_role("alert")).to_contain_text("line 2")
    expect(page.locator("#dry-run-log")).to_contain_text("start")
