"""A supervised pool of child processes that run activity scripts (SPEC §4.5).

Scripts never run in the process that asks for them (the worker, or the API for dry runs
and ``validate``): each run goes to a child (:mod:`firehook.scripts.child`) that holds a built
engine and starts every run from the prelude's pristine heap image. The parent keeps what a
child must not be trusted with:

- **The deadline.** The engine stops a script at its time limit itself; should the child not
  answer by then plus :data:`KILL_GRACE` (a compile that never yields, a native hang), the
  parent kills it, the run fails with the time-limit message and a new child takes its place.
- **Faults.** A child that dies during a run costs that run (failed, saying the script's
  process stopped) and nothing else; the next run gets a new child.
- **Fair slots.** ``size`` children (one per core by default) are shared by every project,
  but no project holds more than half of them while another project's run waits: a free
  child goes first to the oldest run of a project below that share, and when every child is
  busy, a spare started beforehand is on standby for such a run (at most ``size`` spares,
  each stopped after :data:`SPARE_IDLE_SECONDS` idle). So two runaway scripts of one project never
  keep another project's trivial run waiting for their deadline, nor for a process to start.
- **Storage.** The run's storage stays in the parent (the worker records its writes with the
  run's outcome); the child's storage calls are answered here.

Children start lazily, at the first run: a process that never runs a script never holds an
engine (about 45 MiB each).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import functools
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from firehook.scripts import limits as limits_mod
from firehook.scripts import protocol
from firehook.scripts.child import PARENT_ENV
from firehook.scripts.limits import ScriptLimits
from firehook.scripts.storage import MemoryStorage, QuotaStorage, StorageBackend, StorageRuleError

log = logging.getLogger("firehook.scripts.pool")

KILL_GRACE = 2.0  # seconds past a run's time limit before its child is killed
START_TIMEOUT = 120.0  # seconds a new child may take to build its engine
START_FAILURES = 3  # starts failed in a row before the runs waiting for a child fail
# The largest message a child may send: a log line (cut by the child at the run's log limit)
# or a storage value, with room to spare; a child that sends more is stopped.
_MESSAGE_LIMIT = 8 * 1024 * 1024
SPARE_IDLE_SECONDS = 30.0  # a child beyond the pool's size is stopped after this long idle
_STORAGE_OPS = frozenset({"get", "set", "remove", "clear", "total_bytes"})


@dataclasses.dataclass
class Request:
    """One run to make. ``log`` gets each log line (on the pool's event loop); ``storage`` is
    called from a thread unless it is a :class:`MemoryStorage`."""

    project_id: str
    source: str
    activity_json: str
    project: Mapping[str, Any]
    variables: Mapping[str, Any]
    storage: StorageBackend
    limits: ScriptLimits
    log: Callable[[str], None]
    outbound_allow: Sequence[str] = ()
    dry_fetch: bool = False


@dataclasses.dataclass(frozen=True)
class Result:
    """How a run ended (as :class:`firehook.scripts.ScriptOutcome`), and when its child began
    it: ``began_at`` (epoch seconds) and ``waited`` (seconds in the pool's queue)."""

    success: bool
    error: str | None
    limit: str | None
    duration_ms: float
    began_at: float
    waited: float


class _Job:
    __slots__ = ("request", "future", "queued", "abandoned", "requeued")

    def __init__(self, request: Request, future: asyncio.Future[Result]) -> None:
        self.request = request
        self.future = future
        self.abandoned = False  # its caller went away: its child was stopped on purpose
        self.requeued = False  # sent again once: its first child was dead before it began
        self.queued = time.monotonic()


class _Child:
    """One child process and the run it is making."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.job: _Job | None = None
        self.dead = False  # killed (or found dead): never given another run

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def send_encoded(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        await self.proc.stdin.drain()

    def buffered(self) -> bool:
        """Whether the child wrote more than what was read (nothing is due after a run's end)."""
        stdout = self.proc.stdout
        return stdout is not None and bool(getattr(stdout, "_buffer", b""))

    async def receive(self, limit: int = protocol.MAX_MESSAGE) -> dict[str, Any]:
        assert self.proc.stdout is not None
        try:
            head = await self.proc.stdout.readexactly(protocol.HEADER.size)
            size, json_size = protocol.HEADER.unpack(head)
            if size > limit or json_size > size:
                raise _Violation(f"a message of {size} bytes")
            message, _ = protocol.decode(await self.proc.stdout.readexactly(size), json_size)
            return message
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            raise protocol.Closed(str(exc)) from None

    def kill(self) -> None:
        self.dead = True
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()


class ScriptPool:
    """Script runs in ``size`` child processes (plus spares for fairness). Bound to the event
    loop it is first used on."""

    def __init__(self, size: int, *, kill_grace: float = KILL_GRACE, env: Mapping[str, str] | None = None,
                 idle_timeout: float | None = None) -> None:
        self.size = max(1, int(size))
        self.idle_timeout = idle_timeout  # every child stops once all were idle this long
        self.share = max(1, self.size // 2)  # the most one project holds while others wait
        self.max_children = self.size * 2
        self.kill_grace = kill_grace
        self._env = _child_environment(env if env is not None else os.environ)
        self._env[PARENT_ENV] = str(os.getpid())
        self._idle: list[_Child] = []
        self._busy: set[_Child] = set()
        self._starting = 0
        self._waiting: collections.deque[_Job] = collections.deque()
        self._holding: collections.Counter[str] = collections.Counter()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self._retiring: asyncio.TimerHandle | None = None
        self._sequence = 0  # numbers the runs: every message of a child names its run
        self._start_failures = 0
        self._starting_procs: set[asyncio.subprocess.Process] = set()
        # What happened, for tests, metrics and the benchmark.
        self.started = 0
        self.killed = 0
        self.crashed = 0

    # --- the caller's side ------------------------------------------------------------------

    async def run(self, request: Request) -> Result:
        """Run a script in a child; never raises for the script's faults."""
        if self._closed:
            raise RuntimeError("the script pool is closed")
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        job = _Job(request, future)
        self._waiting.append(job)
        self._dispatch()
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            # The caller went away (shutdown): a queued run is forgotten, a running one ends
            # with its child, which is stopped so that it does not go on alone.
            job.abandoned = True
            if job in self._waiting:
                self._waiting.remove(job)
            for child in list(self._busy):
                if child.job is job:
                    child.kill()
            raise

    def pids(self) -> list[int]:
        """The children alive now (for tests and the benchmark)."""
        return [c.pid for c in (*self._idle, *self._busy)]

    def busy_pids(self) -> list[int]:
        """The children making a run now."""
        return [c.pid for c in self._busy]

    def holding(self) -> dict[str, int]:
        """Busy children per project."""
        return {p: n for p, n in self._holding.items() if n}

    async def aclose(self, timeout: float = 5.0) -> None:
        """Stop every child: idle ones at once, busy ones are killed (their runs fail)."""
        self._closed = True
        if self._retiring is not None:
            self._retiring.cancel()
        for job in self._waiting:
            if not job.future.done():
                job.future.set_exception(RuntimeError("the script pool was stopped"))
        self._waiting.clear()
        children = [*self._idle, *self._busy]
        self._idle.clear()
        for proc in list(self._starting_procs):
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        for child in children:
            if child.job is not None:
                child.job.abandoned = True
                child.kill()
            elif child.proc.stdin is not None:
                child.proc.stdin.close()
        for child in children:
            try:
                await asyncio.wait_for(child.proc.wait(), timeout)
            except TimeoutError:
                child.kill()
                await child.proc.wait()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # --- choosing who goes next ----------------------------------------------------------------

    def _next(self, *, fair_only: bool) -> _Job | None:
        """The oldest waiting run of a project below its share, else (unless ``fair_only``) the
        oldest waiting run."""
        for job in self._waiting:
            if self._holding[job.request.project_id] < self.share:
                return job
        if fair_only or not self._waiting:
            return None
        return self._waiting[0]

    def _dispatch(self) -> None:
        while self._waiting and self._idle:
            # Past the pool's size in busy children, a child (a spare) serves only fairness.
            job = self._next(fair_only=len(self._busy) >= self.size)
            if job is None:
                break
            child = self._idle.pop()
            if child.dead or child.proc.returncode is not None:  # died while idle
                self._track(child.proc.wait())
                continue
            self._waiting.remove(job)
            self._begin(child, job)
        # Children to start: up to the pool's size for whatever waits; and once the pool is in
        # use, one idle child on standby whenever it can, so that a run of a project below its
        # share starts at once rather than after a new process has built its engine (seconds
        # on a busy machine).
        alive = len(self._idle) + len(self._busy) + self._starting
        waiting = len(self._waiting)
        want = min(waiting - self._starting, self.size - alive)
        if want <= 0 and alive < self.max_children and not self._idle and self._starting == 0:
            want = 1
        for _ in range(max(0, want)):
            self._spawn_soon()
        # Spares beyond the pool's size go away once they have been idle a while (not at once:
        # a spare stopped the moment a run ends would be started again by the next).
        if self._retiring is None and self._idle and (
                (len(self._idle) > 1 and len(self._idle) + len(self._busy) > self.size)
                or (self.idle_timeout is not None and not self._busy and not self._waiting)):
            delay = SPARE_IDLE_SECONDS if self.idle_timeout is None else self.idle_timeout
            self._retiring = asyncio.get_running_loop().call_later(delay, self._retire_spares)

    def _retire_spares(self) -> None:
        self._retiring = None
        if self.idle_timeout is not None and not self._busy and not self._waiting and not self._starting:
            while self._idle:  # nobody ran a script for a while: no process kept for nothing
                self._retire(self._idle.pop(0))
            return
        while len(self._idle) > 1 and len(self._idle) + len(self._busy) > self.size:
            self._retire(self._idle.pop(0))  # the longest idle
        self._dispatch()  # re-arms the timer while spares remain

    def _begin(self, child: _Child, job: _Job) -> None:
        child.job = job
        self._busy.add(child)
        self._holding[job.request.project_id] += 1
        self._track(self._drive(child, job))

    def _track(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- children --------------------------------------------------------------------------------

    def _spawn_soon(self) -> None:
        self._starting += 1
        self._track(self._spawn())

    async def _spawn(self) -> None:
        child: _Child | None = None
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "firehook.scripts.child", env=self._env,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, start_new_session=False)
            self._starting_procs.add(proc)
            child = _Child(proc)
            ready = await asyncio.wait_for(child.receive(), START_TIMEOUT)
            if ready.get("t") != "ready":
                raise protocol.Closed(f"expected ready, got {ready.get('t')!r}")
        except BaseException as exc:
            if child is not None:
                child.kill()
                self._starting_procs.discard(child.proc)
                await asyncio.shield(child.proc.wait())
            self._starting -= 1
            if not isinstance(exc, Exception):  # cancelled: the pool is closing
                raise
            log.error("event=script_pool.start_failed error=%s", f"{type(exc).__name__}: {exc}")
            self._start_failures += 1
            if self._start_failures >= START_FAILURES:
                self._fail_waiting(f"no script process could start ({type(exc).__name__}: {exc})")
            await asyncio.sleep(1.0)  # not a tight loop of failing starts
            if not self._closed:
                self._dispatch()
            return
        self._starting_procs.discard(child.proc)
        self._starting -= 1
        self._start_failures = 0
        self.started += 1
        if self._closed:
            child.kill()
            await child.proc.wait()
            return
        self._idle.append(child)
        self._dispatch()

    def _fail_waiting(self, reason: str) -> None:
        """Runs waiting for a child that cannot start fail, rather than wait for ever."""
        while self._waiting:
            job = self._waiting.popleft()
            if not job.future.done():
                job.request.log(f"The run could not start: {reason}.")
                job.future.set_result(Result(False, f"the run could not start: {reason}", None, 0.0,
                                             time.time(), time.monotonic() - job.queued))

    def _retire(self, child: _Child) -> None:
        if child.proc.stdin is not None:
            child.proc.stdin.close()  # it exits at the end of its input
        self._track(child.proc.wait())

    async def _drive(self, child: _Child, job: _Job) -> None:
        request = job.request
        began_wall, began = time.time(), time.monotonic()
        loop = asyncio.get_running_loop()
        late: list[bool] = []
        self._sequence += 1
        number = self._sequence

        def past_deadline() -> None:
            late.append(True)
            child.kill()  # its pipe closes: the receive below ends

        timer = loop.call_later(request.limits.timeout + self.kill_grace, past_deadline)
        result: Result | None = None
        answered = False  # whether the child said anything about this run
        try:
            try:
                message = protocol.encode({
                    "t": "run", "n": number, "source": request.source, "project": request.project,
                    "variables": request.variables, "limits": _limits_dict(request.limits),
                    "outbound_allow": list(request.outbound_allow), "dry_fetch": request.dry_fetch,
                }, request.activity_json.encode("utf-8", "surrogatepass"))
            except (TypeError, ValueError) as exc:  # inputs that are not JSON: the run's fault
                text = f"the run's inputs cannot be sent to a script process: {exc}"
                request.log(text)
                result = self._failed(job, began, began_wall, text, None)
                return
            await child.send_encoded(message)
            logged = 0
            most = request.limits.log_bytes * 2 + 65536  # the child cuts at log_bytes; this is a bound
            while result is None:
                reply = await child.receive(_MESSAGE_LIMIT)
                answered = True
                if reply.get("n") != number:
                    raise _Violation(f"a message of another run ({reply.get('n')!r})")
                kind = reply.get("t")
                if kind == "log":
                    line = reply.get("line")
                    if not isinstance(line, str):
                        raise _Violation("a log line that is not text")
                    logged += len(line)
                    if logged > most:
                        raise _Violation("more log than the run's limit")
                    request.log(line)
                elif kind == "call":
                    await child.send_encoded(protocol.encode(
                        {**await _storage_call(request.storage, request.limits, reply), "n": number}))
                elif kind == "done":
                    result = _done(reply, began_wall, began - job.queued)
                    if child.buffered():
                        raise _Violation("messages after the run's end")
                else:
                    raise _Violation(f"an unknown message {kind!r}")
        except _Violation as exc:
            # A child that breaks the protocol is not trusted again, nor is what it said.
            log.error("event=script_pool.violation pid=%d project=%s what=%s", child.pid, request.project_id, exc)
            child.kill()
            text = "the script's process broke the rules of its parent and was stopped"
            request.log(text)
            result = self._failed(job, began, began_wall, text, None)
        except (protocol.Closed, BrokenPipeError, ConnectionError):
            result = await self._ended(child, job, began, began_wall, late=bool(late), answered=answered)
        except Exception as exc:  # noqa: BLE001 - whatever happens, the run gets an outcome
            log.exception("event=script_pool.failed pid=%d project=%s", child.pid, request.project_id)
            child.kill()
            text = f"the run could not be completed ({type(exc).__name__})"
            request.log(text)
            result = self._failed(job, began, began_wall, text, None)
        finally:
            timer.cancel()
            self._busy.discard(child)
            self._holding[request.project_id] -= 1
            child.job = None
            again = result is None and job in self._waiting  # sent to another child
            if result is None and not again:  # cancelled with the pool
                child.kill()
            if child.dead or child.proc.returncode is not None:
                self._track(child.proc.wait())  # reaped
            else:
                self._idle.append(child)
            if not job.future.done() and not again:
                if result is not None:
                    job.future.set_result(result)
                else:
                    job.future.set_exception(RuntimeError("the script pool was stopped"))
            if not self._closed:
                self._dispatch()

    async def _ended(self, child: _Child, job: _Job, began: float, began_wall: float, *, late: bool,
                     answered: bool) -> Result | None:
        """The outcome of a run whose child's pipe closed; None when it goes back to the queue."""
        request = job.request
        if late:  # killed by the deadline's timer
            self.killed += 1
            log.warning("event=script_pool.killed pid=%d project=%s reason=deadline", child.pid, request.project_id)
            text = f"time limit of {limits_mod.describe_seconds(request.limits.timeout)} s exceeded"
            request.log(text)
            return self._failed(job, began, began_wall, text, limits_mod.TIMEOUT)
        if job.abandoned or self._closed:
            log.info("event=script_pool.abandoned pid=%d project=%s", child.pid, request.project_id)
            return self._failed(job, began, began_wall, "the run was stopped with its worker", None)
        self.crashed += 1
        child.dead = True
        # Not killed first: signalling a dead child polls it, which reaps it behind asyncio's
        # back (its exit status would then be lost).
        try:
            code = await asyncio.wait_for(child.proc.wait(), 2.0)
        except TimeoutError:  # it closed its output but lives on
            child.kill()
            code = await child.proc.wait()
        how = _how(code)
        log.warning("event=script_pool.crashed pid=%d project=%s how=%s", child.pid, request.project_id, how)
        if not answered and not job.requeued:
            # The child was gone before it said a word about this run (it died idle): the run
            # goes to another child, once.
            job.requeued = True
            self._waiting.appendleft(job)
            return None
        text = f"the script's process stopped unexpectedly ({how}); the run was stopped"
        request.log(text)
        return self._failed(job, began, began_wall, text, None)

    @staticmethod
    def _failed(job: _Job, began: float, began_wall: float, text: str, limit: str | None) -> Result:
        return Result(False, text, limit, (time.monotonic() - began) * 1000, began_wall, began - job.queued)


# What a script process inherits of its parent's environment: enough to start Python and
# make TLS connections, nothing of firehook's own settings (the database URL, a token).
_INHERITED = ("PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "PYTHONPATH", "PYTHONHOME",
              "SSL_CERT_FILE", "SSL_CERT_DIR", "VIRTUAL_ENV", "SYSTEMROOT")


def _child_environment(environ: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in environ.items() if k in _INHERITED or k.startswith("LC_")}


class _Violation(Exception):
    """A child broke the protocol."""


def _how(code: int) -> str:
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _done(message: dict[str, Any], began_wall: float, waited: float) -> Result:
    error, limit, duration = message.get("error"), message.get("limit"), message.get("duration_ms")
    if not (isinstance(error, str | None) and isinstance(limit, str | None) and isinstance(duration, int | float)):
        raise _Violation("an outcome of the wrong shape")
    return Result(message.get("success") is True, error, limit, float(duration), began_wall, waited)


_STORAGE_ARGS = {"get": (str,), "set": (str, str), "remove": (str,), "clear": (), "total_bytes": ()}


async def _storage_call(storage: StorageBackend, script_limits: ScriptLimits,
                        message: dict[str, Any]) -> dict[str, Any]:
    """A child's storage call, checked here as the script's own calls are (the rules, the
    quotas): a child is not trusted to have done it."""
    op, args = message.get("op"), message.get("args")
    kinds = _STORAGE_ARGS.get(op) if isinstance(op, str) else None
    if kinds is None or not isinstance(args, list) or len(args) != len(kinds) \
            or not all(isinstance(a, k) for a, k in zip(args, kinds, strict=True)):
        raise _Violation(f"a storage call of the wrong shape ({str(op)[:40]!r})")
    checked = QuotaStorage(storage, script_limits)
    method = getattr(checked, str(op)) if op != "total_bytes" else storage.total_bytes
    try:
        if isinstance(storage, MemoryStorage) or _from_memory(storage, str(op), args):
            value = method(*args)
        else:
            value = await asyncio.to_thread(method, *args)
    except StorageRuleError as exc:
        return {"t": "reply", "error": exc.message}
    except Exception as exc:  # noqa: BLE001 - the script sees a storage error, the run goes on
        log.warning("event=script_pool.storage_failed op=%s error=%s", op, type(exc).__name__)
        return {"t": "reply", "error": "the storage is unavailable (database error)"}
    return {"t": "reply", "value": value}


def _from_memory(storage: StorageBackend, op: str, args: list[Any]) -> bool:
    """Whether the backend answers this call without the database (``kv.RunStorage`` knows):
    then on the event loop, as a thread hop costs more than the call (a run's storage.set
    after an earlier run's writes were handed over reads nothing)."""
    answers = getattr(storage, "answers_from_memory", None)
    key = args[0] if args and isinstance(args[0], str) else None
    return answers is not None and bool(answers(op, key))


@functools.lru_cache(maxsize=16)
def _limits_dict(limits: ScriptLimits) -> dict[str, Any]:
    return dataclasses.asdict(limits)


def default_size(setting: int) -> int:
    """``FIREHOOK_WORKERS``: children per pool (0: one per core)."""
    return int(setting) or os.cpu_count() or 2
