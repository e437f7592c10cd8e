"""The installed ``firehook`` command, run as a subprocess against a real ``firehook serve``:
the newcomer path, the Upsun-compatible output shapes, and bad input."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import support
from tests.receivers import Receiver, wait_for

ID = r"[a-z0-9]{13}"


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[support.ServerProcess]:
    yield from support.running_server(tmp_path_factory.mktemp("cli-serve"),
                                      env={"FIREHOOK_OUTBOUND_ALLOW": "127.0.0.1/32,localhost",
                                           "FIREHOOK_RETRY_SCHEDULE": "0.2"})


class Cli:
    """Runs ``firehook …`` with the server, data dir and outbound allow-list in its environment."""

    def __init__(self, server: support.ServerProcess) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("FIREHOOK_")}
        self.env.update({"FIREHOOK_SERVER": server.base_url, "FIREHOOK_DATA_DIR": str(server.data_dir),
                         "FIREHOOK_OUTBOUND_ALLOW": "127.0.0.1/32,localhost"})

    def __call__(self, *args: str, stdin: str | None = None, env: dict[str, str] | None = None,
                 ok: bool | None = True) -> subprocess.CompletedProcess[str]:
        full_env = dict(self.env)
        for key, value in (env or {}).items():
            if value is None:
                full_env.pop(key, None)
            else:
                full_env[key] = value
        result = subprocess.run(support.firehook_command() + list(args), env=full_env, text=True, check=False,
                                capture_output=True, timeout=120, input=stdin,
                                stdin=None if stdin is not None else subprocess.DEVNULL)
        if ok is True:
            assert result.returncode == 0, f"firehook {' '.join(args)}: {result.returncode}\n{result.stderr}{result.stdout}"
        assert "Traceback" not in result.stderr, result.stderr
        return result


@pytest.fixture(scope="module")
def fh(server: support.ServerProcess) -> Cli:
    return Cli(server)


def project(fh: Cli, name: str) -> list[str]:
    fh("project:create", "--id", name, "--title", name.title())
    return ["-p", name]


def table_header(stdout: str) -> list[str]:
    """The column names of an ASCII table (its second line)."""
    lines = stdout.splitlines()
    assert re.match(r"^\+-[-+]+-\+$", lines[0]), stdout
    return [c.strip() for c in lines[1].split("|")[1:-1]]


def properties(stdout: str) -> dict[str, str]:
    rows = list(csv.reader(io.StringIO(stdout)))
    assert rows[0] == ["Property", "Value"]
    return {k: v for k, v in rows[1:]}


def created_id(stderr: str, kind: str) -> str:
    match = re.search(rf"^Created integration ({ID}) \(type: {kind}\)$", stderr, re.MULTILINE)
    assert match, stderr
    return match.group(1)


def runs_of(fh: Cli, p: list[str], integration: str, count: int = 1) -> list[dict[str, Any]]:
    """Wait until the integration has ``count`` finished runs; return its runs (newest first)."""
    def finished() -> list[dict[str, Any]] | None:
        result = fh("integration:activity:list", integration, *p, "--format", "json", ok=None)
        if result.returncode != 0:
            return None
        items = json.loads(result.stdout)
        done = [i for i in items if i["state"] == "complete"]
        return items if len(done) >= count else None
    return wait_for(finished, timeout=60, interval=0.3)  # type: ignore[no-any-return]


SCRIPT = """\
var counter = (storage.get('counter') || 0) + 1;
storage.set('counter', counter);
console.log('run', counter, 'for', activity.type, 'on', activity.environments.join(','));
"""


# ---- the newcomer path -----------------------------------------------------------------------


def test_newcomer_path(fh: Cli, receiver: Receiver, tmp_path: Path) -> None:
    created = fh("project:create", "--id", "shop", "--title", "Shop")
    assert "Created project shop (Shop)" in created.stderr
    assert "| id " in created.stdout and "| shop " in created.stdout
    listed = fh("project:list", "--format", "csv")
    assert listed.stdout.splitlines()[0] == "ID,Title,Created" and "shop,Shop," in listed.stdout
    p = ["-p", "shop"]

    script = tmp_path / "my_script.js"
    script.write_text(SCRIPT)
    added = fh("integration:add", "--type", "script", "--file", str(script), "--events", "environment.push", *p)
    script_id = created_id(added.stderr, "script")
    assert table_header(added.stdout) == ["Property", "Value"]
    assert re.search(r"^\| events +\| - environment\.push +\|$", added.stdout, re.MULTILINE), added.stdout

    hook_url = receiver.on("/cli-shop")
    added = fh("integration:add", "--type", "webhook", "--url", hook_url, "--shared-key", "topsecret",
               "--events", "environment.push, environment.deploy", "--states", "complete", *p,
               "--format", "csv")
    hook_id = created_id(added.stderr, "webhook")
    props = properties(added.stdout)
    assert props["url"] == hook_url and props["shared_key"] == "******"
    assert props["events"] == "- environment.push\n- environment.deploy"
    assert "topsecret" not in added.stdout + added.stderr

    listed = fh("integration:list", *p)
    assert table_header(listed.stdout) == ["ID", "Type", "Summary"]
    assert f"URL: {hook_url}" in listed.stdout and "Script:" in listed.stdout
    assert "firehook integration:get [id]" in listed.stderr
    as_csv = list(csv.reader(io.StringIO(fh("integrations", *p, "--format", "csv").stdout)))
    assert as_csv[0] == ["ID", "Type", "Summary"]
    assert {(r[0], r[1]) for r in as_csv[1:]} == {(script_id, "script"), (hook_id, "webhook")}
    assert next(r for r in as_csv if r[0] == script_id)[2].startswith("Script:\nvar counter")
    as_json = json.loads(fh("integration:list", *p, "--format", "json").stdout)
    assert {i["id"] for i in as_json} == {script_id, hook_id}
    no_header = fh("integration:list", *p, "--format", "tsv", "--no-header").stdout.splitlines()
    assert not no_header[0].startswith("ID") and "integration:get" not in no_header

    emitted = fh("activity:emit", "--type", "environment.push", "-e", "main", "--state", "complete",
                 "--result", "success", "--id", "push-1", *p)
    assert re.search(r"Created activity push-1 \(environment\.push, state complete\): 2 runs triggered\.", emitted.stderr)
    assert table_header(emitted.stdout) == ["Run", "Type", "Integration", "State"]

    [run] = runs_of(fh, p, script_id)
    assert run["result"] == "success" and run["parameters"]["activity"] == "push-1"
    runs_csv = list(csv.reader(io.StringIO(fh("integration:activity:list", script_id, *p, "--format", "csv").stdout)))
    assert runs_csv[0] == ["ID", "Created", "Description", "Type", "State", "Result"]
    assert runs_csv[1][0] == run["id"] and runs_csv[1][2:] == ["Running activity script", "integration.script",
                                                               "complete", "success"]
    table = fh("integration:activities", script_id, *p)
    assert table_header(table.stdout) == ["ID", "Created", "Description", "Type", "State", "Result"]
    assert f"integration {script_id} (script)" in table.stderr

    log = fh("integration:activity:log", script_id, *p)
    assert log.stdout.splitlines() == ["run 1 for environment.push on main"]
    assert f"Activity ID: {run['id']}" in log.stderr and "State: complete" in log.stderr
    stamped = fh("integration:activity:log", script_id, run["id"], "-t", *p)
    assert re.match(r"^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00\] run 1 for environment\.push on main$",
                    stamped.stdout.strip())

    [hook_run] = runs_of(fh, p, hook_id)
    assert hook_run["result"] == "success"
    [delivery] = receiver.requests_to("/cli-shop")
    body = tmp_path / "body.json"
    body.write_bytes(delivery.body)
    verified = fh("webhook:verify", "--key", "topsecret", "--signature", delivery.headers["x-jws-signature"], str(body))
    assert "Signature verified." in verified.stdout

    valid = fh("integration:validate", script_id, *p)
    assert f"Validating the integration {script_id} (type: script)..." in valid.stderr
    assert "The integration is valid." in valid.stderr

    updated = fh("integration:update", script_id, "--events", "environment.push environment.deploy", *p)
    assert f"Integration {script_id} (script) updated" in updated.stderr
    events = fh("integration:get", script_id, "-P", "events", *p)
    assert events.stdout == "- environment.push\n- environment.deploy\n"
    unchanged = fh("integration:update", script_id, "--events", "environment.push,environment.deploy", *p, ok=False)
    assert unchanged.returncode == 1 and "No changed values were provided to update." in unchanged.stderr
    assert fh("integration:get", script_id[:6], "-P", "type", *p).stdout == "script\n"  # a partial id, as Upsun

    refused = fh("integration:delete", hook_id, "-n", *p, ok=False)  # Upsun's --no
    assert refused.returncode == 1
    assert f"Delete the integration {hook_id} (type: webhook)? [Y/n] n" in refused.stderr
    deleted = fh("integration:delete", hook_id, *p)  # no terminal: the default, yes, as Upsun
    assert f"Delete the integration {hook_id} (type: webhook)? [Y/n] y" in deleted.stderr
    assert f"Deleted integration {hook_id}" in deleted.stderr
    gone = fh("integration:get", hook_id, *p, ok=False)
    assert gone.returncode == 1 and f"Integration not found: {hook_id}" in gone.stderr
    # Its runs stay readable.
    assert fh("integration:activity:list", script_id, *p, "--format", "json").stdout


def test_follow_an_unfinished_run(fh: Cli, receiver: Receiver, tmp_path: Path) -> None:
    # The script waits on a receiver that answers only when the test says so: the run is
    # certainly unfinished while the log command starts, whatever the machine's speed.
    arrived, let_go = threading.Event(), threading.Event()

    def hold(_request: Any) -> tuple[int, dict[str, str], bytes]:
        arrived.set()
        let_go.wait(60)
        return 200, {}, b"released"

    p = project(fh, "follow")
    script = tmp_path / "slow.js"
    script.write_text(f"console.log('start');\nfetch('{receiver.on('/hold', hold)}', {{method: 'POST'}});\n"
                      "console.log('end');\n")
    integration = created_id(fh("integration:add", "--type", "script", "--file", str(script), *p).stderr, "script")
    fh("activity:emit", "--type", "environment.push", "-e", "main", *p)
    assert arrived.wait(60)
    follower = subprocess.Popen(support.firehook_command() + ["integration:activity:log", integration, *p],
                                env=fh.env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL)
    try:
        assert follower.stderr is not None
        for line in follower.stderr:
            if "following its log until it finishes" in line:
                break
        else:
            raise AssertionError("the log command did not say it follows the run")
    finally:
        let_go.set()
    out, rest = follower.communicate(timeout=60)
    assert follower.returncode == 0, rest
    assert out.splitlines()[0] == "start" and out.splitlines()[-1] == "end"
    assert "The run is complete (result: success)." in rest


# ---- bad input -------------------------------------------------------------------------------


def test_bad_input_is_refused_clearly(fh: Cli, tmp_path: Path) -> None:
    p = project(fh, "errors")
    missing = fh("integration:add", "--type", "script", "--file", str(tmp_path / "nope.js"), *p, ok=False)
    assert missing.returncode == 1 and "The script file does not exist:" in missing.stderr

    image = tmp_path / "logo.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    not_js = fh("integration:add", "--type", "script", "--file", str(image), *p, ok=False)
    assert not_js.returncode == 1 and "is not JavaScript" in not_js.stderr
    binary = tmp_path / "binary.js"
    binary.write_bytes(b"\xff\xfe\x00\x01")
    assert "not UTF-8" in fh("integration:add", "--type", "script", "--file", str(binary), *p, ok=False).stderr

    broken = tmp_path / "broken.js"
    broken.write_text("console.log('ok');\nvar = 3;\n")
    syntax = fh("integration:add", "--type", "script", "--file", str(broken), *p, ok=False)
    assert syntax.returncode == 4, syntax.stderr
    assert "The integration is invalid." in syntax.stderr and "The following error was found:" in syntax.stderr
    assert re.match(r"^script: SyntaxError: .*\(line 2, column \d+\)$", syntax.stdout.strip()), syntax.stdout

    wrong_type = fh("integration:add", "--type", "script", "--file", str(broken), "--url", "http://x", *p, ok=False)
    assert wrong_type.returncode == 1
    assert "The option --url cannot be used with the integration type script." in wrong_type.stderr
    no_url = fh("integration:add", "--type", "webhook", *p, ok=False)
    assert no_url.returncode == 1 and "--url is required" in no_url.stderr  # Upsun's message and exit code

    bad_events = fh("integration:add", "--type", "webhook", "--url", "http://127.0.0.1:9/x",
                    "--events", "environment.push, not/an/event", *p, ok=False)
    assert bad_events.returncode == 4 and "events:" in bad_events.stdout and "not/an/event" in bad_events.stdout
    bad_states = fh("integration:add", "--type", "webhook", "--url", "http://127.0.0.1:9/x", "--states", "done",
                    *p, ok=False)
    assert bad_states.returncode == 4 and "states:" in bad_states.stdout

    unknown = fh("integration:get", "zzzzzzzzzzzzz", *p, ok=False)
    assert unknown.returncode == 1 and "Integration not found: zzzzzzzzzzzzz" in unknown.stderr
    assert fh("integration:validate", "zzzzzzzzzzzzz", *p, ok=False).returncode == 1

    no_project = fh("integration:list", ok=False)
    assert no_project.returncode == 2 and "FIREHOOK_PROJECT" in no_project.stderr
    missing_project = fh("integration:list", "-p", "nosuchproject", ok=False)
    assert missing_project.returncode == 1 and "firehook project:create" in missing_project.stderr
    bad_format = fh("integration:list", *p, "--format", "xml", ok=False)
    assert bad_format.returncode == 2
    bad_activity = fh("activity:emit", "--type", "environment.push", "--state", "complete", "--id", "bad id!", *p,
                      ok=False)
    assert bad_activity.returncode == 1 and "id:" in bad_activity.stderr


def test_server_down_and_tokens(fh: Cli, tmp_path: Path) -> None:
    closed = support.free_port()
    down = fh("integration:list", "-p", "shop", "--server", f"http://127.0.0.1:{closed}", ok=False)
    assert down.returncode == 1
    assert f"Cannot reach the firehook server at http://127.0.0.1:{closed}" in down.stderr
    assert "firehook serve" in down.stderr and "make run" in down.stderr

    no_token = fh("project:list", env={"FIREHOOK_DATA_DIR": str(tmp_path)}, ok=False)
    assert no_token.returncode == 1 and "No API token" in no_token.stderr and "admin.token" in no_token.stderr

    p = project(fh, "tokens")
    made = fh("token:create", "--project", "tokens", "--description", "CI")
    secret = made.stdout.strip()
    assert secret.startswith("fh_") and "\n" not in secret and "shown only once" in made.stderr
    token_id = re.search(rf"Created token ({ID})", made.stderr).group(1)  # type: ignore[union-attr]
    listed = list(csv.reader(io.StringIO(fh("token:list", "--format", "csv").stdout)))
    assert listed[0] == ["ID", "Project", "Read-only", "Description", "Created"]
    assert [token_id, "tokens", "false", "CI"] in [r[:4] for r in listed]
    assert secret not in json.dumps(listed)
    assert fh("integration:list", *p, env={"FIREHOOK_TOKEN": secret}, ok=None).stderr.startswith("No integrations")
    fh("token:revoke", token_id)
    revoked = fh("integration:list", *p, env={"FIREHOOK_TOKEN": secret}, ok=False)
    assert revoked.returncode == 1
    assert "invalid or revoked token" in revoked.stderr and "FIREHOOK_TOKEN" in revoked.stderr


# ---- activities ------------------------------------------------------------------------------


def test_emit_files_and_batches(fh: Cli, tmp_path: Path) -> None:
    p = project(fh, "batch")
    one = tmp_path / "one.json"
    one.write_text(json.dumps(support.fixture_doc("push-complete")))
    single = fh("activity:emit", "--file", str(one), *p)
    assert "Created activity" in single.stderr

    ndjson = tmp_path / "many.ndjson"
    ndjson.write_text("\n".join([
        json.dumps({"type": "environment.push", "id": "n1", "environments": ["main"]}),
        '{"type": ',
        "",
        json.dumps({"type": "environment.deploy", "id": "n2", "state": "nope"}),
        json.dumps({"type": "environment.deploy", "id": "n3"}),
    ]) + "\n")
    batch = fh("activity:emit", "--file", str(ndjson), *p, ok=False)
    assert batch.returncode == 1
    assert "Line 2: invalid JSON" in batch.stderr and "Line 4: state:" in batch.stderr
    assert "Accepted 2 of 4 activities" in batch.stderr and "2 rejected" in batch.stderr

    array = json.dumps([{"type": "environment.cron", "id": f"c{i}"} for i in range(3)])
    from_stdin = fh("activity:emit", "--file", "-", *p, "--format", "json", stdin=array)
    report = json.loads(from_stdin.stdout)
    assert report["accepted"] == 3 and [r["item"] for r in report["results"]] == [1, 2, 3]

    mixed = fh("activity:emit", "--file", str(one), "--type", "x", *p, ok=False)
    assert mixed.returncode == 2
    not_json = tmp_path / "nope.json"
    not_json.write_text("this is not json")
    assert "not valid JSON" in fh("activity:emit", "--file", str(not_json), *p, ok=False).stderr

    listed = list(csv.reader(io.StringIO(fh("activity:list", *p, "--format", "csv", "--type", "environment.cron").stdout)))
    assert listed[0] == ["ID", "Created", "Description", "Type", "State", "Result"]
    assert sorted(r[0] for r in listed[1:]) == ["c0", "c1", "c2"]
    assert fh("activity:get", "n1", "-P", "environments", *p).stdout == "- main\n"
    assert properties(fh("activity:get", "n3", *p, "--format", "csv").stdout)["type"] == "environment.deploy"


def test_replay_and_variables(fh: Cli, receiver: Receiver, tmp_path: Path) -> None:
    p = project(fh, "replay")
    for n in range(2):
        fh("activity:emit", "--type", "environment.push", "-e", "main", "--id", f"r{n}", *p)
    url = receiver.on("/cli-replay")
    hook = created_id(fh("integration:add", "--type", "webhook", "--url", url, *p).stderr, "webhook")
    replayed = fh("activity:replay", "r0", "r1", "--integration", hook, *p, "--format", "csv")
    rows = list(csv.reader(io.StringIO(replayed.stdout)))
    assert rows[0] == ["Activity", "Run", "Type", "Integration"]
    assert [(r[0], r[2], r[3]) for r in rows[1:]] == [("r0", "integration.webhook", hook),
                                                      ("r1", "integration.webhook", hook)]
    assert "Replayed 2 activities: 2 new runs." in replayed.stderr
    wait_for(lambda: len(receiver.requests_to("/cli-replay")) == 2)
    partly = fh("activity:replay", "r0", "nosuch", *p, ok=False)
    assert partly.returncode == 1 and "Not replayed: nosuch" in partly.stderr

    script = tmp_path / "vars.js"
    script.write_text("console.log(variables.CHANNEL, variables.LIMITS.max, typeof variables.TOKEN);")
    sid = created_id(fh("integration:add", "--type", "script", "--file", str(script), *p).stderr, "script")
    fh("integration:variable:create", sid, "--name", "CHANNEL", "--value", "#deploys", *p)
    fh("integration:variable:create", sid, "--name", "LIMITS", "--value", '{"max": 3}', "--json", *p)
    made = fh("integration:variable:create", sid, "--name", "TOKEN", "--value", "-", "--sensitive", *p,
              stdin="s3cr3t-value\n")
    assert "s3cr3t-value" not in made.stdout + made.stderr
    for fmt in ("table", "csv", "json", "plain"):
        listed = fh("integration:variable:list", sid, *p, "--format", fmt)
        assert "s3cr3t-value" not in listed.stdout and "#deploys" in listed.stdout
    rows = list(csv.reader(io.StringIO(fh("integration:variable:list", sid, *p, "--format", "csv").stdout)))
    assert rows[0] == ["ID", "Name", "Value", "JSON", "Sensitive", "Updated"]
    assert ["TOKEN", "******", "false", "true"] in [r[1:5] for r in rows]
    assert fh("integration:variable:get", sid, "TOKEN", "-P", "value", *p).stdout == "******\n"
    assert "s3cr3t-value" not in fh("integration:variable:get", sid, "TOKEN", *p, "--format", "json").stdout
    bad_json = fh("integration:variable:create", sid, "--name", "X", "--value", "{nope", "--json", *p, ok=False)
    assert bad_json.returncode == 1 and "not JSON" in bad_json.stderr
    fh("integration:variable:update", sid, "CHANNEL", "--value", "#releases", *p)
    fh("activity:emit", "--type", "environment.push", "-e", "main", *p)
    wait_for(lambda: fh("integration:activity:list", sid, *p, ok=None).returncode == 0)
    run = runs_of(fh, p, sid)[0]
    assert run["result"] == "success"
    assert fh("integration:activity:log", sid, *p).stdout == "#releases 3 string\n"
    fh("integration:variable:delete", sid, "CHANNEL", "--yes", *p)
    assert "CHANNEL" not in fh("integration:variable:list", sid, *p).stdout


def failing_script(fh: Cli, p: list[str], tmp_path: Path) -> str:
    """A script integration that logs a line, then throws; one push has run it. Its id."""
    script = tmp_path / "boom.js"
    script.write_text("console.log('about to fail');\nthrow new Error('boom');\n")
    sid = created_id(fh("integration:add", "--type", "script", "--file", str(script), *p).stderr, "script")
    fh("activity:emit", "--type", "environment.push", "-e", "main", *p)
    return sid


def test_validate_reports_an_invalid_script(fh: Cli, tmp_path: Path) -> None:
    p = project(fh, "invalid")
    sid = failing_script(fh, p, tmp_path)
    result = fh("integration:validate", sid, *p, ok=False)
    assert result.returncode == 4, result.stderr
    assert "The following error was found:" in result.stderr
    assert re.match(r"^script: Error: boom \(line 2, column \d+\)$", result.stdout.strip()), result.stdout


def test_validate_a_webhook_with_a_test_delivery(fh: Cli, receiver: Receiver) -> None:
    p = project(fh, "pings")
    good = created_id(fh("integration:add", "--type", "webhook", "--url", receiver.on("/cli-ping-ok"), *p).stderr,
                      "webhook")
    valid = fh("integration:validate", good, *p)
    assert "Test delivery: HTTP 200" in valid.stderr and "The integration is valid." in valid.stderr
    [ping] = receiver.requests_to("/cli-ping-ok")
    assert json.loads(ping.body)["parameters"] == {"ping": True}
    bad_url = receiver.on("/cli-ping-bad", (500, {}, b"down"))
    bad = created_id(fh("integration:add", "--type", "webhook", "--url", bad_url, *p).stderr, "webhook")
    invalid = fh("integration:validate", bad, *p, ok=False)
    assert invalid.returncode == 4 and "Test delivery: HTTP 500" in invalid.stderr
    assert invalid.stdout.startswith("url: ")


# ---- local commands --------------------------------------------------------------------------


def test_script_run_locally(fh: Cli, receiver: Receiver, tmp_path: Path) -> None:
    activity = tmp_path / "push.json"
    activity.write_text(json.dumps(support.fixture_doc("push-complete")))
    url = receiver.on("/cli-script-run", (201, {"Content-Type": "application/json"}, b'{"ok": true}'))
    script = tmp_path / "notify.js"
    script.write_text(
        f"var r = fetch('{url}', {{method: 'POST', headers: {{'Content-Type': 'application/json'}},"
        " body: JSON.stringify({text: activity.text, channel: variables.CHANNEL})});\n"
        "console.log('status', r.status, r.json().ok, project.title);\n"
        "storage.set('calls', (storage.get('calls') || 0) + 1);\n")
    variables = tmp_path / "vars.json"
    variables.write_text('{"CHANNEL": "#deploys"}')
    project_file = tmp_path / "project.json"
    project_file.write_text('{"id": "shop", "title": "Shop"}')
    storage = tmp_path / "storage.json"
    args = ["script:run", str(script), "--activity", str(activity), "--variables", str(variables),
            "--project", str(project_file), "--storage", str(storage)]

    dry = fh(*args, "--dry-fetch")
    assert f"HTTP request: POST {url}" in dry.stdout and "dry run: nothing was sent" in dry.stdout
    assert '"channel":"#deploys"' in dry.stdout
    assert receiver.requests_to("/cli-script-run") == []

    real = fh(*args)
    assert "HTTP response: 201" in real.stdout and "status 201 true Shop" in real.stdout
    [sent] = receiver.requests_to("/cli-script-run")
    assert json.loads(sent.body)["channel"] == "#deploys"
    assert json.loads(storage.read_text()) == {"calls": 2}

    blocked = fh(*args, env={"FIREHOOK_OUTBOUND_ALLOW": ""}, ok=False)
    assert blocked.returncode == 1 and "127.0.0.1" in blocked.stdout
    assert len(receiver.requests_to("/cli-script-run")) == 1

    failing = tmp_path / "fail.js"
    failing.write_text("console.log('before');\nnull.boom;\n")
    failed = fh("script:run", str(failing), "--activity", str(activity), ok=False)
    assert failed.returncode == 1
    assert failed.stdout.splitlines()[0] == "before"
    assert re.search(r"TypeError: .*\(line 2, column \d+\)$", failed.stdout.strip())
    assert "The script failed" in failed.stderr
    missing = fh("script:run", str(tmp_path / "nope.js"), "--activity", str(activity), ok=False)
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    bad_activity = fh("script:run", str(failing), "--activity", str(variables.with_name("none.json")), ok=False)
    assert bad_activity.returncode == 1 and "activity file does not exist" in bad_activity.stderr


def test_webhook_verify_with_the_spec_vector(fh: Cli, tmp_path: Path) -> None:
    body = tmp_path / "body.json"
    body.write_bytes(b'{"id":"a1kz6ffxui7em","type":"environment.push"}')
    signature = ("eyJhbGciOiJIUzI1NiIsImI2NCI6ZmFsc2UsImNyaXQiOlsiYjY0Il19"
                 "..fMecJGDXl2UnXzve9C6qIb_66xthvEOchvfbgNW4qYI")
    ok = fh("webhook:verify", "--key", "my-shared-key", "--signature", signature, str(body))
    assert ok.stdout.strip() == "Signature verified."
    wrong = fh("webhook:verify", "--key", "other-key", "--signature", signature, str(body), ok=False)
    assert wrong.returncode == 1 and "does not verify" in wrong.stderr
    body.write_bytes(b'{"id": "a1kz6ffxui7em", "type": "environment.push"}')
    assert fh("webhook:verify", "--key", "my-shared-key", "--signature", signature, str(body), ok=False).returncode == 1


def test_completion_and_help(fh: Cli) -> None:
    script = fh("completion", "bash").stdout
    assert "_FIREHOOK_COMPLETE=bash_complete" in script
    assert 'eval "$(_FIREHOOK_COMPLETE=bash_source firehook)"' in fh("completion", "--help").stdout
    assert "Exit codes:" in fh("--help").stdout


def test_runs_without_an_integration_id(fh: Cli, receiver: Receiver, tmp_path: Path) -> None:
    p = project(fh, "noid")
    fh("integration:add", *p, "--type", "webhook", "--url", receiver.on("/noid", (200, {}, b"")))
    # one integration: it is the one, as if named
    emitted = fh("activity:emit", *p, "--type", "environment.push", "--environment", "main")
    assert "1 run triggered" in emitted.stderr + emitted.stdout
    listed = wait_for(lambda: (r := fh("integration:activity:list", *p, "--format", "json", ok=None)).returncode == 0
                      and all(a["state"] == "complete" for a in json.loads(r.stdout)) and r)
    assert len(json.loads(listed.stdout)) == 1
    script = tmp_path / "noid.js"
    script.write_text("console.log('hello from', activity.type);\n")
    fh("integration:add", *p, "--type", "script", "--file", str(script))
    fh("activity:emit", *p, "--type", "environment.push", "--environment", "main")
    # two integrations and no terminal to ask: the runs of all of them, and the latest run's log
    runs = wait_for(lambda: (r := fh("integration:activity:list", *p, "--format", "json")) and
                    len(rows := json.loads(r.stdout)) == 3 and all(a["state"] == "complete" for a in rows) and rows)
    assert {a["type"] for a in runs} == {"integration.webhook", "integration.script"}
    # the newest run is the script's (created after the webhook's, for the same activity)
    assert runs[0]["type"] == "integration.script"
    log = fh("integration:activity:log", *p)
    assert log.stdout.strip() == "hello from environment.push"
    assert "Activity ID: " + runs[0]["id"] in log.stderr
