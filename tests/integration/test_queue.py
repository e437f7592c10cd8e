"""The durable queue: leases, expiry, retry-at, ordering — on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa

from firehook import model, queue, recording
from firehook.service import batch, intake, integrations, projects
from firehook.store import schema


def setup(services: Any, admin: model.Token, **hook: Any) -> str:
    projects.create(services, admin, {"id": "q", "title": "Queue"})
    body = {"type": "webhook", "url": "http://127.0.0.1:9/x", "states": ["*"], **hook}
    return str(integrations.create(services, admin, "q", body)["id"])


def emit(services: Any, admin: model.Token, aid: str, state: str, env: str = "main") -> None:
    intake.ingest(services, admin, "q", {"id": aid, "type": "environment.push", "state": state, "environments": [env]})


def test_lease_blocks_others_until_it_expires(services: Any, admin: model.Token) -> None:
    setup(services, admin)
    emit(services, admin, "a1", "complete")
    db = services.database
    [job] = queue.claim(db, "w1", ["webhook"], 10, lease_seconds=0.5)
    assert job.lease_owner == "w1" and job.kind == "webhook" and job.project == "q"
    assert queue.claim(db, "w2", ["webhook"], 10, 30) == []
    assert queue.claim(db, "w2", ["script"], 10, 30) == []
    time.sleep(0.6)
    [again] = queue.claim(db, "w2", ["webhook"], 10, 30)
    assert again.id == job.id and again.lease_owner == "w2"
    # the first owner lost its lease: it can neither renew nor complete
    assert queue.renew(db, "w1", [job.id], 30) == set()
    with db.write() as conn:
        assert not queue.complete(conn, job.id, "w1")
    with db.write() as conn:
        assert queue.complete(conn, job.id, "w2")
    assert queue.depth(db) == {}


def test_renew_extends_and_release_gives_back(services: Any, admin: model.Token) -> None:
    setup(services, admin)
    emit(services, admin, "a1", "complete")
    db = services.database
    [job] = queue.claim(db, "w1", ["webhook"], 1, lease_seconds=0.5)
    assert queue.renew(db, "w1", [job.id], 60) == {job.id}
    time.sleep(0.6)
    assert queue.claim(db, "w2", ["webhook"], 1, 30) == []
    assert queue.release(db, "w1", [job.id]) == 1
    assert [j.id for j in queue.claim(db, "w2", ["webhook"], 1, 30)] == [job.id]


def test_retry_at_waits(services: Any, admin: model.Token) -> None:
    setup(services, admin)
    emit(services, admin, "a1", "complete")
    db = services.database
    [job] = queue.claim(db, "w1", ["webhook"], 1, 30)
    assert recording.retry(db, job, "w1", time.time() + 0.5)
    assert queue.claim(db, "w1", ["webhook"], 1, 30) == []
    time.sleep(0.6)
    assert [j.id for j in queue.claim(db, "w1", ["webhook"], 1, 30)] == [job.id]


def test_states_of_one_activity_run_in_order(services: Any, admin: model.Token) -> None:
    setup(services, admin)
    for state in ("pending", "in_progress", "complete"):
        emit(services, admin, "a1", state)
    emit(services, admin, "a2", "pending")
    db = services.database
    claimed = queue.claim(db, "w", ["webhook"], 10, 30)
    # the first state of a1 and the job of a2; the later states of a1 wait their turn
    assert sorted(_activity_of(services, j) for j in claimed) == ["a1", "a2"]
    order = []
    while True:
        of_a1 = [j for j in claimed if _activity_of(services, j) == "a1"]
        if not of_a1:
            break
        assert len(of_a1) == 1
        order.append(_source_state(services, of_a1[0]))
        with db.write() as conn:
            queue.complete(conn, of_a1[0].id, "w")
        claimed = queue.claim(db, "w", ["webhook"], 10, 30)
    assert order == ["pending", "in_progress", "complete"]


def _run_params(services: Any, job: model.Job) -> dict[str, Any]:
    with services.database.read() as conn:
        doc = conn.execute(sa.select(schema.activities.c.doc).where(schema.activities.c.pk == job.run_pk)).scalar_one()
    import json

    return dict(json.loads(doc)["parameters"])


def _source_state(services: Any, job: model.Job) -> str:
    return str(_run_params(services, job)["activity_state"])


def _activity_of(services: Any, job: model.Job) -> str:
    return str(_run_params(services, job)["activity"])


def test_ordered_integration_runs_in_activity_order_per_environment(services: Any, admin: model.Token) -> None:
    setup(services, admin, ordered=True, states=["complete"])
    emit(services, admin, "m1", "complete", "main")
    emit(services, admin, "m2", "complete", "main")
    emit(services, admin, "d1", "complete", "dev")
    db = services.database
    first = queue.claim(db, "w", ["webhook"], 10, 30)
    assert sorted(_activity_of(services, j) for j in first) == ["d1", "m1"]
    assert queue.claim(db, "w", ["webhook"], 10, 30) == []  # m2 waits for m1
    for job in first:
        with db.write() as conn:
            queue.complete(conn, job.id, "w")
    [last] = queue.claim(db, "w", ["webhook"], 10, 30)
    assert _activity_of(services, last) == "m2"


def test_unordered_integration_runs_activities_in_parallel(services: Any, admin: model.Token) -> None:
    setup(services, admin, states=["complete"])
    for i in range(5):
        emit(services, admin, f"x{i}", "complete")
    assert len(queue.claim(services.database, "w", ["webhook"], 10, 30)) == 5


def test_finish_records_outcome_only_with_the_lease(services: Any, admin: model.Token) -> None:
    setup(services, admin, states=["complete"])
    emit(services, admin, "a1", "complete")
    db = services.database
    [job] = queue.claim(db, "w1", ["webhook"], 1, 30)
    assert recording.start(db, job, "w1")
    attempt = model.Attempt(number=1, started_at="2025-01-01T00:00:00.000000+00:00", duration_ms=5.0,
                            status=200, response="ok", error=None)
    assert not recording.finish(db, job, "someone-else", "success")
    assert recording.finish(db, job, "w1", "success", logs=[("t", "line one")], attempt=attempt)
    loaded = recording.load(db, job)
    assert loaded is not None
    assert loaded.run_doc["state"] == "complete" and loaded.run_doc["result"] == "success"
    assert loaded.run_doc["parameters"]["attempts"] == 1
    assert set(loaded.run_doc["timings"]) == {"wait", "execute"}


def test_a_big_backlog_does_not_starve_another_project(services: Any, admin: model.Token) -> None:
    for pid in ("big", "small"):
        projects.create(services, admin, {"id": pid, "title": pid})
        integrations.create(services, admin, pid, {"type": "webhook", "url": "http://127.0.0.1:9/x"})
    for _i in range(40):
        intake.ingest(services, admin, "big", {"type": "environment.push", "environments": ["main"]})
    for _i in range(3):
        intake.ingest(services, admin, "small", {"type": "environment.push", "environments": ["main"]})
    first = queue.claim(services.database, "w", ["webhook"], 7, 30)
    # FIFO would give seven of "big"; fair claiming interleaves the late project at once
    assert sorted(j.project for j in first) == ["big"] * 4 + ["small"] * 3
    rest = queue.claim(services.database, "w", ["webhook"], 100, 30)
    assert len(rest) == 36 and {j.project for j in rest} == {"big"}


def test_an_idle_project_does_not_jump_the_queue_by_its_history(services: Any, admin: model.Token) -> None:
    for pid in ("a", "b"):
        projects.create(services, admin, {"id": pid, "title": pid})
        integrations.create(services, admin, pid, {"type": "webhook", "url": "http://127.0.0.1:9/x"})
    for _i in range(10):
        intake.ingest(services, admin, "a", {"type": "environment.push"})
    drained = queue.claim(services.database, "w", ["webhook"], 100, 30)
    with services.database.write() as conn:
        for job in drained:
            queue.complete(conn, job.id, "w")
    # "a" has a long history, "b" none; both now queue 4: they interleave from the head
    for _i in range(4):
        intake.ingest(services, admin, "b", {"type": "environment.push"})
    for _i in range(4):
        intake.ingest(services, admin, "a", {"type": "environment.push"})
    order = [j.project for j in queue.claim(services.database, "w", ["webhook"], 4, 30)]
    assert "a" in order and "b" in order, order


def test_fair_tags_hold_for_batches(services: Any, admin: model.Token) -> None:
    import json

    for pid in ("big", "small"):
        projects.create(services, admin, {"id": pid, "title": pid})
        integrations.create(services, admin, pid, {"type": "webhook", "url": "http://127.0.0.1:9/x"})
    line = json.dumps({"type": "environment.push"}).encode()
    batch.ingest_batch(services, admin, "big", b"\n".join([line] * 40))
    batch.ingest_batch(services, admin, "small", b"\n".join([line] * 3))
    batch.ingest_batch(services, admin, "big", b"\n".join([line] * 5))  # the clock was written back
    first = queue.claim(services.database, "w", ["webhook"], 7, 30)
    assert sorted(j.project for j in first) == ["big"] * 4 + ["small"] * 3
    with services.database.read() as conn:
        tags = sorted(conn.execute(sa.select(schema.jobs.c.fair_tag)).scalars())
    assert len(tags) == 48 and tags[-1] == 45  # 40 + 5 for "big", in one sequence


# Clock-injected: claim_on takes ``now``, so leases expire and retries fall due without sleeping.

def _claim(services: Any, owner: str, now: float, limit: int = 10, kinds: tuple[str, ...] = ("webhook",),
           lease: float = 30) -> list[model.Job]:
    with services.database.write() as conn:
        return queue.claim_on(conn, owner, kinds, limit, lease, now)


def _job_row(services: Any, job_pk: int) -> Any:
    J = schema.jobs.c
    with services.database.read() as conn:
        return conn.execute(sa.select(J.run_at, J.parked, J.lease_owner, J.fair_tag).where(J.pk == job_pk)).one()


def test_an_expired_lease_is_claimable_again(services: Any, admin: model.Token) -> None:
    setup(services, admin, states=["complete"])
    emit(services, admin, "a1", "complete")
    t0 = time.time()
    [job] = _claim(services, "w1", t0, lease=30)
    assert _claim(services, "w2", t0 + 29) == []
    [again] = _claim(services, "w2", t0 + 31)
    assert (again.id, again.lease_owner) == (job.id, "w2")
    with services.database.write() as conn:
        assert queue.complete_many(conn, [job.id], "w1") == set()  # the first owner lost it
        assert queue.complete_many(conn, [job.id], "w2") == {job.id}


def test_retry_at_parks_a_job_until_its_time_and_it_keeps_its_place(services: Any, admin: model.Token) -> None:
    setup(services, admin, states=["complete"])
    emit(services, admin, "a1", "complete")
    emit(services, admin, "a2", "complete")
    t0 = time.time()
    first, second = _claim(services, "w", t0, limit=2)
    with services.database.write() as conn:
        assert queue.retry_at(conn, first.id, "w", t0 + 100)
        assert not queue.retry_at(conn, second.id, "someone-else", t0 + 100)  # not theirs
        queue.complete(conn, second.id, "w")
    assert tuple(_job_row(services, first.id)[:3]) == (t0 + 100, True, None)
    emit(services, admin, "a3", "complete")
    assert _claim(services, "w", t0 + 99, limit=1)[0].id != first.id  # a3 goes meanwhile
    # Due: woken by the claim, ahead of later jobs (its tag is older), attempt count intact.
    emit(services, admin, "a4", "complete")
    [woken] = _claim(services, "w", t0 + 100, limit=1)
    assert woken.id == first.id and woken.attempts == first.attempts
    assert not _job_row(services, first.id).parked


def test_a_later_job_of_a_key_waits_while_the_earlier_one_is_parked(services: Any, admin: model.Token) -> None:
    setup(services, admin)
    emit(services, admin, "a1", "pending")
    emit(services, admin, "a1", "complete")
    t0 = time.time()
    [pending] = _claim(services, "w", t0)
    with services.database.write() as conn:
        assert queue.retry_at(conn, pending.id, "w", t0 + 60)
    # The parked job is out of the claim index but still holds its ordering key.
    assert _claim(services, "w", t0 + 30) == []
    assert [j.id for j in _claim(services, "w", t0 + 60)] == [pending.id]


def test_a_claim_of_several_kinds_takes_the_earliest_in_fair_order(services: Any, admin: model.Token) -> None:
    projects.create(services, admin, {"id": "q", "title": "Queue"})
    integrations.create(services, admin, "q", {"type": "webhook", "url": "http://127.0.0.1:9/x", "states": ["complete"]})
    integrations.create(services, admin, "q", {"type": "script", "script": "console.log(1)", "states": ["complete"]})
    for i in range(3):
        emit(services, admin, f"a{i}", "complete")
    t0 = time.time()
    claimed = _claim(services, "w", t0, limit=3, kinds=("webhook", "script"))
    assert len(claimed) == 3 and {j.kind for j in claimed} == {"webhook", "script"}
    tags = [_job_row(services, j.id).fair_tag for j in claimed]
    assert tags == sorted(tags)
    # Only the three returned were leased; the other three are there for the next claim.
    assert len(_claim(services, "w2", t0, limit=10, kinds=("webhook", "script"))) == 3


def test_claim_on_is_part_of_the_callers_transaction(services: Any, admin: model.Token) -> None:
    setup(services, admin, states=["complete"])
    emit(services, admin, "a1", "complete")
    t0 = time.time()

    class Abandon(Exception):
        pass

    try:
        with services.database.write() as conn:
            assert len(queue.claim_on(conn, "w1", ["webhook"], 10, 30, t0)) == 1
            raise Abandon
    except Abandon:
        pass
    [job] = _claim(services, "w2", t0)  # the rolled-back claim leased nothing
    assert job.lease_owner == "w2"


def test_concurrent_claims_skip_each_others_rows(postgres_url: str, tmp_path: Any) -> None:
    from firehook import assembly
    from tests.conftest import make_settings

    services = assembly.services(make_settings(tmp_path, postgres_url), migrate=True)
    try:
        admin = model.Token(id="admin", project=None, read_only=False, description=None, created_at="")
        setup(services, admin, states=["complete"])
        for i in range(3):
            emit(services, admin, f"a{i}", "complete")
        t0 = time.time()
        with services.database.write() as first:
            mine = queue.claim_on(first, "w1", ["webhook"], 2, 30, t0)
            # A second claimer while the first has not committed: it must not wait for the
            # first's rows (lock_timeout turns a wait into an error) and gets the third job.
            with services.database.write() as second:
                second.exec_driver_sql("SET LOCAL lock_timeout = '5s'")
                theirs = queue.claim_on(second, "w2", ["webhook"], 10, 30, t0)
        assert len(mine) == 2 and len(theirs) == 1
        assert not {j.id for j in mine} & {j.id for j in theirs}
    finally:
        services.database.dispose()


def test_timings_say_how_long_a_run_waited_for_its_process(services: Any, admin: model.Token) -> None:
    # A run claimed, then kept waiting (for its integration's turn, for a script process),
    # then executed: `wait` runs to when its execution began, `execute` from there.
    setup(services, admin)
    emit(services, admin, "t1", "complete")
    with services.database.write() as conn:
        [(job, loaded)] = recording.claim_round_on(conn, "w1", ["webhook"], 10, 30)
    time.sleep(0.05)  # a claim is not the start of the execution
    began = time.time()
    with services.database.write() as conn:
        assert recording.finish_many_on(conn, [recording.Finished(job=job, result="success", started=loaded,
                                                                  began_at=began)], "w1") == {job.id}
    ended = time.time()
    doc = recording.load(services.database, job)
    assert doc is not None
    timings = doc.run_doc["timings"]
    assert timings["wait"] == round(began - loaded.queued_at, 3)
    assert timings["wait"] > round(loaded.started_at - loaded.queued_at, 3)  # more than until the claim
    assert 0 <= timings["execute"] <= round(ended - began, 3) + 0.001
