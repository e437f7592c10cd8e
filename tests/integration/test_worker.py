"""The worker loop with the real executors: runs execute, record attempts and logs; kinds with
no executor stay visibly pending. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from firehook import assembly, model, signing
from firehook.service import activities, intake, integrations, projects
from tests.receivers import Receiver, wait_for


class RunningWorker:
    """A worker on its own event loop in a thread, stopped the way SIGTERM stops it."""

    def __init__(self, services: Any, kinds: tuple[str, ...] = ("script", "webhook")) -> None:
        self.worker = assembly.worker(services, kinds=kinds)
        services.wakeups.append(self.worker.wake)
        self.ready = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self.thread.start()
        self.ready.wait(10)

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.stop_event = asyncio.Event()
        self.ready.set()
        await self.worker.run(self.stop_event)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(30)
        assert not self.thread.is_alive()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture
def fast_services(tmp_path: Any, database_url: str) -> Iterator[Any]:
    from tests.conftest import make_settings

    built = assembly.services(make_settings(tmp_path, database_url, retry_schedule=(0.2, 0.2),
                                            webhook_timeout=5.0, script_timeout=5.0), migrate=True)
    yield built
    built.database.dispose()


ADMIN = model.Token(id="a", project=None, read_only=False, description=None, created_at="")


def run_doc(services: Any, run_id: str) -> dict[str, Any]:
    return activities.get(services, ADMIN, "w", run_id)


def finished(services: Any, run_id: str) -> dict[str, Any] | None:
    doc = run_doc(services, run_id)
    return doc if doc["state"] == "complete" else None


def log_messages(services: Any, run_id: str) -> list[str]:
    cursor = activities.LogCursor(services, ADMIN, "w", run_id)
    lines, _ = cursor.read()
    return [line["data"]["message"] for line in lines]


def test_webhook_runs_end_to_end(fast_services: Any, receiver: Receiver) -> None:
    services = fast_services
    projects.create(services, ADMIN, {"id": "w", "title": "Worker"})
    ok = integrations.create(services, ADMIN, "w", {"type": "webhook", "url": receiver.on("/ok", (200, {}, b"thanks")),
                                                    "shared_key": "k1"})
    flaky = integrations.create(services, ADMIN, "w", {"type": "webhook",
                                                       "url": receiver.on("/flaky", (500, {}, b"boom"), (200, {}, b""))})
    gone = integrations.create(services, ADMIN, "w", {"type": "webhook", "url": receiver.on("/gone", (410, {}, b"bye"))})
    down = integrations.create(services, ADMIN, "w", {"type": "webhook", "url": receiver.on("/down", (503, {}, b"no"))})
    worker = RunningWorker(services)
    try:
        accepted = intake.ingest(services, ADMIN, "w", {"id": "act1", "type": "environment.push",
                                                         "environments": ["main"], "result": "success"})
        runs = {r["integration"]: r["id"] for r in accepted.runs}
        done = {iid: wait_for(lambda rid=rid: finished(services, rid)) for iid, rid in runs.items()}
    finally:
        worker.stop()
    assert done[ok["id"]]["result"] == "success" and done[ok["id"]]["parameters"]["attempts"] == 1
    assert done[flaky["id"]]["result"] == "success" and done[flaky["id"]]["parameters"]["attempts"] == 2
    assert done[gone["id"]]["result"] == "failure" and done[gone["id"]]["parameters"]["attempts"] == 1
    assert done[down["id"]]["result"] == "failure" and done[down["id"]]["parameters"]["attempts"] == 3
    for doc in done.values():
        assert doc["description"].startswith("Sending webhook to 127.0.0.1")
        assert {"wait", "execute"} <= set(doc["timings"])
    # the delivery: the snapshot's bytes, signed, with a stable delivery id on every attempt
    [got] = receiver.requests_to("/ok")
    signing.verify_detached(got.body, got.headers["x-jws-signature"], "k1")
    assert got.headers["x-firehook-delivery"] == runs[ok["id"]]
    assert got.headers["user-agent"].startswith("firehook/")
    assert got.headers["content-type"] == "application/json"
    flaky_bodies = receiver.requests_to("/flaky")
    assert len(flaky_bodies) == 2 and flaky_bodies[0].body == flaky_bodies[1].body == got.body
    assert {r.headers["x-firehook-delivery"] for r in flaky_bodies} == {runs[flaky["id"]]}
    attempts = activities.attempts(services, ADMIN, "w", runs[flaky["id"]])
    assert [(a["number"], a["status"]) for a in attempts] == [(1, 500), (2, 200)]
    assert attempts[0]["response"] == "boom"
    assert any("HTTP response: 500" in m for m in log_messages(services, runs[flaky["id"]]))


def test_script_runs_end_to_end_with_live_log(fast_services: Any) -> None:
    services = fast_services
    projects.create(services, ADMIN, {"id": "w", "title": "Worker"})
    script = integrations.create(services, ADMIN, "w", {
        "type": "script", "events": ["*"],
        "script": "var n = (storage.get('n') || 0) + 1; storage.set('n', n);\n"
                  "console.log('run', n, activity.type, project.title, variables.GREETING);",
    })
    integrations.create_variable(services, ADMIN, "w", script["id"], {"name": "GREETING", "value": "hello"})
    failing = integrations.create(services, ADMIN, "w", {"type": "script", "events": ["*"],
                                                         "script": "\n\nnull.boom();"})
    worker = RunningWorker(services)
    try:
        first = intake.ingest(services, ADMIN, "w", {"type": "environment.deploy", "environments": ["main"]})
        second = intake.ingest(services, ADMIN, "w", {"type": "environment.deploy", "environments": ["main"]})
        run_ids = {r["integration"]: r["id"] for r in second.runs}
        for accepted in (first, second):
            for r in accepted.runs:
                wait_for(lambda rid=r["id"]: finished(services, rid))
    finally:
        worker.stop()
    ok = run_doc(services, run_ids[script["id"]])
    assert ok["result"] == "success" and ok["description"] == "Running activity script"
    assert log_messages(services, run_ids[script["id"]])[-1] in ("run 2 environment.deploy Worker hello",
                                                               "run 1 environment.deploy Worker hello")
    bad = run_doc(services, run_ids[failing["id"]])
    assert bad["result"] == "failure" and bad["parameters"]["attempts"] == 1
    assert any("TypeError" in m and "line 3" in m for m in log_messages(services, run_ids[failing["id"]]))


def test_runs_without_an_executor_stay_pending(fast_services: Any, receiver: Receiver) -> None:
    services = fast_services
    projects.create(services, ADMIN, {"id": "w", "title": "Worker"})
    integrations.create(services, ADMIN, "w", {"type": "script", "events": ["*"], "script": "console.log(1)"})
    integrations.create(services, ADMIN, "w", {"type": "webhook", "url": receiver.on("/ok", (200, {}, b""))})
    worker = RunningWorker(services, kinds=("webhook",))
    try:
        accepted = intake.ingest(services, ADMIN, "w", {"type": "environment.push", "environments": ["main"]})
        by_type = {r["type"]: r["id"] for r in accepted.runs}
        wait_for(lambda: finished(services, by_type["integration.webhook"]))
    finally:
        worker.stop()
    assert run_doc(services, by_type["integration.script"])["state"] == "pending"


def test_deleted_integration_run_fails_visibly(fast_services: Any, receiver: Receiver) -> None:
    services = fast_services
    projects.create(services, ADMIN, {"id": "w", "title": "Worker"})
    hook = integrations.create(services, ADMIN, "w", {"type": "webhook", "url": receiver.on("/ok", (200, {}, b""))})
    accepted = intake.ingest(services, ADMIN, "w", {"type": "environment.push", "environments": ["main"]})
    integrations.delete(services, ADMIN, "w", hook["id"])
    worker = RunningWorker(services)
    try:
        doc = wait_for(lambda: finished(services, accepted.runs[0]["id"]))
    finally:
        worker.stop()
    assert doc["result"] == "failure"
    assert "deleted" in log_messages(services, accepted.runs[0]["id"])[-1]
    assert receiver.requests_to("/ok") == []


def test_runs_trigger_integrations_that_list_them_explicitly(fast_services: Any, receiver: Receiver) -> None:
    services = fast_services
    projects.create(services, ADMIN, {"id": "w", "title": "Worker"})
    failing = integrations.create(services, ADMIN, "w", {"type": "webhook", "url": receiver.on("/gone", (410, {}, b""))})
    alert = integrations.create(services, ADMIN, "w", {
        "type": "webhook", "url": receiver.on("/alert", (200, {}, b"")),
        "events": ["integration.webhook"], "states": ["complete"], "result": "failure"})
    everything = integrations.create(services, ADMIN, "w", {"type": "webhook", "url": receiver.on("/all", (200, {}, b""))})
    worker = RunningWorker(services)
    try:
        intake.ingest(services, ADMIN, "w", {"type": "environment.push", "environments": ["main"]})
        alert_run = wait_for(lambda: activities.list_(services, ADMIN, "w", {}, alert["id"]))
        wait_for(lambda: finished(services, alert_run[0]["id"]))
    finally:
        worker.stop()
    [notice] = receiver.requests_to("/alert")
    import json

    body = json.loads(notice.body)
    assert body["type"] == "integration.webhook" and body["result"] == "failure"
    assert body["integration"] == failing["id"]
    # `*` does not match runs, and the alert's own run triggered nothing
    assert len(receiver.requests_to("/all")) == 1
    assert len(activities.list_(services, ADMIN, "w", {}, everything["id"])) == 1
    assert len(activities.list_(services, ADMIN, "w", {}, alert["id"])) == 1


def test_auto_disable_skips_then_resumes(tmp_path: Any, database_url: str, receiver: Receiver) -> None:
    from tests.conftest import make_settings

    services = assembly.services(make_settings(tmp_path, database_url, retry_schedule=(0.2, 0.2),
                                               webhook_disable_after=0.25), migrate=True)
    try:
        projects.create(services, ADMIN, {"id": "w", "title": "Worker"})
        hook = integrations.create(services, ADMIN, "w", {"type": "webhook",
                                                          "url": receiver.on("/flaky", (500, {}, b"down"))})
        worker = RunningWorker(services)
        try:
            first = intake.ingest(services, ADMIN, "w", {"type": "environment.push", "environments": ["main"]})
            failed = wait_for(lambda: finished(services, first.runs[0]["id"]))
            assert failed["result"] == "failure" and failed["parameters"]["attempts"] == 3
            disabled = integrations.get(services, ADMIN, "w", hook["id"])
            assert disabled["enabled"] is False and disabled["disabled_reason"].startswith("every delivery failed")
            assert any("Integration disabled automatically" in m for m in log_messages(services, first.runs[0]["id"]))
            # while disabled: a matching activity is recorded as a skipped run, and nothing is sent
            missed = intake.ingest(services, ADMIN, "w", {"type": "environment.push", "environments": ["main"]})
            assert [r["state"] for r in missed.runs] == ["skipped"]
            skipped = activities.list_(services, ADMIN, "w", {"state": "skipped"}, hook["id"])
            assert [r["id"] for r in skipped] == [missed.runs[0]["id"]]
            sent_before = len(receiver.requests_to("/flaky"))
            # enabled again (the receiver is back), the skipped run is replayed and lands
            receiver.on("/flaky", (200, {}, b"back"))
            enabled = integrations.update(services, ADMIN, "w", hook["id"], {"enabled": True})
            assert enabled["disabled_reason"] is None and enabled["failing_since"] is None
            replayed = activities.replay(services, ADMIN, "w", missed.runs[0]["id"], None)["_embedded"]["runs"]
            assert [r["integration"] for r in replayed] == [hook["id"]]
            done = wait_for(lambda: finished(services, replayed[0]["id"]))
        finally:
            worker.stop()
        assert done["result"] == "success"
        assert done["parameters"]["activity"] == missed.doc["id"]
        assert len(receiver.requests_to("/flaky")) == sent_before + 1
    finally:
        services.database.dispose()


def test_sensitive_values_are_masked_in_run_logs(fast_services: Any, receiver: Receiver) -> None:
    services = fast_services
    projects.create(services, ADMIN, {"id": "w", "title": "Worker"})
    secret_path = "/services/T000/B000/s3cretPathPart"
    script = integrations.create(services, ADMIN, "w", {
        "type": "script", "events": ["*"],
        "script": "console.log('using', variables.HOOK);\nfetch(variables.HOOK, {method: 'POST', body: '{}'});"})
    integrations.create_variable(services, ADMIN, "w", script["id"], {
        "name": "HOOK", "value": receiver.on(secret_path, (200, {}, b"ok")), "is_sensitive": True})
    worker = RunningWorker(services)
    try:
        accepted = intake.ingest(services, ADMIN, "w", {"type": "environment.push", "environments": ["main"]})
        done = wait_for(lambda: finished(services, accepted.runs[0]["id"]))
    finally:
        worker.stop()
    assert done["result"] == "success"
    assert len(receiver.requests_to(secret_path)) == 1  # the script used the real value
    messages = log_messages(services, accepted.runs[0]["id"])
    assert "using ******" in messages
    assert any(m.startswith("HTTP request: POST ******") for m in messages), messages
    assert not any("s3cretPathPart" in m for m in messages)
