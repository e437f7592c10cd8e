"""API tokens: ``token:create`` (prints the secret once), ``token:list``, ``token:revoke``."""

from __future__ import annotations

import sys
from typing import Any

import click

from firehook.cli import common, output
from firehook.cli.client import Client, seg
from firehook.cli.common import err


@click.command("token:create")
@click.option("--project", "project", metavar="PROJECT", help="Limit the token to this project.")
@click.option("--read-only", is_flag=True, help="The token can read but not change anything.")
@click.option("--description", metavar="TEXT", help="What the token is for.")
@common.remote
def token_create(api: Client, project: str | None, read_only: bool, description: str | None) -> None:
    """Create an API token (needs an admin token).

    The secret is printed once, alone on stdout, and stored only as a hash: keep it now.

    \b
    Examples:
      firehook token:create --project shop --description "CI of the shop"
      FIREHOOK_TOKEN=$(firehook token:create --project shop --read-only)
    """
    body: dict[str, Any] = {"read_only": read_only}
    if project:
        body["project"] = project
    if description:
        body["description"] = description
    created = api.post("/api/tokens", body)
    scope = f"project {created['project']}" if created.get("project") else "all projects"
    err(f"Created token {created['id']} ({scope}{', read-only' if created.get('read_only') else ''}). "
        "The secret below is shown only once:")
    click.echo(created["token"])


@click.command("token:list")
@common.listing
@common.remote
def token_list(api: Client, fmt: output.Format) -> None:
    """List the active API tokens (never their secrets).

    Columns: ID, Project, Read-only, Description, Created.

    \b
    Example:
      firehook token:list
    """
    items = api.get("/api/tokens")
    if not items:
        err("No tokens found")
        sys.exit(1)
    rows = [(t["id"], t.get("project") or "*", output.cell(bool(t.get("read_only"))), t.get("description") or "",
             output.format_date(t.get("created_at"))) for t in items]
    output.render(rows, ("ID", "Project", "Read-only", "Description", "Created"), fmt, json_data=items)


@click.command("token:revoke")
@click.argument("token_id", metavar="ID")
@common.remote
def token_revoke(api: Client, token_id: str) -> None:
    """Revoke an API token: it stops working at once.

    \b
    Example:
      firehook token:revoke 7fk2mzq8w1xpa
    """
    api.delete(f"/api/tokens/{seg(token_id)}")
    err(f"Revoked token {token_id}")


COMMANDS = (token_create, token_list, token_revoke)
