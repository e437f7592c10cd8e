"""Upsun-compatible integration commands: ``integration:add|update|get|list|delete|validate``.

Names, options, messages, table columns and exit codes follow the Upsun CLI, so a person (or
a script) used to ``upsun integration:*`` finds the same thing here.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from firehook.cli import common, form, interaction, output
from firehook.cli.client import EXIT_INVALID, Client, CliError, HttpError, project_path
from firehook.cli.common import err
from firehook.cli.selection import select_integration

TYPES = form.TYPES
# option name → (API field, the integration types it applies to)
FIELD_OPTIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "file": ("script", ("script",)),
    "url": ("url", ("webhook",)),
    "shared_key": ("shared_key", ("webhook",)),
    "events": ("events", TYPES),
    "states": ("states", TYPES),
    "environments": ("environments", TYPES),
    "excluded_environments": ("excluded_environments", TYPES),
    "result": ("result", TYPES),
}
SUMMARY_MAX = 240


def field_options(fn: Any) -> Any:
    """The integration fields as options, as Upsun names them."""
    options = [
        click.option("--file", metavar="FILE",
                     help="Script: the name of a local file that contains the script to upload (- for stdin)."),
        click.option("--url", metavar="URL", help="Webhook: the URL that receives the JSON activity."),
        click.option("--shared-key", metavar="KEY",
                     help="Webhook: the JWS shared secret key, to sign deliveries (never shown again)."),
        click.option("--events", multiple=True, metavar="EVENTS",
                     help="A list of events to act on, e.g. environment.push (default: script "
                          "environment.push, webhook *)."),
        click.option("--states", multiple=True, metavar="STATES",
                     help="A list of states to act on, e.g. pending, in_progress, complete (default complete)."),
        click.option("--environments", multiple=True, metavar="ENVIRONMENTS",
                     help="The environment IDs to include (default *)."),
        click.option("--excluded-environments", multiple=True, metavar="ENVIRONMENTS",
                     help="The environment IDs to exclude."),
        click.option("--result", type=click.Choice(["*", "success", "failure"]),
                     help="Act only on activities with this result (firehook; default *)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


# ---- helpers ---------------------------------------------------------------------------------


def collect_fields(kind: str, options: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    """The API fields given on the command line, refusing an option the type does not have."""
    values: dict[str, Any] = {}
    for name, (field, types) in FIELD_OPTIONS.items():
        given = options.get(name)
        if given is None or given == ():
            continue
        if kind not in types:
            raise CliError(f"The option --{name.replace('_', '-')} cannot be used with the integration type {kind}.")
        if name == "file":
            values[field] = form.read_script(given)
        elif name in ("events", "states", "environments", "excluded_environments"):
            items = common.split_values(given)
            if not items and name != "excluded_environments":
                raise click.UsageError(f"--{name.replace('_', '-')} needs at least one value.")
            values[field] = items
        else:
            values[field] = given
    if creating:
        values = form.ask_missing(kind, values)
    return values


def summary(item: dict[str, Any]) -> str:
    """The Summary column of integration:list, as Upsun writes it."""
    if item.get("type") == "webhook":
        text = f"URL: {item.get('url')}"
    elif item.get("type") == "script":
        text = "Script:\n" + (item.get("script") or "")[:300].replace("\t", "  ")
    else:
        text = str({k: v for k, v in item.items() if k not in ("id", "type")})
    text = text.rstrip()
    if len(text) > SUMMARY_MAX:
        text = text[:SUMMARY_MAX - 3] + "..."
    return text


def list_validation_errors(errors: Any) -> None:
    """Upsun's listing of validation errors: the count on stderr, ``field: message`` on stdout."""
    items = list(errors.items()) if isinstance(errors, dict) else [("", e) for e in (errors or [])]
    if len(items) == 1:
        err("The following error was found:")
    else:
        err(f"The following {len(items)} errors were found:")
    for key, message in items:
        click.echo(f"{key}: {message}" if key else str(message))


def _invalid(exc: HttpError) -> bool:
    return exc.status == 400 and isinstance(exc.detail, dict)


def _selected(api: Client, project: str, ident: str | None) -> dict[str, Any]:
    item = select_integration(api, project, ident)
    assert item is not None  # not lenient: refused rather than None
    return item


