"""Shared pieces of the reliability tier: an API client for a live server, raw TCP receivers
that misbehave on purpose, and a private PostgreSQL cluster that may be restarted freely."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests import support


class Api:
    """A thin httpx client for one server and one token."""

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 30) -> None:
        self.base_url = base_url
        self.token = token
        self.client = httpx.Client(base_url=base_url, timeout=timeout)

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        out = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        out.update(extra or {})
        return out

    def request(self, method: str, path: str, *, json_body: Any = None, content: bytes | None = None,
                headers: dict[str, str] | None = None, params: Any = None) -> httpx.Response:
        if json_body is not None:
            content = json.dumps(json_body).encode()
            headers = {"Content-Type": "application/json", **(headers or {})}
        return self.client.request(method, path, content=content, headers=self.headers(headers), params=params)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> httpx.Response:
        return self.request("POST", path, json_body=body, **kw)

    def patch(self, path: str, body: Any, **kw: Any) -> httpx.Response:
        return self.request("PATCH", path, json_body=body, **kw)

    def delete(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("DELETE", path, **kw)

    def ok(self, method: str, path: str, body: Any = None, expect: int | tuple[int, ...] = (200, 201, 204)) -> Any:
        response = self.request(method, path, json_body=body)
        wanted = (expect,) if isinstance(expect, int) else expect
        assert response.status_code in wanted, f"{method} {path} -> {response.status_code}: {response.text}"
        return response.json() if response.content else None

    def close(self) -> None:
        self.client.close()


def run_finished(api: Api, project: str, run_id: str) -> dict[str, Any] | None:
    doc = api.ok("GET", f"/api/projects/{project}/activities/{run_id}")
    return doc if doc["state"] in ("complete", "cancelled") else None


def attempts_of(api: Api, project: str, run_id: str) -> list[dict[str, Any]]:
    return api.ok("GET", f"/api/projects/{project}/activities/{run_id}/attempts")


# Every server the reliability tier starts, with its database's kind, and the secrets its tests
# planted: test_zz_log_secrets scans all their logs once the rest of the tier has run.
SERVER_LOGS: list[tuple[Path, str]] = []
PLANTED: set[str] = set()


def start_server(tmp: Path, *, env: dict[str, str] | None = None, command: str = "serve",
                 args: list[str] | None = None, port: int | None = None, ready: bool = True) -> support.ServerProcess:
    base = {"FIREHOOK_OUTBOUND_ALLOW": "127.0.0.1/32,localhost", "FIREHOOK_POLL_INTERVAL": "0.1"}
    base.update(env or {})
    server = support.ServerProcess(tmp, env=base, command=command, args=args, port=port)
    kind = "postgres" if base.get("FIREHOOK_DATABASE_URL", "").startswith("postgresql") else "sqlite"
    SERVER_LOGS.append((server.log_path, kind))
    if ready and command == "serve":
        server.wait_ready()
    return server


def postgres_database() -> support.PostgresDatabase:
    """A fresh PostgreSQL database with firehook's schema (``firehook db:upgrade``, as an
    operator runs it); skipped, or failed under FIREHOOK_REQUIRE_POSTGRES=1, without PostgreSQL."""
    try:
        database = support.PostgresDatabase()
    except Exception as exc:  # connection refused, no driver…
        support.postgres_unavailable(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIREHOOK_")}
    env["FIREHOOK_DATABASE_URL"] = database.url
    subprocess.run(support.firehook_command() + ["db:upgrade"], env=env, check=True, capture_output=True, timeout=120)
    return database


# --- raw TCP receivers ----------------------------------------------------------------------


class RawReceiver:
    """A TCP server on loopback whose every connection is handled by ``behaviour(conn, n)``
    (``n`` counts connections from 0). Each request's head and body are recorded."""

    def __init__(self, behaviour: Callable[[socket.socket, int, bytes], None], port: int = 0) -> None:
        self.behaviour = behaviour
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.requests: list[bytes] = []
        self.lock = threading.Lock()
        self.closed = False
        self.release = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _serve(self) -> None:
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                n = len(self.requests)
                self.requests.append(b"")
            threading.Thread(target=self._handle, args=(conn, n), daemon=True).start()

    def _handle(self, conn: socket.socket, n: int) -> None:
        try:
            request = read_http_request(conn)
            with self.lock:
                self.requests[n] = request
            self.behaviour(conn, n, request)
        except OSError:
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def delivery_ids(self) -> list[str]:
        with self.lock:
            heads = list(self.requests)
        out = []
        for raw in heads:
            for line in raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
                if line.lower().startswith(b"x-firehook-delivery:"):
                    out.append(line.split(b":", 1)[1].strip().decode())
        return out

    def count(self) -> int:
        with self.lock:
            return sum(1 for r in self.requests if r)

    def close(self) -> None:
        self.closed = True
        self.release.set()
        self.sock.close()


def read_http_request(conn: socket.socket) -> bytes:
    """Read one HTTP request (head and Content-Length body) from a socket."""
    conn.settimeout(30)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def answer_ok(conn: socket.socket, *_: Any) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")


# --- a private PostgreSQL cluster -------------------------------------------------------------


class PrivateCluster:
    """A throw-away PostgreSQL cluster (initdb in a temporary directory, its own port), run as
    the ``postgres`` system user, so that restarting it cannot disturb anyone else's tests."""

    def __init__(self, base: Path) -> None:
        self.bindir = _pg_bindir()
        self.base = base
        self.datadir = base / "pgdata"
        self.port = support.free_port()
        self.log = base / "postgres.log"
        base.mkdir(parents=True, exist_ok=True)
        shutil.chown(base, "postgres", "postgres")
        self._as_postgres([str(self.bindir / "initdb"), "-D", str(self.datadir), "-A", "trust", "-U", "postgres",
                           "--no-sync"])
        with open(self.datadir / "postgresql.conf", "a") as conf:
            conf.write(f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{base}'\n"
                       "fsync = off\nmax_connections = 100\n")
        self.start()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @staticmethod
    def available() -> str | None:
        """None when a private cluster can be made here, else the reason it cannot."""
        if os.geteuid() != 0:
            return "needs root (to run initdb as the postgres user)"
        if _pg_bindir() is None:
            return "no PostgreSQL server binaries (initdb, pg_ctl) found"
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            return "no postgres system user"
        return None

    def _as_postgres(self, argv: list[str]) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *argv], check=True, capture_output=True, timeout=120)

    def pg_ctl(self, action: str, *extra: str) -> None:
        self._as_postgres([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-l", str(self.log), "-w",
                           "-t", "60", *extra, action])

    def start(self) -> None:
        self.pg_ctl("start")

    def restart(self) -> None:
        self.pg_ctl("restart", "-m", "fast")

    def running(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def destroy(self) -> None:
        try:
            self.pg_ctl("stop", "-m", "immediate")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.base, ignore_errors=True)


def _pg_bindir() -> Path | None:
    root = Path("/usr/lib/postgresql")
    if not root.is_dir():
        return None
    for version in sorted(root.iterdir(), reverse=True):
        if (version / "bin" / "initdb").exists() and (version / "bin" / "pg_ctl").exists():
            return version / "bin"
    return None
