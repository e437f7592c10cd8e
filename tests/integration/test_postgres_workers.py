"""Worker processes on PostgreSQL: shared queue without double execution; a killed worker's
job is taken over once its lease expires."""

from __future__ import annotations

import collections
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from firehook import model
from firehook.service import activities, intake, integrations, projects
from tests import support
from tests.receivers import Receiver, wait_for

ADMIN = model.Token(id="a", project=None, read_only=False, description=None, created_at="")


@pytest.fixture
def pg_services(tmp_path: Path, postgres_url: str) -> Iterator[Any]:
    from firehook import assembly
    from tests.conftest import make_settings

    built = assembly.services(make_settings(tmp_path, postgres_url), migrate=False)
    yield built
    built.database.dispose()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


def start_worker(tmp_path: Path, url: str, name: str, **env: str) -> support.ServerProcess:
    settings = {"FIREHOOK_DATABASE_URL": url, "FIREHOOK_OUTBOUND_ALLOW": "127.0.0.1/32",
                "FIREHOOK_POLL_INTERVAL": "0.1", **env}
    return support.ServerProcess(tmp_path / name, command="worker", env=settings)


def test_two_worker_processes_share_one_queue(tmp_path: Path, postgres_url: str, pg_services: Any,
                                               receiver: Receiver) -> None:
    per_worker = 4
    # The first 2 × 4 deliveries wait for each other: they can only all be in flight at once
    # when both workers hold 4 leases each, which proves both claim from the queue.
    barrier = threading.Barrier(2 * per_worker, timeout=60)
    seen = collections.Counter()
    lock = threading.Lock()

    def answer(request: Any) -> tuple[int, dict[str, str], bytes]:
        with lock:
            seen[request.headers["x-firehook-delivery"]] += 1
            first_wave = sum(seen.values()) <= 2 * per_worker
        if first_wave:
            barrier.wait()
        return 200, {}, b"ok"

    projects.create(pg_services, ADMIN, {"id": "scale", "title": "Scale"})
    integrations.create(pg_services, ADMIN, "scale", {"type": "webhook", "url": receiver.on("/in", answer)})
    workers = [start_worker(tmp_path, postgres_url, f"w{i}", FIREHOOK_WEBHOOK_CONCURRENCY=str(per_worker),
                            FIREHOOK_WORKERS="1") for i in range(2)]
    try:
        run_ids = []
        for _i in range(200):
            accepted = intake.ingest(pg_services, ADMIN, "scale", {"type": "environment.push", "environments": ["main"]})
            run_ids.extend(r["id"] for r in accepted.runs)

        def all_done() -> bool:
            runs = activities.list_(pg_services, ADMIN, "scale", {"type": ["integration.webhook"], "count": "1000"})
            return len(runs) == 200 and all(r["state"] == "complete" for r in runs)

        wait_for(all_done, timeout=120)
    finally:
        codes = [w.stop() for w in workers]
    assert codes == [0, 0], [w.output() for w in workers]
    assert set(seen) == set(run_ids)
    assert max(seen.values()) == 1, "a delivery was made twice while its lease was held"
    runs = activities.list_(pg_services, ADMIN, "scale", {"type": ["integration.webhook"], "count": "1000"})
    assert {r["result"] for r in runs} == {"success"} and {r["parameters"]["attempts"] for r in runs} == {1}
    # Each worker says on its way out how many runs it recorded.
    completed = [support.runs_recorded(w.output()) for w in workers]
    assert sum(completed) == 200 and min(completed) >= per_worker, completed


def test_killed_worker_job_is_taken_over_after_lease_expiry(tmp_path: Path, postgres_url: str, pg_services: Any,
                                                             receiver: Receiver) -> None:
    first_arrived = threading.Event()
    let_go = threading.Event()

    def answer(request: Any) -> tuple[int, dict[str, str], bytes]:
        if not first_arrived.is_set():
            first_arrived.set()
            let_go.wait(60)  # the first worker is killed while it waits here
        return 200, {}, b"ok"

    projects.create(pg_services, ADMIN, {"id": "kill", "title": "Kill"})
    integrations.create(pg_services, ADMIN, "kill", {"type": "webhook", "url": receiver.on("/k", answer)})
    accepted = intake.ingest(pg_services, ADMIN, "kill", {"type": "environment.push", "environments": ["main"]})
    run_id = accepted.runs[0]["id"]
    lease = {"FIREHOOK_LEASE_SECONDS": "2", "FIREHOOK_WEBHOOK_TIMEOUT": "120"}
    doomed = start_worker(tmp_path, postgres_url, "doomed", **lease)
    try:
        assert first_arrived.wait(60), doomed.output()
        assert activities.get(pg_services, ADMIN, "kill", run_id)["state"] == "in_progress"
        doomed.stop(signal.SIGKILL)
    finally:
        let_go.set()
    assert doomed.proc.returncode == -signal.SIGKILL
    rescuer = start_worker(tmp_path, postgres_url, "rescuer", **lease)
    try:
        done = wait_for(lambda: (d := activities.get(pg_services, ADMIN, "kill", run_id))["state"] == "complete" and d,
                        timeout=60)
    finally:
        assert rescuer.stop() == 0
    assert done["result"] == "success"
    assert done["parameters"]["attempts"] == 2  # the killed attempt counts
    deliveries = receiver.requests_to("/k")
    assert len(deliveries) == 2
    assert {d.headers["x-firehook-delivery"] for d in deliveries} == {run_id}
    assert deliveries[0].body == deliveries[1].body


def test_a_worker_elsewhere_is_woken_by_notify(tmp_path: Path, postgres_url: str, pg_services: Any,
                                               receiver: Receiver) -> None:
    # No poll comes round within the test: a run is delivered only because the API process
    # that queued it sent NOTIFY and the worker, listening, claimed at once.
    slow_poll = {"FIREHOOK_DATABASE_URL": postgres_url, "FIREHOOK_OUTBOUND_ALLOW": "127.0.0.1/32",
                 "FIREHOOK_POLL_INTERVAL": "600"}
    api_process = support.ServerProcess(tmp_path / "api", args=["--no-worker"], env=slow_poll)
    worker = support.ServerProcess(tmp_path / "worker", command="worker", env=slow_poll)
    try:
        api_process.wait_ready()
        wait_for(lambda: "event=worker.start" in worker.output(), timeout=60)
        projects.create(pg_services, ADMIN, {"id": "notify", "title": "Notify"})
        integrations.create(pg_services, ADMIN, "notify", {"type": "webhook", "url": receiver.on("/n", (200, {}, b""))})
        with httpx.Client(base_url=api_process.base_url, timeout=30,
                          headers={"Authorization": f"Bearer {api_process.token}"}) as api:
            for n in range(3):  # the worker claims each time, not only right after it started
                answer = api.post("/api/projects/notify/activities", json={"type": "environment.push"})
                run_id = answer.json()["_embedded"]["runs"][0]["id"]
                done = wait_for(lambda run_id=run_id: (d := api.get(f"/api/projects/notify/activities/{run_id}")
                                                       .json())["state"] == "complete" and d, timeout=60)
                assert done["result"] == "success"
                assert len(receiver.requests_to("/n")) == n + 1
    finally:
        assert worker.stop() == 0, worker.output()
        assert api_process.stop() == 0, api_process.output()
