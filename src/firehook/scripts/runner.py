"""Script runs for use cases that run in threads — dry runs and ``validate`` in the API —
through a pool of child processes (:mod:`firehook.scripts.pool`), so that no guest code runs
in the API's process.

The runner owns an event loop in a thread of its own, where its pool lives; a caller's thread
waits for its run. Limits are checked before a run starts, so that no tenant can hold the
API's threads or the pool: :data:`PER_PROJECT` runs at once per project and four per child in
all; beyond them the caller gets a 429 that says so. Nothing starts until the first run.
"""

from __future__ import annotations

import asyncio
import collections
import threading

from firehook import errors
from firehook.scripts import pool as pool_mod

PER_PROJECT = 2
IDLE_SECONDS = 60.0


class ThreadedRunner:
    def __init__(self, size: int, *, per_project: int = PER_PROJECT) -> None:
        self.size = max(1, size)
        self.per_project = per_project
        self.total = self.size * 4
        self._lock = threading.Lock()
        self._running: collections.Counter[str] = collections.Counter()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.pool: pool_mod.ScriptPool | None = None

    def _start(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def main() -> None:
                asyncio.set_event_loop(loop)
                # Dry runs come now and then: the processes stop after a minute without one.
                self.pool = pool_mod.ScriptPool(self.size, idle_timeout=IDLE_SECONDS)
                ready.set()
                loop.run_forever()

            # Children die with this thread (PR_SET_PDEATHSIG), which lives as long as the runner.
            self._thread = threading.Thread(target=main, name="firehook-script-runner", daemon=True)
            self._thread.start()
            ready.wait()
            self._loop = loop
        return self._loop

    def run(self, request: pool_mod.Request) -> pool_mod.Result:
        """Run ``request`` in a child and wait (from any thread but the runner's)."""
        project = request.project_id
        with self._lock:
            if self._running[project] >= self.per_project:
                raise errors.TooManyRequests(
                    f"project {project} already has {self.per_project} script runs in progress (dry runs and "
                    "validations); send this one again when one of them has ended")
            if sum(self._running.values()) >= self.total:
                raise errors.TooManyRequests(
                    f"{self.total} script runs are in progress on this server (dry runs and validations); "
                    "send this one again in a few seconds")
            self._running[project] += 1
            loop = self._start()
        try:
            assert self.pool is not None
            # Bounded even so: the pool answers every run by its deadline plus the kill grace.
            bound = request.limits.timeout + pool_mod.KILL_GRACE + pool_mod.START_TIMEOUT
            future = asyncio.run_coroutine_threadsafe(self.pool.run(request), loop)
            try:
                return future.result(bound)
            except TimeoutError:
                future.cancel()
                raise errors.StoreError("the script run did not end in time; send it again") from None
        finally:
            with self._lock:
                self._running[project] -= 1
                if self._running[project] <= 0:
                    del self._running[project]

    def close(self) -> None:
        """Stop the children and the runner's thread."""
        with self._lock:
            loop, self._loop = self._loop, None
        if loop is None or self.pool is None:
            return
        asyncio.run_coroutine_threadsafe(self.pool.aclose(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)
