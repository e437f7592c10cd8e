"""Database work of one script run: the CPU of firehook's data path per run, without the engine.

1. ``firehook serve --no-worker`` on SQLite; a project with one script integration (a script of
   one ``storage.set``) matching every activity; ``dbwork_runs`` activities posted through the
   batch endpoint, every line accepted with one run; then ``serve`` is stopped, leaving the
   runs queued in its SQLite file.
2. ``python -m bench.dbwork_child`` (a process of its own, nothing else in it) runs firehook's
   real worker and script executor on that file until every run is finished, with only the
   engine replaced by the host side of ``storage.set('last', activity.id)`` through the storage
   backend the executor builds (``kv.IntegrationStorage``); CPU of the whole process per run
   (see ``bench/dbwork_child.py``).
3. Baseline in the same run, in the same process: the raw-``sqlite3`` floor of the same writes.

Checked: one run per activity, every run ``complete/success`` in the store; the script ran
exactly once for every activity of the store and for nothing else, and each storage write
succeeded; the stored value is the id of one of those activities; the floor finished all its
runs.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
from typing import Any

import aiohttp

from bench import common
from bench.profile import Profiler
from tests import support

SCRIPT = "storage.set('last', activity.id);\n"
LINES = 100


async def _queue(fleet: common.Fleet, runs: int) -> tuple[str, int, list[str]]:
    """The project, the script integration, and ``runs`` queued runs; (integration, posted, problems)."""
    api = common.Api(fleet.base_url, fleet.token)
    await api.setup_project()
    problems: list[str] = []
    posted = 0
    doc = common.activity_doc()
    ndjson = b"\n".join([common.dumps(doc)] * LINES) + b"\n"
    headers = {"Authorization": f"Bearer {fleet.token}", "Content-Type": "application/x-ndjson"}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        created = await api.call(session, "POST", f"/api/projects/{common.PROJECT}/integrations", {
            "type": "script", "script": SCRIPT, "events": ["*"], "states": ["complete"]})
        integration = created["_embedded"]["entity"]["id"]
        for _ in range(math.ceil(runs / LINES)):
            async with session.post(f"{fleet.base_url}/api/projects/{common.PROJECT}/activities:batch",
                                    data=ndjson, headers=headers) as response:
                raw = await response.read()
            if response.status != 200:
                problems.append(f"batch answered {response.status}: {raw[:300]!r}")
                break
            answer = json.loads(raw)
            wrong = [r for r in answer["results"] if "id" not in r or r.get("runs") != 1]
            if answer["accepted"] != LINES or wrong:
                problems.append(f"batch accepted {answer['accepted']} of {LINES}; e.g. {wrong[:1]}")
                break
            posted += LINES
    return integration, posted, problems


def _activity_ids(database_url: str) -> set[str]:
    import sqlalchemy as sa

    from firehook.store import db as dbmod
    from firehook.store.schema import activities

    database = dbmod.Database(database_url, pool_size=1)
    try:
        with database.read() as conn:
            return set(conn.execute(sa.select(activities.c.id).where(
                activities.c.project_id == common.PROJECT, activities.c.integration_id.is_(None))).scalars())
    finally:
        database.dispose()


def _stored_value(database_url: str, integration: str) -> str | None:
    import sqlalchemy as sa

    from firehook.store import db as dbmod
    from firehook.store.schema import script_storage

    database = dbmod.Database(database_url, pool_size=1)
    try:
        with database.read() as conn:
            return conn.execute(sa.select(script_storage.c.value).where(
                script_storage.c.integration_id == integration, script_storage.c.key == "last")).scalar_one_or_none()
    finally:
        database.dispose()


def checks(worker: dict[str, Any], floor: dict[str, Any], counts: dict[str, Any], activity_ids: set[str],
           stored: str | None) -> list[str]:
    """What must hold for the figure to be given (pure: the self-check feeds it wrong data).
    ``activity_ids``: the store's activities, each with one run of the script integration."""
    problems = []
    expected = len(activity_ids)
    if "error" in worker:
        return [f"the worker could not be measured: {worker['error']}"]
    if worker.get("runs_finished", 0) < expected:
        problems.append(f"only {worker.get('runs_finished')} of {expected} runs finished within the time bound")
    if counts.get("runs_by_state") != {"complete/success": expected}:
        problems.append(f"runs by state/result: {counts.get('runs_by_state')}, expected {expected} complete/success")
    called = set(worker.get("called") or [])
    if called != activity_ids or worker.get("calls") != expected or worker.get("duplicate_calls"):
        problems.append(f"the script ran {worker.get('calls')} times for {len(called)} activities "
                        f"({len(activity_ids - called)} of the store's never, {len(called - activity_ids)} unknown, "
                        f"{worker.get('duplicate_calls')} more than once)")
    if worker.get("errors"):
        problems.append(f"the runs reported errors: {worker['errors'][:2]}")
    if stored is None or json.loads(stored) not in activity_ids:
        problems.append(f"the storage holds {stored!r}, not the id of one of the activities")
    if not floor.get("ok"):
        problems.append(f"the raw sqlite3 floor did not finish its runs: {floor}")
    return problems


