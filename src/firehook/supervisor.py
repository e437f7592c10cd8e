"""Supervised child processes: started with the command that owns them, restarted when they
die, stopped with it, and gone if it is killed.

``serve`` runs its worker as a child (``firehook.worker_process``), so delivery and intake each get
a GIL and a core. The parent wakes the child through a pipe when it queues runs, so a run
starts at once instead of at the child's next poll. A child notices its parent's death
through ``PR_SET_PDEATHSIG`` (Linux) and a check of its parent's pid, and shuts down.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence

log = logging.getLogger("firehook.supervisor")

WAKE_FD_ENV = "FIREHOOK_INTERNAL_WAKE_FD"
PARENT_ENV = "FIREHOOK_INTERNAL_PARENT_PID"
# Restart backoff: a child that keeps dying at once is restarted less and less often.
BACKOFF = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
STABLE_SECONDS = 30.0  # a child that lived this long starts the backoff afresh


class Child:
    """One supervised child process running ``argv``."""

    def __init__(self, name: str, argv: Sequence[str], env: Mapping[str, str], *, stop_timeout: float) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env)
        self.stop_timeout = stop_timeout
        self.proc: asyncio.subprocess.Process | None = None
        self.starts = 0
        self._wake_w: int | None = None
        # wake() runs in other threads (the intake writer's): the write end is replaced and
        # closed only under this lock, so a wake never writes to a number the kernel has
        # meanwhile given to another file.
        self._wake_lock = threading.Lock()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    async def start(self) -> None:
        """Start the child and keep it running until :meth:`stop`."""
        await self._spawn()
        self._task = asyncio.create_task(self._watch())

    async def _spawn(self) -> None:
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)
        env = dict(self.env)
        env[WAKE_FD_ENV] = str(read_fd)
        env[PARENT_ENV] = str(os.getpid())
        try:
            # A session of its own: a Ctrl-C at the terminal reaches serve, which then stops the
            # child in order, rather than both at once (and serve restarting a child it is about
            # to stop). The child still dies with serve (PR_SET_PDEATHSIG).
            self.proc = await asyncio.create_subprocess_exec(*self.argv, env=env, pass_fds=(read_fd,),
                                                             start_new_session=True)
        finally:
            os.close(read_fd)
        with self._wake_lock:
            old, self._wake_w = self._wake_w, write_fd
            if old is not None:
                os.close(old)
        self.starts += 1
        log.info("event=child.start name=%s pid=%s", self.name, self.proc.pid)

    async def _watch(self) -> None:
        failures = 0
        while True:
            assert self.proc is not None
            started = time.monotonic()
            code = await self.proc.wait()
            if self._stopping:
                return
            # A child that ran for a while is restarted at once; one that keeps dying right
            # after starting, after 0.5, 1, 2, 5… s.
            failures = 0 if time.monotonic() - started >= STABLE_SECONDS else failures + 1
            delay = BACKOFF[min(failures - 1, len(BACKOFF) - 1)] if failures else 0.0
            log.warning("event=child.died name=%s pid=%s code=%s restart_in=%.1fs", self.name, self.proc.pid,
                        code, delay)
            await asyncio.sleep(delay)
            if self._stopping:
                return
            try:
                await self._spawn()
            except Exception as exc:  # the next try comes after the longest backoff
                log.error("event=child.spawn_failed name=%s error=%s", self.name, exc)
                await asyncio.sleep(BACKOFF[-1])

    def wake(self) -> None:
        """Thread-safe and never blocking: a byte down the pipe (a full pipe is a wake already)."""
        with self._wake_lock:
            fd = self._wake_w
            if fd is None:
                return
            try:
                os.write(fd, b"\0")
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EPIPE, errno.EBADF):
                    raise

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL after ``stop_timeout``; returns once the child is gone."""
        self._stopping = True
        proc = self.proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), self.stop_timeout)
            except asyncio.TimeoutError:
                log.warning("event=child.kill name=%s pid=%s: did not stop in %.0fs", self.name, proc.pid,
                            self.stop_timeout)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with self._wake_lock:
            if self._wake_w is not None:
                os.close(self._wake_w)
                self._wake_w = None


def python_argv(module: str, *args: str) -> list[str]:
    """This interpreter running ``module`` (``python -m``)."""
    return [sys.executable, "-m", module, *args]


# --- the child's side ----------------------------------------------------------------------


_early_stop: list[int] = []


def die_with_parent() -> None:
    """In a supervised child: get SIGTERM when the parent dies, and exit now if it already has.

    A SIGTERM that arrives while the child is still starting is kept for :func:`early_stop`
    rather than killing it half-started."""
    parent = os.environ.get(PARENT_ENV)
    if not parent:
        return
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, _frame: _early_stop.append(signum))
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG
    if os.getppid() != int(parent):
        # The parent died between fork and prctl: nobody supervises us any more.
        raise SystemExit(0)


def early_stop() -> bool:
    """A stop signal came before the child's loop took over its signals."""
    return bool(_early_stop)


def watch_parent(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    """Where there is no PDEATHSIG, notice the parent's death by polling its pid."""
    parent = os.environ.get(PARENT_ENV)
    if not parent:
        return

    def check() -> None:
        if os.getppid() != int(parent):
            stop.set()
            return
        loop.call_later(1.0, check)

    loop.call_later(1.0, check)


def listen_for_wakes(loop: asyncio.AbstractEventLoop, wake: Callable[[], None]) -> None:
    """Call ``wake`` (on the loop) whenever the parent writes to the wake pipe."""
    text = os.environ.get(WAKE_FD_ENV)
    if not text:
        return
    fd = int(text)
    os.set_blocking(fd, False)

    def readable() -> None:
        try:
            data = os.read(fd, 4096)
        except BlockingIOError:
            return
        if not data:  # the parent closed its end: it is going away or restarting us
            loop.remove_reader(fd)
            return
        wake()

    loop.add_reader(fd, readable)
