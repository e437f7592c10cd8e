from __future__ import annotations

import dataclasses

import pytest

from firehook import matching, model


def integ(**kw: object) -> model.Integration:
    base = dict(id="i1", project="p", type="webhook", events=("*",), states=("complete",))
    base.update(kw)
    return model.Integration(**base)  # type: ignore[arg-type]


def act(type_: str = "environment.push", envs: list[str] | None = None, result: str | None = "success") -> dict:
    return {"type": type_, "environments": ["main"] if envs is None else envs, "result": result}


@pytest.mark.parametrize(
    "patterns, activity_type, expected",
    [
        (["*"], "environment.push", True),
        (["*"], "project.domain.create", True),
        (["*"], "integration.webhook", False),  # `*` never matches integration.* (loops)
        (["*"], "integration.script", False),
        (["integration.*"], "integration.webhook", True),
        (["integration.webhook"], "integration.webhook", True),
        (["integration.webhook"], "integration.script", False),
        (["environment.*"], "environment.push", True),
        (["environment.*"], "environment.backup.delete", True),
        (["environment.*"], "project.create", False),
        (["environment.push"], "environment.push", True),
        (["environment.push"], "environment.push.extra", False),  # a plain name matches itself only
        (["environment.pus?"], "environment.push", True),
        (["environment.[bp]ush"], "environment.push", True),
        (["environment.[!p]ush"], "environment.push", False),
        (["*.push"], "environment.push", True),
        (["*.webhook"], "integration.webhook", False),  # not explicit about integration.*
        (["Environment.push"], "environment.push", False),  # case-sensitive
        ([], "environment.push", False),
        (["project.*", "environment.deploy"], "environment.deploy", True),
    ],
)
def test_event_matches(patterns: list[str], activity_type: str, expected: bool) -> None:
    assert matching.event_matches(patterns, activity_type) is expected


@pytest.mark.parametrize(
    "included, excluded, envs, expected",
    [
        (["*"], [], ["main"], True),
        (["main"], [], ["main"], True),
        (["main"], [], ["staging"], False),
        (["pr-*"], [], ["pr-12"], True),
        (["pr-*"], [], ["pr"], False),
        (["feature/*"], [], ["feature/login"], True),
        (["feature/*"], [], ["feature"], False),
        (["*"], ["main"], ["main"], False),
        (["*"], ["pr-*"], ["pr-3"], False),
        (["*"], ["pr-*"], ["main"], True),
        (["*"], ["main"], ["main", "staging"], False),  # none may be excluded
        (["staging"], [], ["main", "staging"], True),  # at least one included
        (["*"], [], [], True),  # project-level activity: only with *
        (["main"], [], [], False),
        (["pr-*", "*"], [], [], True),
        (["env-?"], [], ["env-1"], True),
        (["env-?"], [], ["env-10"], False),
    ],
)
def test_environments_match(included: list[str], excluded: list[str], envs: list[str], expected: bool) -> None:
    assert matching.environments_match(included, excluded, envs) is expected


@pytest.mark.parametrize(
    "states, state, expected",
    [(["complete"], "complete", True), (["complete"], "pending", False), (["*"], "in_progress", True),
     (["pending", "complete"], "pending", True), ([], "complete", False)],
)
def test_state_matches(states: list[str], state: str, expected: bool) -> None:
    assert matching.state_matches(states, state) is expected


@pytest.mark.parametrize(
    "wanted, result, expected",
    [("*", None, True), ("*", "failure", True), ("success", "success", True), ("success", "failure", False),
     ("success", None, False), ("failure", "failure", True)],
)
def test_result_matches(wanted: str, result: str | None, expected: bool) -> None:
    assert matching.result_matches(wanted, result) is expected


def test_matches_all_conditions_together() -> None:
    item = integ(events=("environment.push",), states=("complete",), result="success", environments=("main",))
    assert matching.matches(item, act(), "complete")
    assert not matching.matches(item, act(), "pending")
    assert not matching.matches(item, act(result="failure"), "complete")
    assert not matching.matches(item, act(type_="environment.deploy"), "complete")
    assert not matching.matches(item, act(envs=["dev"]), "complete")
    assert not matching.matches(dataclasses.replace(item, enabled=False), act(), "complete")


def test_matches_tolerates_odd_documents() -> None:
    item = integ()
    assert not matching.matches(item, {"type": None}, "complete")
    assert matching.matches(item, {"type": "environment.push", "environments": None}, "complete")
    assert matching.matches(item, {"type": "environment.push", "environments": "main"}, "complete")
    assert not matching.matches(integ(environments=("main",)), {"type": "environment.push"}, "complete")


def test_default_script_events_only_push() -> None:
    script = integ(type="script", events=model.DEFAULT_EVENTS["script"])
    assert matching.matches(script, act(), "complete")
    assert not matching.matches(script, act(type_="environment.deploy"), "complete")


def test_matching_keeps_order() -> None:
    items = [integ(id="a"), integ(id="b", events=("project.*",)), integ(id="c")]
    assert [i.id for i in matching.matching(items, act(), "complete")] == ["a", "c"]
