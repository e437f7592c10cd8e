"""`firehook serve` runs its worker as a supervised child: started with it, restarted when it
dies, woken when runs are queued, and gone when serve exits — even when serve is killed."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import support
from tests.receivers import Receiver, wait_for


def children(pid: int) -> list[int]:
    """Direct children of ``pid``, from /proc."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        out.extend(int(p) for p in text)
    return out


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except FileNotFoundError:
        return []


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def is_worker(pid: int) -> bool:
    return "firehook.worker_process" in cmdline(pid)


def worker_child(server: support.ServerProcess) -> int:
    found = [p for p in children(server.proc.pid) if is_worker(p)]
    assert len(found) == 1, f"expected one worker child, found {found}"
    return found[0]


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


def start_server(tmp_path: Path) -> support.ServerProcess:
    proc = support.ServerProcess(tmp_path / "data", env={"FIREHOOK_OUTBOUND_ALLOW": "127.0.0.1/32",
                                                         # a slow poll: runs must start on the wake, not the poll
                                                         "FIREHOOK_POLL_INTERVAL": "600",
                                                         "FIREHOOK_SHUTDOWN_GRACE": "2",
                                                         # reaches the child like every setting
                                                         "FIREHOOK_LOG_LEVEL": "debug"})
    try:
        proc.wait_ready()
        wait_for(lambda: any(is_worker(p) for p in children(proc.proc.pid)))
    except BaseException:
        proc.stop()
        raise
    return proc


def deliver_one(server: support.ServerProcess, receiver: Receiver, project: str) -> dict:
    with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {server.token}"},
                      timeout=30) as api:
        assert api.post("/api/projects", json={"id": project, "title": project}).status_code == 201
        url = receiver.on(f"/{project}", (200, {}, b"ok"))
        assert api.post(f"/api/projects/{project}/integrations", json={"type": "webhook", "url": url}).status_code == 201
        answer = api.post(f"/api/projects/{project}/activities", json={"type": "environment.push"})
        run_id = answer.json()["_embedded"]["runs"][0]["id"]
        return wait_for(lambda: (r := api.get(f"/api/projects/{project}/activities/{run_id}").json())["state"]
                        == "complete" and r)


def test_worker_child_delivers_on_wake_and_stops_with_serve(tmp_path: Path, receiver: Receiver) -> None:
    server = start_server(tmp_path)
    try:
        child = worker_child(server)
        # With a 600 s poll interval, this completes only because serve wakes its child.
        run = deliver_one(server, receiver, "woken")
        assert run["result"] == "success"
        assert len(receiver.requests_to("/woken")) == 1
        assert f"event=run.complete run={run['id']}" in server.output()  # the child logs at debug
    finally:
        assert server.stop() == 0, server.output()
    assert not alive(child), "the worker child outlived serve"


def test_a_dead_worker_child_is_replaced(tmp_path: Path, receiver: Receiver) -> None:
    server = start_server(tmp_path)
    try:
        first = worker_child(server)
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: (kids := [p for p in children(server.proc.pid) if is_worker(p)]) and kids[0] != first)
        assert worker_child(server) != first
        assert deliver_one(server, receiver, "after-restart")["result"] == "success"
        assert "event=child.died name=worker" in server.output()
    finally:
        assert server.stop() == 0, server.output()


def test_worker_child_exits_when_serve_is_killed(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    child = worker_child(server)
    server.stop(signal.SIGKILL)
    # No orphan: the child gets SIGTERM from the kernel (PR_SET_PDEATHSIG) and drains.
    wait_for(lambda: not alive(child), timeout=30)
