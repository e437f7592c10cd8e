"""Database faults under a real `firehook serve` (and `firehook worker`).

- PostgreSQL restarted twice during a stream of activities: the processes reconnect and carry
  on, every accepted activity is stored and delivered, no job is left behind with a dead
  lease. The restarted server is a private cluster (initdb in a temporary directory, its own
  port) so that restarting it cannot break the other tests that share the machine's server;
  the machine's PostgreSQL is never touched.
- SQLite on a full disk (a tiny tmpfs): intake answers 503 in the API's error format, never
  500; what was accepted before is intact; once space is back intake works again; the file
  passes ``PRAGMA integrity_check``.
- SQLite locked by another process (``BEGIN EXCLUSIVE`` held past the busy timeout): intake
  answers 503 in the error format, reads go on, and once the lock is gone intake works again.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import support
from tests.receivers import Receiver, wait_for
from tests.reliability.helpers import Api, PrivateCluster, start_server

ERROR_KEYS = {"status", "code", "title", "detail"}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    r.server.handle_error = lambda *_: None  # type: ignore[method-assign]
    yield r
    r.stop()


def queue_depth(api: Api) -> int:
    text = api.client.get("/metrics").text
    return int(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("firehook_queue_depth{")))


def assert_error_format(response: httpx.Response, code: int) -> dict[str, Any]:
    assert response.status_code == code, response.text
    body = response.json()
    assert ERROR_KEYS <= set(body) and body["status"] == "error" and body["code"] == code, body
    return body


# --- PostgreSQL restarted under load ----------------------------------------------------------


@pytest.fixture
def cluster() -> Iterator[PrivateCluster]:
    reason = PrivateCluster.available()
    if reason:
        pytest.skip(f"cannot run a private PostgreSQL cluster to restart: {reason}")
    base = Path(tempfile.mkdtemp(prefix="firehook-pgfault-"))
    try:
        c = PrivateCluster(base)
    except Exception as exc:  # initdb/pg_ctl refused: say why
        pytest.skip(f"cannot start a private PostgreSQL cluster: {exc}")
    yield c
    c.destroy()


@pytest.mark.postgres
def test_postgres_restarts_during_load_lose_nothing(tmp_path: Path, cluster: PrivateCluster,
                                                    receiver: Receiver) -> None:
    env = {"FIREHOOK_DATABASE_URL": cluster.url, "FIREHOOK_LEASE_SECONDS": "3",
           "FIREHOOK_RETRY_SCHEDULE": "0.5,1,1,1,1,1,1,1,1,1", "FIREHOOK_WEBHOOK_TIMEOUT": "5"}
    upgrade_env = {k: v for k, v in os.environ.items() if not k.startswith("FIREHOOK_")}
    upgrade_env["FIREHOOK_DATABASE_URL"] = cluster.url
    subprocess.run(support.firehook_command() + ["db:upgrade"], env=upgrade_env, check=True, capture_output=True)
    serve = start_server(tmp_path / "serve", env=env)
    worker = start_server(tmp_path / "worker", env=env, command="worker")
    # The load starts once both workers run (a worker started while the database is down
    # exits: that is start-up, not what this test is about).
    wait_for(lambda: "event=worker.start" in worker.output() or worker.proc.poll() is not None, timeout=60)
    assert worker.proc.poll() is None, worker.output()[-3000:]
    api = Api(serve.base_url, serve.token, timeout=60)
    total = 60
    accepted: list[str] = []
    seen_codes: list[int] = []
    bad_bodies: list[str] = []
    try:
        api.ok("POST", "/api/projects", {"id": "pg", "title": "restarts"})
        hook = api.ok("POST", "/api/projects/pg/integrations",
                      {"type": "webhook", "url": receiver.on("/pg", (200, {}, b"ok"))})["_embedded"]["entity"]

        def send() -> None:
            for i in range(total):
                doc = {"id": f"pgact{i:04d}", "type": "environment.push", "environments": ["main"]}
                for _ in range(600):
                    try:
                        response = api.post("/api/projects/pg/activities", doc)
                    except httpx.HTTPError:
                        time.sleep(0.1)
                        continue
                    seen_codes.append(response.status_code)
                    if response.status_code in (200, 201):
                        accepted.append(doc["id"])
                        break
                    try:
                        assert_error_format(response, response.status_code)
                    except AssertionError as exc:
                        bad_bodies.append(str(exc))
                    time.sleep(0.1)

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        for threshold in (total // 3, 2 * total // 3):
            wait_for(lambda t=threshold: len(accepted) >= t or not sender.is_alive(), timeout=120)
            cluster.restart()
        sender.join(180)
        assert not sender.is_alive()
        assert len(accepted) == total, seen_codes
        assert not bad_bodies, bad_bodies[:3]
        assert 500 not in seen_codes, "a database restart must give 503, not 500"
        assert set(seen_codes) <= {200, 201, 503}, sorted(set(seen_codes))
        # Both processes lived through it and the queue drains.
        wait_for(lambda: queue_depth(api) == 0, timeout=120)
        assert serve.proc.poll() is None, serve.output()[-4000:]
        assert worker.proc.poll() is None, worker.output()[-4000:]
        runs = []
        for activity_id in accepted:
            found = api.ok("GET", f"/api/projects/pg/activities/{activity_id}/runs")
            assert [r["integration"] for r in found] == [hook["id"]], (activity_id, found)
            runs.extend(found)
        assert all(r["state"] == "complete" and r["result"] == "success" for r in runs), \
            [r for r in runs if r["state"] != "complete"][:3]
        delivered = {r.headers["x-firehook-delivery"] for r in receiver.requests_to("/pg")}
        assert {r["id"] for r in runs} <= delivered
        import psycopg

        with psycopg.connect(cluster.url) as conn:
            left = conn.execute("SELECT count(*) FROM jobs").fetchone()[0]
            stale = conn.execute("SELECT count(*) FROM jobs WHERE lease_owner IS NOT NULL").fetchone()[0]
        assert (left, stale) == (0, 0)
        assert api.get("/healthz").json()["database"] == "ok"
    finally:
        api.close()
        worker.stop()
        serve.stop()
    assert cluster.running()


# --- SQLite: a full disk ----------------------------------------------------------------------


@pytest.fixture
def tiny_disk() -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs to fill needs root")
    mountpoint = Path(tempfile.mkdtemp(prefix="firehook-fulldisk-"))
    # 4 MiB: an empty firehook database of 16 KiB pages takes 688 KiB, its WAL grows by 16 KiB
    # frames; the test sends ~6 MB of documents, so the disk still fills, after some are stored.
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4096k", "tmpfs", str(mountpoint)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        mountpoint.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    yield mountpoint
    subprocess.run(["umount", "-l", str(mountpoint)], check=False)
    mountpoint.rmdir()


def integrity(db_path: Path) -> str:
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def test_sqlite_full_disk_gives_503_and_no_corruption(tmp_path: Path, tiny_disk: Path, receiver: Receiver) -> None:
    db_path = tiny_disk / "firehook.db"
    # A run whose outcome could not be recorded (disk full) is taken again once its lease
    # expires: a short lease keeps that wait short.
    server = start_server(tmp_path / "data", env={"FIREHOOK_DATABASE_URL": f"sqlite:///{db_path}",
                                                  "FIREHOOK_LEASE_SECONDS": "3"})
    api = Api(server.base_url, server.token, timeout=60)
    accepted: dict[str, str] = {}
    refusals: list[httpx.Response] = []
    try:
        api.ok("POST", "/api/projects", {"id": "full", "title": "full disk"})
        api.ok("POST", "/api/projects/full/integrations",
               {"type": "webhook", "url": receiver.on("/full", (200, {}, b"ok"))})
        for i in range(400):
            text = f"{i:05d}-" + os.urandom(8_000).hex()  # incompressible, ~16 KB
            response = api.post("/api/projects/full/activities",
                                {"id": f"full{i:05d}", "type": "environment.push", "environments": ["main"],
                                 "text": text})
            if response.status_code in (200, 201):
                accepted[f"full{i:05d}"] = text
                continue
            refusals.append(response)
            if len(refusals) >= 3:
                break
        assert refusals, "the disk never filled: the test proves nothing"
        assert len(accepted) >= 3, "the disk filled before anything was accepted"
        for response in refusals:
            body = assert_error_format(response, 503)
            assert "full" in json.dumps(body["detail"]).lower(), body
        # Reading still works, and everything accepted before is intact.
        assert api.get("/healthz").status_code == 200
        for activity_id, text in accepted.items():
            doc = api.ok("GET", f"/api/projects/full/activities/{activity_id}")
            assert doc["text"] == text
        # Space comes back: intake works again, without a restart.
        subprocess.run(["mount", "-o", "remount,size=64m", str(tiny_disk)], check=True)
        again = api.post("/api/projects/full/activities", {"id": "after", "type": "environment.push",
                                                           "environments": ["main"]})
        assert again.status_code == 201, again.text
        wait_for(lambda: queue_depth(api) == 0, timeout=60)
        for activity_id in [*accepted, "after"]:
            runs = api.ok("GET", f"/api/projects/full/activities/{activity_id}/runs")
            assert [(r["state"], r["result"]) for r in runs] == [("complete", "success")], (activity_id, runs)
    finally:
        api.close()
        code = server.stop()
    assert code == 0, server.output()[-3000:]
    assert integrity(db_path) == "ok"
    conn = sqlite3.connect(db_path)
    try:
        stored = {row[0] for row in conn.execute("SELECT id FROM activities WHERE project_id = 'full'")}
    finally:
        conn.close()
    assert set(accepted) | {"after"} <= stored
    assert "event=api.unexpected_error" not in server.output()


# --- SQLite: a lock held by another process ----------------------------------------------------

# Held until the test ends it: far past the busy timeout the server is given (a request may
# wait more than one: writers of one process take turns on a lock of their own first, and each
# waits its busy timeout on SQLite's), so the lock outlasts them all.
BUSY_TIMEOUT = 2
HOLD_SECONDS = 170


def test_sqlite_locked_by_another_process_gives_503_then_recovers(tmp_path: Path) -> None:
    db_path = tmp_path / "locked.db"
    server = start_server(tmp_path / "data", env={"FIREHOOK_DATABASE_URL": f"sqlite:///{db_path}",
                                                  "FIREHOOK_SQLITE_BUSY_TIMEOUT": str(BUSY_TIMEOUT)})
    api = Api(server.base_url, server.token, timeout=160)
    holder = None
    try:
        api.ok("POST", "/api/projects", {"id": "lk", "title": "locked"})
        api.ok("POST", "/api/projects/lk/activities", {"id": "before", "type": "environment.push"})
        holder = subprocess.Popen(
            [sys.executable, "-c",
             "import sqlite3, sys, time\n"
             f"c = sqlite3.connect({str(db_path)!r}, isolation_level=None)\n"
             "c.execute('BEGIN EXCLUSIVE')\n"
             "print('locked', flush=True)\n"
             f"time.sleep({HOLD_SECONDS})\n"],
            stdout=subprocess.PIPE, text=True)
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        # WAL: readers are not blocked by a writer's lock.
        assert api.get("/api/projects/lk/activities/before").status_code == 200
        response = api.post("/api/projects/lk/activities", {"id": "during", "type": "environment.push"})
        assert holder.poll() is None, "the lock holder ended before firehook gave up: nothing was proven"
        body = assert_error_format(response, 503)
        assert "locked" in json.dumps(body["detail"]).lower(), body
        # A lock is the whole database's failure: the group is not tried again document by
        # document (each would wait the busy timeout again).
        assert "event=intake.group_failed" in server.output()
        assert "event=intake.group_isolated" not in server.output()
        holder.kill()
        holder.wait()
        after = api.post("/api/projects/lk/activities", {"id": "after", "type": "environment.push"})
        assert after.status_code == 201, after.text
        assert api.get("/api/projects/lk/activities/during").status_code == 404  # refused means not stored
    finally:
        if holder is not None and holder.poll() is None:
            holder.kill()
            holder.wait()
        api.close()
        server.stop()
    assert integrity(db_path) == "ok"
