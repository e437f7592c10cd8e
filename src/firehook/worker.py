"""The worker loop: claim jobs, dispatch each to the executor of its kind, record the outcome.

One worker per process (``serve``'s supervised child, ``firehook worker``, or in-process
for tests). It holds up
to each executor's concurrency of jobs at once, renews their leases while they run, streams
their log lines to the database as they come, and on shutdown lets in-flight runs finish
for a grace period and releases the rest so another worker takes them at once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import os
import socket
import threading
import time
from collections.abc import Sequence
from typing import Any, Protocol

from firehook import handover, metrics, model, queue, recording, timefmt, turns
from firehook import settings as settings_mod
from firehook.store import db as dbmod
from firehook.store import kv, wakeups
from firehook.store import writer as store_writer

log = logging.getLogger("firehook.worker")

RECORD_GROUP = 500


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What an executor reports: a final result, or an attempt to make again at ``retry_at``."""

    result: str = model.Result.FAILURE.value
    retry_at: float | None = None
    attempt: model.Attempt | None = None
    storage: Sequence[tuple[str, ...]] = ()  # a script's storage writes, recorded with the outcome
    storage_total: int | None = None  # the bytes its integration stores after them, when known
    storage_used: bool = False  # whether a script called its storage at all (read or write)
    began_at: float | None = None  # when the execution itself began (epoch seconds), if later than the claim


class RunContext:
    """One run as an executor sees it. ``log`` may be called from any thread."""

    def __init__(self, job: model.Job, loaded: recording.Loaded) -> None:
        assert loaded.integration is not None
        self.job = job
        self.run_id = job.run_id
        self.integration: model.Integration = loaded.integration
        self.project = loaded.project
        self.variables_list = loaded.variables
        self.body = loaded.body
        self.attempt = loaded.attempt
        # A script run's reads see its integration's earlier writes not committed yet.
        self.storage_base: kv.Base | None = None
        self._lines: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def log(self, message: str) -> None:
        with self._lock:
            self._lines.append((timefmt.now_ts(), message))

    def take_logs(self) -> list[tuple[str, str]]:
        with self._lock:
            lines, self._lines = self._lines, []
        return lines


class Executor(Protocol):
    kind: str
    concurrency: int

    async def execute(self, ctx: RunContext) -> Outcome: ...

    async def aclose(self) -> None: ...


def default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"


