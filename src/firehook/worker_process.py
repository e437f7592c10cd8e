"""A worker process: ``firehook worker`` on any machine, or ``serve``'s supervised child.

The child is started as ``python -m firehook.worker_process`` rather than through the
command line, so it imports what a worker needs and nothing of the CLI, the API or the UI
(about 30 MiB less resident), and takes every setting from the ``FIREHOOK_*`` variables its
parent resolved. Its parent migrated and checked the schema already.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Sequence

from firehook import collector, supervisor
from firehook import settings as settings_mod

KINDS = ("script", "webhook")


def configure_logging(level: str = "info") -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")


def run(settings: settings_mod.Settings, kinds: Sequence[str] = KINDS, *, check_schema: bool = True) -> None:
    """Work until SIGTERM/SIGINT (or, for a supervised child, until the parent is gone)."""
    from firehook import assembly

    built = assembly.services(settings, migrate=False if not check_schema else None, check_schema=check_schema)
    the_worker = assembly.worker(built, kinds=tuple(kinds))
    collector.settle()  # what the worker keeps is built: out of the collector's walks

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        if supervisor.early_stop():
            stop.set()
        supervisor.listen_for_wakes(loop, the_worker.wake)
        supervisor.watch_parent(loop, stop)
        await the_worker.run(stop)

    try:
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            runner.run(main())
    finally:
        built.database.dispose()


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop where it is installed (uvicorn's standard extra brings it, and the API
    runs on it already): per delivery, the worker spends most of its CPU in the event loop
    and aiohttp's transports, which uvloop runs in C."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def main() -> None:
    """The supervised child's entry point."""
    supervisor.die_with_parent()
    settings = settings_mod.load()
    configure_logging(settings.log_level)
    run(settings, check_schema=False)


if __name__ == "__main__":
    main()
