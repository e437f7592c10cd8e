"""What an integration's scripts stored (their ``storage``): ``integration:storage:list``,
``integration:storage:get``, ``integration:storage:delete`` and ``integration:storage:clear``,
over ``/api/projects/{p}/integrations/{id}/storage``."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from firehook.cli import common, interaction, output
from firehook.cli.client import Client, project_path
from firehook.cli.common import err
from firehook.cli.selection import find_integration


def _path(project: str, integration: str, *rest: str) -> str:
    return project_path(project, "integrations", integration, "storage", *rest)


def shown(value: Any) -> str:
    """A stored value as the script gets it: a string as it is, a number or boolean as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def _type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    return "string" if isinstance(value, str) else "number"


@click.command("integration:storage:list")
@click.argument("integration_id", metavar="INTEGRATION")
@common.listing
@common.project
@common.remote
def storage_list(api: Client, project: str, fmt: output.Format, integration_id: str) -> None:
    """List what an integration's scripts stored (storage.set), by key.

    Columns: Key, Value (as the script gets it), Type, Bytes (counted against the quota,
    --storage-total-bytes on the server).

    \b
    Examples:
      firehook integration:storage:list a1kz6ffxui7em
      firehook integration:storage:list a1kz6ffxui7em --format json
    """
    item = find_integration(api, project, integration_id)
    answer = api.get(_path(project, item["id"]))
    entries = answer.get("items") or []
    if not entries and not fmt.machine_readable:
        err(f"Integration {item['id']} has stored nothing.")
        return
    rows = [(e["key"], shown(e["value"]), _type(e["value"]), str(e["bytes"])) for e in entries]
    output.render(rows, ("Key", "Value", "Type", "Bytes"), fmt, json_data=answer)
    if not fmt.machine_readable:
        err("")
        err(f"{answer['count']} key{'s' if answer['count'] != 1 else ''}, {answer['bytes']} of "
            f"{answer['limit_bytes']} bytes used.")


@click.command("integration:storage:get")
@click.argument("integration_id", metavar="INTEGRATION")
@click.argument("key", metavar="KEY")
@common.listing
@common.project
@common.remote
def storage_get(api: Client, project: str, fmt: output.Format, integration_id: str, key: str) -> None:
    """Print the value an integration's scripts stored under KEY (as storage.get gives it).

    \b
    Example:
      firehook integration:storage:get a1kz6ffxui7em pushes
    """
    item = find_integration(api, project, integration_id)
    entry = api.get(_path(project, item["id"], key))
    if fmt.machine_readable:
        output.render_properties(entry, fmt, json_data=entry)
    else:
        click.echo(shown(entry["value"]))


@click.command("integration:storage:delete")
@click.argument("integration_id", metavar="INTEGRATION")
@click.argument("key", metavar="KEY")
@common.project
@common.remote
def storage_delete(api: Client, project: str, integration_id: str, key: str) -> None:
    """Remove one key from an integration's storage (its next run no longer gets it).

    Asks for confirmation on a terminal; without one the answer is the default, yes (as
    integration:delete), and -n (--no) answers no.

    \b
    Example:
      firehook integration:storage:delete a1kz6ffxui7em pushes --yes
    """
    item = find_integration(api, project, integration_id)
    if not interaction.confirm(f"Delete the key {key} from the storage of integration {item['id']}?"):
        sys.exit(1)
    api.delete(_path(project, item["id"], key))
    err(f"Deleted the key {key} from the storage of integration {item['id']}")


@click.command("integration:storage:clear")
@click.argument("integration_id", metavar="INTEGRATION")
@common.project
@common.remote
def storage_clear(api: Client, project: str, integration_id: str) -> None:
    """Remove every key from an integration's storage: its next run starts from nothing.

    Asks for confirmation on a terminal; without one the answer is the default, yes (as
    integration:delete), and -n (--no) answers no.

    \b
    Example:
      firehook integration:storage:clear a1kz6ffxui7em --yes
    """
    item = find_integration(api, project, integration_id)
    if not interaction.confirm(f"Clear the storage of integration {item['id']} (every key)?"):
        sys.exit(1)
    answer: dict[str, Any] = api.request("DELETE", _path(project, item["id"])).json()
    removed = answer.get("removed", 0)
    err(f"Cleared the storage of integration {item['id']}: {removed} key{'s' if removed != 1 else ''} removed.")


COMMANDS = (storage_list, storage_get, storage_delete, storage_clear)
