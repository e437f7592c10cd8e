"""Finding the integration (and the run) a command is about, as the Upsun CLI does: by id or
unambiguous id prefix; without an id, a numbered choice on a terminal
(``Enter a number to choose an integration:``), else ``An integration ID is required.``"""

from __future__ import annotations

from typing import Any

from firehook.cli import interaction
from firehook.cli.client import Client, CliError, HttpError, project_path

REQUIRED = "An integration ID is required."


def find_integration(api: Client, project: str, ident: str) -> dict[str, Any]:
    """The integration with this id, or the only one whose id starts with it (as Upsun does)."""
    try:
        return dict(api.get(project_path(project, "integrations", ident)))
    except HttpError as exc:
        if exc.status != 404 or str(exc.detail).startswith("project "):
            raise
    matches = [i for i in api.get(project_path(project, "integrations")) if i["id"].startswith(ident)]
    if len(matches) == 1:
        return dict(matches[0])
    if len(matches) > 1:
        ids = ", ".join(i["id"] for i in matches)
        raise CliError(f'The partial ID "{ident}" is ambiguous; it matches the following Integration IDs: {ids}',
                       bare=True)
    raise CliError(f"Integration not found: {ident}", bare=True)


def select_integration(api: Client, project: str, ident: str | None, *,
                       lenient: bool = False) -> dict[str, Any] | None:
    """``ident``'s integration. Without one, on a terminal: the only integration, else a
    numbered choice. Without a terminal: Upsun's refusal, exit code 1 — unless ``lenient``
    (the runs commands, a firehook convenience): then the only integration, or None (the
    caller works across all integrations)."""
    if ident:
        return find_integration(api, project, ident)
    if not interaction.STATE.interactive:
        if not lenient:
            raise CliError(REQUIRED, bare=True)
        items = api.get(project_path(project, "integrations"))
        return dict(items[0]) if len(items) == 1 else None
    items = api.get(project_path(project, "integrations"))
    if not items:
        raise CliError("No integrations found.", bare=True)
    if len(items) == 1:
        return dict(items[0])
    chosen = interaction.choose([(i["id"], f"{i['id']} ({i['type']})") for i in items],
                                "Enter a number to choose an integration:")
    return next(dict(i) for i in items if i["id"] == chosen)


def find_run(api: Client, project: str, runs_path: str, params: dict[str, Any],
             activity_id: str | None) -> dict[str, Any]:
    """The run ``activity_id`` (or the only one of ``runs_path`` whose id starts with it);
    without one, the most recent run."""
    if not activity_id:
        latest = api.get(runs_path, params={**params, "count": 1})
        if not latest:
            raise CliError("No integration activities found", bare=True)
        return dict(latest[0])
    try:
        return dict(api.get(project_path(project, "activities", activity_id)))
    except HttpError as exc:
        if exc.status != 404:
            raise
    matches = [a for a in api.get(runs_path, params={**params, "count": 1000}) if a["id"].startswith(activity_id)]
    if len(matches) != 1:
        raise CliError(f"Integration activity not found: {activity_id}", bare=True) from None
    return dict(matches[0])