def print_warnings(answer: dict[str, Any]) -> None:
    """The ``warnings`` of a create or update answer (an event name close to a known type: "did
    you mean"), on stderr even with -q: the integration was saved, but may never run."""
    for warning in answer.get("warnings") or ():
        click.echo(f"Warning: {warning}", err=True)


def show(entity: dict[str, Any], fmt: output.Format) -> None:
    output.render_properties(entity, fmt, json_data=entity)


# ---- commands --------------------------------------------------------------------------------


@click.command("integration:add")
@click.option("--type", "kind", type=click.Choice(TYPES), help="The integration type.")
@field_options
@common.wait_options
@common.listing
@common.project
@common.remote
def integration_add(api: Client, project: str, fmt: output.Format, kind: str | None, **options: Any) -> None:
    """Add an integration to the project.

    Prints `Created integration <id> (type: <type>)` on stderr and the integration as a
    Property/Value table. Values of list options split on commas and spaces. A script that
    does not compile is refused with its line and column (exit code 4).

    On a terminal, what the options leave out is asked, with Upsun's questions (the type, the
    URL or script file, events, states, environments); without one, a missing --type, --url
    or --file fails with `--type is required` (exit code 1).

    Scripts (--type script):
    what a script can use (activity, project, variables, storage, fetch, crypto, console, _),
    with an example of each, its limits and what a failure looks like: docs/scripts.md, also
    served by firehook at /help/scripts (http://127.0.0.1:8780/help/scripts).

    \b
    Examples:
      firehook integration:add --type script --file ./my_script.js -p shop
      firehook integration:add --type webhook --url https://hooks.example.com/fh \\
          --shared-key "$KEY" --events 'environment.push, environment.deploy' --states complete
    """
    kind = form.resolve_type(kind)
    values = collect_fields(kind, options, creating=True)
    values["type"] = kind
    try:
        answer = api.post(project_path(project, "integrations"), values)
    except HttpError as exc:
        if not _invalid(exc):
            raise
        err("The integration is invalid.")
        err("")
        list_validation_errors(exc.detail)
        sys.exit(EXIT_INVALID)
    entity = answer["_embedded"]["entity"]
    err(f"Created integration {entity['id']} (type: {kind})")
    print_warnings(answer)
    show(entity, fmt)


@click.command("integration:update")
@click.argument("integration_id", metavar="[ID]", required=False)
@click.option("--type", "kind", hidden=True, help="Not supported: the type cannot change.")
@field_options
@common.wait_options
@common.listing
@common.project
@common.remote
def integration_update(api: Client, project: str, fmt: output.Format, integration_id: str | None,
                       kind: str | None, **options: Any) -> None:
    """Update an integration.

    ID: leave it out to choose from a list (on a terminal).

    Only the options given change; the script is replaced in place (its id, variables and
    storage are kept). Exit code 4 when the server finds the new values invalid.

    \b
    Examples:
      firehook integration:update a1kz6ffxui7em --file ./my_script.js
      firehook integration:update a1kz6ffxui7em --events 'environment.*' --excluded-environments main
    """
    if kind:
        raise CliError("The --type option is not supported on the integration:update command. "
                       "The integration type cannot be changed.")
    current = _selected(api, project, integration_id)
    values = collect_fields(current["type"], options, creating=False)
    changed = {k: v for k, v in values.items() if k == "shared_key" or current.get(k) != v}
    if not changed:
        err("No changed values were provided to update.")
        err("")
        show(current, fmt)
        sys.exit(1)
    try:
        answer = api.patch(project_path(project, "integrations", current["id"]), changed)
    except HttpError as exc:
        if not _invalid(exc):
            raise
        err(f"The integration {current['id']} (type: {current['type']}) is invalid.")
        err("")
        list_validation_errors(exc.detail)
        sys.exit(EXIT_INVALID)
    err(f"Integration {current['id']} ({current['type']}) updated")
    print_warnings(answer)
    err("")
    show(answer["_embedded"]["entity"], fmt)


@click.command("integration:get")
@click.argument("integration_id", metavar="[ID]", required=False)
@click.option("-P", "--property", "prop", metavar="PROPERTY", help="The integration property to view.")
@common.listing
@common.project
@common.remote
def integration_get(api: Client, project: str, fmt: output.Format, integration_id: str | None,
                    prop: str | None) -> None:
    """View details of an integration.

    ID: leave it out to choose from a list (on a terminal).

    \b
    Examples:
      firehook integration:get a1kz6ffxui7em
      firehook integration:get a1kz6ffxui7em -P script > current.js
    """
    entity = _selected(api, project, integration_id)
    if prop:
        output.print_property(entity, prop)
        return
    show(entity, fmt)


