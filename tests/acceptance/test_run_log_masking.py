"""Run logs (readable with read-only tokens) mask a sensitive value in every form firehook
itself writes it (issue 13, item 7), against the installed `firehook serve`:

- URL-encoded, in firehook's own ``HTTP request: GET …?k=…`` line;
- JSON-escaped, from ``console.log({k: secret})`` and ``console.log(variables)``;
- its beginning, where the log limit cuts a line inside it;
and a sensitive value too short to be masked is refused when saved.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from tests import support
from tests.receivers import Receiver, wait_for
from tests.reliability.helpers import Api, run_finished, start_server

# A space, a slash, a quote, a backslash, '&', '=' and a non-ASCII letter: every encoding differs.
SECRET = 'pa ss/"w\\rd&k=42-é-TAIL'
LOG_BYTES = 4096


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[support.ServerProcess, Receiver]]:
    receiver = Receiver().start()
    server = start_server(tmp_path_factory.mktemp("masking"), env={"FIREHOOK_SCRIPT_LOG_BYTES": str(LOG_BYTES)})
    try:
        yield server, receiver
    finally:
        server.stop()
        receiver.stop()


def _forms(secret: str) -> list[str]:
    return [secret, quote(secret, safe=""), quote(secret), quote_plus(secret), json.dumps(secret)[1:-1],
            json.dumps(secret, ensure_ascii=False)[1:-1]]


def _run_log(admin: Api, reader: Api, project: str, script: str, environment: str) -> str:
    hook = admin.ok("POST", f"/api/projects/{project}/integrations", {
        "type": "script", "events": ["environment.push"], "states": ["complete"], "environments": [environment],
        "script": script})["_embedded"]["entity"]
    admin.ok("POST", f"/api/projects/{project}/integrations/{hook['id']}/variables",
             {"name": "SECRET", "value": SECRET, "is_sensitive": True})
    runs = admin.ok("POST", f"/api/projects/{project}/activities", {
        "type": "environment.push", "state": "complete", "environments": [environment]})["_embedded"]["runs"]
    [run] = [r for r in runs if r["integration"] == hook["id"]]
    done = wait_for(lambda: run_finished(admin, project, run["id"]), timeout=60)
    assert done["result"] == "success", done
    answer = reader.get(f"/api/projects/{project}/activities/{run['id']}/log")
    assert answer.status_code == 200
    return "\n".join(json.loads(line).get("data", {}).get("message", "") for line in answer.text.splitlines())


def test_a_secret_is_masked_in_every_form_firehook_writes(served: tuple[support.ServerProcess, Receiver]) -> None:
    server, receiver = served
    admin = Api(server.base_url, server.token)
    admin.ok("POST", "/api/projects", {"id": "masks", "title": "Masks"})
    reader = Api(server.base_url, admin.ok("POST", "/api/tokens", {"read_only": True})["token"])
    target = receiver.on("/hook", (200, {}, b"ok"))
    try:
        log = _run_log(admin, reader, "masks", (
            f"fetch('{target}?k=' + encodeURIComponent(variables.SECRET));"
            f"fetch('{target}?raw=' + variables.SECRET);"
            "console.log({k: variables.SECRET}); console.log(variables); console.log(JSON.stringify(variables));"
            "console.log('plain', variables.SECRET);"), "main")
        assert "HTTP request: GET" in log and '"k":"******"' in log, log
        for form in _forms(SECRET):
            assert form not in log, (form, log)
        # The log limit cuts a line inside the secret: its beginning is masked too.
        cut = _run_log(admin, reader, "masks",
                       f"console.log('x'.repeat({LOG_BYTES - 12}) + variables.SECRET);", "cut")
        assert "Log limit of" in cut and cut.split("\n")[0].endswith("******"), cut[-200:]
        assert SECRET[:8] not in cut and "pa ss" not in cut, cut[-200:]
        # A sensitive value too short to be masked is refused, with the reason.
        hook = admin.ok("GET", "/api/projects/masks/integrations")[0]
        short = admin.post(f"/api/projects/masks/integrations/{hook['id']}/variables",
                           {"name": "PIN", "value": "123", "is_sensitive": True})
        assert short.status_code == 400 and "value" in short.json()["detail"], short.text
    finally:
        admin.close()
        reader.close()
    server_log = Path(server.log_path).read_text(errors="replace")
    for form in _forms(SECRET):
        assert form not in server_log
