"""The README's first integration as written (issue 15): ``make run`` lets loopback through the
outbound guard for a local try-out and says so, while ``firehook serve`` keeps refusing it with
a message that names the flag, the variable and the ``make run ARGS=…`` form."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import support

REPO = Path(__file__).resolve().parents[2]
VENV = Path(sys.executable).parent.parent


def wait_ready(proc: subprocess.Popen[bytes], url: str, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"make run exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.1)
    raise TimeoutError(f"make run did not answer:\n{log.read_text()}")


@pytest.fixture()
def make_run(tmp_path: Path) -> Iterator[tuple[str, Path, Path]]:
    """``make run`` of this checkout on this environment's venv (``-o``: never reinstall)."""
    data, port = tmp_path / "data", support.free_port()
    log = tmp_path / "make-run.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIREHOOK_")}
    env.update({"FIREHOOK_DATA_DIR": str(data), "FIREHOOK_POLL_INTERVAL": "0.1"})
    stamp = VENV / ".installed-run"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            ["make", "--no-print-directory", "-C", str(REPO), "-o", str(stamp), f"VENV={VENV}", "run",
             f"ARGS=--port {port}"],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, url, log)
        yield url, data, log
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _admin(data: Path) -> dict[str, str]:
    return {"Authorization": "Bearer " + (data / "admin.token").read_text().strip()}


def test_make_run_allows_the_readme_webhook_and_says_so(make_run: tuple[str, Path, Path]) -> None:
    url, data, log = make_run
    headers = _admin(data)
    assert httpx.post(url + "/api/projects", json={"id": "demo", "title": "My first project"},
                      headers=headers).status_code == 201
    created = httpx.post(url + "/api/projects/demo/integrations", headers=headers,
                         json={"type": "webhook", "url": "http://127.0.0.1:9000/", "shared_key": "s3cret"})
    assert created.status_code == 201, created.text
    text = log.read_text()
    assert "make run: webhooks and fetch may reach this machine (127.0.0.1/32,::1/128,localhost)" in text
    assert "event=outbound.allow allow=127.0.0.1/32,::1/128,localhost" in text


def test_serve_refuses_loopback_naming_every_way_to_allow_it(tmp_path: Path) -> None:
    server = support.ServerProcess(tmp_path / "data")
    try:
        server.wait_ready()
        headers = {"Authorization": "Bearer " + server.token}
        made = httpx.post(server.base_url + "/api/projects", json={"id": "demo", "title": "Demo"}, headers=headers)
        assert made.status_code == 201, made.text
        refused = httpx.post(server.base_url + "/api/projects/demo/integrations", headers=headers,
                             json={"type": "webhook", "url": "http://127.0.0.1:9000/"})
        assert refused.status_code == 400
        message = refused.json()["detail"]["url"]
        assert "127.0.0.1 is a loopback address" in message
        assert "--outbound-allow 127.0.0.1" in message
        assert "FIREHOOK_OUTBOUND_ALLOW=127.0.0.1" in message
        assert 'make run ARGS="--outbound-allow 127.0.0.1"' in message
        assert "event=outbound.allow" not in server.output()
    finally:
        server.stop()
