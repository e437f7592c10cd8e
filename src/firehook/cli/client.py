"""The CLI's HTTP client: finds the server and the token, and turns every failure into a
message a person can act on (:class:`CliError`), never a traceback (unless ``-v``).

    CliError (click.ClickException)     printed as ``Error: …``; exit code 1 unless said
    ├── server unreachable              says how to start one (`firehook serve` / `make run`)
    ├── no token / token refused        says where the token comes from
    └── HTTP error                      the server's ``detail``
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import click
import httpx

from firehook import settings as settings_mod

DEFAULT_SERVER = settings_mod.BY_NAME["server"].default
TIMEOUT = httpx.Timeout(60.0, connect=10.0)

# Exit codes (documented in docs/cli.md and `firehook --help`).
EXIT_ERROR = 1
EXIT_INVALID = 4


class CliError(click.ClickException):
    """An error for a person: a message, an exit code, and optional lines for stdout."""

    def __init__(self, message: str, exit_code: int = EXIT_ERROR, *, bare: bool = False) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click declares it on the class
        # Printed as it is, without "Error: " (Upsun's own wording for a refusal).
        self.bare = bare


class HttpError(CliError):
    """The server answered with an error status; ``detail`` is its ``detail`` field."""

    def __init__(self, status: int, detail: Any, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail


def describe_detail(detail: Any) -> str:
    """The API's ``detail`` (text, or ``{field: message}``) as one readable string."""
    if isinstance(detail, dict):
        return "; ".join(f"{k}: {describe_detail(v)}" for k, v in detail.items())
    if isinstance(detail, list):
        return "; ".join(describe_detail(v) for v in detail)
    return str(detail)


def data_dir(given: str | None) -> Path:
    """The data directory: ``--data-dir``, else FIREHOOK_DATA_DIR, else the settings default."""
    return settings_mod.load({"data_dir": given or None}).data_path


def find_token(given_data_dir: str | None, given_token: str | None = None) -> str:
    """``--token``, else FIREHOOK_TOKEN, else ``<data dir>/admin.token``; a clear error when
    none exists."""
    token = (given_token or "").strip() or os.environ.get("FIREHOOK_TOKEN", "").strip()
    if token:
        return token
    path = data_dir(given_data_dir) / settings_mod.ADMIN_TOKEN_FILE
    try:
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise CliError(
            f"No API token: neither --token nor FIREHOOK_TOKEN is set and {path} does not exist.\n"
            "The first `firehook serve` on a data directory writes its admin token there; "
            "point --data-dir (or FIREHOOK_DATA_DIR) at the server's data directory, "
            "or pass --token (or set FIREHOOK_TOKEN) with a token made with `firehook token:create`."
        ) from None
    except OSError as exc:
        raise CliError(f"Cannot read the token file {path}: {exc.strerror or exc}") from None
    if not token:
        raise CliError(f"The token file {path} is empty; set FIREHOOK_TOKEN instead.")
    return token


class Client:
    """A small JSON client for the firehook API."""

    def __init__(self, server: str, token: str, *, transport: httpx.BaseTransport | None = None) -> None:
        self.server = server.rstrip("/")
        self.http = httpx.Client(base_url=self.server, timeout=TIMEOUT, transport=transport,
                                 headers={"Authorization": f"Bearer {token}",
                                          "User-Agent": "firehook-cli"})

    def close(self) -> None:
        self.http.close()

    # ---- requests -------------------------------------------------------------------------

    def request(self, method: str, path: str, *, json_body: Any = None, content: bytes | None = None,
                params: Any = None, headers: dict[str, str] | None = None,
                accept: tuple[int, ...] = ()) -> httpx.Response:
        """Send one request; error statuses raise :class:`HttpError` unless in ``accept``."""
        kwargs: dict[str, Any] = {"params": params, "headers": headers}
        if json_body is not None:
            kwargs["json"] = json_body
        if content is not None:
            kwargs["content"] = content
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise self.unreachable(exc) from None
        if response.status_code >= 400 and response.status_code not in accept:
            raise self.http_error(response)
        return response

    def get(self, path: str, **kwargs: Any) -> Any:
        return _json(self.request("GET", path, **kwargs))

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return _json(self.request("POST", path, json_body=body, **kwargs))

    def patch(self, path: str, body: Any, **kwargs: Any) -> Any:
        return _json(self.request("PATCH", path, json_body=body, **kwargs))

    def delete(self, path: str) -> None:
        self.request("DELETE", path)

    def stream_lines(self, path: str, on_wait: Callable[[], None] | None = None) -> Iterator[Any]:
        """Follow an NDJSON stream, yielding each decoded line (no read timeout: a run's log
        is followed for as long as the run lasts)."""
        timeout = httpx.Timeout(TIMEOUT.connect, read=None, write=TIMEOUT.write, pool=TIMEOUT.pool)
        try:
            with self.http.stream("GET", path, timeout=timeout) as response:
                if response.status_code >= 400:
                    response.read()
                    raise self.http_error(response)
                for line in response.iter_lines():
                    if line.strip():
                        yield json.loads(line)
        except httpx.TransportError as exc:
            raise self.unreachable(exc) from None

    # ---- error translation ----------------------------------------------------------------

    def unreachable(self, exc: Exception) -> CliError:
        if isinstance(exc, httpx.ConnectError):
            return CliError(
                f"Cannot reach the firehook server at {self.server} ({_reason(exc)}).\n"
                "Start one with `firehook serve` (or `make run` in a checkout), or point "
                "--server / FIREHOOK_SERVER at a running server."
            )
        if isinstance(exc, httpx.TimeoutException):
            return CliError(f"The firehook server at {self.server} did not answer in time ({type(exc).__name__}).")
        return CliError(f"Lost the connection to the firehook server at {self.server}: {_reason(exc)}")

    def http_error(self, response: httpx.Response) -> HttpError:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and "detail" in body:
            detail = body["detail"]
        else:
            detail = response.text.strip()[:500] or response.reason_phrase
        status = response.status_code
        text = describe_detail(detail)
        if status == 401:
            text = (f"The server refused the API token ({text}).\n"
                    "Set FIREHOOK_TOKEN to a valid token (an admin makes one with `firehook token:create`), "
                    "or unset it to use the data directory's admin.token.")
        elif status == 403:
            text = f"Not allowed: {text}"
        elif status >= 500:
            text = f"The server failed ({status}): {text}"
        return HttpError(status, detail, text)


def _json(response: httpx.Response) -> Any:
    if response.status_code == 204 or not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        raise CliError(f"The server answered {response.status_code} with a body that is not JSON: "
                       f"{response.text[:200]!r}") from None


def _reason(exc: Exception) -> str:
    text = str(exc).strip()
    if "Connection refused" in text or "[Errno 111]" in text:
        return "connection refused"
    return text or type(exc).__name__


def seg(value: str) -> str:
    """One URL path segment, escaped."""
    return quote(value, safe="")


def project_path(project: str, *rest: str) -> str:
    return "/api/projects/" + "/".join([seg(project), *[seg(r) for r in rest]])
