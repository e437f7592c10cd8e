"""Activity type filters as the Upsun CLI reads them (its ActivityLoader): ``--type`` and
``-x/--exclude-type`` take names, wildcards (``%`` or ``*``: ``environment.*``) and short forms
(the first part optional: ``script`` is ``integration.script``), matched against Upsun's list
of activity types; a value that matches none is used as it is, with a warning."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

# The activity types the Upsun CLI knows (ActivityLoader::getAvailableTypes), firehook's runs
# among them.
AVAILABLE = (
    "environment.access.add", "environment.access.remove", "environment.activate", "environment.alert",
    "environment.backup", "environment.backup.delete", "environment.branch", "environment.certificate.renewal",
    "environment.cron", "environment.deactivate", "environment.delete", "environment.deploy",
    "environment.domain.create", "environment.domain.delete", "environment.domain.update",
    "environment.initialize", "environment.merge", "environment.merge-pr", "environment.operation",
    "environment.pause", "environment.push", "environment.redeploy", "environment.restore", "environment.resume",
    "environment.resources.update", "environment.update.privileged_configuration", "environment.version.create",
    "environment.version.update", "environment.version.delete", "environment.route.create",
    "environment.route.delete", "environment.route.update", "environment.source-operation",
    "environment.subscription.update", "environment.synchronize", "environment.update.http_access",
    "environment.update.restrict_robots", "environment.update.smtp", "environment.variable.create",
    "environment.variable.delete", "environment.variable.update", "environment_type.access.create",
    "environment_type.access.delete", "environment_type.access.update", "integration.bitbucket.fetch",
    "integration.bitbucket.register_hooks", "integration.bitbucket_server.fetch",
    "integration.bitbucket_server.register_hooks", "integration.github.fetch", "integration.gitlab.fetch",
    "integration.health.email", "integration.health.pagerduty", "integration.health.slack",
    "integration.health.webhook", "integration.script", "integration.webhook", "maintenance.upgrade",
    "project.clear_build_cache", "project.create", "project.domain.create", "project.domain.delete",
    "project.domain.update", "project.metrics.enable", "project.metrics.update", "project.metrics.disable",
    "project.modify.title", "project.variable.create", "project.variable.delete", "project.variable.update",
)


def select(subjects: Sequence[str], wildcard: str) -> list[str]:
    """The subjects matching ``wildcard`` (``%`` and ``*`` match anything)."""
    pattern = re.compile("^" + re.escape(wildcard).replace("%", ".*").replace("\\*", ".*") + "$")
    return [s for s in subjects if pattern.match(s)]


def _expand(value: str) -> list[str]:
    return select(AVAILABLE, value) or select(AVAILABLE, "%." + value)


def resolve(include: Sequence[str], exclude: Sequence[str], warn: Callable[[str], None]) -> list[str]:
    """The types to ask the server for (empty: every type), as Upsun's ActivityLoader works
    them out from ``--type`` and ``--exclude-type`` values."""
    excluded: list[str] = []
    for value in exclude:
        found = _expand(value)
        if not found:
            warn(f"Unrecognized activity type to exclude: {value}")
            found = [value]
        excluded += found
    wanted: list[str] = []
    for value in include:
        found = _expand(value)
        if not found:
            warn(f"Unrecognized activity type to include: {value}")
            wanted.append(value)
        else:
            wanted += found
        if value in exclude or set(found) & set(excluded):
            warn("The --exclude-type and --type options conflict.")
    if not wanted and excluded:
        wanted = [t for t in AVAILABLE if t not in excluded]
    out: list[str] = []
    for item in wanted:
        if item not in out:
            out.append(item)
    return out
