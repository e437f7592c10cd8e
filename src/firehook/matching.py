"""Does an integration match an activity in a state (SPEC §3.2). Pure functions."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from firehook import model

_INTEGRATION_PREFIX = "integration."


def glob_matches(pattern: str, value: str) -> bool:
    """Shell-style glob (``*``, ``?``, ``[…]``), case-sensitive; a plain name matches itself only."""
    return fnmatch.fnmatchcase(value, pattern)


def event_matches(patterns: Iterable[str], activity_type: str) -> bool:
    """``*`` matches every type except ``integration.*``, which must be listed explicitly.

    A pattern is explicit about integration types when it starts with ``integration.``;
    this stops an integration from triggering itself through its own runs.
    """
    is_integration = activity_type.startswith(_INTEGRATION_PREFIX)
    for pattern in patterns:
        if is_integration and not pattern.startswith(_INTEGRATION_PREFIX):
            continue
        if glob_matches(pattern, activity_type):
            return True
    return False


def state_matches(states: Iterable[str], state: str) -> bool:
    return any(s == "*" or s == state for s in states)


def result_matches(wanted: str, result: str | None) -> bool:
    return wanted == "*" or wanted == result


def environments_match(
    included: Sequence[str], excluded: Sequence[str], activity_envs: Sequence[str]
) -> bool:
    """At least one environment included and none excluded; project-level needs ``*``."""
    if not activity_envs:
        return "*" in included
    if any(glob_matches(p, env) for env in activity_envs for p in excluded):
        return False
    return any(glob_matches(p, env) for env in activity_envs for p in included)


def activity_environments(activity: Mapping[str, Any]) -> list[str]:
    envs = activity.get("environments")
    if not isinstance(envs, list):
        return []
    return [e for e in envs if isinstance(e, str)]


def matches(integration: model.Integration, activity: Mapping[str, Any], state: str) -> bool:
    """True when ``integration`` gets a run for ``activity`` having just reached ``state``."""
    if not integration.enabled:
        return False
    activity_type = activity.get("type")
    if not isinstance(activity_type, str):
        return False
    result = activity.get("result")
    return (
        event_matches(integration.events, activity_type)
        and state_matches(integration.states, state)
        and result_matches(integration.result, result if isinstance(result, str) else None)
        and environments_match(
            integration.environments, integration.excluded_environments, activity_environments(activity)
        )
    )


def matching(
    integrations: Iterable[model.Integration], activity: Mapping[str, Any], state: str
) -> list[model.Integration]:
    """The integrations that match, in the order given."""
    return [i for i in integrations if matches(i, activity, state)]
