"""Group commit for single-document intake.

Concurrent ``POST …/activities`` requests hand their document to one writer thread per
process; it writes every document that is waiting in one transaction, each inside its own
savepoint, and answers each request after the commit. Many documents then share one
BEGIN/COMMIT and one turn at SQLite's single writer lock, and a request costs one hand-off
between threads instead of a threadpool round trip per step. A document that fails (a bad
token, an unknown project, a type change) rolls back its savepoint only; the others commit.
"""

from __future__ import annotations

import concurrent.futures
import logging
import queue as queue_mod
import threading
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from firehook import errors
from firehook.service import intake, tokens
from firehook.service.core import Services

log = logging.getLogger("firehook.intake")

MAX_GROUP = 256


@dataclass
class _Item:
    header: str | None  # the Authorization header, or None when the caller was verified otherwise
    project_id: str
    doc: dict[str, Any]
    future: concurrent.futures.Future[intake.Accepted]
    check_token: bool = True


class GroupCommit:
    def __init__(self, services: Services, max_group: int = MAX_GROUP) -> None:
        self.services = services
        self.max_group = max_group
        self._queue: queue_mod.SimpleQueue[_Item | None] = queue_mod.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="firehook-intake-writer", daemon=True)
        self._thread.start()

    def submit(self, header: str | None, project_id: str, doc: dict[str, Any], *,
               check_token: bool = True) -> concurrent.futures.Future[intake.Accepted]:
        """Queue a validated document; the future resolves once it is committed."""
        future: concurrent.futures.Future[intake.Accepted] = concurrent.futures.Future()
        self._queue.put(_Item(header, project_id, doc, future, check_token))
        return future

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(30)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            stop = False
            while len(group) < self.max_group:
                try:
                    item = self._queue.get_nowait()
                except queue_mod.Empty:
                    break
                if item is None:
                    stop = True
                    break
                group.append(item)
            self._write(group)
            if stop:
                return

    def _write(self, group: list[_Item]) -> None:
        outcomes: list[tuple[_Item, intake.Accepted | BaseException]] = []
        try:
            with self.services.database.write() as conn:
                writers: dict[str, intake.Intake] = {}
                for item in group:
                    outcomes.append((item, self._one(conn, writers, item)))
                for writer in writers.values():
                    writer.close()
        except BaseException as exc:  # the commit itself failed: nothing of the group is stored
            log.error("event=intake.group_failed size=%d error=%s", len(group), exc)
            failure = exc if isinstance(exc, errors.FirehookError) else errors.StoreError(
                "the database refused the write; send the activity again")
            for item in group:
                if not item.future.done():
                    item.future.set_exception(failure)
            return
        if any(isinstance(o, intake.Accepted) and o.runs for _, o in outcomes):
            self.services.notify()
        for item, outcome in outcomes:
            if isinstance(outcome, BaseException):
                item.future.set_exception(outcome)
            else:
                item.future.set_result(outcome)

    def _one(self, conn: sa.Connection, writers: dict[str, intake.Intake],
             item: _Item) -> intake.Accepted | BaseException:
        for attempt in (1, 2):
            savepoint = conn.begin_nested()
            try:
                if item.check_token:
                    token = tokens.authenticate_on(conn, item.header)
                    intake.authorize(token, item.project_id)
                writer = writers.get(item.project_id)
                if writer is None:
                    writer = writers[item.project_id] = intake.Intake(self.services, conn, item.project_id)
                accepted = writer.apply(item.doc)
                savepoint.commit()
                return accepted
            except sa.exc.IntegrityError as exc:
                # Another process created the same new id at the same moment: the second try
                # finds it and is an update.
                savepoint.rollback()
                if attempt == 2:
                    return errors.Conflict(
                        f"activity {item.doc.get('id')} conflicts with a concurrent write: {exc.orig}")
            except errors.FirehookError as exc:
                savepoint.rollback()
                return exc
            except Exception as exc:  # a fault of this document's write: it alone fails
                savepoint.rollback()
                log.exception("event=intake.document_failed project=%s", item.project_id)
                return errors.FirehookError(f"the activity could not be stored: {type(exc).__name__}")
        raise AssertionError("unreachable")  # pragma: no cover
