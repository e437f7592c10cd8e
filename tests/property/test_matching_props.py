"""Matching (SPEC §3.2) as properties: plain names, `*` and `integration.*`, exclusions."""

from __future__ import annotations

import fnmatch

from hypothesis import given, settings
from hypothesis import strategies as st

from firehook import matching, model

PROPS = settings(max_examples=150, deadline=None)

# Names as users write them: letters of both cases, digits, dots, dashes, slashes, underscores.
NAME_CHARS = st.sampled_from("abcdefgxyzABCXYZ0129._-/")
names = st.text(NAME_CHARS, min_size=1, max_size=12)
integration_types = st.builds(lambda rest: "integration." + rest, st.text(NAME_CHARS, max_size=10))
other_types = names.filter(lambda t: not t.startswith("integration."))
GLOB_CHARS = st.sampled_from("abcxyzAB09._-/*?[]!")
globs = st.text(GLOB_CHARS, min_size=1, max_size=10)
STATES = ["pending", "in_progress", "complete", "cancelled", "scheduled", "staged"]


def integration(**kw: object) -> model.Integration:
    base: dict[str, object] = dict(id="i", project="p", type="webhook", events=("*",), states=("*",))
    base.update(kw)
    return model.Integration(**base)  # type: ignore[arg-type]


@PROPS
@given(names, names)
def test_a_plain_name_matches_itself_only(pattern: str, value: str) -> None:
    assert matching.glob_matches(pattern, value) == (pattern == value)
    assert matching.glob_matches(value, value)


@PROPS
@given(names, names)
def test_a_plain_event_name_matches_itself_only(pattern: str, activity_type: str) -> None:
    for t in (activity_type, pattern):
        assert matching.event_matches([pattern], t) == (pattern == t)


@PROPS
@given(integration_types, st.lists(globs.filter(lambda p: not p.startswith("integration.")), max_size=5))
def test_star_and_every_non_explicit_pattern_never_match_integration_types(run_type: str,
                                                                           patterns: list[str]) -> None:
    assert not matching.event_matches(["*", *patterns], run_type)
    activity = {"type": run_type, "environments": []}
    assert not matching.matches(integration(events=("*", *patterns)), activity, "complete")


@PROPS
@given(other_types)
def test_star_matches_every_other_type(activity_type: str) -> None:
    assert matching.event_matches(["*"], activity_type)


@PROPS
@given(integration_types)
def test_integration_types_match_when_listed_explicitly(run_type: str) -> None:
    assert matching.event_matches(["integration.*"], run_type)
    assert matching.event_matches([run_type], run_type)


@PROPS
@given(st.lists(names, min_size=1, max_size=4), st.lists(globs, min_size=1, max_size=3),
       st.lists(globs, min_size=1, max_size=3))
def test_excluded_wins_over_included(envs: list[str], included: list[str], excluded: list[str]) -> None:
    hit_excluded = any(fnmatch.fnmatchcase(e, p) for e in envs for p in excluded)
    got = matching.environments_match(["*", *included], excluded, envs)
    assert got == (not hit_excluded)
    # an environment that is both included by name and excluded by name is excluded
    assert not matching.environments_match([envs[0]], [envs[0]], envs)
    item = integration(environments=("*",), excluded_environments=(envs[0],))
    assert not matching.matches(item, {"type": "environment.push", "environments": envs}, "complete")


@PROPS
@given(st.lists(globs, max_size=4), st.lists(globs, max_size=3))
def test_project_level_activities_need_star(included: list[str], excluded: list[str]) -> None:
    assert matching.environments_match(included, excluded, []) == ("*" in included)


def oracle(item: model.Integration, activity: dict[str, object], state: str) -> bool:
    """SPEC §3.2 written out independently."""
    t = activity.get("type")
    if not item.enabled or not isinstance(t, str):
        return False
    if t.startswith("integration."):
        events_ok = any(p.startswith("integration.") and fnmatch.fnmatchcase(t, p) for p in item.events)
    else:
        events_ok = any(fnmatch.fnmatchcase(t, p) for p in item.events)
    state_ok = "*" in item.states or state in item.states
    result = activity.get("result")
    result_ok = item.result == "*" or item.result == result
    envs = [e for e in activity.get("environments") or [] if isinstance(e, str)]  # type: ignore[union-attr]
    if envs:
        env_ok = (any(fnmatch.fnmatchcase(e, p) for e in envs for p in item.environments)
                  and not any(fnmatch.fnmatchcase(e, p) for e in envs for p in item.excluded_environments))
    else:
        env_ok = "*" in item.environments
    return events_ok and state_ok and result_ok and env_ok


@settings(max_examples=300, deadline=None)
@given(
    events=st.lists(st.one_of(globs, st.just("*"), st.just("integration.*"), names), min_size=1, max_size=3),
    states=st.lists(st.sampled_from([*STATES, "*"]), min_size=1, max_size=3),
    wanted=st.sampled_from(["*", "success", "failure"]),
    environments=st.lists(st.one_of(globs, st.just("*")), min_size=1, max_size=3),
    excluded=st.lists(globs, max_size=2),
    enabled=st.booleans(),
    activity_type=st.one_of(names, integration_types, st.sampled_from(["environment.push", "environment.deploy"])),
    result=st.sampled_from([None, "success", "failure"]),
    envs=st.lists(names, max_size=3),
    state=st.sampled_from(STATES),
)
def test_matches_agrees_with_the_spec(events: list[str], states: list[str], wanted: str, environments: list[str],
                                      excluded: list[str], enabled: bool, activity_type: str, result: str | None,
                                      envs: list[str], state: str) -> None:
    item = integration(events=tuple(events), states=tuple(states), result=wanted, environments=tuple(environments),
                       excluded_environments=tuple(excluded), enabled=enabled)
    activity = {"type": activity_type, "result": result, "environments": envs}
    assert matching.matches(item, activity, state) == oracle(item, activity, state)
    assert matching.matching([item, item], activity, state) == ([item, item] if oracle(item, activity, state) else [])
