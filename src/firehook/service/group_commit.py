"""Group commit for single-document intake.

Concurrent ``POST …/activities`` requests hand their document to one writer thread per
process; it writes every document that is waiting as one group (:func:`intake.write`: one
transaction, a few statements per table, the tokens of the whole group checked again with one
statement) and answers each request after the commit. Many documents then share one
BEGIN/COMMIT and one turn at SQLite's single writer lock, and a request costs one hand-off
between threads instead of a threadpool round trip per step. A document that fails (a bad
token, an unknown project, a type change) fails alone; the others commit.

The thread keeps its database connection between groups (no pool checkout, reset and return
per transaction: about half of an empty transaction's cost); after a failed transaction it
connects again, since the connection may be broken.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import queue as queue_mod
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from firehook import errors
from firehook.service import intake
from firehook.service import tokens as token_service
from firehook.service.core import Services
from firehook.store import writer as store_writer

log = logging.getLogger("firehook.intake")

MAX_GROUP = 256

Waiter = concurrent.futures.Future[intake.Accepted] | asyncio.Future[intake.Accepted]


@dataclass
class _Waiting:
    item: intake.Item
    future: Waiter
    loop: asyncio.AbstractEventLoop | None  # the loop of an asyncio future, resolved from there


class GroupCommit:
    def __init__(self, services: Services, max_group: int = MAX_GROUP) -> None:
        self.services = services
        self.max_group = max_group
        self._queue: queue_mod.SimpleQueue[_Waiting | None] = queue_mod.SimpleQueue()
        self._conn: sa.Connection | None = None  # the writer thread's own, kept between groups
        self._thread = threading.Thread(target=self._run, name="firehook-intake-writer", daemon=True)
        self._thread.start()

    def submit(self, header: str | None, project_id: str, doc: dict[str, Any], *,
               check_token: bool = True) -> concurrent.futures.Future[intake.Accepted]:
        """Queue a validated document; the future resolves once it is committed. The token of
        ``header`` is checked in the transaction that writes it (unless ``check_token`` is
        false: the caller verified the request otherwise)."""
        future: concurrent.futures.Future[intake.Accepted] = concurrent.futures.Future()
        try:
            token_hash = token_service.header_hash(header) if check_token else None
        except errors.FirehookError as exc:
            future.set_exception(exc)
            return future
        self._queue.put(_Waiting(intake.Item(project_id, doc, token_hash), future, None))
        return future

    def submit_async(self, item: intake.Item) -> asyncio.Future[intake.Accepted]:
        """:meth:`submit` for a coroutine: an asyncio future of the running loop. The writer
        resolves all of a group's futures of one loop with one call into that loop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[intake.Accepted] = loop.create_future()
        self._queue.put(_Waiting(item, future, loop))
        return future

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(30)

    def _run(self) -> None:
        try:
            store_writer.serve_groups(self._queue, self.max_group, self._write)
        finally:
            self._drop()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sa.Connection]:
        """A write transaction on the thread's kept connection (connected on first use)."""
        if self._conn is None:
            self._conn = self.services.database.connect()
        try:
            with self.services.database.write_on(self._conn) as conn:
                yield conn
        except BaseException:
            self._drop()  # rolled back; the connection may be broken
            raise

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        self.services.database.close_kept(conn)

    def _write(self, group: list[_Waiting]) -> None:
        try:
            outcomes: list[intake.Outcome] = intake.write(self.services, [w.item for w in group],
                                                          self._transaction)
        except Exception as exc:  # intake.write answers every item; this is a last resort
            log.error("event=intake.group_failed size=%d error=%s", len(group), type(exc).__name__)
            outcomes = [errors.StoreError("the database refused the write; send the activity again")] * len(group)
        if any(isinstance(o, intake.Accepted) and o.runs for o in outcomes):
            self.services.notify()
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Waiter, intake.Outcome]]] = {}
        for waiting, outcome in zip(group, outcomes, strict=True):
            if waiting.loop is None:
                _settle([(waiting.future, outcome)])
            else:
                by_loop.setdefault(waiting.loop, []).append((waiting.future, outcome))
        for loop, settled in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, settled)
            except RuntimeError:  # the loop is closed: nobody waits for these answers any more
                pass


def _settle(settled: list[tuple[Waiter, intake.Outcome]]) -> None:
    for future, outcome in settled:
        if future.done():  # cancelled: the client went away
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
