"""Receivers that fail, through a real `firehook serve` (API + embedded worker), SPEC §5.1.

- down for a while, then back: retried until it answers, then success;
- hangs past FIREHOOK_WEBHOOK_TIMEOUT: each attempt is a timeout, retried per the schedule,
  then ``complete`` with ``result: failure``;
- answers garbage (not HTTP): a network error, retried; when it recovers, success;
- one integration's receiver hanging does not hold back another integration's deliveries.

Assertions are on counts, states and the order of events, never on durations.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import support
from tests.receivers import Receiver, wait_for
from tests.reliability.helpers import Api, RawReceiver, answer_ok, attempts_of, run_finished, start_server

SCHEDULE = ",".join(["0.3"] * 30)  # up to 31 attempts, a fraction of a second apart


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[support.ServerProcess]:
    s = start_server(tmp_path_factory.mktemp("faults"), env={"FIREHOOK_RETRY_SCHEDULE": SCHEDULE,
                                                             "FIREHOOK_WEBHOOK_TIMEOUT": "1"})
    yield s
    s.stop()


@pytest.fixture(scope="module")
def api(server: support.ServerProcess) -> Iterator[Api]:
    a = Api(server.base_url, server.token)
    yield a
    a.close()


_counter = iter(range(10_000))


def webhook_and_push(api: Api, url: str, retry: list[float] | None = None) -> tuple[str, str, str]:
    """A project with one webhook to ``url``; one activity; returns (project, integration, run)."""
    project = f"rf{next(_counter)}"
    api.ok("POST", "/api/projects", {"id": project, "title": project})
    body: dict[str, Any] = {"type": "webhook", "url": url, "shared_key": "k"}
    if retry is not None:
        body["retry"] = retry
    hook = api.ok("POST", f"/api/projects/{project}/integrations", body)["_embedded"]["entity"]
    accepted = api.ok("POST", f"/api/projects/{project}/activities", {"type": "environment.push",
                                                                      "environments": ["main"]})
    [run] = accepted["_embedded"]["runs"]
    return project, hook["id"], run["id"]


def closed_port() -> int:
    """A port nobody listens on (bound, then released)."""
    return support.free_port()


def test_receiver_down_then_back_ends_in_success(api: Api) -> None:
    port = closed_port()
    project, _, run = webhook_and_push(api, f"http://127.0.0.1:{port}/hook")
    # At least two refused attempts are recorded while nothing listens…
    wait_for(lambda: len(attempts_of(api, project, run)) >= 2, timeout=60)
    early = attempts_of(api, project, run)
    assert all(a["status"] is None and "cannot connect" in (a["error"] or "") for a in early), early
    assert api.ok("GET", f"/api/projects/{project}/activities/{run}")["state"] == "in_progress"
    # …then the receiver comes up on that port.
    receiver = RawReceiver(answer_ok, port=port)
    try:
        done = wait_for(lambda: run_finished(api, project, run), timeout=60)
    finally:
        receiver.close()
    assert done["result"] == "success", done
    attempts = attempts_of(api, project, run)
    assert attempts[-1]["status"] == 200
    assert [a["number"] for a in attempts] == list(range(1, len(attempts) + 1))
    assert all(a["status"] is None for a in attempts[:-1])
    assert done["parameters"]["attempts"] == len(attempts) >= 3
    assert receiver.delivery_ids() == [run]


def test_receiver_that_hangs_times_out_and_fails_after_the_schedule(api: Api) -> None:
    hanging = RawReceiver(lambda conn, n, req: hanging.release.wait(120))
    try:
        project, _, run = webhook_and_push(api, hanging.url("/slow"), retry=[0.2, 0.2])
        done = wait_for(lambda: run_finished(api, project, run), timeout=90)
        attempts = attempts_of(api, project, run)
    finally:
        hanging.close()
    assert done["state"] == "complete" and done["result"] == "failure", done
    assert len(attempts) == 3, attempts  # the first attempt and the two retries of the schedule
    for attempt in attempts:
        assert attempt["status"] is None and "timed out" in attempt["error"], attempt
    # every attempt reached the receiver with the same delivery id
    assert hanging.delivery_ids() == [run, run, run]
    log = api.client.get(f"/api/projects/{project}/activities/{run}/log", headers=api.headers()).text
    assert "Giving up after 3 attempts" in log


def _garbage(conn: socket.socket, n: int, request: bytes) -> None:
    conn.sendall(b"\x00\xff\xfeNOT HTTP AT ALL\r\n\x13\x37garbage\r\n\r\n")


def test_receiver_answering_garbage_is_retried_then_fails(api: Api) -> None:
    receiver = RawReceiver(_garbage)
    try:
        project, _, run = webhook_and_push(api, receiver.url("/garbage"), retry=[0.2, 0.2, 0.2])
        done = wait_for(lambda: run_finished(api, project, run), timeout=60)
        attempts = attempts_of(api, project, run)
    finally:
        receiver.close()
    assert done["result"] == "failure", done
    assert len(attempts) == 4, attempts  # invalid HTTP is a network error: retryable
    assert all(a["status"] is None and a["error"] for a in attempts), attempts
    assert receiver.delivery_ids() == [run] * 4


def test_receiver_answering_garbage_then_ok_ends_in_success(api: Api) -> None:
    def behaviour(conn: socket.socket, n: int, request: bytes) -> None:
        if n < 2:
            _garbage(conn, n, request)
        else:
            answer_ok(conn)

    receiver = RawReceiver(behaviour)
    try:
        project, _, run = webhook_and_push(api, receiver.url("/flaky"), retry=[0.2, 0.2, 0.2, 0.2])
        done = wait_for(lambda: run_finished(api, project, run), timeout=60)
        attempts = attempts_of(api, project, run)
    finally:
        receiver.close()
    assert done["result"] == "success", (done, attempts)
    assert [a["status"] for a in attempts] == [None, None, 200]
    # the same bytes on every attempt
    bodies = {r.split(b"\r\n\r\n", 1)[1] for r in receiver.requests}
    assert len(bodies) == 1


def test_receiver_closing_without_answer_is_retried(api: Api) -> None:
    def behaviour(conn: socket.socket, n: int, request: bytes) -> None:
        if n >= 1:
            answer_ok(conn)
        # the first connection is closed after the request was read, without a word

    receiver = RawReceiver(behaviour)
    try:
        project, _, run = webhook_and_push(api, receiver.url("/close"), retry=[0.2, 0.2])
        done = wait_for(lambda: run_finished(api, project, run), timeout=60)
        attempts = attempts_of(api, project, run)
    finally:
        receiver.close()
    assert done["result"] == "success"
    assert [a["status"] for a in attempts] == [None, 200]
    assert "closed the connection" in attempts[0]["error"]


@pytest.fixture
def patient_server(tmp_path: Path) -> Iterator[support.ServerProcess]:
    """A server whose webhook timeout is long, so that a hang lasts until the test ends it."""
    s = start_server(tmp_path / "patient", env={"FIREHOOK_WEBHOOK_TIMEOUT": "120",
                                                 "FIREHOOK_RETRY_SCHEDULE": "0.2"})
    yield s
    s.stop()


def test_a_hanging_receiver_does_not_block_other_integrations(patient_server: support.ServerProcess) -> None:
    api = Api(patient_server.base_url, patient_server.token)
    fast = Receiver().start()
    hang_started = threading.Event()

    def hang(conn: socket.socket, n: int, request: bytes) -> None:
        hang_started.set()
        hanging.release.wait(120)
        answer_ok(conn)

    hanging = RawReceiver(hang)
    try:
        api.ok("POST", "/api/projects", {"id": "hol", "title": "head of line"})
        slow = api.ok("POST", "/api/projects/hol/integrations", {
            "type": "webhook", "url": hanging.url("/slow"), "events": ["environment.deploy"]})["_embedded"]["entity"]
        quick = api.ok("POST", "/api/projects/hol/integrations", {
            "type": "webhook", "url": fast.on("/fast", (200, {}, b"ok")), "events": ["environment.push"]})
        quick_id = quick["_embedded"]["entity"]["id"]
        # The hanging delivery is queued first, and its request is on the wire before the others exist.
        [slow_run] = api.ok("POST", "/api/projects/hol/activities", {"type": "environment.deploy",
                                                                     "environments": ["main"]})["_embedded"]["runs"]
        assert hang_started.wait(60)
        fast_runs = []
        for i in range(20):
            doc = {"type": "environment.push", "environments": ["main", f"e{i}"]}
            runs = api.ok("POST", "/api/projects/hol/activities", doc)["_embedded"]["runs"]
            assert [r["integration"] for r in runs] == [quick_id]
            fast_runs.append(runs[0]["id"])

        def fast_done() -> bool:
            return all(run_finished(api, "hol", r) for r in fast_runs)

        wait_for(fast_done, timeout=60)
        # Every fast delivery is complete and received while the slow one is still in flight.
        assert not hanging.release.is_set()
        assert api.ok("GET", f"/api/projects/hol/activities/{slow_run['id']}")["state"] == "in_progress"
        assert hanging.count() == 1
        assert sorted(r.headers["x-firehook-delivery"] for r in fast.requests_to("/fast")) == sorted(fast_runs)
        assert all(run_finished(api, "hol", r)["result"] == "success" for r in fast_runs)
        # Released, the slow delivery completes too.
        hanging.release.set()
        done = wait_for(lambda: run_finished(api, "hol", slow_run["id"]), timeout=60)
        assert done["result"] == "success"
        assert slow["id"] == done["integration"]
    finally:
        hanging.close()
        fast.stop()
        api.close()
