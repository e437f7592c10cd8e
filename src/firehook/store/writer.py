"""One writer per database and process: every write that is waiting shares one transaction.

A transaction costs far more than the statements of a small write (BEGIN, COMMIT, a turn at
SQLite's single writer lock, a pool checkout), so the worker's writes — claim rounds, groups
of outcomes, log lines, script storage — are handed to one thread that runs all the writes
waiting at that moment in one transaction, then answers each caller. This is the intake's
group commit generalised.

A write is a function of a connection. When one of a group raises, the transaction is rolled
back, that write fails alone, and the others are run again in a new transaction — so a write
must do nothing outside the database that cannot be done twice (the run-lifecycle writes only
set in-memory documents to the same values again). A failure to begin or commit fails the
whole group: the database itself is failing.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue as queue_mod
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import sqlalchemy as sa

from firehook import errors
from firehook.store import db as dbmod

log = logging.getLogger("firehook.writer")

T = TypeVar("T")
MAX_GROUP = 1000


@dataclass
class _Item(Generic[T]):
    """A write and who waits for it: a thread (``future``) or a task of an event loop
    (``waiter``, resolved on ``loop``: all of a group's at once, one wake-up of that loop)."""

    fn: Callable[[sa.Connection], T]
    future: concurrent.futures.Future[T] | None = None
    waiter: asyncio.Future[T] | None = None
    loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> bool:
        """False when the caller gave up before the write began (it is then not made)."""
        if self.future is not None:
            return self.future.set_running_or_notify_cancel()
        assert self.waiter is not None
        return not self.waiter.cancelled()  # read from this thread: at worst the write is made anyway


class _Failed(Exception):
    """One write of the group raised: roll back, and go on without it."""

    def __init__(self, index: int, error: BaseException) -> None:
        super().__init__(str(error))
        self.index = index
        self.error = error


Q = TypeVar("Q")


def serve_groups(waiting: queue_mod.SimpleQueue[Q | None], max_group: int, write: Callable[[list[Q]], None]) -> None:
    """Hand ``write`` everything waiting at once (up to ``max_group``), again and again, until a
    ``None`` arrives: a writer thread's loop (this module's, and the intake's group commit)."""
    while True:
        first = waiting.get()
        if first is None:
            return
        group = [first]
        stop = False
        while len(group) < max_group:
            try:
                item = waiting.get_nowait()
            except queue_mod.Empty:
                break
            if item is None:
                stop = True
                break
            group.append(item)
        write(group)
        if stop:
            return


class Writer:
    """The batching writer of one database in this process."""

    def __init__(self, database: dbmod.Database, *, max_group: int = MAX_GROUP) -> None:
        self.database = database
        self.max_group = max_group
        self._queue: queue_mod.SimpleQueue[_Item[Any] | None] = queue_mod.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False
        self.transactions = 0  # how many transactions it committed (for tests and benchmarks)
        # The writer thread's own connection, kept between transactions (writer thread only).
        self._conn: sa.Connection | None = None

    def _put(self, item: _Item[Any]) -> None:
        with self._lock:
            if self._closed:
                raise errors.StoreError("the database writer is closed")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="firehook-writer", daemon=True)
                self._thread.start()
            self._queue.put(item)

    def submit(self, fn: Callable[[sa.Connection], T]) -> concurrent.futures.Future[T]:
        """Queue a write; the future resolves once it is committed (or failed)."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._put(_Item(fn, future=future))
        return future

    def call(self, fn: Callable[[sa.Connection], T]) -> T:
        """Write and wait (from any thread but the writer's own)."""
        return self.submit(fn).result()

    async def run(self, fn: Callable[[sa.Connection], T]) -> T:
        """Write and wait, from the event loop."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[T] = loop.create_future()
        self._put(_Item(fn, waiter=waiter, loop=loop))
        return await waiter

    def close(self, timeout: float = 30) -> None:
        """Finish what is queued, then stop the thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout)

    def _run(self) -> None:
        try:
            serve_groups(self._queue, self.max_group, self._write)
        finally:
            self._drop()

    def _write(self, group: list[_Item[Any]]) -> None:
        pending = [item for item in group if item.start()]
        answers: list[tuple[_Item[Any], Any, BaseException | None]] = []
        try:
            while pending:
                try:
                    results = self._transaction(pending)
                except _Failed as failed:
                    answers.append((pending[failed.index], None, failed.error))
                    del pending[failed.index]
                    continue
                except BaseException as exc:  # the database failed (or the commit did): all of them
                    if not isinstance(exc, errors.FirehookError):
                        log.error("event=writer.failed size=%d error=%s", len(pending), type(exc).__name__)
                    answers += [(item, None, exc) for item in pending]
                    return
                answers += [(item, result, None) for item, result in zip(pending, results, strict=True)]
                return
        finally:
            _answer(answers)

    def _transaction(self, items: list[_Item[Any]]) -> list[Any]:
        results: list[Any] = []
        if self._conn is None:
            self._conn = self.database.connect()
        try:
            with self.database.write_on(self._conn) as conn:
                for index, item in enumerate(items):
                    try:
                        results.append(item.fn(conn))
                    except Exception as exc:
                        # Even a database error may be this write's alone (a value the column
                        # refuses); if the database itself is gone, the others fail at BEGIN.
                        # Translated here, as the transaction's edge would have, and unchained.
                        raise _Failed(index, dbmod.translate(exc)) from None
        except _Failed:
            raise
        except BaseException:
            self._drop()  # begin or commit failed: the connection may be broken
            raise
        self.transactions += 1
        return results

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        self.database.close_kept(conn)


def _answer(answers: list[tuple[_Item[Any], Any, BaseException | None]]) -> None:
    """Resolve the callers' futures: threads' at once, each event loop's in one call on it."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any, BaseException | None]]] = {}
    for item, result, error in answers:
        if item.future is not None:
            if error is not None:
                item.future.set_exception(error)
            else:
                item.future.set_result(result)
        elif item.loop is not None and item.waiter is not None:
            by_loop.setdefault(item.loop, []).append((item.waiter, result, error))
    for loop, waiters in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle, waiters)
        except RuntimeError:  # the loop is closed: nobody waits any more
            pass


def _settle(waiters: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for waiter, result, error in waiters:
        if waiter.done():  # the caller was cancelled meanwhile
            continue
        if error is not None:
            waiter.set_exception(error)
        else:
            waiter.set_result(result)
