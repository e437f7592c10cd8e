"""Commands that need no server: ``script:run`` (the real script runtime, locally) and
``webhook:verify`` (check a delivery's X-JWS-Signature)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from firehook import timefmt
from firehook.cli.client import CliError
from firehook.cli.common import err
from firehook.cli.options import load_settings, settings_options

RUN_SETTINGS = ("outbound_allow", "script_timeout", "script_memory_mb", "script_log_bytes", "script_fetch_limit",
                "script_fetch_timeout", "script_fetch_max_bytes")


def read_json_object(path: str, what: str) -> dict[str, Any]:
    """A JSON object from a file (``-`` for stdin), or a clear error."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).expanduser().read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CliError(f"The {what} file does not exist: {path}") from None
    except UnicodeDecodeError:
        raise CliError(f"The {what} file {path} is not UTF-8 text.") from None
    except OSError as exc:
        raise CliError(f"Cannot read the {what} file {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise CliError(f"The {what} file {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise CliError(f"The {what} file {path} must hold a JSON object.")
    return data


@click.command("script:run")
@click.argument("script_file", metavar="FILE", type=click.Path(dir_okay=False))
@click.option("--activity", "activity_file", required=True, metavar="A.json",
              help="The activity the script sees as `activity` (- for stdin).")
@click.option("--project", "project_file", metavar="P.json",
              help="The project object the script sees as `project` (default {id, title}).")
@click.option("--variables", "variables_file", metavar="V.json",
              help="The `variables` the script sees: a JSON object, name → value.")
@click.option("--storage", "storage_file", metavar="S.json",
              help="A JSON file used as the integration's storage: read before the run, written after it.")
@click.option("--dry-fetch", is_flag=True,
              help="Do not send fetch calls: log what would have been sent and answer 200 {}.")
@click.option("-t", "--timestamps", is_flag=True, help="Display a timestamp next to each log line.")
@settings_options(RUN_SETTINGS)
def script_run(script_file: str, activity_file: str, project_file: str | None, variables_file: str | None,
               storage_file: str | None, dry_fetch: bool, timestamps: bool, **flags: Any) -> None:
    """Run an activity script locally with the real runtime; no server needed.

    Prints the run's log as the server would record it; the exit code is 1 when the run
    fails (the log's last line says why). fetch calls are made for real, through the same
    outbound guard as the server (FIREHOOK_OUTBOUND_ALLOW lifts it for private addresses),
    unless --dry-fetch.

    What a script can use (activity, project, variables, storage, fetch, crypto, console, _),
    with an example of each, its limits and what a failure looks like: docs/scripts.md, also
    served by firehook at /help/scripts (http://127.0.0.1:8780/help/scripts).

    \b
    Examples:
      firehook script:run my_script.js --activity push.json --dry-fetch
      firehook script:run my_script.js --activity push.json --variables vars.json --storage storage.json
    """
    from firehook import scripts

    path = Path(script_file).expanduser()
    try:
        source = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CliError(f"The script file does not exist: {script_file}") from None
    except UnicodeDecodeError:
        raise CliError(f"The script file {script_file} is not JavaScript: it is not UTF-8 text.") from None
    except OSError as exc:
        raise CliError(f"Cannot read the script file {script_file}: {exc.strerror or exc}") from None
    activity = read_json_object(activity_file, "activity")
    project = read_json_object(project_file, "project") if project_file else {
        "id": activity.get("project") or "local", "title": "Local run"}
    variables = read_json_object(variables_file, "variables") if variables_file else {}
    if storage_file:
        check_writable(storage_file)
    try:
        storage = scripts.MemoryStorage.load(storage_file) if storage_file else scripts.MemoryStorage()
    except ValueError as exc:
        raise CliError(f"The storage file {storage_file} is not usable: {exc}") from None
    except OSError as exc:
        raise CliError(f"Cannot read the storage file {storage_file}: {exc.strerror or exc}") from None
    settings = load_settings(flags)

    def log(line: str) -> None:
        click.echo(f"[{timefmt.now_ts()}] {line}" if timestamps else line)
        sys.stdout.flush()

    outcome = scripts.run_script(
        source,
        activity_json=json.dumps(activity, ensure_ascii=False),
        project=project,
        variables=variables,
        storage=storage,
        limits=scripts.ScriptLimits.from_settings(settings),
        log=log,
        outbound_allow=settings.outbound_allow,
        dry_fetch=dry_fetch,
    )
    if storage_file:
        try:
            storage.save(storage_file)
        except OSError as exc:
            err(f"Error: the storage file {storage_file} cannot be written: {exc.strerror or exc}")
            sys.exit(1)
    if outcome.success:
        err(f"The script ran successfully ({outcome.duration_ms:.0f} ms).")
        return
    err(f"The script failed ({outcome.duration_ms:.0f} ms): {outcome.error}")
    sys.exit(1)


def check_writable(path: str) -> None:
    """Refuse, before the script runs (its fetch calls may have effects), a storage file that
    could not be written after it: a directory, a missing or read-only directory."""
    file = Path(path).expanduser()
    folder = file.parent if str(file.parent) else Path(".")
    if file.is_dir():
        raise CliError(f"The storage file {path} cannot be written: it is a directory.")
    if not folder.is_dir():
        raise CliError(f"The storage file {path} cannot be written: the directory {folder} does not exist.")
    if not os.access(folder, os.W_OK | os.X_OK) or (file.exists() and not os.access(file, os.W_OK)):
        raise CliError(f"The storage file {path} cannot be written: permission denied.")


@click.command("webhook:verify")
@click.option("--key", required=True, metavar="KEY", help="The integration's shared key.")
@click.option("--signature", required=True, metavar="SIGNATURE", help="The X-JWS-Signature header's value.")
@click.argument("body_file", metavar="BODY_FILE")
def webhook_verify(key: str, signature: str, body_file: str) -> None:
    """Check a webhook delivery's signature against the raw body bytes (- for stdin).

    Exit code 0 when it verifies, 1 when it does not (with the reason).

    \b
    Example:
      firehook webhook:verify --key my-shared-key --signature "$SIG" body.json
    """
    from firehook import receiver

    sys.exit(receiver.webhook_verify_main(key, signature, body_file))


COMMANDS = (script_run, webhook_verify)
