"""Helpers shared by the test tiers: paths, ports, PostgreSQL databases, server processes."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
PG_ADMIN_URL = os.environ.get("FIREHOOK_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def shared_dir() -> Path:
    """``shared/`` beside the checkout (or above it)."""
    for base in [REPO, *REPO.parents]:
        candidate = base / "shared" if (base / "shared" / "fixtures").is_dir() else base.parent / "shared"
        if (candidate / "fixtures" / "upsun").is_dir():
            return candidate
    raise FileNotFoundError("shared/fixtures/upsun not found beside the checkout")


def fixture_doc(name: str) -> dict[str, Any]:
    return json.loads((shared_dir() / "fixtures" / "upsun" / f"{name}.json").read_text(encoding="utf-8"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postgres_required() -> bool:
    return os.environ.get("FIREHOOK_REQUIRE_POSTGRES") == "1"


def postgres_unavailable(reason: str) -> None:
    """Fail under FIREHOOK_REQUIRE_POSTGRES=1 (CI), skip with the reason elsewhere."""
    message = f"PostgreSQL not available at {PG_ADMIN_URL}: {reason}"
    if postgres_required():
        pytest.fail(message + " (FIREHOOK_REQUIRE_POSTGRES=1: PostgreSQL tests must run)", pytrace=False)
    pytest.skip(message)


class PostgresDatabase:
    """A database created for this test session and dropped at its end."""

    def __init__(self) -> None:
        import psycopg

        self.name = "firehook_test_" + secrets.token_hex(4)
        self._psycopg = psycopg
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
        base = PG_ADMIN_URL.rsplit("/", 1)[0]
        self.url = f"{base}/{self.name}"

    def drop(self) -> None:
        with self._psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (self.name,),
            )
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}"')


def firehook_command() -> list[str]:
    """The installed ``firehook`` console script of this environment."""
    script = Path(sys.executable).parent / "firehook"
    if not script.exists():
        raise FileNotFoundError(f"{script} is missing: install the project (make test does)")
    return [str(script)]


class ServerProcess:
    """``firehook serve`` (or ``worker``) as a subprocess on a temporary data directory."""

    def __init__(self, data_dir: Path, *, args: list[str] | None = None, env: dict[str, str] | None = None,
                 command: str = "serve", port: int | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir / f"{command}-{self.port}.log"
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("FIREHOOK_")}
        full_env.update({"FIREHOOK_DATA_DIR": str(data_dir), "FIREHOOK_PORT": str(self.port),
                         "FIREHOOK_HOST": "127.0.0.1", "FIREHOOK_POLL_INTERVAL": "0.1"})
        full_env.update(env or {})
        data_dir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(firehook_command() + [command] + (args or []), env=full_env,
                                     stdout=self._log, stderr=subprocess.STDOUT)
        self.command = command

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"firehook {self.command} exited with {self.proc.returncode}:\n{self.output()}")
            try:
                with urllib.request.urlopen(self.base_url + "/healthz", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.1)
        raise TimeoutError(f"firehook serve did not answer /healthz:\n{self.output()}")

    @property
    def token(self) -> str:
        return (self.data_dir / "admin.token").read_text().strip()

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return int(self.proc.returncode)


def running_server(data_dir: Path, env: dict[str, str] | None = None) -> Iterator[ServerProcess]:
    """A module fixture's body: ``serve`` on ``data_dir`` once it answers, stopped cleanly
    (exit 0, or the test fails with its output) when the module is done."""
    proc = ServerProcess(data_dir, env=env)
    proc.wait_ready()
    yield proc
    assert proc.stop() == 0, proc.output()


def api_client(server: ServerProcess) -> Iterator[Any]:
    """A module fixture's body: an httpx client with the server's admin token."""
    import httpx

    with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {server.token}"},
                      timeout=30) as client:
        yield client


def runs_recorded(output: str) -> int:
    """Runs recorded by the worker(s) whose log is ``output``: each says so as it stops
    (``event=worker.stop … completed=N``); a serve's log holds its worker child's lines too."""
    import re

    return sum(int(n) for n in re.findall(r"event=worker\.stop \S+ completed=(\d+)", output))
