"""Event names of integrations (issue 15): dotted names and globs only, a "did you mean" for a
near miss of a known type (SPEC §2.2), unknown dotted names accepted without a word."""

from __future__ import annotations

import pytest

from firehook import errors, event_types, validation


def test_known_types_are_spec_2_2_expanded() -> None:
    for name in ("environment.push", "project.domain.delete", "project.metrics.disable",
                 "environment_type.access.update", "maintenance.upgrade", "integration.webhook"):
        assert name in event_types.KNOWN_SET
    assert not any("|" in name for name in event_types.KNOWN)


@pytest.mark.parametrize("item", ["bad event!", "push", "environment.", ".push", "environment..push",
                                  "environment.push!", "env/push", "a" * 130 + ".b", "environment.[push"])
def test_refused_names_say_what_is_expected(item: str) -> None:
    why = event_types.pattern_error(item)
    assert why is not None and ("dotted" in why or "pattern" in why or "longer" in why)
    with pytest.raises(errors.InvalidInput) as caught:
        validation.integration_changes({"type": "webhook", "url": "http://x.example/", "events": [item]}, None)
    assert set(caught.value.detail) == {"events"}


@pytest.mark.parametrize("item", ["*", "environment.*", "environment.push", "acme.deploy-done",
                                  "integration.*", "environment.[!p]*", "environment.?ush", "*.push"])
def test_accepted(item: str) -> None:
    assert event_types.pattern_error(item) is None


def test_did_you_mean_for_a_near_miss_only() -> None:
    assert event_types.warnings(["environment.psh"]) == [
        "events: 'environment.psh' is not a known activity type; did you mean 'environment.push'?"]
    assert event_types.warnings(["environment.redeplay", "enviroment.push"]) == [
        "events: 'environment.redeplay' is not a known activity type; did you mean 'environment.redeploy'?",
        "events: 'enviroment.push' is not a known activity type; did you mean 'environment.push'?"]
    assert event_types.warnings(["environment.push", "acme.ci.done", "*", "environment.*"]) == []


def test_a_pattern_that_matches_no_known_type_is_warned() -> None:
    assert event_types.warnings(["enviroment.*"]) == [
        "events: 'enviroment.*' matches none of the activity types firehook knows"]
