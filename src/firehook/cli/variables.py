"""Variables of an integration (SPEC §3.3): ``integration:variable:create|list|get|update|delete``.

Sensitive values are never printed: the API does not return them, and these commands show
``******`` in their place. ``--value -`` reads the value from stdin, out of the shell history.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from firehook.cli import common, interaction, output
from firehook.cli.client import Client, CliError, project_path
from firehook.cli.common import err
from firehook.cli.selection import find_integration

HEADER = ("ID", "Name", "Value", "JSON", "Sensitive", "Updated")


def _value(given: str) -> str:
    if given == "-":
        return sys.stdin.read().rstrip("\n")
    return given


def _check_json(value: str, is_json: bool | None) -> None:
    if is_json:
        try:
            json.loads(value)
        except ValueError as exc:
            raise CliError(f"--json is set but the value is not JSON: {exc}") from None


def shown_value(var: dict[str, Any]) -> str:
    return output.MASK if var.get("is_sensitive") else str(var.get("value", ""))


def show(var: dict[str, Any], fmt: output.Format) -> None:
    props = dict(var)
    props["value"] = shown_value(var)
    output.render_properties(props, fmt, json_data=var)


def _path(project: str, integration: str, *rest: str) -> str:
    return project_path(project, "integrations", integration, "variables", *rest)


@click.command("integration:variable:create")
@click.argument("integration_id", metavar="INTEGRATION")
@click.option("--name", required=True, metavar="NAME", help="The variable's name (scripts see variables.NAME).")
@click.option("--value", required=True, metavar="VALUE", help="The value (- reads it from stdin).")
@click.option("--json", "is_json", is_flag=True, help="The value is JSON; scripts get it parsed.")
@click.option("--sensitive", is_flag=True, help="Never show the value again (scripts still get it).")
@common.listing
@common.project
@common.remote
def variable_create(api: Client, project: str, fmt: output.Format, integration_id: str, name: str, value: str,
                    is_json: bool, sensitive: bool) -> None:
    """Create a variable on an integration.

    \b
    Examples:
      firehook integration:variable:create a1kz6ffxui7em --name SLACK_CHANNEL --value '#deploys'
      printf %s "$GH_TOKEN" | firehook integration:variable:create a1kz6ffxui7em \\
          --name GH_TOKEN --value - --sensitive
    """
    item = find_integration(api, project, integration_id)
    value = _value(value)
    _check_json(value, is_json)
    body = {"name": name, "value": value, "is_json": is_json, "is_sensitive": sensitive}
    var = api.post(_path(project, item["id"]), body)["_embedded"]["entity"]
    err(f"Created variable {var['name']} (ID: {var['id']}) on integration {item['id']}")
    show(var, fmt)


@click.command("integration:variable:list")
@click.argument("integration_id", metavar="INTEGRATION")
@common.listing
@common.project
@common.remote
def variable_list(api: Client, project: str, fmt: output.Format, integration_id: str) -> None:
    """List the variables of an integration (sensitive values shown as ******).

    Columns: ID, Name, Value, JSON, Sensitive, Updated. A variable's ID is stable: the other
    variable commands (and the API) take its ID or its name.

    \b
    Example:
      firehook integration:variable:list a1kz6ffxui7em
    """
    item = find_integration(api, project, integration_id)
    items = api.get(_path(project, item["id"]))
    if not items:
        err(f"No variables found on integration {item['id']}")
        sys.exit(1)
    rows = [(v["id"], v["name"], shown_value(v), output.cell(bool(v.get("is_json"))),
             output.cell(bool(v.get("is_sensitive"))), output.format_date(v.get("updated_at"))) for v in items]
    output.render(rows, HEADER, fmt, json_data=items)


@click.command("integration:variable:get")
@click.argument("integration_id", metavar="INTEGRATION")
@click.argument("name", metavar="VARIABLE")
@click.option("-P", "--property", "prop", metavar="PROPERTY", help="The property to view (e.g. value).")
@common.listing
@common.project
@common.remote
def variable_get(api: Client, project: str, fmt: output.Format, integration_id: str, name: str,
                 prop: str | None) -> None:
    """View a variable of an integration (VARIABLE: its ID or its name).

    \b
    Example:
      firehook integration:variable:get a1kz6ffxui7em SLACK_CHANNEL -P value
    """
    item = find_integration(api, project, integration_id)
    var = api.get(_path(project, item["id"], name))
    if prop:
        if prop == "value":
            click.echo(shown_value(var))
            return
        if prop not in var:
            raise CliError(f"Property not found: {prop}")
        click.echo(output.format_value(var[prop], prop))
        return
    show(var, fmt)


@click.command("integration:variable:update")
@click.argument("integration_id", metavar="INTEGRATION")
@click.argument("name", metavar="VARIABLE")
@click.option("--value", metavar="VALUE", help="The new value (- reads it from stdin).")
@click.option("--json/--no-json", "is_json", default=None, help="Whether the value is JSON.")
@click.option("--sensitive", is_flag=True, default=None,
              help="Make the variable sensitive (this cannot be undone).")
@common.listing
@common.project
@common.remote
def variable_update(api: Client, project: str, fmt: output.Format, integration_id: str, name: str,
                    value: str | None, is_json: bool | None, sensitive: bool | None) -> None:
    """Update a variable of an integration (VARIABLE: its ID or its name).

    \b
    Example:
      firehook integration:variable:update a1kz6ffxui7em SLACK_CHANNEL --value '#releases'
    """
    item = find_integration(api, project, integration_id)
    body: dict[str, Any] = {}
    if value is not None:
        body["value"] = _value(value)
        _check_json(body["value"], is_json)
    if is_json is not None:
        body["is_json"] = is_json
    if sensitive:
        body["is_sensitive"] = True
    if not body:
        raise click.UsageError("Nothing to update: give --value, --json/--no-json or --sensitive.")
    var = api.patch(_path(project, item["id"], name), body)["_embedded"]["entity"]
    err(f"Updated variable {var['name']} on integration {item['id']}")
    show(var, fmt)


@click.command("integration:variable:delete")
@click.argument("integration_id", metavar="INTEGRATION")
@click.argument("name", metavar="VARIABLE")
@common.project
@common.remote
def variable_delete(api: Client, project: str, integration_id: str, name: str) -> None:
    """Delete a variable of an integration (VARIABLE: its ID or its name).

    \b
    Example:
      firehook integration:variable:delete a1kz6ffxui7em SLACK_CHANNEL --yes
    """
    item = find_integration(api, project, integration_id)
    if not interaction.confirm(f"Delete the variable {name} of integration {item['id']}?"):
        sys.exit(1)
    api.delete(_path(project, item["id"], name))
    err(f"Deleted variable {name} from integration {item['id']}")


COMMANDS = (variable_create, variable_list, variable_get, variable_update, variable_delete)
