"""Crash safety (SPEC §2.3 "a crash after that loses nothing", §4.5, DESIGN's outbox and leases):
a bounded run of ``bench.soak`` — activities stream in while firehook processes are SIGKILLed at
random points and restarted — then every accepted activity, every matching run and every
webhook delivery must be there. ``make soak`` runs the long version."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import soak

ACTIVITIES = 150
KILLS = 3


def check(summary: dict[str, object]) -> None:
    print(json.dumps(summary, indent=2))  # shown with the failure
    assert summary["kills"] == KILLS
    assert summary["activities_accepted"] == ACTIVITIES, "every document is eventually answered 2xx"
    assert summary["queue_settled"], "jobs still queued long after the last kill"
    assert summary["activities_missing"] == 0, summary["examples"]
    assert summary["activities_wrong_state"] == 0, summary["examples"]
    assert summary["runs_missing"] == 0, summary["examples"]
    assert summary["runs_duplicated"] == 0, summary["examples"]
    assert summary["runs_incomplete"] == 0, summary["examples"]
    assert summary["webhook_runs_undelivered"] == 0, summary["examples"]
    assert summary["runs"] == summary["runs_expected"] > ACTIVITIES
    assert summary["deliveries"] >= summary["webhook_runs"] > 0
    assert summary["state_order_pairs"] > 0
    assert summary["state_order_violations"] == 0, summary["examples"]
    assert summary["ordered_pairs"] > 0
    assert summary["ordered_violations"] == 0, summary["examples"]
    assert summary["lost"] == 0


def test_sqlite_serve_killed_and_restarted_loses_nothing(tmp_path: Path) -> None:
    check(soak.soak("sqlite", ACTIVITIES, KILLS, seed=1234, workdir=tmp_path, settle_timeout=120))


@pytest.mark.postgres
def test_postgres_serve_and_workers_killed_and_restarted_lose_nothing(tmp_path: Path, postgres_url: str) -> None:
    check(soak.soak("postgres", ACTIVITIES, KILLS, seed=4321, database_url=postgres_url, workdir=tmp_path,
                    settle_timeout=120))
