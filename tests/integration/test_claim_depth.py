"""A claim's cost does not grow with the queue's depth — counted (SQLite VM steps, PostgreSQL
rows visited) and read from the plans, never timed.

The queue is written straight into the tables (executemany), in a shape that grows with depth
where it used to hurt: a tenth of the jobs parked for a later attempt with the oldest tags (a
receiver that has been down), a fixed number in flight, and activities of three states each
(one claimable job, two waiting behind it on their ordering key) across twenty projects. The
shapes that still cost a claim extra rows (a long backlog of an ``ordered`` integration whose
head is in flight) are described in ``store/jobs.py``; they do not grow with depth by
themselves and are not part of this queue.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from firehook import queue
from firehook.store import db, migrations, raw
from firehook.store import jobs as store

SHALLOW, DEEP = 1_000, 50_000
LIMIT = 10
IN_FLIGHT = 20
PROJECTS = 20
WOKEN = 3  # parked jobs already due: the claim wakes them, and their old tags go first

Row = tuple[int, str, str, str, float, str | None, float | None, int, bool]  # a jobs row, pk first


def _shape(depth: int, now: float) -> list[Row]:
    rows: list[Row] = []
    parked = depth // 10
    for i in range(depth):
        pk, project = i + 2, f"p{i % PROJECTS}"
        if i < parked:
            due = now - 1 if i < WOKEN else now + 3600
            rows.append((pk, project, "webhook", f"int:activity:parked{i}", due, None, None, i + 1, True))
        elif i < parked + IN_FLIGHT:
            rows.append((pk, project, "webhook", f"int:activity:leased{i}", now - 5, "other", now + 60, i + 1, False))
        else:
            activity = (i - parked - IN_FLIGHT) // 3
            kind = "script" if activity % 4 == 3 else "webhook"  # one kind per integration, so per key
            rows.append((pk, project, kind, f"int{kind}:activity:{activity}", now - 5, None, None, i + 1, False))
    return rows


def _fill(database: db.Database, depth: int, now: float) -> list[Row]:
    rows = _shape(depth, now)
    with database.write() as conn:
        cur = raw.cursor(conn)
        cur.executemany("INSERT INTO projects (id, title, doc, created_at, updated_at) VALUES (?, ?, '{}', '', '')",
                        [(f"p{n}", f"p{n}") for n in range(PROJECTS)])
        # The run activities (pk 1 is their source), their runs, then the jobs.
        cur.executemany(
            "INSERT INTO activities (pk, project_id, id, type, state, environments, created_at, updated_at, doc)"
            " VALUES (?, ?, ?, 'run', 'pending', '[]', '', '', '{}')",
            [(1, "p0", "source")] + [(r[0], r[1], f"run{r[0]}") for r in rows])
        cur.execute("INSERT INTO snapshots (pk, activity_pk, state, body, reached_at) VALUES (1, 1, 'complete', '{}', '')")
        cur.executemany(
            "INSERT INTO runs (pk, integration_id, kind, snapshot_pk, source_pk, attempts, queued_at, finished)"
            " VALUES (?, 'int', ?, 1, 1, ?, ?, false)", [(r[0], r[2], r[0] % 3, now) for r in rows])
        cur.executemany(
            "INSERT INTO jobs (pk, run_pk, project_id, kind, ordering_key, run_at, lease_owner, lease_expires_at,"
            " fair_tag, parked) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [(r[0], *r) for r in rows])
    return rows


def _expected(rows: list[Row], now: float) -> list[int]:
    """What a claim of LIMIT webhooks must return, from the rows alone."""
    first: dict[str, int] = {}
    for pk, _p, _k, key, *_rest in rows:
        first[key] = min(pk, first.get(key, pk))
    ready = [r for r in rows if r[2] == "webhook" and r[4] <= now and r[5] is None and first[r[3]] == r[0]]
    return [r[0] for r in sorted(ready, key=lambda r: (r[7], r[0]))[:LIMIT]]


class _StepCounter:
    """Counts the SQLite virtual machine's instructions run on a connection inside the block."""

    def __init__(self, driver: Any) -> None:
        self.driver, self.steps = driver, 0

    def _step(self) -> int:
        self.steps += 1
        return 0  # go on

    def __enter__(self) -> None:
        self.driver.set_progress_handler(self._step, 1)

    def __exit__(self, *_exc: object) -> None:
        self.driver.set_progress_handler(None, 1)


