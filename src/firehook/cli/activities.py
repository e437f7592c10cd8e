"""Activities: ``activity:emit`` (one document, or an NDJSON / JSON-array batch with a progress
bar and a per-line report), ``activity:list``, ``activity:get`` and ``activity:replay``."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from firehook.cli import common, output
from firehook.cli.client import Client, CliError, HttpError, describe_detail, project_path
from firehook.cli.common import err
from firehook.cli.runs import activity_filters, fetch_activities, render_activities

STATES = ("pending", "in_progress", "complete", "cancelled", "scheduled", "staged")
BATCH_LINES = 500
BATCH_BYTES = 4 * 1024 * 1024
RUN_HEADER = ("Run", "Type", "Integration", "State")


if TYPE_CHECKING:
    from rich.progress import Progress


def progress(total: int, what: str) -> Progress:
    """A progress bar on stderr; silent when stderr is not a terminal (CI logs stay clean)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = output.stderr_console()
    bar = Progress(TextColumn(what), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=console, transient=True, disable=not console.is_terminal)
    return bar


# ---- reading documents -----------------------------------------------------------------------


@dataclasses.dataclass
class Documents:
    """What a file holds: one document, or several lines for the batch endpoint."""

    single: dict[str, Any] | None = None
    lines: list[str] = dataclasses.field(default_factory=list)
    numbers: list[int] = dataclasses.field(default_factory=list)  # the file's line / item number of each
    unit: str = "line"


def read_documents(path: str) -> Documents:
    if path == "-":
        raw = sys.stdin.buffer.read()
        shown = "standard input"
    else:
        try:
            raw = Path(path).expanduser().read_bytes()
        except FileNotFoundError:
            raise CliError(f"The activity file does not exist: {path}") from None
        except OSError as exc:
            raise CliError(f"Cannot read the activity file {path}: {exc.strerror or exc}") from None
        shown = path
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CliError(f"{shown} is not UTF-8 text: an activity file holds JSON.") from None
    if not text.strip():
        raise CliError(f"{shown} is empty: give one JSON activity, a JSON array, or NDJSON (one per line).")
    error: ValueError | None = None
    data: Any = None
    try:
        data = json.loads(text)
    except ValueError as exc:
        error = exc
    if isinstance(data, dict):
        return Documents(single=data)
    if isinstance(data, list):
        if not data:
            raise CliError(f"{shown} holds an empty JSON array: nothing to send.")
        lines = [json.dumps(item, ensure_ascii=False) for item in data]
        return Documents(lines=lines, numbers=list(range(1, len(lines) + 1)), unit="item")
    if error is None:
        raise CliError(f"{shown} must hold a JSON object (an activity), an array of them, or NDJSON.")
    numbered = [(n, line) for n, line in enumerate(text.split("\n"), start=1) if line.strip()]
    if len(numbered) < 2:
        raise CliError(f"{shown} is not valid JSON: {error}")
    return Documents(lines=[line.strip() for _, line in numbered], numbers=[n for n, _ in numbered])


def chunks(docs: Documents) -> Iterator[tuple[list[str], list[int]]]:
    lines: list[str] = []
    numbers: list[int] = []
    size = 0
    for line, number in zip(docs.lines, docs.numbers, strict=False):
        if lines and (len(lines) >= BATCH_LINES or size + len(line) > BATCH_BYTES):
            yield lines, numbers
            lines, numbers, size = [], [], 0
        lines.append(line)
        numbers.append(number)
        size += len(line.encode()) + 1
    if lines:
        yield lines, numbers


# ---- emit ------------------------------------------------------------------------------------


def emit_one(api: Client, project: str, doc: dict[str, Any], fmt: output.Format) -> None:
    answer = api.post(project_path(project, "activities"), doc)
    entity = answer["_embedded"]["entity"]
    runs = answer["_embedded"].get("runs") or []
    verb = "Created" if answer.get("status") == "created" else "Updated"
    err(f"{verb} activity {entity['id']} ({entity.get('type')}, state {entity.get('state')}): "
        f"{len(runs)} run{'s' if len(runs) != 1 else ''} triggered.")
    if verb == "Updated" and not runs:
        err(f"An activity posted again runs nothing for the states it already reached. To run it again, use: "
            f"firehook activity:replay {entity['id']} -p {project}")
    if fmt.name == "json":
        output.render([], RUN_HEADER, fmt, json_data=answer)
    elif runs:
        output.render([(r["id"], r["type"], r["integration"], "pending") for r in runs], RUN_HEADER, fmt)


