"""Issue 14: what people copy from Upsun works — the installed ``firehook`` command (and the
API) against a real ``firehook serve``: variables by id, the global options, the optional
integration ID without a terminal, the listing options, Upsun-shaped bodies, log dates and
following a run that waits hours for its next attempt."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import support
from tests.acceptance.test_cli import Cli, created_id
from tests.receivers import Receiver, wait_for


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[support.ServerProcess]:
    # Retries an hour apart: a failed delivery leaves its run waiting for its next attempt.
    yield from support.running_server(tmp_path_factory.mktemp("cli-upsun"),
                                      env={"FIREHOOK_OUTBOUND_ALLOW": "127.0.0.1/32,localhost",
                                           "FIREHOOK_RETRY_SCHEDULE": "3600"})


@pytest.fixture(scope="module")
def fh(server: support.ServerProcess) -> Cli:
    return Cli(server)


@pytest.fixture(scope="module")
def api(server: support.ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {server.token}"}) as client:
        yield client


def project(fh: Cli, name: str) -> list[str]:
    fh("project:create", "--id", name, "--title", name.title())
    return ["-p", name]


def script_file(tmp_path: Path, text: str = "console.log('hello from', activity.type);") -> str:
    path = tmp_path / "script.js"
    path.write_text(text)
    return str(path)


def add_script(fh: Cli, p: list[str], tmp_path: Path, *extra: str) -> str:
    return created_id(fh("integration:add", "--type", "script", "--file", script_file(tmp_path), *extra, *p).stderr,
                      "script")


def finished_runs(fh: Cli, p: list[str], integration: str, count: int) -> list[dict[str, Any]]:
    def ready() -> list[dict[str, Any]] | None:
        result = fh("integration:activity:list", integration, *p, "--format", "json", ok=None)
        items = json.loads(result.stdout) if result.returncode == 0 else []
        return items if len([i for i in items if i["state"] == "complete"]) >= count else None
    return wait_for(ready, timeout=60, interval=0.3)  # type: ignore[no-any-return]


# ---- 1. variables by id and by name ----------------------------------------------------------


def test_variables_are_addressed_by_a_stable_id_and_by_name(fh: Cli, api: httpx.Client, tmp_path: Path) -> None:
    p = project(fh, "varids")
    sid = add_script(fh, p, tmp_path)
    made = fh("integration:variable:create", sid, "--name", "CHANNEL", "--value", "#deploys", *p, "--format", "json")
    var = json.loads(made.stdout)
    assert re.fullmatch(r"[a-z0-9]{13}", var["id"]) and f"(ID: {var['id']})" in made.stderr
    rows = list(csv.reader(io.StringIO(fh("integration:variable:list", sid, *p, "--format", "csv").stdout)))
    assert rows[1][:3] == [var["id"], "CHANNEL", "#deploys"]

    base = f"/api/projects/varids/integrations/{sid}/variables"
    read = api.get(f"{base}/{var['id']}").json()
    assert read == api.get(f"{base}/CHANNEL").json() and read["id"] == var["id"]
    # A tool written for Upsun PATCHes …/variables/{id} with what it read, changed.
    patched = api.patch(f"{base}/{var['id']}", json={**read, "value": "#releases"})
    assert patched.status_code == 200, patched.text
    assert patched.json()["_embedded"]["entity"]["id"] == var["id"]
    assert fh("integration:variable:get", sid, var["id"], "-P", "value", *p).stdout == "#releases\n"
    fh("integration:variable:update", sid, "CHANNEL", "--value", "#ops", *p)
    assert api.get(f"{base}/{var['id']}").json()["value"] == "#ops"  # the id survives updates
    renamed = api.patch(f"{base}/{var['id']}", json={"name": "OTHER"})
    assert renamed.status_code == 400 and "name" in renamed.json()["detail"]
    missing = api.get(f"{base}/zzzzzzzzzzzzz")
    assert missing.status_code == 404 and "by id or name" in missing.json()["detail"]
    fh("integration:variable:delete", sid, var["id"], *p)
    assert api.get(f"{base}/CHANNEL").status_code == 404


# ---- 2. global options -----------------------------------------------------------------------


def test_upsun_global_options_are_accepted_everywhere(fh: Cli, tmp_path: Path) -> None:
    p = project(fh, "globals")
    sid = add_script(fh, p, tmp_path, "-W")
    for flags in (["-y"], ["--yes"], ["--no-interaction"], ["-q"], ["--quiet"], ["-v"], ["-vv"], ["-vvv"],
                  ["--verbose"], ["-n"], ["--no"], ["--no-ansi"], ["--ansi"]):
        listed = fh("integration:list", *flags, *p, "--format", "csv", "--no-header")
        assert listed.stdout.startswith(f"{sid},script,"), (flags, listed.stdout)
        fh(*flags, "project:list", "--format", "csv")  # before the command's options too
    assert fh("-V").stdout.startswith("firehook, version ")
    quiet = fh("integration:get", sid, "-q", *p, "--format", "csv")
    assert quiet.stderr == "" and "Property,Value" in quiet.stdout
    assert fh("integration:list", *p).stderr != ""  # the messages -q silences
    updated = fh("integration:update", sid, "--events", "environment.deploy", "--wait", "-y", *p)
    assert f"Integration {sid} (script) updated" in updated.stderr
    fh("integration:update", sid, "--states", "*", "-W", *p)
    assert fh("integration:delete", sid, "--no-wait", "--yes", *p).stderr.endswith(f"Deleted integration {sid}\n")
    # A question without a default, and no terminal: Upsun's message, exit code 1.
    for args, message in ((["integration:add"], "--type is required"),
                          (["integration:add", "--type", "script"], "--file is required"),
                          (["integration:add", "--type", "webhook", "--no-interaction"], "--url is required")):
        refused = fh(*args, *p, ok=False)
        assert refused.returncode == 1 and message in refused.stderr, refused.stderr


def test_delete_without_a_terminal_takes_the_default_and_no_refuses(fh: Cli, tmp_path: Path) -> None:
    p = project(fh, "deleting")
    sid = add_script(fh, p, tmp_path)
    kept = fh("integration:delete", sid, "--no", *p, ok=False)
    assert kept.returncode == 1 and f"Delete the integration {sid} (type: script)? [Y/n] n" in kept.stderr
    fh("integration:get", sid, *p)
    fh("integration:variable:create", sid, "--name", "A", "--value", "1", *p)
    assert "[Y/n] y" in fh("integration:variable:delete", sid, "A", *p).stderr
    deleted = fh("integration:delete", sid, *p)
    assert f"[Y/n] y\nDeleted integration {sid}" in deleted.stderr
    assert fh("integration:get", sid, *p, ok=False).returncode == 1


# ---- 3. the integration ID without a terminal ------------------------------------------------


def test_an_integration_id_is_required_without_a_terminal(fh: Cli, tmp_path: Path) -> None:
    p = project(fh, "noid")
    sid = add_script(fh, p, tmp_path)
    for command in (["integration:get"], ["integration:update", "--events", "x.y"], ["integration:delete", "-y"],
                    ["integration:validate"]):
        refused = fh(*command, *p, ok=False)
        assert refused.returncode == 1 and refused.stderr == "An integration ID is required.\n", command
    fh("integration:get", sid, *p)  # still there: the refused delete did nothing


# ---- 5. listing options ----------------------------------------------------------------------


def test_listing_columns_dates_types_states_and_activity_get(fh: Cli, receiver: Receiver, tmp_path: Path) -> None:
    p = project(fh, "listing")
    hook = created_id(fh("integration:add", "--type", "webhook", "--url", receiver.on("/listing", (200, {}, b"ok")),
                         "--events", "environment.*", *p).stderr, "webhook")
    sid = add_script(fh, p, tmp_path, "--events", "environment.push")
    fh("activity:emit", "--type", "environment.push", "-e", "main", "--state", "complete", *p)
    finished_runs(fh, p, sid, 1)
    run = finished_runs(fh, p, hook, 1)[0]

    listed = fh("integrations", *p, "-c", "type,ID", "--format", "csv")
    assert listed.stdout.splitlines()[0] == "Type,ID"
    wild = fh("int:act", hook, *p, "-c", "+completed,time_%", "--format", "csv", "--no-header",
              "--date-fmt", "Y-m-d")
    cells = next(csv.reader(io.StringIO(wild.stdout)))
    assert len(cells) == 6 + 1 + 4 and re.fullmatch(r"\d{4}-\d{2}-\d{2}", cells[1]) and cells[4] == "complete"
    unknown = fh("int:act", hook, *p, "-c", "nope", ok=False)
    assert unknown.returncode == 1 and "Column not found: nope (available columns: id*, created*" in unknown.stderr

    runs = fh("activity:list", *p, "--type", "script", "--format", "json").stdout
    assert {a["type"] for a in json.loads(runs)} == {"integration.script"}  # a short form
    events = json.loads(fh("activity:list", *p, "--type", "environment.*", "--format", "json").stdout)
    assert {a["type"] for a in events} == {"environment.push"}
    excluded = json.loads(fh("activity:list", *p, "-x", "integration.*", "--format", "json").stdout)
    assert excluded and all(not a["type"].startswith("integration.") for a in excluded)
    assert fh("int:act", hook, *p, "-i", ok=False).stderr.startswith("No activities found")
    soon = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)).replace(microsecond=0)
    for start in ("tomorrow", "+2 hours", "1 day", soon.isoformat().replace("+00:00", "Z"), "2999-01-01"):
        assert json.loads(fh("int:act", hook, *p, "--start", start, "--format", "json").stdout)[0]["id"] == run["id"]
    for start in ("yesterday", "-2 hours", "2000-01-01T00:00:00+01:00"):
        assert fh("int:act", hook, *p, "--start", start, ok=False).returncode == 1, start
    bad = fh("int:act", hook, *p, "--start", "someday", ok=False)
    assert bad.returncode == 2 and "Failed to parse time string (someday)" in bad.stderr

    got = fh("integration:activity:get", hook, *p, "--format", "csv")
    props = dict(csv.reader(io.StringIO(got.stdout)))
    assert props["id"] == run["id"] and props["state"] == "complete" and "payload" not in props
    assert f"integration:activity:log {hook} {run['id']}" in fh("integration:activity:get", hook, *p).stderr
    assert fh("integration:activity:get", hook, run["id"][:5], *p, "-P", "parameters.activity_type").stdout == \
        "environment.push\n"
    assert fh("integration:get", hook, *p, "-P", "events.0").stdout == "environment.*\n"
    assert fh("integration:get", hook, *p, "-P", "events.1", ok=False).stderr == "Error: Property not found: events.1\n"
    not_found = fh("integration:activity:get", hook, "zzzz", *p, ok=False)
    assert not_found.returncode == 1 and "Integration activity not found: zzzz" in not_found.stderr


# ---- 7. Upsun-shaped bodies ------------------------------------------------------------------


def test_upsun_read_only_fields_accepted_delete_answers_accepted(api: httpx.Client, receiver: Receiver) -> None:
    assert api.post("/api/projects", json={"id": "shapes", "title": "Shapes"}).status_code == 201
    base = "/api/projects/shapes/integrations"
    upsun_like = {"type": "webhook", "role": "", "url": receiver.url("/shapes"), "events": ["*"],
                  "states": ["complete"], "environments": ["*"], "excluded_environments": [], "result": "*",
                  "shared_key": None, "_links": {"self": {"href": "https://api.upsun.com/…"}}}
    created = api.post(base, json=upsun_like)
    assert created.status_code == 201, created.text
    entity = created.json()["_embedded"]["entity"]
    assert "role" not in entity
    with_key = api.patch(f"{base}/{entity['id']}", json={"shared_key": "s3cret"}).json()["_embedded"]["entity"]
    # What a client read, posted back (the masked key among it) with one change: the key is kept.
    back = api.patch(f"{base}/{entity['id']}", json={**with_key, "role": "", "status": "active",
                                                     "events": ["environment.push"]})
    assert back.status_code == 200, back.text
    assert back.json()["_embedded"]["entity"]["shared_key"] == "******"
    assert back.json()["_embedded"]["entity"]["events"] == ["environment.push"]
    assert api.patch(f"{base}/{entity['id']}", json={"nonsense": 1}).status_code == 400  # unknown still refused

    # Upsun's PHP client sends the `+` of `+00:00` unencoded: it arrives as a space.
    raw = f"{base}/{entity['id']}/activities?starts_at=2999-01-01T00:00:00+00:00"
    assert api.get(raw).status_code == 200
    assert api.get(f"{base}/{entity['id']}/activities?starts_at=not-a-date").status_code == 400

    deleted = api.delete(f"{base}/{entity['id']}")
    assert deleted.status_code == 202
    assert deleted.json() == {"status": "accepted", "code": 202, "_embedded": {"activities": []}}
    assert api.get(f"{base}/{entity['id']}").status_code == 404


# ---- 8. log dates, a run waiting hours, an unwritable storage file -----------------------------


def test_log_timestamps_are_local_and_a_far_retry_is_not_followed(fh: Cli, tmp_path: Path) -> None:
    p = project(fh, "waiting")
    closed = support.free_port()  # nothing listens: every attempt is refused, the next is an hour away
    hook = created_id(fh("integration:add", "--type", "webhook", "--url", f"http://127.0.0.1:{closed}/x", *p).stderr,
                      "webhook")
    fh("activity:emit", "--type", "environment.push", "-e", "main", "--state", "complete", *p)
    wait_for(lambda: fh("int:act", hook, *p, ok=None).returncode == 0, timeout=60, interval=0.3)

    log = fh("integration:activity:log", hook, *p, "-t", env={"TZ": "Asia/Kolkata"})
    assert "State: in progress" in log.stderr  # shown as Upsun shows it
    lines = log.stdout.splitlines()
    assert lines and all(re.match(r"^\[\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+05:30\] ", line) for line in lines), lines
    assert "Next attempt in " in lines[-1]
    match = re.search(r"The next attempt is at (\S+) \(in (?:(\d+) h )?(\d+) min\): not following the log until "
                      r"then\. Run this command again later, or with --follow to keep following\.", log.stderr)
    assert match, log.stderr
    minutes = int(match.group(2) or 0) * 60 + int(match.group(3))
    assert match.group(1).endswith("+05:30") and 45 <= minutes <= 73, minutes  # 3600 s ± 20 %
    listed = fh("int:act", hook, *p, "--format", "csv", "--date-fmt", "H:i T", env={"TZ": "UTC"})
    assert re.search(r",\d{2}:\d{2} UTC,", listed.stdout) and ",in progress," in listed.stdout
    plain = fh("integration:activity:log", hook, *p, "-t", "--date-fmt", "Y-m-d H:i:s", env={"TZ": "UTC"})
    assert re.match(r"^\[\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\] Sending webhook to ", plain.stdout), plain.stdout


def test_script_run_storage_that_cannot_be_written(fh: Cli, tmp_path: Path) -> None:
    script = script_file(tmp_path, "storage.set('n', 1); console.log('ran');")
    activity = tmp_path / "a.json"
    activity.write_text('{"type": "environment.push"}')
    for storage, reason in ((tmp_path / "missing" / "s.json", "does not exist"), (tmp_path, "it is a directory")):
        refused = fh("script:run", script, "--activity", str(activity), "--storage", str(storage), ok=False)
        assert refused.returncode == 1 and refused.stdout == "", refused.stdout  # refused before it runs
        assert refused.stderr.startswith(f"Error: The storage file {storage} cannot be written: ") and \
            reason in refused.stderr
    good = tmp_path / "s.json"
    fh("script:run", script, "--activity", str(activity), "--storage", str(good))
    assert json.loads(good.read_text()) == {"n": 1}
