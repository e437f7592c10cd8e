"""The installed ``firehook`` command against a real ``firehook serve``: the CLI details of
issue 15 (exit codes, commands for what the API can do, storage, hints, warnings)."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import support
from tests.acceptance.test_cli import Cli, created_id, failing_script, project, runs_of
from tests.receivers import wait_for


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[support.ServerProcess]:
    yield from support.running_server(tmp_path_factory.mktemp("cli-details"),
                                      env={"FIREHOOK_OUTBOUND_ALLOW": "127.0.0.1/32,localhost",
                                           "FIREHOOK_RETRY_SCHEDULE": "600"})


@pytest.fixture(scope="module")
def fh(server: support.ServerProcess) -> Cli:
    return Cli(server)


def test_log_of_a_failed_run_shows_its_result_and_exits_1(fh: Cli, tmp_path: Path) -> None:
    p = project(fh, "failing")
    sid = failing_script(fh, p, tmp_path)
    [run] = runs_of(fh, p, sid)
    assert run["result"] == "failure"
    log = fh("integration:activity:log", sid, *p, ok=False)
    assert log.returncode == 1, log.stderr
    assert "Result: failure" in log.stderr.splitlines()
    assert "about to fail" in log.stdout
    assert "The run failed" in log.stderr
    fine = tmp_path / "fine.js"
    fine.write_text("console.log('fine');\n")
    fh("integration:update", sid, "--file", str(fine), *p)
    fh("activity:emit", "--type", "environment.push", "-e", "main", *p)
    runs = runs_of(fh, p, sid, count=2)
    good = fh("integration:activity:log", sid, runs[0]["id"], *p)
    assert "Result: success" in good.stderr.splitlines() and good.stdout == "fine\n"


def test_activity_cancel_a_run_waiting_for_its_next_attempt(fh: Cli) -> None:
    p = project(fh, "cancels")
    url = f"http://127.0.0.1:{support.free_port()}/down"  # nothing listens: the attempt fails
    wid = created_id(fh("integration:add", "--type", "webhook", "--url", url, *p).stderr, "webhook")
    fh("activity:emit", "--type", "environment.push", "-e", "main", *p)

    [run] = wait_for(lambda: json.loads(fh("integration:activity:list", wid, *p, "--format", "json",
                                           ok=None).stdout or "null"))
    run_id = run["id"]
    # The log is followed until the run waits for its next attempt, ten minutes away: then the command ends.
    log = fh("integration:activity:log", wid, run_id, *p)
    assert "Delivery failed" in log.stdout and "The next attempt is at" in log.stderr
    cancelled = fh("activity:cancel", run_id, *p)
    assert f"Cancelled run {run_id} (type: integration.webhook)" in cancelled.stderr
    doc = json.loads(fh("activity:get", run_id, *p, "--format", "json").stdout)
    assert doc["state"] == "cancelled"
    again = fh("activity:cancel", run_id, *p, ok=False)
    assert again.returncode == 1 and "cannot be cancelled" in again.stderr


def test_project_update_and_delete(fh: Cli) -> None:
    p = project(fh, "renamed")
    updated = fh("project:update", *p, "--title", "New title", "--format", "json")
    assert json.loads(updated.stdout)["title"] == "New title"
    assert "Updated project renamed (New title)" in updated.stderr
    keyed = json.loads(fh("project:update", *p, "--relay-key", "k3y", "--format", "json").stdout)
    assert keyed["has_relay_key"] is True
    unkeyed = json.loads(fh("project:update", *p, "--no-relay-key", "--format", "json").stdout)
    assert unkeyed["has_relay_key"] is False
    nothing = fh("project:update", *p, ok=False)
    assert nothing.returncode == 2 and "Nothing to update" in nothing.stderr
    refused = fh("project:delete", *p, ok=False)  # no terminal, no --yes: the default is no
    assert refused.returncode == 1 and "[y/N] n" in refused.stderr
    assert "renamed" in fh("project:list", "--format", "csv").stdout
    deleted = fh("project:delete", *p, "--yes")
    assert "Deleted project renamed" in deleted.stderr
    assert "renamed" not in fh("project:list", "--format", "csv").stdout


def test_serve_on_a_busy_port_starts_nothing_and_suggests_another(server: support.ServerProcess,
                                                                   tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIREHOOK_")}
    second = subprocess.run(support.firehook_command() + ["serve", "--host", "127.0.0.1", "--port", str(server.port),
                                                          "--data-dir", str(tmp_path / "second")],
                            env=env, text=True, capture_output=True, timeout=120, stdin=subprocess.DEVNULL,
                            check=False)
    assert second.returncode == 1, second.stdout + second.stderr
    assert "listening" not in second.stdout + second.stderr
    assert f"Cannot listen on 127.0.0.1:{server.port}" in second.stderr
    assert "--port N" in second.stderr and f'make run ARGS="--port {server.port + 1}"' in second.stderr
    assert "Traceback" not in second.stderr
    assert not (tmp_path / "second" / "admin.token").exists()  # nothing was started: no token, no database
    assert httpx.get(server.base_url + "/healthz").status_code == 200  # the first server goes on


def test_token_option_as_the_settings_document_it(fh: Cli, server: support.ServerProcess, tmp_path: Path) -> None:
    project(fh, "tokens")
    elsewhere = {"FIREHOOK_DATA_DIR": str(tmp_path), "FIREHOOK_TOKEN": None}  # no admin.token to find
    missing = fh("project:list", env=elsewhere, ok=False)
    assert missing.returncode == 1 and "--token" in missing.stderr
    listed = fh("project:list", "--format", "csv", "--token", server.token, env=elsewhere)
    assert "tokens,Tokens," in listed.stdout
    # --token wins over FIREHOOK_TOKEN
    wrong_env = fh("project:list", "--token", server.token, env={**elsewhere, "FIREHOOK_TOKEN": "nope"})
    assert wrong_env.returncode == 0
    wrong = fh("project:list", "--token", "nope", env=elsewhere, ok=False)
    assert wrong.returncode != 0


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_serve_help_shows_real_defaults_and_metavars(command: str) -> None:
    shown = subprocess.run(support.firehook_command() + [command, "--help"], text=True, capture_output=True,
                           timeout=60, check=True, env={"COLUMNS": "200", "PATH": os.environ.get("PATH", "")})
    text = " ".join(shown.stdout.split())
    assert "see help" not in text and " VALUE " not in text, shown.stdout
    assert "--data-dir DIR " in text and "default ~/.local/share/firehook" in text
    assert "--database-url URL " in text and "default sqlite:///DATA_DIR/firehook.db" in text
    assert "--script-timeout SECONDS " in text and "--retry-schedule SECONDS,... " in text
    assert "--workers N " in text and "default 0 (one per core)" in text
    if command == "serve":
        assert "--port PORT " in text and "default 8780" in text and "default http://HOST:PORT" in text


def test_integration_storage_list_get_delete_clear(fh: Cli, tmp_path: Path) -> None:
    p = project(fh, "stored")
    script = tmp_path / "count.js"
    script.write_text("storage.set('pushes', (storage.get('pushes') || 0) + 1);\n"
                      "storage.set('last', activity.type);\nstorage.set('seen', true);\n")
    sid = created_id(fh("integration:add", "--type", "script", "--file", str(script), *p).stderr, "script")
    assert "has stored nothing" in fh("integration:storage:list", sid, *p).stderr
    for count in (1, 2):
        fh("activity:emit", "--type", "environment.push", "-e", "main", *p)
        runs_of(fh, p, sid, count=count)
    table = fh("integration:storage:list", sid, *p, "--format", "csv")
    assert table.stdout.splitlines() == ["Key,Value,Type,Bytes", "last,environment.push,string,22",
                                         "pushes,2,number,7", "seen,true,boolean,8"]
    listed = json.loads(fh("integration:storage:list", sid, *p, "--format", "json").stdout)
    assert listed["count"] == 3 and [i["value"] for i in listed["items"]] == ["environment.push", 2, True]
    assert fh("integration:storage:get", sid, "pushes", *p).stdout == "2\n"
    assert fh("integration:storage:get", sid, "last", *p).stdout == "environment.push\n"
    missing = fh("integration:storage:get", sid, "nothing", *p, ok=False)
    assert missing.returncode == 1 and "stored nothing under 'nothing'" in missing.stderr
    kept = fh("integration:storage:delete", sid, "pushes", *p, "--no", ok=False)
    assert kept.returncode == 1 and fh("integration:storage:get", sid, "pushes", *p).stdout == "2\n"
    assert "Deleted the key pushes" in fh("integration:storage:delete", sid, "pushes", *p, "--yes").stderr
    assert fh("integration:storage:get", sid, "pushes", *p, ok=False).returncode == 1
    cleared = fh("integration:storage:clear", sid, *p, "--yes")
    assert "2 keys removed" in cleared.stderr
    assert json.loads(fh("integration:storage:list", sid, *p, "--format", "json").stdout)["items"] == []


def test_integration_add_and_update_print_event_warnings(fh: Cli) -> None:
    p = project(fh, "typos")
    url = f"http://127.0.0.1:{support.free_port()}/"
    added = fh("integration:add", "--type", "webhook", "--url", url, "--events", "environment.psh", *p, "-q")
    assert ("Warning: events: 'environment.psh' is not a known activity type; did you mean 'environment.push'?"
            in added.stderr.splitlines()), added.stderr
    wid = json.loads(fh("integration:list", *p, "--format", "json").stdout)[0]["id"]
    updated = fh("integration:update", wid, "--events", "environment.deploi", *p)
    assert "did you mean 'environment.deploy'?" in updated.stderr
    clean = fh("integration:update", wid, "--events", "environment.push", *p)
    assert "Warning:" not in clean.stderr


@pytest.mark.parametrize("command", ["script:run", "integration:add"])
def test_script_help_links_the_script_reference(command: str, server: support.ServerProcess) -> None:
    shown = subprocess.run(support.firehook_command() + [command, "--help"], text=True, capture_output=True,
                           timeout=60, check=True, env={"COLUMNS": "200", "PATH": os.environ.get("PATH", "")})
    text = " ".join(shown.stdout.split())
    assert "docs/scripts.md" in text and "/help/scripts" in text
    assert (Path(__file__).parents[2] / "docs" / "scripts.md").is_file()
    with httpx.Client(base_url=server.base_url) as browser:  # the link the help gives is served, once signed in
        form = browser.get("/signin")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert csrf, form.text
        signed_in = browser.post("/signin", data={"csrf_token": csrf.group(1), "next": "/help/scripts",
                                                  "token": server.token})
        assert signed_in.status_code == 303 and signed_in.headers["location"] == "/help/scripts"
        page = browser.get("/help/scripts")
    assert page.status_code == 200 and "Activity scripts" in page.text and "storage.set" in page.text


def test_reposting_an_activity_hints_at_replay(fh: Cli, tmp_path: Path) -> None:
    p = project(fh, "reposts")
    script = tmp_path / "hello.js"
    script.write_text("console.log('hello');\n")
    created_id(fh("integration:add", "--type", "script", "--file", str(script), *p).stderr, "script")
    doc = tmp_path / "push.json"
    doc.write_text(json.dumps(support.fixture_doc("push-complete")))
    first = fh("activity:emit", "--file", str(doc), *p)
    assert "1 run triggered" in first.stderr and "activity:replay" not in first.stderr
    again = fh("activity:emit", "--file", str(doc), *p)
    activity_id = support.fixture_doc("push-complete")["id"]
    assert "0 runs triggered" in again.stderr
    assert f"To run it again, use: firehook activity:replay {activity_id} -p reposts" in again.stderr
    replayed = fh("activity:replay", activity_id, *p)
    assert "1 new run" in replayed.stderr


def on_a_terminal(fh: Cli, *args: str, columns: int = 80) -> tuple[int, str]:
    """``firehook ARGS`` with a pseudo-terminal of ``columns`` as its stdout: its exit code and output."""
    pid, fd = pty.fork()
    if pid == 0:  # the child
        os.execve(support.firehook_command()[0], ["firehook", *args],
                  {**fh.env, "TERM": "dumb", "COLUMNS": str(columns), "LINES": "50"})
    seen = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the child ended: EIO on Linux
            break
        if not chunk:
            break
        seen += chunk
    os.close(fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), seen.decode("utf-8", "replace").replace("\r\n", "\n")


def test_tables_keep_ids_and_dates_whole_at_80_columns(fh: Cli, tmp_path: Path) -> None:
    p = project(fh, "narrow")
    text = ("a description long enough to need wrapping on a narrow terminal, with words of every "
            "length in it so that the free text column is the one that gives way")
    emitted = [json.loads(fh("activity:emit", "--type", "environment.push", "-e", "main", "--text", text, *p,
                             "--format", "json").stdout)["_embedded"]["entity"] for _ in range(2)]
    code, shown = on_a_terminal(fh, "activity:list", *p)
    assert code == 0, shown
    lines = shown.splitlines()
    for doc in emitted:
        created = json.loads(fh("activity:get", doc["id"], *p, "--format", "json").stdout)["created_at"]
        row = [line for line in lines if doc["id"] in line]
        assert len(row) == 1, shown  # the id whole, on one line
        assert re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", row[0]), shown  # its date whole too
        assert created[:10] in row[0]
    assert all(len(line) <= 80 for line in lines), shown  # the table fits the terminal
    assert any(line.endswith("| Result |") for line in lines[:4]), shown  # a short column kept whole
    continued = [line for line in lines if line.startswith("|               | ") and "|" in line[17:]]
    assert len(continued) > 4, shown  # the free text wrapped over several lines
    # a property table shows an empty list as []
    script = tmp_path / "noop.js"
    script.write_text("console.log(1);\n")
    sid = created_id(fh("integration:add", "--type", "script", "--file", str(script), *p).stderr, "script")
    props = fh("integration:get", sid, *p, "--format", "csv").stdout
    assert "{  }" not in props
    assert re.search(r"^excluded_environments,\[\]$", props, re.MULTILINE), props
