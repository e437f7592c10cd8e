"""Unique-key races against a real `firehook serve` on PostgreSQL (issue 13, item 1): 16
concurrent creates of one variable (sensitive), of one project (with a relay key) and of one
activity id answer one 201 and 409s (200s for the activity: a second document with an id is
an update) — never a 500 — and the server log holds neither the secrets nor any statement's
parameters."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import support
from tests.reliability.helpers import PLANTED, Api, postgres_database, start_server

RACE_VALUE = "PLANTraceSENSITIVE6d0f1a"
RACE_RELAY_KEY = "PLANTraceRELAYkey93b2"
RACERS = 16


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[support.ServerProcess]:
    database = postgres_database()
    PLANTED.update({RACE_VALUE, RACE_RELAY_KEY})
    proc = start_server(tmp_path_factory.mktemp("races"), env={"FIREHOOK_DATABASE_URL": database.url})
    try:
        yield proc
    finally:
        proc.stop()
        database.drop()


def _race(server: support.ServerProcess, method: str, path: str, body: object) -> list[int]:
    barrier = __import__("threading").Barrier(RACERS)

    def one(_: int) -> int:
        api = Api(server.base_url, server.token)
        try:
            barrier.wait(30)
            return api.request(method, path, json_body=body).status_code
        finally:
            api.close()

    with concurrent.futures.ThreadPoolExecutor(RACERS) as pool:
        return sorted(pool.map(one, range(RACERS)))


def test_unique_key_races_answer_409_and_log_no_parameters(server: support.ServerProcess) -> None:
    admin = Api(server.base_url, server.token)
    try:
        admin.ok("POST", "/api/projects", {"id": "racing", "title": "Racing"})
        hook = admin.ok("POST", "/api/projects/racing/integrations",
                        {"type": "webhook", "url": "http://127.0.0.1:9/hook"})["_embedded"]["entity"]
        for round_ in range(3):  # a race is not won the same way twice: run it a few times
            variables = _race(server, "POST", f"/api/projects/racing/integrations/{hook['id']}/variables",
                              {"name": f"RACE{round_}", "value": RACE_VALUE, "is_sensitive": True})
            assert variables == [201] + [409] * (RACERS - 1), variables
            projects = _race(server, "POST", "/api/projects",
                             {"id": f"race{round_}", "title": "x", "relay_key": RACE_RELAY_KEY})
            assert projects == [201] + [409] * (RACERS - 1), projects
            activities = _race(server, "POST", "/api/projects/racing/activities",
                               {"type": "environment.push", "id": f"same{round_}", "state": "pending"})
            assert activities == [200] * (RACERS - 1) + [201], activities
        listed = admin.ok("GET", f"/api/projects/racing/integrations/{hook['id']}/variables")
        assert sorted(v["name"] for v in listed) == ["RACE0", "RACE1", "RACE2"]
    finally:
        admin.close()
    log = Path(server.log_path).read_text(errors="replace")
    for secret in (RACE_VALUE, RACE_RELAY_KEY):
        assert secret not in log
    assert "[parameters:" not in log and "Traceback" not in log, log[-3000:]