def test_sqlite_claim_steps_do_not_grow_with_depth(tmp_path: Path) -> None:
    steps: dict[int, int] = {}
    for depth in (SHALLOW, DEEP):
        database = db.Database(f"sqlite:///{tmp_path / f'depth{depth}.db'}")
        try:
            migrations.upgrade(database)
            now = time.time()
            rows = _fill(database, depth, now)
            with database.write() as conn:
                driver = conn.connection.driver_connection
                plan = [row[3] for row in driver.execute(  # type: ignore[union-attr]
                    "EXPLAIN QUERY PLAN " + store.claimable_sql("sqlite"), ("webhook", now, now, LIMIT))]
                counter = _StepCounter(driver)
                with counter:
                    claimed = queue.claim_on(conn, "w", ["webhook"], LIMIT, 30, now)
            steps[depth] = counter.steps
            assert [job.id for job in claimed] == _expected(rows, now)
            assert plan[0].startswith("SEARCH j USING INDEX ix_jobs_claim (kind=?)"), plan
            assert not any("TEMP B-TREE" in line for line in plan), plan
            assert any("USING COVERING INDEX ix_jobs_order" in line for line in plan), plan
        finally:
            database.dispose()
    print(f"SQLite VM steps per claim of {LIMIT}: {steps}")
    assert steps[DEEP] <= 1.2 * steps[SHALLOW], steps


def _nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
    return [node] + [n for child in node.get("Plans", []) for n in _nodes(child)]


def _explain_claim(database: db.Database, now: float) -> dict[str, Any]:
    with database.engine.connect() as conn:
        trans = conn.begin()
        with store.walk_plans(conn):
            [[doc]] = raw.cursor(conn).execute("EXPLAIN (ANALYZE, FORMAT JSON) " + store.claimable_sql("postgresql"),
                                               ("webhook", now, now, LIMIT)).fetchall()
        trans.rollback()  # EXPLAIN ANALYZE took the row locks
    return dict(doc[0]["Plan"])


def test_postgres_claim_visits_the_same_rows_at_any_depth(postgres_url: str) -> None:
    database = db.Database(postgres_url)
    visited: dict[int, int] = {}
    try:
        for depth in (SHALLOW, DEEP):
            with database.write() as conn:
                conn.exec_driver_sql("TRUNCATE jobs, runs, snapshots, activities, project_clocks, projects CASCADE")
            now = time.time()
            rows = _fill(database, depth, now)
            if depth == SHALLOW:
                # Statistics of a short queue, kept for the deep one: the planner then believes
                # few jobs are claimable, and would sort them all if it were allowed to.
                with database.engine.connect() as conn:
                    conn.exec_driver_sql("ANALYZE jobs")
            plan = _explain_claim(database, now)
            nodes = _nodes(plan)
            [scan] = [n for n in nodes if n.get("Alias") == "j"]
            assert plan["Node Type"] == "Limit", plan
            assert scan["Node Type"] == "Index Scan" and scan["Index Name"] == "ix_jobs_claim", scan
            assert not [n for n in nodes if "Sort" in n["Node Type"]], plan
            visited[depth] = int(scan["Actual Rows"]) + int(scan.get("Rows Removed by Filter", 0))
            with database.write() as conn:
                claimed = queue.claim_on(conn, "w", ["webhook"], LIMIT, 30, now)
            assert [job.id for job in claimed] == _expected(rows, now)
    finally:
        database.dispose()
    print(f"PostgreSQL rows visited by a claim of {LIMIT}: {visited}")
    # The jobs in flight and the two waiting states per activity, never the parked ones.
    assert visited[DEEP] == visited[SHALLOW] <= LIMIT * 4 + IN_FLIGHT, visited
