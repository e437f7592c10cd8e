"""Runs of an integration, Upsun-compatible: ``integration:activity:list``,
``integration:activity:get`` and ``integration:activity:log`` (which follows an unfinished
run's log until it is sealed)."""

from __future__ import annotations

import datetime as dt
import re
import sys
import time
from typing import Any

import click

from firehook.cli import activity_types, common, dates, output
from firehook.cli.client import Client, project_path
from firehook.cli.common import err
from firehook.cli.selection import find_run, select_integration

DEFAULT_LIMIT = 10
# Upsun's columns of integration:activity:list (keys for -c/--columns), and those it shows by default.
ACTIVITY_COLUMNS = (("id", "ID"), ("created", "Created"), ("completed", "Completed"), ("description", "Description"),
                    ("progress", "Progress"), ("type", "Type"), ("state", "State"), ("result", "Result"),
                    ("time_execute", "Exec time (s)"), ("time_wait", "Wait time (s)"),
                    ("time_build", "Build time (s)"), ("time_deploy", "Deploy time (s)"))
ACTIVITY_DEFAULT = ("id", "created", "description", "type", "state", "result")
FINISHED = ("complete", "cancelled", "skipped")
RUN_TYPES = ("integration.script", "integration.webhook")
INCOMPLETE = ("in_progress", "pending")
# Upsun's ActivityMonitor::formatState.
STATE_NAMES = {"pending": "pending", "complete": "complete", "in_progress": "in progress", "cancelled": "cancelled"}
# A webhook run waiting for a later attempt says so in its log (executors.py writes the line);
# following it for longer than this needs --follow.
NEXT_ATTEMPT = re.compile(r"^Next attempt in ([0-9.]+) s\.$")
FOLLOW_WAIT_LIMIT = 60.0
# integration:activity:log's exit code for a run whose result is failure (a CI step fails with it).
RUN_FAILED = 1


def format_state(state: str | None) -> str:
    return STATE_NAMES.get(state or "", state or "")


