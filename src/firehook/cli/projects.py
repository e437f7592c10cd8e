"""Projects: ``project:create``, ``project:list``, ``project:update`` and ``project:delete``."""

from __future__ import annotations

import sys
from typing import Any

import click

from firehook.cli import common, interaction, output
from firehook.cli.client import Client, project_path
from firehook.cli.common import err


@click.command("project:create")
@click.option("--id", "project_id", metavar="ID", help="The project id (default: 13 random characters).")
@click.option("--title", required=True, metavar="TITLE", help="The project's title.")
@click.option("--relay-key", metavar="KEY",
              help="Verify deliveries to the Upsun relay /hooks/upsun/ID with this shared key (never shown again).")
@common.listing
@common.remote
def project_create(api: Client, fmt: output.Format, project_id: str | None, title: str,
                   relay_key: str | None) -> None:
    """Create a project (needs an admin token).

    \b
    Examples:
      firehook project:create --title "Shop"
      firehook project:create --id shop --title "Shop" --relay-key "$UPSUN_WEBHOOK_KEY"
    """
    body: dict[str, Any] = {"title": title}
    if project_id:
        body["id"] = project_id
    if relay_key:
        body["relay_key"] = relay_key
    entity = api.post("/api/projects", body)["_embedded"]["entity"]
    err(f"Created project {entity['id']} ({entity['title']})")
    output.render_properties(entity, fmt, json_data=entity)
    if not fmt.machine_readable:
        err("")
        err(f"Use it with: export FIREHOOK_PROJECT={entity['id']}  (or pass -p {entity['id']})")


@click.command("project:list")
@common.listing
@common.remote
def project_list(api: Client, fmt: output.Format) -> None:
    """List the projects this token can see.

    Columns: ID, Title, Created.

    \b
    Example:
      firehook project:list --format csv
    """
    items = api.get("/api/projects")
    if not items:
        err("No projects found. Create one with: firehook project:create --title \"My project\"")
        sys.exit(1)
    rows = [(p["id"], p.get("title", ""), output.format_date(p.get("created_at"))) for p in items]
    output.render(rows, ("ID", "Title", "Created"), fmt, json_data=items)


@click.command("project:update")
@click.option("--title", metavar="TITLE", help="The project's new title.")
@click.option("--relay-key", metavar="KEY",
              help="Verify deliveries to the Upsun relay /hooks/upsun/ID with this shared key (never shown again).")
@click.option("--no-relay-key", is_flag=True, help="Remove the relay key (the relay then refuses deliveries).")
@common.listing
@common.project
@common.remote
def project_update(api: Client, project: str, fmt: output.Format, title: str | None, relay_key: str | None,
                   no_relay_key: bool) -> None:
    """Update a project's title or relay key (-p PROJECT or FIREHOOK_PROJECT).

    \b
    Examples:
      firehook project:update -p shop --title "Shop (production)"
      firehook project:update -p shop --relay-key "$UPSUN_WEBHOOK_KEY"
    """
    if relay_key and no_relay_key:
        raise click.UsageError("--relay-key and --no-relay-key cannot be used together")
    body: dict[str, Any] = {}
    if title is not None:
        body["title"] = title
    if relay_key:
        body["relay_key"] = relay_key
    if no_relay_key:
        body["relay_key"] = None
    if not body:
        raise click.UsageError("Nothing to update: pass --title, --relay-key or --no-relay-key")
    entity = api.patch(project_path(project), body)["_embedded"]["entity"]
    err(f"Updated project {entity['id']} ({entity['title']})")
    output.render_properties(entity, fmt, json_data=entity)


@click.command("project:delete")
@common.project
@common.remote
def project_delete(api: Client, project: str) -> None:
    """Delete a project (-p PROJECT or FIREHOOK_PROJECT; needs an admin token).

    Its integrations, activities, runs and storage go with it, and its project tokens are
    revoked. Asks for confirmation on a terminal; without one the answer is the default, no:
    pass -y (--yes) to delete from a script.

    \b
    Example:
      firehook project:delete -p shop --yes
    """
    entity = api.get(project_path(project))
    if not interaction.confirm(f"Delete the project {entity['id']} ({entity.get('title', '')}) and everything "
                               "in it?", default=False):
        sys.exit(1)
    api.delete(project_path(project))
    err(f"Deleted project {entity['id']}")


COMMANDS = (project_create, project_list, project_update, project_delete)
