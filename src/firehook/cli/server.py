"""Local process commands: ``serve``, ``worker``, ``db:upgrade``."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import tempfile
from typing import Any

import click

from firehook.cli.options import SERVER_SETTINGS, WORKER_SETTINGS, load_settings, settings_options


@click.command("serve")
@settings_options(SERVER_SETTINGS)
@click.option("--no-worker", is_flag=True, help="Serve the API only; run `firehook worker` processes for the runs.")
def serve(no_worker: bool, **flags: Any) -> None:
    """Start the API, the UI and the worker (SQLite by default).

    The worker runs in a child process of its own, restarted if it dies and stopped with
    the server, so intake and delivery each get a core.

    \b
    Example:
      firehook serve --port 8780 --data-dir ./data
    """
    from firehook import worker_process

    settings = load_settings(flags)
    worker_process.configure_logging(settings.log_level)
    # The port first: a second server on a busy port starts nothing (no worker, no "listening").
    sock = _bind(settings.host, int(settings.port))
    metrics_dir = None if no_worker else _shared_metrics_dir()
    try:
        _serve(settings, no_worker, sock)
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _serve(settings: Any, no_worker: bool, sock: socket.socket) -> None:
    import uvicorn

    from firehook import assembly, supervisor
    from firehook.api import create_app
    from firehook.service import tokens

    built = assembly.services(settings)
    created = tokens.ensure_admin_token(built)
    if created is not None:
        click.echo(f"Created an admin token in {created} (mode 0600); the CLI reads it from there.")
    child = None
    if not no_worker:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FIREHOOK_")}
        env.update(settings.to_environ())
        child = supervisor.Child("worker", supervisor.python_argv("firehook.worker_process"), env,
                                 # the child drains for the grace, then waits for script
                                 # threads until their deadline
                                 stop_timeout=float(settings.shutdown_grace) + float(settings.script_timeout) + 10)
    notifier = None
    if not built.database.is_sqlite:  # `firehook worker` processes elsewhere LISTEN for it
        from firehook.store import wakeups

        notifier = wakeups.Notifier(built.database)
        built.wakeups.append(notifier.poke)
    app = create_app(built, children=[child] if child is not None else [])
    click.echo(f"firehook listening on http://{settings.host}:{settings.port} "
               f"(database: {'SQLite' if built.database.is_sqlite else 'PostgreSQL'})")
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then re-raises the signal with the
    # handlers it found in place: these make that a normal exit (status 0) after the drain.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _exit_cleanly)
    try:
        config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning",
                                timeout_graceful_shutdown=max(1, int(settings.shutdown_grace)))
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
        if notifier is not None:
            notifier.close()
        built.database.dispose()


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything starts; a busy port is a message that
    suggests another one."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror as exc:
        raise click.ClickException(f"Cannot listen on {host}:{port}: {exc.strerror}. Check --host.") from None
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise click.ClickException(
            f"Cannot listen on {host}:{port}: {exc.strerror} (is firehook already running?). "
            f'Start it on another port with --port N, e.g. firehook serve --port {port + 1} '
            f'(make run ARGS="--port {port + 1}"), or stop what uses port {port}.') from None
    sock.set_inheritable(False)
    return sock


def _shared_metrics_dir() -> str:
    """Counters of the worker child and of the API are one set on ``/metrics``: prometheus
    multiprocess mode, in a directory of this server's own (set before prometheus is imported)."""
    path = tempfile.mkdtemp(prefix="firehook-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    return path


def _exit_cleanly(_signum: int, _frame: object) -> None:
    raise SystemExit(0)


@click.command("worker")
@settings_options(WORKER_SETTINGS)
@click.option("--kind", "kinds", multiple=True, type=click.Choice(["script", "webhook"]),
              help="Run only these kinds of runs (default both).")
def worker(kinds: tuple[str, ...], **flags: Any) -> None:
    """Run workers only (no API): for scale-out on PostgreSQL.

    \b
    Example:
      FIREHOOK_DATABASE_URL=postgresql://firehook@db/firehook firehook worker
    """
    from firehook import worker_process

    settings = load_settings(flags)
    worker_process.configure_logging(settings.log_level)
    worker_process.run(settings, kinds or worker_process.KINDS)


@click.command("db:upgrade")
@settings_options(("data_dir", "database_url"))
def db_upgrade(**flags: Any) -> None:
    """Apply the schema migrations (automatic on `serve` with SQLite).

    \b
    Example:
      FIREHOOK_DATABASE_URL=postgresql://postgres@127.0.0.1/firehook firehook db:upgrade
    """
    from firehook.store import db, migrations

    settings = load_settings(flags)
    database = db.Database(settings.resolved_database_url, busy_timeout=settings.sqlite_busy_timeout)
    before = migrations.current(database)
    migrations.upgrade(database)
    after = migrations.current(database)
    database.dispose()
    if before == after:
        click.echo(f"The schema is up to date (revision {after}).")
    else:
        click.echo(f"Upgraded the schema from {before or 'empty'} to {after}.")