@click.command("integration:list")
@click.option("-t", "--type", "kind", type=click.Choice(TYPES), help="Filter by type.")
@common.listing
@common.project
@common.remote
def integration_list(api: Client, project: str, fmt: output.Format, kind: str | None) -> None:
    """View a list of project integration(s).

    Columns: ID, Type, Summary (the URL of a webhook, the start of a script). Alias:
    `integrations`.

    \b
    Examples:
      firehook integration:list -p shop
      firehook integrations --format csv --no-header
    """
    items = api.get(project_path(project, "integrations"))
    if kind:
        items = [i for i in items if i["type"] == kind]
    if not items:
        err("No integrations found")
        sys.exit(1)
    rows = [(i["id"], i["type"], summary(i)) for i in items]
    output.render(rows, ("ID", "Type", "Summary"), fmt, json_data=items)
    if not fmt.machine_readable:
        err("")
        err("View integration details with: firehook integration:get [id]")
        err("")
        err("Add a new integration with: firehook integration:add")
        err("Delete an integration with: firehook integration:delete [id]")


@click.command("integration:delete")
@click.argument("integration_id", metavar="[ID]", required=False)
@common.wait_options
@common.project
@common.remote
def integration_delete(api: Client, project: str, integration_id: str | None) -> None:
    """Delete an integration from a project.

    ID: leave it out to choose from a list (on a terminal).

    Its variables and storage go with it; its past runs stay readable. Asks for
    confirmation on a terminal; without one the answer is the default, yes (as in Upsun),
    and the question is printed with it. -n (--no) answers no.

    \b
    Example:
      firehook integration:delete a1kz6ffxui7em --yes
    """
    item = _selected(api, project, integration_id)
    if not interaction.confirm(f"Delete the integration {item['id']} (type: {item['type']})?"):
        sys.exit(1)
    api.delete(project_path(project, "integrations", item["id"]))
    err(f"Deleted integration {item['id']}")


@click.command("integration:validate")
@click.argument("integration_id", metavar="[ID]", required=False)
@common.project
@common.remote
def integration_validate(api: Client, project: str, integration_id: str | None) -> None:
    """Validate an existing integration.

    ID: leave it out to choose from a list (on a terminal).

    A script is compiled and dry-run against the latest activity it matches (no side
    effects); a webhook gets a test delivery. An exit code of 0 means the integration is
    valid, while 4 means it is invalid. Any other exit code indicates an unexpected error.

    \b
    Example:
      firehook integration:validate a1kz6ffxui7em || echo "invalid: $?"
    """
    item = _selected(api, project, integration_id)
    err(f"Validating the integration {item['id']} (type: {item['type']})...")
    response = api.request("POST", project_path(project, "integrations", item["id"], "validate"), accept=(400,))
    report = response.json()
    dry_run = report.get("dry_run") if isinstance(report, dict) else None
    delivery = report.get("delivery") if isinstance(report, dict) else None
    if delivery:
        answer = f"HTTP {delivery['status']}" if delivery.get("status") is not None else delivery.get("error")
        err(f"Test delivery: {answer} ({delivery.get('duration_ms')} ms)")
    if response.status_code == 200 and report.get("valid"):
        if report.get("message"):
            err(report["message"])
        if dry_run:
            err(f"Dry run against activity {dry_run.get('activity')}: {dry_run.get('result')}.")
        err("The integration is valid.")
        return
    errors = report.get("errors") if isinstance(report, dict) else None
    if errors is None and isinstance(report, dict):
        errors = report.get("detail")
    if errors is None:
        raise api.http_error(response)
    if dry_run and dry_run.get("log"):
        err(f"Dry run against activity {dry_run.get('activity')}:")
        for line in dry_run["log"]:
            err(f"  {line.get('message')}")
    err("")
    list_validation_errors(errors if isinstance(errors, (dict, list)) else [errors])
    sys.exit(EXIT_INVALID)


COMMANDS = (integration_add, integration_update, integration_get, integration_list, integration_delete,
            integration_validate)
ALIASES = {"integrations": "integration:list"}