class Worker:
    def __init__(self, database: dbmod.Database, settings: settings_mod.Settings,
                 executors: Sequence[Executor], owner: str | None = None,
                 writer: store_writer.Writer | None = None) -> None:
        self.database = database
        # Claims, outcomes (scripts' storage writes with them) and log lines share it.
        self.writer = writer or store_writer.Writer(database)
        self.settings = settings
        self.executors = {e.kind: e for e in executors}
        self.owner = owner or default_owner()
        self.public_url = settings.resolved_public_url
        self.inflight: dict[int, tuple[asyncio.Task[None], RunContext | None]] = {}
        # Slots held per kind: by the runs claimed and not executed yet or executing. A run
        # frees its slot once its outcome is handed to the recorder (its write may still be
        # waiting): the claim round that replaces it can then share the outcome's transaction.
        self._per_kind: dict[str, int] = {k: 0 for k in self.executors}
        self._holding: set[int] = set()  # jobs that hold a slot
        self._wake = asyncio.Event()
        self._log_lock = asyncio.Lock()
        self._outcomes: asyncio.Queue[tuple[recording.Finished, asyncio.Future[bool]]] = asyncio.Queue()
        self.completed = 0
        # The next claim round takes whatever slots are free: after new runs were queued, or a
        # poll came round. Freed slots alone wait until a batch of them is free (see _done), and
        # not at all for a kind whose last claim found the queue empty.
        self._eager = True
        self._drained: dict[str, bool] = {k: False for k in self.executors}
        self.claim_rounds = 0  # claim transactions made (for tests and benchmarks)
        self.turns = turns.Turns(self.owner)
        self._turn_of: dict[int, str] = {}  # job id → its script integration
        self._gated = 0  # script runs held here that wait for their integration's turn
        self.handover = handover.Handover()  # script runs' storage writes not committed yet
        self._tally = metrics.Tally()  # metrics of runs, added once per group of outcomes

    def wake(self) -> None:
        """Thread-safe: ask the loop to claim now (new jobs were queued in this process)."""
        try:
            loop = self._loop
        except AttributeError:
            return
        loop.call_soon_threadsafe(self._notified)

    def _notified(self) -> None:
        self._eager = True
        self._wake.set()

    def batch(self, executor: Executor) -> int:
        """Free slots worth a claim round of their own: a round costs a transaction and a few
        reads whatever its size, so runs that finish one by one are not replaced one by one."""
        return max(1, executor.concurrency // 4)

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set, then shut down cleanly."""
        self._loop = asyncio.get_running_loop()
        helpers = [asyncio.create_task(self._renew_loop()), asyncio.create_task(self._flush_loop()),
                   asyncio.create_task(self._record_loop())]
        if not self.database.is_sqlite:  # API processes anywhere NOTIFY when they queue runs
            helpers.append(asyncio.create_task(wakeups.listen(self.database, self._notified, stop)))
        stopper = asyncio.create_task(stop.wait())
        stopper.add_done_callback(lambda _task: self._wake.set())
        log.info("event=worker.start owner=%s kinds=%s", self.owner, ",".join(sorted(self.executors)))
        loop = asyncio.get_running_loop()
        # An eager round at least once per poll interval, however often finished runs wake the
        # loop: a kind whose last claim found nothing is otherwise not claimed again while
        # another kind keeps finishing runs (runs queued by other processes, retries now due).
        next_poll = loop.time() + self.settings.poll_interval
        try:
            while not stop.is_set():
                # Cleared before the claim, not after: a wake that arrives while the claim runs
                # (runs committed just after its query) is then not lost until the next poll.
                self._wake.clear()
                if loop.time() >= next_poll:
                    self._eager = True
                eager, self._eager = self._eager, False
                if eager:
                    next_poll = loop.time() + self.settings.poll_interval
                try:
                    await self._claim_round(eager)
                except Exception as exc:  # the database may be restarting: wait and go on
                    log.warning("event=worker.claim_failed error=%s", exc)
                    self._eager = True
                    await asyncio.wait([stopper], timeout=min(5.0, self.settings.poll_interval * 4))
                    continue
                # Woken by a wake-up, a freed batch of slots, the stop, or the next poll.
                timer = loop.call_at(next_poll, self._wake.set)
                await self._wake.wait()
                timer.cancel()
        finally:
            await self._shutdown()
            stopper.cancel()
            for task in helpers:
                task.cancel()
            await self._flush_logs()
            try:
                await self.writer.run(self.turns.give_back_all)
            except Exception as exc:  # the database is gone: the turns expire instead
                log.warning("event=worker.turns_release_failed error=%s", exc)
            for executor in self.executors.values():
                await executor.aclose()
            await asyncio.to_thread(self.writer.close)
            log.info("event=worker.stop owner=%s completed=%d", self.owner, self.completed)

    async def _claim_round(self, eager: bool = True) -> int:
        """Claim as many runs as there are free slots, per kind: one transaction claims them,
        starts them (in progress, attempt counted) and loads their inputs. Unless ``eager``, a
        kind with runs in flight waits for a batch of free slots."""
        total = 0
        for kind, executor in self.executors.items():
            free = self._free(kind)
            if free <= 0:
                continue
            if not eager and not self._worth_a_round(kind):
                continue
            self.claim_rounds += 1
            claimed = await self.writer.run(functools.partial(
                recording.claim_round_on, owner=self.owner, kinds=[kind], limit=free,
                lease_seconds=self.settings.lease_seconds, public_url=self.public_url, turns=self.turns))
            for job, item in claimed:
                turn = self.turns.integration_of(job.id) if job.kind == "script" else None
                if turn:
                    self._turn_of[job.id] = turn
                self._per_kind[kind] += 1
                self._holding.add(job.id)
                task = asyncio.create_task(self._execute(job, executor, item))
                self.inflight[job.id] = (task, None)
                task.add_done_callback(functools.partial(self._done, job))
            total += len(claimed)
            # Runs parked because another worker has their integration's turn were found, so
            # the queue is not empty for all that.
            self._drained[kind] = len(claimed) + (self.turns.parked if kind == "script" else 0) < free
        return total

    def _done(self, job: model.Job, _task: object = None) -> None:
        self.inflight.pop(job.id, None)
        turn = self._turn_of.pop(job.id, None)
        if turn:
            self.turns.forget(turn, job.id)
        self._free_slot(job)

    def _free_slot(self, job: model.Job) -> None:
        """The run no longer executes (its outcome was handed over, or it ended otherwise)."""
        if job.id not in self._holding:
            return
        self._holding.discard(job.id)
        self._per_kind[job.kind] -= 1
        if self._worth_a_round(job.kind):
            self._wake.set()

    def _free(self, kind: str) -> int:
        """Slots of ``kind`` free for a claim. Script runs waiting for their integration's turn
        do not hold one (so other integrations' runs go on), up to four times the slots."""
        executor = self.executors[kind]
        held = self._per_kind[kind]
        if kind != "script":
            return executor.concurrency - held
        return min(executor.concurrency - (held - self._gated), executor.concurrency * 4 - held)

    def _worth_a_round(self, kind: str) -> bool:
        """Freed slots of ``kind`` make a claim round: a batch of them, or all of them, and only
        while its queue was not found empty."""
        executor = self.executors[kind]
        free = self._free(kind)
        return not self._drained[kind] and (free >= self.batch(executor) or self._per_kind[kind] == 0)

    async def _execute(self, job: model.Job, executor: Executor, loaded: recording.Loaded) -> None:
        turn = self._turn_of.get(job.id)
        if not turn:
            await self._recorded(await self._execute_now(job, executor, loaded, None))
            return
        # Runs of one script integration never overlap: each waits for the earlier ones held
        # here, and keeps its turn until its outcome (and storage writes) are handed to the
        # recorder; the next one reads those writes from the handover until they are committed.
        gated = self.turns.busy(turn)
        if gated:  # it waits for its turn: a slot for another integration's run meanwhile
            self._gated += 1
        try:
            await self.turns.take(turn)
        finally:
            if gated:
                self._gated -= 1
        try:
            if self.turns.lost(turn) and not await self._retake(turn):
                # Another worker has the integration's turn now: the run goes back to the
                # queue (claimed again later) rather than overlap with its runs.
                log.warning("event=run.turn_lost run=%s integration=%s", job.run_id, turn)
                await self.writer.run(functools.partial(self._give_back, job=job, turn=turn))
                return
            handed = await self._execute_now(job, executor, loaded, turn)
            if handed is not None and handed.item.storage and handed.item.entry is None:
                # Its writes could not be handed over (their size is not known without a
                # read): the turn is kept until they are committed.
                await self._recorded(handed)
                handed = None
        finally:
            self.turns.end(turn)
        await self._recorded(handed)

    async def _retake(self, turn: str) -> bool:
        now = time.time()
        return bool(await self.writer.run(functools.partial(
            self.turns.retake, integration=turn, now=now, until=now + self.settings.lease_seconds)))

    def _give_back(self, conn: Any, job: model.Job, turn: str) -> None:
        queue.retry_at(conn, job.id, self.owner, time.time() + turns.RETRY_SECONDS)
        self.turns.finished(conn, [(turn, job.id)])

    async def _execute_now(self, job: model.Job, executor: Executor, loaded: recording.Loaded,
                           turn: str | None) -> _Handed | None:
        """Execute the run and hand its outcome to the recorder (not waiting for the write)."""
        try:
            if loaded.integration is None:
                reason = "the integration was deleted before this run could execute"
                return self._hand(recording.Finished(
                    job=job, logs=[(timefmt.now_ts(), f"Run not executed: {reason}.")], turn=turn), loaded)
            if loaded.attempt == 1:
                self._tally.observe(_wait_metric(job.kind), max(0.0, time.time() - loaded.queued_at))
            ctx = RunContext(job, loaded)
            requires: tuple[handover.Entry, ...] = ()
            if turn is not None:
                ctx.storage_base, requires = self.handover.base(turn)
            self.inflight[job.id] = (self.inflight[job.id][0], ctx)
            try:
                outcome = await executor.execute(ctx)
            except Exception as exc:  # an executor bug must not kill the loop; the run says so
                log.exception("event=run.executor_error run=%s", job.run_id)
                ctx.log(f"Internal error while executing the run: {type(exc).__name__}: {exc}")
                outcome = Outcome(result="failure")
            if self._log_lock.locked():  # a flush is writing earlier lines: these go after them
                async with self._log_lock:
                    lines = ctx.take_logs()
            else:
                lines = ctx.take_logs()
            health = None
            if outcome.attempt is not None:
                status = outcome.attempt.status
                health = recording.Health(ok=status is not None and 200 <= status < 300,
                                          disable_after=float(self.settings.webhook_disable_after),
                                          integration_id=ctx.integration.id,
                                          was_failing=ctx.integration.failing_since is not None)
            if not outcome.storage_used:
                # It read nothing of the earlier runs' writes: it is recorded whatever becomes of
                # them (and never executed again because one of them was not recorded).
                requires = ()
            entry = None
            if turn is not None and outcome.storage and outcome.storage_total is not None:
                entry = self.handover.add(turn, job.id, outcome.storage, outcome.storage_total)
            try:
                return self._hand(recording.Finished(
                    job=job, result=outcome.result, retry_at=outcome.retry_at, storage=outcome.storage, turn=turn,
                    began_at=outcome.began_at, logs=lines, attempt=outcome.attempt, health=health, started=loaded,
                    requires=requires, entry=entry), loaded)
            except BaseException:
                if entry is not None:  # never handed: later runs must not wait on it for ever
                    self.handover.settle(entry, recorded=False)
                raise
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("event=run.record_failed run=%s", job.run_id)
            return None

    def _hand(self, item: recording.Finished, loaded: recording.Loaded) -> _Handed:
        """Queue an outcome for the recorder."""
        item.queued_at = loaded.queued_at
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._outcomes.put_nowait((item, done))
        self._free_slot(item.job)
        return _Handed(item, loaded, done)

    async def _recorded(self, handed: _Handed | None) -> None:
        """Wait until the recorder wrote (or refused) a handed outcome."""
        if handed is None:
            return
        item, loaded = handed.item, handed.loaded
        try:
            ok = await handed.done
        except asyncio.CancelledError:
            raise
        except Exception:
            # Recording failed (database down?): the lease will expire and the run be retried.
            log.exception("event=run.record_failed run=%s", item.job.run_id)
            return
        if ok:
            self.completed += 1
            if log.isEnabledFor(logging.DEBUG):  # a line per run at INFO costs more than the run's bookkeeping
                log.debug("event=run.%s run=%s integration=%s result=%s", "retry" if item.retry_at else "complete",
                          item.job.run_id, loaded.integration.id if loaded.integration else "-", item.result)
        elif any(e.state == handover.REFUSED for e in item.requires):
            log.warning("event=run.requeued run=%s: an earlier run of its integration was not recorded",
                        item.job.run_id)
        else:
            log.warning("event=run.lease_lost run=%s: another worker took it over", item.job.run_id)

    async def _record_loop(self) -> None:
        """Write outcomes a group per transaction: all that are waiting when the last write ends."""
        while True:
            first = await self._outcomes.get()
            group = [first]
            while not self._outcomes.empty() and len(group) < RECORD_GROUP:
                group.append(self._outcomes.get_nowait())
            await self._record_group(group)

    async def _record_group(self, group: list[tuple[recording.Finished, asyncio.Future[bool]]]) -> None:
        """Write one group; the next is written only after this one's handover entries are
        settled (a run recorded later checks the entries it depends on)."""
        try:
            recorded = await self.writer.run(functools.partial(
                recording.finish_many_on, items=[i for i, _ in group], owner=self.owner,
                public_url=self.public_url, turns=self.turns))
        except Exception as exc:
            if len(group) > 1:
                # One outcome may spoil the group (a value the database refuses): each alone, in
                # order, so only that one waits for its lease to expire (and the runs that read
                # its storage writes go back to the queue), not every run recorded with it.
                log.warning("event=run.record_group_failed size=%d error=%s", len(group), type(exc).__name__)
                for one in group:
                    await self._record_group([one])
                return
            for item, done in group:
                if item.entry is not None:
                    self.handover.settle(item.entry, recorded=False)
                if not done.done():
                    done.set_exception(exc)
            return
        now = time.time()
        for item, done in group:
            ok = item.job.id in recorded
            if item.entry is not None:
                self.handover.settle(item.entry, recorded=ok)
            if ok:
                _observe(self._tally, item, now)
            if not done.done():
                done.set_result(ok)
        self._tally.flush()

    async def _renew_loop(self) -> None:
        interval = max(0.5, self.settings.lease_seconds / 3)
        while True:
            await asyncio.sleep(interval)
            pks = list(self.inflight)
            if not pks:
                continue
            try:
                held = await asyncio.to_thread(queue.renew, self.database, self.owner, pks,
                                               self.settings.lease_seconds)
            except Exception as exc:
                log.warning("event=worker.renew_failed error=%s", exc)
                continue
            for pk in set(pks) - held:
                if pk in self.inflight:
                    log.warning("event=run.lease_lost job=%s", pk)
            if self._turn_of:
                try:
                    await self.writer.run(functools.partial(
                        self.turns.renew, until=time.time() + self.settings.lease_seconds))
                except Exception as exc:
                    log.warning("event=worker.turn_renew_failed error=%s", exc)

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            self._tally.flush()
            try:
                await self._flush_logs()
            except Exception as exc:
                log.warning("event=worker.log_flush_failed error=%s", exc)

    async def _flush_logs(self) -> None:
        async with self._log_lock:
            batches: list[tuple[int, Any]] = []
            for _task, ctx in list(self.inflight.values()):
                if ctx is not None:
                    lines = ctx.take_logs()
                    if lines:
                        batches.append((ctx.job.run_pk, lines))
            if batches:
                await self.writer.run(functools.partial(recording.append_logs_on, batches=batches))

    async def _shutdown(self) -> None:
        tasks = [t for t, _ in self.inflight.values()]
        if tasks:
            log.info("event=worker.draining runs=%d grace=%ss", len(tasks), self.settings.shutdown_grace)
            _done, pending = await asyncio.wait(tasks, timeout=self.settings.shutdown_grace)
            leftover = [pk for pk, (t, _) in list(self.inflight.items()) if t in pending]
            for task in pending:
                task.cancel()
            if leftover:
                try:
                    released = await asyncio.to_thread(queue.release, self.database, self.owner, leftover)
                except Exception as exc:  # the database is gone: the leases will expire instead
                    log.warning("event=worker.release_failed jobs=%d error=%s", len(leftover), exc)
                else:
                    log.info("event=worker.released jobs=%d", released)


@dataclasses.dataclass
class _Handed:
    """An outcome queued for the recorder, and what says when it is written."""

    item: recording.Finished
    loaded: recording.Loaded
    done: asyncio.Future[bool]


@functools.lru_cache(maxsize=64)
def _wait_metric(kind: str) -> Any:
    return metrics.WAIT.labels("integration." + kind)


@functools.lru_cache(maxsize=64)
def _latency_metric(kind: str) -> Any:
    return metrics.LATENCY.labels("integration." + kind)


@functools.lru_cache(maxsize=64)
def _runs_metric(kind: str, result: str) -> Any:
    return metrics.RUNS.labels("integration." + kind, result)


@functools.lru_cache(maxsize=8)
def _attempts_metric(outcome: str) -> Any:
    return metrics.ATTEMPTS.labels(outcome)


def _observe(tally: metrics.Tally, item: recording.Finished, now: float) -> None:
    # Labelled children are looked up once (a `labels()` call costs more than the increment).
    if item.attempt is not None:
        ok = item.attempt.status is not None and 200 <= item.attempt.status < 300
        tally.inc(_attempts_metric("success" if ok else ("retry" if item.retry_at else "failure")))
    if item.retry_at is None:
        tally.inc(_runs_metric(item.job.kind, item.result))
        if item.queued_at is not None:
            tally.observe(_latency_metric(item.job.kind), max(0.0, now - item.queued_at))