def _child(fleet: common.Fleet, cfg: common.Config) -> dict[str, Any]:
    out = fleet.base / "dbwork.json"
    log = fleet.base / "dbwork-child.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIREHOOK_")}
    env.update(fleet.env)
    env["FIREHOOK_DATA_DIR"] = str(fleet.base / "serve")
    with open(log, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "bench.dbwork_child", "--runs", str(cfg.dbwork_runs),
                                 "--seconds", str(cfg.dbwork_seconds), "--out", str(out)],
                                cwd=support.REPO, env=env, stdout=err, stderr=subprocess.STDOUT)
        try:
            proc.wait(timeout=cfg.dbwork_seconds * 2 + 120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
            raise common.BenchError("bench.dbwork_child did not end in time") from None
    if proc.returncode != 0 or not out.exists():
        raise common.BenchError(f"bench.dbwork_child exited with {proc.returncode}: "
                                f"{log.read_text(errors='replace')[-2000:]}")
    measured = dict(json.loads(out.read_text()))
    measured["log_tail"] = log.read_text(errors="replace")[-1500:]
    return measured


async def _scenario(cfg: common.Config) -> dict[str, Any]:
    with common.Fleet("sqlite", embedded_worker=False) as fleet:
        integration, posted, problems = await _queue(fleet, cfg.dbwork_runs)
        if problems:
            return {"ok": False, "problems": problems}
        activity_ids = await asyncio.to_thread(_activity_ids, fleet.database_url)
        fleet.stop_servers()  # the runs stay queued in the file; nothing else touches it now
        measured = await asyncio.to_thread(_child, fleet, cfg)
        counts = await asyncio.to_thread(common.store_counts, fleet.database_url)
        stored = await asyncio.to_thread(_stored_value, fleet.database_url, integration)
    worker, floor = measured["worker"], measured["floor"]
    problems = checks(worker, floor, counts, activity_ids, stored)
    if counts["runs"] != len(activity_ids):
        problems.append(f"the store has {counts['runs']} runs for {len(activity_ids)} activities, expected one each")
    worker = {k: v for k, v in worker.items() if k != "called"}
    ok = not problems
    if not ok:
        worker["log_tail"] = measured.get("log_tail")
    return {
        "what": "CPU of firehook's worker process per script run (claim, start, storage.set, finish, recording) "
                "with its real script executor, the engine replaced by the host side of one storage.set",
        "database": "sqlite",
        "runs": posted,
        "worker": worker,
        "floor": floor,
        "ms_per_run": worker.get("ms_per_run") if ok else None,
        "runs_per_second": worker.get("runs_per_second") if ok else None,
        "load_average": common.load_average(),
        "ok": ok,
        "problems": problems,
    }


def run(cfg: common.Config, profiler: Profiler | None = None) -> dict[str, Any]:
    del profiler  # the measured process is the harness's child, not a firehook server
    return dict(common.run(_scenario(cfg)))


if __name__ == "__main__":
    print(json.dumps(run(common.Config.quick_config()), indent=2))