def activity_filters(fn: Any) -> Any:
    """Upsun's activity filters: ``--type``, ``-x/--exclude-type``, ``--state``, ``-i/--incomplete``,
    ``--result``, ``--limit`` (``--count``), ``--start``."""
    options = [
        click.option("--type", "types", multiple=True, metavar="TYPE",
                     help='Filter activities by type. Values may be split by commas (e.g. "a,b,c") and/or '
                          "whitespace. The % or * characters can be used as a wildcard (environment.*); the first "
                          "part is optional (script is integration.script)."),
        click.option("-x", "--exclude-type", "exclude_types", multiple=True, metavar="TYPE",
                     help='Exclude activities by type. Values may be split by commas (e.g. "a,b,c") and/or '
                          "whitespace. The % or * characters can be used as a wildcard to exclude types."),
        click.option("--state", "states", multiple=True, metavar="STATE",
                     help="Filter activities by state: pending, in_progress, complete, cancelled, scheduled."),
        click.option("-i", "--incomplete", is_flag=True,
                     help="Only list incomplete activities (--state in_progress,pending)."),
        click.option("--result", type=click.Choice(["success", "failure"]), help="Filter activities by result."),
        click.option("--limit", "--count", "limit", type=click.IntRange(1, 1000), default=DEFAULT_LIMIT,
                     show_default=True, help="Limit the number of results displayed."),
        click.option("--start", metavar="DATE", callback=_start_option,
                     help="Only activities created before this date will be listed: any ISO 8601 date, or "
                          "what PHP's strtotime reads (yesterday, -2 hours, 3 days ago…; local time zone)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _start_option(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if not value:
        return None
    try:
        moment = dates.parse_start(value)
    except ValueError:
        raise click.BadParameter(f"Failed to parse time string ({value}): expected an ISO 8601 date or a "
                                 "relative one such as yesterday or -2 hours.") from None
    return moment.astimezone(dt.timezone.utc).isoformat()


def fetch_activities(api: Client, path: str, types: tuple[str, ...], states: tuple[str, ...], result: str | None,
                     limit: int, start: str | None, environment: str | None = None, *,
                     exclude_types: tuple[str, ...] = (), incomplete: bool = False,
                     default_types: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """One page of activities; the API filters by any number of types and states."""
    params: dict[str, Any] = {"count": limit}
    type_list = activity_types.resolve(common.split_values(types), common.split_values(exclude_types), err)
    if not type_list and default_types:
        type_list = list(default_types)
    if type_list:
        params["type"] = type_list
    wanted_states = common.split_values(states)
    if incomplete:
        if wanted_states and wanted_states != list(INCOMPLETE):
            err("The --incomplete option implies --state in_progress,pending")
        wanted_states = list(INCOMPLETE)
    if wanted_states:
        params["state"] = wanted_states
    if result:
        params["result"] = result
    if start:
        params["starts_at"] = start
    if environment:
        params["environment"] = environment
    return list(api.get(path, params=params))


def activity_cells(item: dict[str, Any]) -> tuple[str, ...]:
    """Every column of ACTIVITY_COLUMNS for one activity, as Upsun fills them."""
    description = output.strip_tags(item.get("description")) or item.get("text") or ""
    raw_timings = item.get("timings")
    timings: dict[str, Any] = raw_timings if isinstance(raw_timings, dict) else {}
    percent = item.get("completion_percent")
    if percent is None:
        percent = 100 if item.get("state") in FINISHED else 0
    return (item.get("id", ""), output.format_date(item.get("created_at")),
            output.format_date(item.get("completed_at")), description, f"{percent}%", item.get("type", ""),
            format_state(item.get("state")), item.get("result") or "",
            *[output.cell(timings.get(k)) for k in ("execute", "wait", "build", "deploy")])


def render_activities(items: list[dict[str, Any]], fmt: output.Format) -> None:
    output.render([activity_cells(a) for a in items], [title for _, title in ACTIVITY_COLUMNS], fmt,
                  json_data=items, keys=[key for key, _ in ACTIVITY_COLUMNS], default=ACTIVITY_DEFAULT)


@click.command("integration:activity:list")
@click.argument("integration_id", metavar="[ID]", required=False)
@activity_filters
@common.listing
@common.project
@common.remote
def integration_activity_list(api: Client, project: str, fmt: output.Format, integration_id: str | None,
                              types: tuple[str, ...], exclude_types: tuple[str, ...], states: tuple[str, ...],
                              incomplete: bool, result: str | None, limit: int, start: str | None) -> None:
    """Get a list of activities (runs) for an integration.

    Without ID: the project's only integration, or a choice on a terminal, or else the runs
    of all integrations. Columns: ID, Created, Description, Type, State, Result by default;
    also Completed, Progress and the timings (-c/--columns). Newest first. Aliases:
    `integration:activities`, `int:act`.

    \b
    Examples:
      firehook integration:activity:list a1kz6ffxui7em --limit 20
      firehook integration:activities a1kz6ffxui7em --result failure --format csv
      firehook int:act a1kz6ffxui7em --type webhook -i --start yesterday -c +completed
    """
    item = select_integration(api, project, integration_id, lenient=True)
    if item is None:  # no id, several integrations, no terminal to ask: the runs of them all
        path = project_path(project, "activities")
        where = "all integrations"
    else:
        path = project_path(project, "integrations", item["id"], "activities")
        where = f"integration {item['id']} ({item['type']})"
    activities = fetch_activities(api, path, types, states, result, limit, start, exclude_types=exclude_types,
                                  incomplete=incomplete, default_types=RUN_TYPES if item is None else ())
    if not activities:
        err("No activities found")
        sys.exit(1)
    if not fmt.machine_readable:
        err(f"Activities on the project {project}, {where}:")
    render_activities(activities, fmt)
    if not fmt.machine_readable:
        if len(activities) == limit:
            err("")
            err(f"More activities may be available. To display older activities, increase --limit above {limit}, "
                "or set --start to a date in the past. For more information, run: "
                "firehook integration:activity:list -h")
        err("")
        err("To view the log for an activity, run: firehook integration:activity:log [integration] [activity]")
        err("To view more information about an activity, run: "
            "firehook integration:activity:get [integration] [activity]")


def _run_of(api: Client, project: str, integration_id: str | None,
            activity_id: str | None) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The integration (None: no id, several, no terminal) and the run the command is about."""
    item = select_integration(api, project, integration_id, lenient=True)
    if item is None:  # the latest run of any integration
        runs_path = project_path(project, "activities")
        params: dict[str, Any] = {"type": list(RUN_TYPES)}
    else:
        runs_path = project_path(project, "integrations", item["id"], "activities")
        params = {}
    return item, find_run(api, project, runs_path, params, activity_id)


def duration(activity: dict[str, Any]) -> str:
    """Upsun's made-up ``duration`` property: seconds from start (or creation) to completion."""
    end = dates.parse_iso(activity.get("completed_at") or "") or dt.datetime.now(dt.timezone.utc)
    begin = dates.parse_iso(activity.get("started_at") or activity.get("created_at") or "")
    return "" if begin is None else str(int(max(0.0, (end - begin).total_seconds())))


@click.command("integration:activity:get")
@click.argument("integration_id", metavar="[INTEGRATION]", required=False)
@click.argument("activity_id", metavar="[ACTIVITY]", required=False)
@click.option("-P", "--property", "prop", metavar="PROPERTY",
              help="The property to view (dotted for nested, with list indexes: parameters.attempts).")
@common.listing
@common.project
@common.remote
def integration_activity_get(api: Client, project: str, fmt: output.Format, integration_id: str | None,
                             activity_id: str | None, prop: str | None) -> None:
    """View detailed information on a single integration activity (a run).

    ACTIVITY defaults to the most recent run of the integration. The payload and log are
    left out of the table (view them with -P payload, or integration:activity:log).

    \b
    Examples:
      firehook integration:activity:get a1kz6ffxui7em
      firehook integration:activity:get a1kz6ffxui7em 4h2kd8s0vx1qa -P parameters.attempts
    """
    item, activity = _run_of(api, project, integration_id, activity_id)
    properties = dict(activity)
    properties.setdefault("duration", duration(activity))
    if prop:
        output.print_property(properties, prop)
        return
    properties.pop("payload", None)
    properties.pop("log", None)
    if not fmt.machine_readable:
        properties["description"] = output.strip_tags(activity.get("description")) or activity.get("text") or ""
    output.render_properties(properties, fmt, json_data=activity)
    if not fmt.machine_readable:
        integration = activity.get("integration") or (item or {}).get("id") or "[integration]"
        err("")
        err(f"To view the log for this activity, run: firehook integration:activity:log {integration} "
            f"{activity['id']}")
        err(f"To list activities for this integration, run: firehook integration:activities {integration}")


def _next_attempt(data: dict[str, Any]) -> float | None:
    """When the log line ``data`` announces a later attempt: its epoch seconds."""
    match = NEXT_ATTEMPT.match(str(data.get("message", "")))
    logged = dates.parse_iso(str(data.get("timestamp") or ""))
    if not match or logged is None:
        return None
    return logged.timestamp() + float(match.group(1))


def print_log(api: Client, project: str, activity: dict[str, Any], timestamps: str | None, *,
              follow: bool = False) -> dict[str, Any]:
    """Print an activity's log (``timestamps``: the PHP date format of a ``[date]`` before each
    line, None for none); an unfinished run's log is followed until it is sealed — unless it
    waits for a later attempt over a minute away and ``follow`` is not set: then the command
    says when that attempt is and stops. Returns the activity as it is at the end."""
    unfinished = activity.get("state") not in FINISHED
    if unfinished:
        err(f"The run is {format_state(activity.get('state'))}: following its log until it finishes "
            "(Ctrl+C to stop)...")
    path = project_path(project, "activities", activity["id"], "log")
    for item in api.stream_lines(path):
        if item.get("seal"):
            break
        data = item.get("data") or {}
        message = data.get("message", "")
        if timestamps is not None:
            message = f"[{dates.format_date(data.get('timestamp'), timestamps)}] {message}"
        click.echo(message)
        sys.stdout.flush()
        due = _next_attempt(data)
        if unfinished and not follow and due is not None and due - time.time() > FOLLOW_WAIT_LIMIT:
            when = dates.format_date(dt.datetime.fromtimestamp(due, dt.timezone.utc).isoformat(),
                                     output.DATE_FORMAT)
            err(f"The next attempt is at {when} (in {_span(due - time.time())}): not following the log until "
                "then. Run this command again later, or with --follow to keep following.")
            return activity
    if not unfinished:
        return activity
    final = dict(api.get(project_path(project, "activities", activity["id"])))
    err(f"The run is {format_state(final.get('state'))}"
        + (f" (result: {final['result']})." if final.get("result") else "."))
    return final


def _span(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


@click.command("integration:activity:log")
@click.argument("integration_id", metavar="[INTEGRATION]", required=False)
@click.argument("activity_id", metavar="[ACTIVITY]", required=False)
@click.option("-t", "--timestamps", is_flag=True, help="Display a timestamp next to each message.")
@click.option("--date-fmt", metavar="FORMAT", default=None,
              help="The date format (as a PHP date format string) [default: c], in the local time zone (TZ).")
@click.option("--follow", is_flag=True,
              help="Keep following a run that waits for a later attempt, however far away it is (firehook).")
@common.project
@common.remote
def integration_activity_log(api: Client, project: str, integration_id: str | None, activity_id: str | None,
                             timestamps: bool, date_fmt: str | None, follow: bool) -> None:
    """Display the log for an integration activity (a run).

    ACTIVITY defaults to the integration's most recent run (without INTEGRATION and with
    several integrations and no terminal: the project's most recent run). The log of a run that
    has not finished is followed until the run ends; a webhook run waiting for an attempt more
    than a minute away is not (the command says when it is, and ends) unless --follow.
    Timestamps (-t) are in the local time zone, formatted by --date-fmt. The run's result is
    shown; the exit code is 1 when it is a failure (so a CI step fails with the run), 0 when
    it succeeded or has no result yet.

    \b
    Examples:
      firehook integration:activity:log a1kz6ffxui7em
      firehook integration:activity:log a1kz6ffxui7em 4h2kd8s0vx1qa -t --date-fmt 'Y-m-d H:i:s'
    """
    output.DATE_FORMAT = date_fmt or dates.DEFAULT_FORMAT
    item, activity = _run_of(api, project, integration_id, activity_id)
    err(f"Integration ID: {activity.get('integration') or (item or {}).get('id')}")
    err(f"Activity ID: {activity['id']}")
    err(f"Type: {activity.get('type')}")
    err(f"Description: {output.strip_tags(activity.get('description')) or activity.get('text') or ''}")
    err(f"Created: {output.format_date(activity.get('created_at'))}")
    err(f"State: {format_state(activity.get('state'))}")
    if activity.get("result"):
        err(f"Result: {activity['result']}")
    err("Log: ")
    final = print_log(api, project, activity, output.DATE_FORMAT if timestamps else None, follow=follow)
    if final.get("result") == "failure":
        err(f"The run failed (state: {format_state(final.get('state'))}, result: failure).")
        sys.exit(RUN_FAILED)


COMMANDS = (integration_activity_list, integration_activity_get, integration_activity_log)
ALIASES = {"integration:activities": "integration:activity:list", "int:act": "integration:activity:list",
           "i:act": "integration:activity:list"}
