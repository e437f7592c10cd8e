"""Data for the browser tests, made through the API (each test makes its own)."""

from __future__ import annotations

import secrets
from typing import Any

import httpx

from tests import support
from tests.receivers import wait_for


def project(api: httpx.Client, title: str) -> str:
    project_id = "ui-" + secrets.token_hex(3)
    answer = api.post("/api/projects", json={"id": project_id, "title": title})
    assert answer.status_code == 201, answer.text
    return project_id


def integration(api: httpx.Client, project_id: str, **fields: Any) -> dict[str, Any]:
    answer = api.post(f"/api/projects/{project_id}/integrations", json=fields)
    assert answer.status_code == 201, answer.text
    return answer.json()["_embedded"]["entity"]  # type: ignore[no-any-return]


def push(api: httpx.Client, project_id: str, **overrides: Any) -> dict[str, Any]:
    """The real ``environment.push`` fixture, with a fresh id; returns the intake answer."""
    doc = support.fixture_doc("push-complete")
    doc["id"] = "act" + secrets.token_hex(5)
    doc.update(overrides)
    answer = api.post(f"/api/projects/{project_id}/activities", json=doc)
    assert answer.status_code == 201, answer.text
    return answer.json()["_embedded"]  # type: ignore[no-any-return]


def activity(api: httpx.Client, project_id: str, activity_id: str) -> dict[str, Any]:
    return api.get(f"/api/projects/{project_id}/activities/{activity_id}").json()  # type: ignore[no-any-return]


def finished(api: httpx.Client, project_id: str, run_id: str) -> dict[str, Any]:
    return wait_for(lambda: (doc := activity(api, project_id, run_id))["state"] in ("complete", "cancelled") and doc)


def fill_script(tab: Any, text: str, field: str = "script") -> None:
    """Type a script into the code editor over textarea ``field`` (CodeMirror hides the textarea
    and writes back into it when the form is sent)."""
    editor = tab.locator(f"[data-editor-for={field}]")
    editor.wait_for()
    editor.evaluate("(node, text) => node.CodeMirror.setValue(text)", text)