def emit_batch(api: Client, project: str, docs: Documents, fmt: output.Format) -> None:
    path = project_path(project, "activities:batch")
    results: list[dict[str, Any]] = []
    total = len(docs.lines)
    with progress(total, f"Sending {total} activities") as bar:
        task = bar.add_task("batch", total=total)
        for lines, numbers in chunks(docs):
            body = ("\n".join(lines) + "\n").encode("utf-8")
            try:
                answer = api.post(path, content=body, headers={"Content-Type": "application/x-ndjson"})
            except CliError as exc:
                if not results:
                    raise
                raise CliError(f"{exc.message}\n{len(results)} of {total} activities were sent before this; "
                               f"the rest, from {docs.unit} {numbers[0]} on, were not.", exc.exit_code) from exc
            for item in answer.get("results", []):
                item = dict(item)
                item[docs.unit] = numbers[item.pop("line") - 1]
                results.append(item)
            bar.advance(task, len(lines))
    accepted = [r for r in results if "id" in r]
    rejected = [r for r in results if "id" not in r]
    if fmt.name == "json":
        output.render([], (), fmt, json_data={"accepted": len(accepted), "rejected": len(rejected),
                                              "results": results})
    for item in rejected:
        err(f"{docs.unit.capitalize()} {item[docs.unit]}: {describe_detail(item.get('detail'))}")
    created = sum(1 for r in accepted if r.get("status") == "created")
    runs = sum(int(r.get("runs") or 0) for r in accepted)
    err(f"Accepted {len(accepted)} of {total} activities ({created} created, {len(accepted) - created} updated, "
        f"{runs} runs triggered); {len(rejected)} rejected.")
    if created < len(accepted) and not runs:
        err("Activities posted again run nothing for the states they already reached. To run them again, use: "
            f"firehook activity:replay ID... -p {project}")
    if rejected:
        sys.exit(1)


@click.command("activity:emit")
@click.option("--type", "kind", metavar="TYPE", help="The activity type, e.g. environment.push.")
@click.option("-e", "--environment", "environments", multiple=True, metavar="ENV",
              help="The environment(s) involved (values split on commas and spaces; none = project-level).")
@click.option("--state", type=click.Choice(STATES), help="The state the activity is in (default complete).")
@click.option("--result", type=click.Choice(["success", "failure"]), help="The result, once complete.")
@click.option("--id", "activity_id", metavar="ID",
              help="The activity id; an id that exists updates that activity (a state transition).")
@click.option("--text", metavar="TEXT", help="A plain-text description.")
@click.option("--file", "file", metavar="FILE",
              help="Send a JSON file (- for stdin): one activity, a JSON array, or NDJSON (one per line; "
                   "arrays and NDJSON go to the batch endpoint).")
@common.listing
@common.project
@common.remote
def activity_emit(api: Client, project: str, fmt: output.Format, kind: str | None, environments: tuple[str, ...],
                  state: str | None, result: str | None, activity_id: str | None, text: str | None,
                  file: str | None) -> None:
    """Post an activity from a shell or a CI job.

    Build it from flags, or send a file. Each state the activity reaches runs the
    integrations that match it. Several documents (an array, or NDJSON) are sent in batches
    with a progress bar; every rejected line is reported and the exit code is then 1.

    \b
    Examples:
      firehook activity:emit -p shop --type environment.push -e main --state complete --result success
      firehook activity:emit -p shop --id deploy-42 --type environment.deploy -e main --state in_progress
      firehook activity:emit -p shop --file activities.ndjson
      curl -s https://ci.example.com/events | firehook activity:emit -p shop --file -
    """
    flags = {"--type": kind, "--environment": environments or None, "--state": state, "--result": result,
             "--id": activity_id, "--text": text}
    if file:
        given = [name for name, value in flags.items() if value]
        if given:
            raise click.UsageError(f"--file cannot be combined with {', '.join(given)}: put the fields in the file.")
        docs = read_documents(file)
        if docs.single is not None:
            emit_one(api, project, docs.single, fmt)
        else:
            emit_batch(api, project, docs, fmt)
        return
    if not kind:
        raise click.UsageError("Give --type (and --environment, --state…) to build an activity, or --file to send one.")
    doc: dict[str, Any] = {"type": kind, "environments": common.split_values(environments)}
    for name, value in (("id", activity_id), ("state", state), ("result", result), ("text", text)):
        if value is not None:
            doc[name] = value
    emit_one(api, project, doc, fmt)


# ---- reading ---------------------------------------------------------------------------------


