"""A run's log lines are numbered in order, each run's numbering continuing from its last line,
whether the lines come in one call or several, alone or in a pipeline with other writes (on
PostgreSQL the statement reads the last number itself), on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from firehook import model
from firehook.service import intake, integrations, projects
from firehook.store import raw, schema
from firehook.store import runs as run_store

A = schema.activities.c
L = schema.run_logs.c


def _two_runs(services: Any, admin: model.Token) -> list[int]:
    """The pks of two queued runs (two webhooks matching one activity)."""
    projects.create(services, admin, {"id": "demo", "title": "Demo", "region": "eu-3"})
    for port in (9, 10):
        integrations.create(services, admin, "demo", {"type": "webhook", "url": f"http://127.0.0.1:{port}/hook"})
    accepted = intake.ingest(services, admin, "demo", {"id": "a1", "type": "environment.push", "state": "complete"})
    assert len(accepted.runs) == 2
    with services.database.read() as conn:
        return [conn.execute(sa.select(A.pk).where(A.id == run["id"])).scalar_one() for run in accepted.runs]


def _lines(services: Any, pk: int) -> list[tuple[int, str]]:
    with services.database.read() as conn:
        return [tuple(row) for row in conn.execute(  # type: ignore[misc]
            sa.select(L.n, L.message).where(L.run_pk == pk).order_by(L.n)).all()]


def test_lines_continue_each_runs_numbering(services: Any, admin: model.Token) -> None:
    first, second = _two_runs(services, admin)
    with services.database.write() as conn:
        # One call: the same run twice (its lines numbered on), another run beside it.
        run_store.append_logs(conn, [(first, [("2026-12-02T10:00:00.000001+00:00", "one"),
                                              ("2026-12-02T10:00:00.000002+00:00", "two")]),
                                     (second, [("2026-12-02T10:00:00.000003+00:00", "alpha")]),
                                     (first, [("2026-12-02T10:00:00.000004+00:00", "three")]),
                                     (second, [])])
    assert _lines(services, first) == [(1, "one"), (2, "two"), (3, "three")]
    assert _lines(services, second) == [(1, "alpha")]

    # A later call, in a pipeline with another write, continues from the lines stored.
    with services.database.write() as conn, raw.pipelined(conn):
        run_store.append_logs(conn, [(second, [("2026-12-02T10:00:01.000000+00:00", "beta")]),
                                     (first, [("2026-12-02T10:00:01.000001+00:00", "four"),
                                              ("2026-12-02T10:00:01.000002+00:00", "five")])])
        run_store.mark_finished(conn, [first])
    assert _lines(services, first) == [(1, "one"), (2, "two"), (3, "three"), (4, "four"), (5, "five")]
    assert _lines(services, second) == [(1, "alpha"), (2, "beta")]
    with services.database.read() as conn:
        finished = conn.execute(sa.select(schema.runs.c.finished).where(schema.runs.c.pk == first)).scalar_one()
    assert finished


def test_nothing_to_append_writes_nothing(services: Any, admin: model.Token) -> None:
    first, _ = _two_runs(services, admin)
    with services.database.write() as conn:
        run_store.append_logs(conn, [(first, [])])
        run_store.append_logs(conn, [])
    assert _lines(services, first) == []
