"""Runs of an integration, Upsun-compatible: ``integration:activity:list`` and
``integration:activity:log`` (which follows an unfinished run's log until it is sealed)."""

from __future__ import annotations

import sys
from typing import Any

import click

from firehook.cli import common, output
from firehook.cli.client import Client, CliError, HttpError, project_path
from firehook.cli.common import err
from firehook.cli.integrations import select_integration

DEFAULT_LIMIT = 10
ACTIVITY_HEADER = ("ID", "Created", "Description", "Type", "State", "Result")
FINISHED = ("complete", "cancelled", "skipped")
RUN_TYPES = ("integration.script", "integration.webhook")


def activity_filters(fn: Any) -> Any:
    """``--type``, ``--state``, ``--result``, ``--limit``/``--count``, ``--start``."""
    options = [
        click.option("--type", "types", multiple=True, metavar="TYPE",
                     help="Filter activities by type (values split on commas and spaces)."),
        click.option("--state", "states", multiple=True, metavar="STATE",
                     help="Filter activities by state: pending, in_progress, complete, cancelled, scheduled."),
        click.option("--result", type=click.Choice(["success", "failure"]), help="Filter activities by result."),
        click.option("--limit", "--count", "limit", type=click.IntRange(1, 1000), default=DEFAULT_LIMIT,
                     show_default=True, help="Limit the number of results displayed."),
        click.option("--start", metavar="DATE",
                     help="Only activities created before this date (ISO 8601) will be listed."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def fetch_activities(api: Client, path: str, types: tuple[str, ...], states: tuple[str, ...], result: str | None,
                     limit: int, start: str | None, environment: str | None = None) -> list[dict[str, Any]]:
    """One page of activities; the API filters by any number of types and states."""
    params: dict[str, Any] = {"count": limit}
    type_list = common.split_values(types)
    if type_list:
        params["type"] = type_list
    wanted_states = common.split_values(states)
    if wanted_states:
        params["state"] = wanted_states
    if result:
        params["result"] = result
    if start:
        params["starts_at"] = start
    if environment:
        params["environment"] = environment
    return list(api.get(path, params=params))


def activity_row(item: dict[str, Any]) -> tuple[str, ...]:
    description = output.strip_tags(item.get("description")) or item.get("text") or ""
    return (item.get("id", ""), output.format_date(item.get("created_at")), description,
            item.get("type", ""), item.get("state") or "", item.get("result") or "")


@click.command("integration:activity:list")
@click.argument("integration_id", metavar="[ID]", required=False)
@activity_filters
@common.listing
@common.project
@common.remote
def integration_activity_list(api: Client, project: str, fmt: output.Format, integration_id: str | None,
                              types: tuple[str, ...], states: tuple[str, ...], result: str | None, limit: int,
                              start: str | None) -> None:
    """Get a list of activities (runs) for an integration.

    Without ID: the project's only integration, or a choice on a terminal, or else the runs
    of all integrations. Columns: ID, Created, Description, Type, State, Result; newest first. Alias:
    `integration:activities`.

    \b
    Examples:
      firehook integration:activity:list a1kz6ffxui7em --limit 20
      firehook integration:activities a1kz6ffxui7em --result failure --format csv
    """
    item = select_integration(api, project, integration_id, optional=True)
    if item is None:  # no id, several integrations, no terminal to ask: the runs of them all
        path = project_path(project, "activities")
        types = types or RUN_TYPES
        where = "all integrations"
    else:
        path = project_path(project, "integrations", item["id"], "activities")
        where = f"integration {item['id']} ({item['type']})"
    activities = fetch_activities(api, path, types, states, result, limit, start)
    if not activities:
        err("No activities found")
        sys.exit(1)
    if not fmt.machine_readable:
        err(f"Activities on the project {project}, {where}:")
    output.render([activity_row(a) for a in activities], ACTIVITY_HEADER, fmt, json_data=activities)
    if not fmt.machine_readable:
        if len(activities) == limit:
            err("")
            err(f"More activities may be available. To display older activities, increase --limit above {limit}, "
                "or set --start to a date in the past. For more information, run: "
                "firehook integration:activity:list -h")
        err("")
        err("To view the log for an activity, run: firehook integration:activity:log [integration] [activity]")


def print_log(api: Client, project: str, activity: dict[str, Any], timestamps: bool) -> dict[str, Any]:
    """Print an activity's log; an unfinished run's log is followed until it is sealed.
    Returns the activity as it is at the end."""
    unfinished = activity.get("state") not in FINISHED
    if unfinished:
        err(f"The run is {activity.get('state')}: following its log until it finishes (Ctrl+C to stop)...")
    path = project_path(project, "activities", activity["id"], "log")
    for item in api.stream_lines(path):
        if item.get("seal"):
            break
        data = item.get("data") or {}
        message = data.get("message", "")
        if timestamps:
            message = f"[{output.format_date(data.get('timestamp'))}] {message}"
        click.echo(message)
        sys.stdout.flush()
    if not unfinished:
        return activity
    final = dict(api.get(project_path(project, "activities", activity["id"])))
    err(f"The run is {final.get('state')}" + (f" (result: {final['result']})." if final.get("result") else "."))
    return final


@click.command("integration:activity:log")
@click.argument("integration_id", metavar="[INTEGRATION]", required=False)
@click.argument("activity_id", metavar="[ACTIVITY]", required=False)
@click.option("-t", "--timestamps", is_flag=True, help="Display a timestamp next to each message.")
@common.project
@common.remote
def integration_activity_log(api: Client, project: str, integration_id: str | None, activity_id: str | None,
                             timestamps: bool) -> None:
    """Display the log for an integration activity (a run).

    ACTIVITY defaults to the integration's most recent run (without INTEGRATION and with
    several integrations and no terminal: the project's most recent run). The log of a run that has not
    finished is followed until the run ends.

    \b
    Examples:
      firehook integration:activity:log a1kz6ffxui7em
      firehook integration:activity:log a1kz6ffxui7em 4h2kd8s0vx1qa -t
    """
    item = select_integration(api, project, integration_id, optional=activity_id is None)
    if item is None:  # no id, several integrations, no terminal to ask: the latest run of any
        runs_path = project_path(project, "activities")
        params: dict[str, Any] = {"type": list(RUN_TYPES)}
    else:
        runs_path = project_path(project, "integrations", item["id"], "activities")
        params = {}
    if activity_id:
        try:
            activity = api.get(project_path(project, "activities", activity_id))
        except HttpError as exc:
            if exc.status != 404:
                raise
            matches = [a for a in api.get(runs_path, params={**params, "count": 1000})
                       if a["id"].startswith(activity_id)]
            if len(matches) != 1:
                raise CliError(f"Activity not found: {activity_id}") from None
            activity = matches[0]
    else:
        latest = api.get(runs_path, params={**params, "count": 1})
        if not latest:
            raise CliError("No integration activities found")
        activity = latest[0]
    err(f"Integration ID: {activity.get('integration') or (item or {}).get('id')}")
    err(f"Activity ID: {activity['id']}")
    err(f"Type: {activity.get('type')}")
    err(f"Description: {output.strip_tags(activity.get('description')) or activity.get('text') or ''}")
    err(f"Created: {output.format_date(activity.get('created_at'))}")
    err(f"State: {activity.get('state')}")
    err("Log: ")
    print_log(api, project, activity, timestamps)


COMMANDS = (integration_activity_list, integration_activity_log)
ALIASES = {"integration:activities": "integration:activity:list"}
