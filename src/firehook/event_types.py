"""The activity types Upsun uses (SPEC §2.2), and what an integration's ``events`` may hold. Pure.

Any dotted name is accepted (platforms invent their own); these are the ones firehook knows,
for listings, documentation and the "did you mean" warning given for a near miss such as
``environment.psh``.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Iterable


def _expand(*names: str) -> tuple[str, ...]:
    """``project.domain.create|delete|update`` → the three names."""
    out: list[str] = []
    for name in names:
        head, _, last = name.rpartition(".")
        out.extend(f"{head}.{part}" if head else part for part in last.split("|"))
    return tuple(out)


KNOWN: tuple[str, ...] = _expand(
    "project.clear_build_cache", "project.create", "project.domain.create|delete|update",
    "project.metrics.enable|update|disable", "project.modify.title", "project.variable.create|delete|update",
    "environment.activate", "environment.backup", "environment.backup.delete", "environment.branch",
    "environment.certificate.renewal", "environment.cron", "environment.deactivate", "environment.delete",
    "environment.deploy", "environment.domain.create|delete|update", "environment.initialize",
    "environment.merge", "environment.merge-pr", "environment.operation", "environment.pause",
    "environment.push", "environment.redeploy", "environment.resources.update", "environment.restore",
    "environment.resume", "environment.route.create|delete|update", "environment.source-operation",
    "environment.synchronize", "environment.update.http_access", "environment.update.restrict_robots",
    "environment.update.smtp", "environment.variable.create|delete|update",
    "environment_type.access.create|delete|update",
    "integration.script", "integration.webhook", "integration.github.fetch", "integration.gitlab.fetch",
    "integration.bitbucket.fetch", "integration.health.email", "integration.health.slack",
    "integration.health.pagerduty", "integration.health.webhook",
    "maintenance.upgrade",
)
KNOWN_SET = frozenset(KNOWN)

_WORD = r"[A-Za-z0-9_-]+"
# A segment of a pattern: letters, digits, _ and -, with the glob characters * and ?, and
# bracket classes ([abc], [!abc]).
_GLOB_SEGMENT = r"(?:[A-Za-z0-9_*?-]|\[!?[A-Za-z0-9_.-]+\])+"
EVENT_NAME = re.compile(rf"^{_WORD}(?:\.{_WORD})+$")
EVENT_PATTERN = re.compile(rf"^{_GLOB_SEGMENT}(?:\.{_GLOB_SEGMENT})*$")
_GLOB_CHARS = re.compile(r"[*?\[]")


def is_glob(item: str) -> bool:
    return bool(_GLOB_CHARS.search(item))


def pattern_error(item: str) -> str | None:
    """Why ``item`` cannot be an entry of ``events`` (None when it can): a dotted name such as
    ``environment.push``, or a shell-style glob such as ``environment.*`` or ``*``."""
    if len(item) > 128:
        return f"{item[:40]!r}… is longer than 128 characters"
    if is_glob(item):
        if EVENT_PATTERN.match(item):
            return None
        return f"{item!r} is not an event pattern: use dotted names with * ? or [...], like environment.*"
    if EVENT_NAME.match(item):
        return None
    return (f"{item!r} is not a dotted event name like environment.push: letters, digits, _ and - "
            "separated by dots (or a pattern like environment.*)")


def suggestion(name: str) -> str | None:
    """The known type ``name`` is probably a typo of, or None."""
    if name in KNOWN_SET or is_glob(name):
        return None
    close = difflib.get_close_matches(name, KNOWN, n=1, cutoff=0.8)
    return close[0] if close else None


def warnings(events: Iterable[str]) -> list[str]:
    """Warnings for an integration's ``events``: a name close to a known type ("did you mean"),
    a pattern that matches no known type. Unknown names far from any known one are fine."""
    out: list[str] = []
    for item in events:
        if is_glob(item):
            if item != "*" and not any(fnmatch.fnmatchcase(t, item) for t in KNOWN):
                out.append(f"events: {item!r} matches none of the activity types firehook knows")
            continue
        close = suggestion(item)
        if close is not None:
            out.append(f"events: {item!r} is not a known activity type; did you mean {close!r}?")
    return out
