"""Scale-out on PostgreSQL: 2 `firehook serve` and 3 `firehook worker` processes share one
queue — every delivery made exactly once while leases are held, and a project with a big
backlog does not starve a project that queues a little after it (fair claiming)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import httpx

from tests import support
from tests.receivers import Receiver, wait_for

PER_PROCESS = 4  # deliveries in flight per process: 5 processes → 20 at once
BIG, SMALL = 300, 20


def test_two_serve_three_workers_share_fairly_without_double_delivery(tmp_path: Path, postgres_url: str) -> None:
    held = threading.Event()
    release = threading.Event()
    order: list[tuple[str, str]] = []  # (project, delivery id) in arrival order
    lock = threading.Lock()

    def answer(request: Any) -> tuple[int, dict[str, str], bytes]:
        project = json.loads(request.body)["project"]
        with lock:
            order.append((project, request.headers["x-firehook-delivery"]))
            first_wave = len(order) <= 5 * PER_PROCESS
            if len(order) == 5 * PER_PROCESS:
                held.set()
        if first_wave:  # hold the first deliveries until "small" has queued behind "big"'s backlog
            release.wait(60)
        return 200, {}, b"ok"

    receiver = Receiver().start()
    env = {"FIREHOOK_DATABASE_URL": postgres_url, "FIREHOOK_OUTBOUND_ALLOW": "127.0.0.1/32",
           "FIREHOOK_WEBHOOK_CONCURRENCY": str(PER_PROCESS), "FIREHOOK_WORKERS": "1"}
    procs = [support.ServerProcess(tmp_path / f"serve{i}", env=env) for i in range(2)]
    procs += [support.ServerProcess(tmp_path / f"worker{i}", command="worker", env=env) for i in range(3)]
    try:
        for proc in procs[:2]:
            proc.wait_ready()
        # One database: whichever serve started first made the admin token, in its data dir.
        [token_file] = [p.data_dir / "admin.token" for p in procs[:2] if (p.data_dir / "admin.token").exists()]
        token = token_file.read_text().strip()
        apis = [httpx.Client(base_url=p.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=60)
                for p in procs[:2]]
        url = receiver.on("/in", answer)
        for pid in ("big", "small"):
            assert apis[0].post("/api/projects", json={"id": pid, "title": pid}).status_code == 201
            assert apis[1].post(f"/api/projects/{pid}/integrations",
                                json={"type": "webhook", "url": url}).status_code == 201
        lines = "\n".join(json.dumps({"type": "environment.push", "environments": ["main"]}) for _ in range(BIG))
        report = apis[0].post("/api/projects/big/activities:batch", content=lines.encode(),
                              headers={"content-type": "application/x-ndjson"}).json()
        assert report["accepted"] == BIG
        assert held.wait(60), "the first deliveries never arrived"
        for i in range(SMALL):  # through the other API process, while "big" is backed up
            answer_ = apis[1 - i % 2].post("/api/projects/small/activities", json={"type": "environment.push"})
            assert answer_.status_code == 201
        release.set()
        wait_for(lambda: len(order) >= BIG + SMALL, timeout=180)
        runs = {pid: apis[0].get(f"/api/projects/{pid}/activities",
                                 params={"type": "integration.webhook", "count": 1000}).json()
                for pid in ("big", "small")}
        wait_for(lambda: all(r["state"] == "complete" for pid in runs for r in apis[0].get(
            f"/api/projects/{pid}/activities", params={"type": "integration.webhook", "count": 1000}).json()),
            timeout=60)
        for client in apis:
            client.close()
    finally:
        release.set()
        codes = [p.stop() for p in procs]
        receiver.stop()
    assert codes == [0] * 5, [p.output()[-2000:] for p in procs]
    ids = [delivery for _, delivery in order]
    assert len(ids) == BIG + SMALL and len(set(ids)) == BIG + SMALL, "a run was delivered twice"
    assert {r["id"] for pid in runs for r in runs[pid]} == set(ids)
    # no starvation: "small" queued behind 280 of "big"'s runs, and was served among the next ones
    small_positions = [n for n, (project, _) in enumerate(order) if project == "small"]
    big_before_last_small = sum(1 for project, _ in order[:small_positions[-1]] if project == "big")
    assert big_before_last_small < 5 * PER_PROCESS + 3 * SMALL, (big_before_last_small, small_positions)
    # every process took part
    done_by = [support.runs_recorded(p.output()) for p in procs]
    assert sum(done_by) == BIG + SMALL and sum(1 for n in done_by if n > 0) >= 3, done_by
