"""The intake baseline: a bare FastAPI route under uvicorn, in a process of its own.

    python -m bench.bare --port N       # serves until SIGTERM

``POST /activities`` reads the JSON body (FastAPI's ``Request.json()``) and answers 201 with
a small JSON of the same shape as firehook's answer (``_embedded.entity.id``), so the very
same client request and checks load it; ``GET /healthz`` answers 200 for readiness. uvicorn
runs with the options of ``firehook serve``: uvloop and httptools (what uvicorn's ``auto``
picks when installed, named explicitly here) and log level ``warning``.
:class:`BareProcess` starts and stops it (by PID) from the harness.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from bench import procs
from tests import support

PATH = "/activities"


def uvicorn_options() -> dict[str, str]:
    """uvloop and httptools when installed, else uvicorn's pure-Python fallbacks."""
    options = {"loop": "asyncio", "http": "h11"}
    with contextlib.suppress(ImportError):
        import uvloop  # noqa: F401

        options["loop"] = "uvloop"
    with contextlib.suppress(ImportError):
        import httptools  # noqa: F401

        options["http"] = "httptools"
    return options


def create_app() -> Any:
    app = FastAPI()
    counter = itertools.count()

    @app.post(PATH, status_code=201)
    async def create(request: Request) -> JSONResponse:
        doc = await request.json()
        if not isinstance(doc, dict):
            return JSONResponse({"detail": "a JSON object is required"}, status_code=400)
        return JSONResponse({"_embedded": {"entity": {"id": f"bare{next(counter):010d}", "type": doc.get("type")}}},
                            status_code=201)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


class BareProcess:
    """``python -m bench.bare`` on a free loopback port; stopped by its PID on exit."""

    def __init__(self) -> None:
        self.port = support.free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.url = self.base_url + PATH
        self.proc: subprocess.Popen[bytes] | None = None
        self._err = tempfile.TemporaryFile()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def __enter__(self) -> BareProcess:
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.bare", "--port", str(self.port)],
                                     cwd=support.REPO, stdout=subprocess.DEVNULL, stderr=self._err)
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                self._err.seek(0)
                err = self._err.read().decode(errors="replace")
                raise RuntimeError(f"bench.bare exited with {self.proc.returncode}: {err[-1000:]}")
            try:
                with urllib.request.urlopen(self.base_url + "/healthz", timeout=2) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError("bench.bare did not answer /healthz within 30 s")
            time.sleep(0.1)

    def __exit__(self, *exc: object) -> None:
        if self.proc is None:
            return
        procs.stop_process(self.proc)
        self._err.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    import uvicorn

    uvicorn.run(create_app(), host="127.0.0.1", port=args.port, log_level="warning",
                **uvicorn_options())  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
