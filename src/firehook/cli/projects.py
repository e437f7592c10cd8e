"""Projects: ``project:create`` and ``project:list``."""

from __future__ import annotations

import sys
from typing import Any

import click

from firehook.cli import common, output
from firehook.cli.client import Client
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


COMMANDS = (project_create, project_list)
