"""Wake-ups across processes on PostgreSQL: ``NOTIFY`` when runs are queued, ``LISTEN`` in workers.

``serve`` wakes its own worker child through a pipe; a ``firehook worker`` on another machine
has no pipe and would notice new runs only at its next poll. On PostgreSQL, the process that
queued runs sends ``NOTIFY firehook_jobs`` after its commit and every listening worker claims
at once. A notification carries nothing and may be lost (a worker reconnecting): the poll
stays the safety net, the notification only makes it early.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable

import sqlalchemy as sa

from firehook.store import db as dbmod

log = logging.getLogger("firehook.wakeups")

CHANNEL = "firehook_jobs"
RECONNECT_SECONDS = (0.5, 1.0, 2.0, 5.0)


def libpq_url(database: dbmod.Database) -> str:
    """The database's URL as psycopg takes it (without SQLAlchemy's driver suffix)."""
    return sa.engine.make_url(database.url).set(drivername="postgresql").render_as_string(hide_password=False)


class Notifier:
    """Sends ``NOTIFY`` from a thread of its own, at most one at a time: pokes that arrive while
    one is being sent are folded into the next, so a busy intake costs one round trip per
    notification sent, not per commit."""

    def __init__(self, database: dbmod.Database) -> None:
        self.url = libpq_url(database)
        self._wanted = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="firehook-notify", daemon=True)
        self._thread.start()

    def poke(self) -> None:
        """Thread-safe and never blocking: ask for a notification."""
        self._wanted.set()

    def close(self) -> None:
        self._closed = True
        self._wanted.set()
        self._thread.join(5)

    def _run(self) -> None:
        import psycopg

        conn: psycopg.Connection | None = None
        while True:
            self._wanted.wait()
            if self._closed:
                break
            self._wanted.clear()
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self.url, autocommit=True, connect_timeout=5)
                conn.execute(f"NOTIFY {CHANNEL}")
            except psycopg.Error as exc:  # the poll will do; try again at the next poke
                log.warning("event=notify.failed error=%s", type(exc).__name__)
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()


async def listen(database: dbmod.Database, wake: Callable[[], None], stop: asyncio.Event) -> None:
    """Call ``wake`` on every notification until ``stop``; reconnects when the connection drops."""
    import psycopg

    url = libpq_url(database)
    failures = 0
    while not stop.is_set():
        try:
            async with await psycopg.AsyncConnection.connect(url, autocommit=True, connect_timeout=5) as conn:
                await conn.execute(f"LISTEN {CHANNEL}")
                failures = 0
                wake()  # runs queued while it was not listening
                async for _ in conn.notifies():
                    wake()
        except (psycopg.Error, OSError) as exc:
            delay = RECONNECT_SECONDS[min(failures, len(RECONNECT_SECONDS) - 1)]
            failures += 1
            log.warning("event=listen.failed error=%s retry_in=%.1fs", type(exc).__name__, delay)
            try:
                await asyncio.wait_for(stop.wait(), delay)
            except asyncio.TimeoutError:
                pass
