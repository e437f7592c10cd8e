"""Scripts run in child processes, never in serve's or its worker's (SPEC §4.5): a run goes to
the worker child's script processes, a dry run to serve's own; a tenant's runaway dry runs
are bounded (429 beyond two at once) while another tenant's dry run and /healthz go on; and
every script process is gone when serve is — stopped or killed."""

from __future__ import annotations

import concurrent.futures
import signal
from pathlib import Path

import httpx

from tests import support
from tests.acceptance.test_serve_processes import alive, children, cmdline, worker_child
from tests.receivers import wait_for


def script_children(pid: int) -> list[int]:
    return [p for p in children(pid) if "firehook.scripts.child" in cmdline(p) and alive(p)]


def start(tmp_path: Path, **env: str) -> support.ServerProcess:
    server = support.ServerProcess(tmp_path / "data", env={"FIREHOOK_WORKERS": "2", "FIREHOOK_SHUTDOWN_GRACE": "2",
                                                           **env})
    try:
        server.wait_ready()
    except BaseException:
        server.stop()
        raise
    return server


def api(server: support.ServerProcess) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {server.token}"}, timeout=60)


def test_runs_execute_in_the_workers_script_processes_which_go_with_serve(tmp_path: Path) -> None:
    server = start(tmp_path)
    try:
        with api(server) as client:
            assert client.post("/api/projects", json={"id": "p", "title": "P"}).status_code == 201
            assert client.post("/api/projects/p/integrations",
                               json={"type": "script", "script": "console.log('ran', activity.type)"}).status_code == 201
            answer = client.post("/api/projects/p/activities", json={"type": "environment.push"})
            run_id = answer.json()["_embedded"]["runs"][0]["id"]
            run = wait_for(lambda: (r := client.get(f"/api/projects/p/activities/{run_id}").json())["state"]
                           == "complete" and r)
            assert run["result"] == "success"
            assert {"wait", "execute"} <= set(run["timings"])
        worker = worker_child(server)
        scripts = script_children(worker)
        assert scripts, "the run did not go to a script process of the worker"
        assert script_children(server.proc.pid) == []  # none in serve: it ran no dry run
        server.stop(signal.SIGKILL)
        # No orphans: the worker child gets SIGTERM from the kernel, its script processes SIGKILL.
        wait_for(lambda: not alive(worker) and not any(alive(p) for p in scripts), timeout=30)
    finally:
        server.stop()


def test_runaway_dry_runs_are_bounded_per_project_and_others_go_on(tmp_path: Path) -> None:
    server = start(tmp_path, FIREHOOK_SCRIPT_TIMEOUT="8")
    runaway = {"script": "for (;;) {}", "activity": {"type": "environment.push"}}
    try:
        with api(server) as client:
            for project in ("a", "b"):
                assert client.post("/api/projects", json={"id": project, "title": project}).status_code == 201
            with concurrent.futures.ThreadPoolExecutor(2) as threads:
                running = [threads.submit(client.post, "/api/projects/a/dry-run", json=runaway) for _ in range(2)]
                # Both regular processes run A's loops, and the spare is up (on a busy machine
                # it takes seconds to start: B's run must not depend on that).
                wait_for(lambda: len(script_children(server.proc.pid)) >= 3
                         and not any(f.done() for f in running), timeout=60)
                # B still gets a process, at once.
                other = client.post("/api/projects/b/dry-run",
                                    json={"script": "console.log('b ran')", "activity": {"type": "environment.push"}})
                assert other.status_code == 200, other.text
                assert other.json()["result"] == "success"
                assert [line["message"] for line in other.json()["log"]] == ["b ran"]
                assert not any(f.done() for f in running), "B waited for A's runaways"
                third = client.post("/api/projects/a/dry-run", json=runaway)
                assert third.status_code == 429, third.text
                assert "project a already has 2 script runs in progress" in third.json()["detail"]
                assert client.get("/healthz").status_code == 200
                for future in running:
                    answer = future.result()
                    assert answer.status_code == 200
                    assert answer.json()["result"] == "failure"
                    assert answer.json()["error"] == "time limit of 8 s exceeded"
        scripts = script_children(server.proc.pid)
    finally:
        assert server.stop() == 0, server.output()
    assert not any(alive(p) for p in scripts), "script processes outlived serve"