@click.command("activity:list")
@activity_filters
@click.option("-e", "--environment", metavar="ENV", help="Filter activities by environment.")
@common.listing
@common.project
@common.remote
def activity_list(api: Client, project: str, fmt: output.Format, types: tuple[str, ...],
                  exclude_types: tuple[str, ...], states: tuple[str, ...], incomplete: bool, result: str | None,
                  limit: int, start: str | None, environment: str | None) -> None:
    """List the project's activities, newest first (runs included: they are activities).

    Columns: ID, Created, Description, Type, State, Result.

    \b
    Examples:
      firehook activity:list -p shop --type environment.push --limit 20
      firehook activity:list -p shop --type integration.script,integration.webhook --result failure
    """
    items = fetch_activities(api, project_path(project, "activities"), types, states, result, limit, start,
                             environment, exclude_types=exclude_types, incomplete=incomplete)
    if not items:
        err("No activities found")
        sys.exit(1)
    render_activities(items, fmt)
    if not fmt.machine_readable and len(items) == limit:
        err("")
        err(f"More activities may be available. To display older activities, increase --limit above {limit}, "
            "or set --start to a date in the past.")


@click.command("activity:get")
@click.argument("activity_id", metavar="ID")
@click.option("-P", "--property", "prop", metavar="PROPERTY", help="The property to view (dotted for nested).")
@common.listing
@common.project
@common.remote
def activity_get(api: Client, project: str, fmt: output.Format, activity_id: str, prop: str | None) -> None:
    """View an activity (or a run).

    \b
    Examples:
      firehook activity:get a1kz6ffxui7em -p shop
      firehook activity:get a1kz6ffxui7em -P parameters.new_commit
    """
    doc = api.get(project_path(project, "activities", activity_id))
    if prop:
        output.print_property(doc, prop)
        return
    output.render_properties(doc, fmt, json_data=doc)


@click.command("activity:replay")
@click.argument("activity_ids", metavar="ID...", nargs=-1, required=True)
@click.option("-i", "--integration", "integrations", multiple=True, metavar="INTEGRATION",
              help="Replay for these integrations only (default: every integration that matches now).")
@click.option("--state", type=click.Choice(STATES),
              help="The state to replay (one the activity reached; default its current state).")
@common.listing
@common.project
@common.remote
def activity_replay(api: Client, project: str, fmt: output.Format, activity_ids: tuple[str, ...],
                    integrations: tuple[str, ...], state: str | None) -> None:
    """Create new runs for stored activities, as they were when they reached a state.

    Works for integrations added after the activity happened too. Several ids show a
    progress bar; one that fails is reported and the others go on (exit code 1 at the end).

    \b
    Examples:
      firehook activity:replay a1kz6ffxui7em -p shop
      firehook activity:replay a1kz6ffxui7em b2lz7ggyvj8fn --integration 4h2kd8s0vx1qa --state complete
    """
    body: dict[str, Any] = {}
    if integrations:
        body["integrations"] = common.split_values(integrations)
    if state:
        body["state"] = state
    rows: list[tuple[str, ...]] = []
    answers: list[dict[str, Any]] = []
    failures: list[str] = []
    with progress(len(activity_ids), f"Replaying {len(activity_ids)} activities") as bar:
        task = bar.add_task("replay", total=len(activity_ids))
        for activity_id in activity_ids:
            try:
                answer = api.post(project_path(project, "activities", activity_id, "replay"), body)
            except HttpError as exc:
                if len(activity_ids) == 1:
                    raise
                failures.append(f"{activity_id}: {exc.message}")
            else:
                runs = answer["_embedded"]["runs"]
                answers.append({"activity": activity_id, "runs": runs})
                rows += [(activity_id, r["id"], r["type"], r["integration"]) for r in runs]
            bar.advance(task)
    total_runs = len(rows)
    output.render(rows, ("Activity", "Run", "Type", "Integration"), fmt, json_data=answers)
    for failure in failures:
        err(f"Not replayed: {failure}")
    replayed = len(activity_ids) - len(failures)
    err(f"Replayed {replayed} activit{'y' if replayed == 1 else 'ies'}: {total_runs} new "
        f"run{'s' if total_runs != 1 else ''}.")
    if failures:
        sys.exit(1)


@click.command("activity:cancel")
@click.argument("activity_id", metavar="ID")
@common.listing
@common.project
@common.remote
def activity_cancel(api: Client, project: str, fmt: output.Format, activity_id: str) -> None:
    """Cancel a run that nobody is executing: pending, or a webhook waiting for its next attempt.

    A run executing now, or already finished, cannot be cancelled (exit code 1); an activity
    that is not a run neither (its runs can be).

    \b
    Example:
      firehook activity:cancel 4h2kd8s0vx1qa -p shop
    """
    doc = api.post(project_path(project, "activities", activity_id, "cancel"))
    err(f"Cancelled run {doc.get('id', activity_id)} (type: {doc.get('type', '')})")
    if fmt.machine_readable:
        output.render_properties(doc, fmt, json_data=doc)


COMMANDS = (activity_emit, activity_list, activity_get, activity_replay, activity_cancel)
