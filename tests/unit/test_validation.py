from __future__ import annotations

from typing import Any

import pytest

from firehook import errors, validation
from tests import support


@pytest.mark.parametrize("name", ["push-complete", "redeploy-pending", "redeploy-in-progress", "redeploy-complete"])
def test_fixtures_are_accepted_as_they_are(name: str) -> None:
    doc = support.fixture_doc(name)
    assert validation.activity(doc) is doc


@pytest.mark.parametrize(
    "doc, field",
    [
        ([], "body"),
        ("text", "body"),
        ({}, "type"),
        ({"type": None}, "type"),
        ({"type": 12}, "type"),
        ({"type": "has spaces"}, "type"),
        ({"type": "environment.push", "state": "done"}, "state"),
        ({"type": "environment.push", "result": "ok"}, "result"),
        ({"type": "environment.push", "environments": "main"}, "environments"),
        ({"type": "environment.push", "environments": [1]}, "environments"),
        ({"type": "environment.push", "payload": "x"}, "payload"),
        ({"type": "environment.push", "parameters": [1]}, "parameters"),
        ({"type": "environment.push", "created_at": 5}, "created_at"),
        ({"type": "environment.push", "id": "a/b"}, "id"),
        ({"type": "environment.push", "completion_percent": "50"}, "completion_percent"),
    ],
)
def test_bad_activity_names_the_field(doc: Any, field: str) -> None:
    with pytest.raises(errors.InvalidInput) as info:
        validation.activity(doc)
    assert field in info.value.detail


def test_php_empty_arrays_are_objects() -> None:
    validation.activity({"type": "environment.push", "timings": [], "payload": [], "parameters": []})


def test_integration_create_defaults_and_errors() -> None:
    assert validation.integration_changes({"type": "script", "script": "x()"}, None) == {"script": "x()"}
    with pytest.raises(errors.InvalidInput, match="type"):
        validation.integration_changes({}, None)
    with pytest.raises(errors.InvalidInput, match="script"):
        validation.integration_changes({"type": "script"}, None)
    with pytest.raises(errors.InvalidInput, match="url"):
        validation.integration_changes({"type": "webhook"}, None)
    with pytest.raises(errors.InvalidInput) as info:
        validation.integration_changes({"type": "webhook", "url": "ftp://x"}, None)
    assert "url" in info.value.detail
    with pytest.raises(errors.InvalidInput) as info:
        validation.integration_changes({"type": "script", "script": "x", "url": "http://x"}, None)
    assert info.value.detail == {"url": "does not apply to a script integration"}
    with pytest.raises(errors.InvalidInput) as info:
        validation.integration_changes({"type": "webhook", "url": "http://x", "colour": "red"}, None)
    assert "colour" in info.value.detail


@pytest.mark.parametrize(
    "body, field",
    [
        ({"events": "a.x b.y,c.*"}, None),
        ({"events": ["environment.psh"]}, None),
        ({"events": ["*", "environment.*", "pr-[!x]?.push", "acme.ci-build.done"]}, None),
        ({"events": ["bad event!"]}, "events"),
        ({"events": ["push"]}, "events"),
        ({"events": ["environment..push"]}, "events"),
        ({"events": ["environment.push!"]}, "events"),
        ({"events": []}, "events"),
        ({"events": [""]}, "events"),
        ({"events": ["bad event"]}, "events"),
        ({"states": ["finished"]}, "states"),
        ({"states": ["*"]}, None),
        ({"result": "ok"}, "result"),
        ({"enabled": "yes"}, "enabled"),
        ({"retry": [5, -1]}, "retry"),
        ({"retry": [5, 60]}, None),
        ({"shared_key": ""}, "shared_key"),
        ({"shared_key": None}, None),
        ({"type": "script"}, "type"),
        ({"keep_previous_key_for": 0}, "keep_previous_key_for"),
    ],
)
def test_integration_patch_fields(body: dict[str, Any], field: str | None) -> None:
    if field is None:
        validation.integration_changes(body, "webhook")
        return
    with pytest.raises(errors.InvalidInput) as info:
        validation.integration_changes(body, "webhook")
    assert field in info.value.detail


def test_option_strings_split_on_commas_and_spaces() -> None:
    assert validation.integration_changes({"events": "environment.push, environment.deploy"}, "webhook") == {
        "events": ("environment.push", "environment.deploy")}


def test_read_only_fields_are_ignored_on_patch() -> None:
    assert validation.integration_changes({"id": "x", "created_at": "t", "_links": {}, "type": "webhook"},
                                          "webhook") == {}


def test_variable_rules() -> None:
    assert validation.variable_changes({"name": "GH_TOKEN", "value": "s"}, creating=True)["name"] == "GH_TOKEN"
    for body, field in [({"value": "x"}, "name"), ({"name": "1bad", "value": "x"}, "name"),
                        ({"name": "A", "value": 3}, "value"), ({"name": "A", "value": "x", "is_json": "y"}, "is_json")]:
        with pytest.raises(errors.InvalidInput) as info:
            validation.variable_changes(body, creating=True)
        assert field in info.value.detail
    with pytest.raises(errors.InvalidInput, match="cannot be changed"):
        validation.variable_changes({"name": "B"}, creating=False)
