"""SIGTERM on a worker process: in-flight runs get the grace period, then their jobs are
released so another worker takes them at once instead of waiting for the lease to expire."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from firehook import model
from firehook.service import activities, intake, integrations, projects
from tests import support
from tests.receivers import Receiver, wait_for

ADMIN = model.Token(id="a", project=None, read_only=False, description=None, created_at="")


def test_sigterm_releases_in_flight_job(tmp_path: Path, database_url: str, services: Any) -> None:
    arrived = threading.Event()
    release = threading.Event()

    def answer(_request: Any) -> tuple[int, dict[str, str], bytes]:
        if not arrived.is_set():
            arrived.set()
            release.wait(60)
            return 503, {}, b"interrupted"
        return 200, {}, b"ok"

    receiver = Receiver().start()
    try:
        projects.create(services, ADMIN, {"id": "stop", "title": "Stop"})
        integrations.create(services, ADMIN, "stop", {"type": "webhook", "url": receiver.on("/s", answer)})
        accepted = intake.ingest(services, ADMIN, "stop", {"type": "environment.push", "environments": ["main"]})
        run_id = accepted.runs[0]["id"]
        env = {"FIREHOOK_DATABASE_URL": database_url, "FIREHOOK_OUTBOUND_ALLOW": "127.0.0.1/32",
               # a lease far longer than the test: only an explicit release lets the second worker in
               "FIREHOOK_LEASE_SECONDS": "3600", "FIREHOOK_SHUTDOWN_GRACE": "0.5", "FIREHOOK_WEBHOOK_TIMEOUT": "120"}
        first = support.ServerProcess(tmp_path / "first", command="worker", env=env)
        try:
            assert arrived.wait(60), first.output()
            assert first.stop() == 0, first.output()
        finally:
            release.set()
        assert "event=worker.released jobs=1" in first.output()
        second = support.ServerProcess(tmp_path / "second", command="worker", env=env)
        try:
            done = wait_for(lambda: (d := activities.get(services, ADMIN, "stop", run_id))["state"] == "complete" and d,
                            timeout=60)
        finally:
            assert second.stop() == 0
        assert done["result"] == "success"
        assert len(receiver.requests_to("/s")) == 2
    finally:
        receiver.stop()
