"""``POST …/integrations/{id}/validate`` (SPEC §3.4).

A script is compiled, then dry-run against the latest activity it matches, with ``fetch``
answered canned and storage a throw-away copy: no side effects. A webhook gets a test
delivery (an ``integration.webhook`` ping activity), and the answer is reported.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

import firehook
from firehook import dryrun, errors, ids, matching, model, outbound, scripts, timefmt, webhooks
from firehook.executors import signing_keys
from firehook.service import Services
from firehook.store import activities as activity_store
from firehook.store import jsonutil

SEARCH_DEPTH = 200


def validate(services: Services, item: model.Integration) -> dict[str, Any]:
    if item.type == "script":
        return _validate_script(services, item)
    return _validate_webhook(services, item)


def _latest_match(services: Services, item: model.Integration) -> tuple[str, str] | None:
    """(activity id, snapshot body) of the newest activity the script matches, if any."""
    probe = dataclasses.replace(item, enabled=True)  # a disabled script can be validated too
    with services.database.read() as conn:
        rows = activity_store.list_for(conn, item.project, count=SEARCH_DEPTH)
        for row in rows:
            if row["integration_id"] is not None:
                continue
            if matching.matches(probe, row["doc"], row["state"]):
                snap = activity_store.find_snapshot(conn, row["pk"], row["state"])
                if snap is not None:
                    return row["id"], snap["body"]
    return None


def _validate_script(services: Services, item: model.Integration) -> dict[str, Any]:
    try:
        scripts.check_syntax(item.script or "")
    except errors.ScriptError as exc:
        return {"valid": False, "errors": {"script": exc.message}}
    found = _latest_match(services, item)
    if found is None:
        return {"valid": True, "dry_run": None,
                "message": "The script compiles; no stored activity matches it yet, so it was not dry-run."}
    activity_id, body = found
    variables, secrets, sandbox = dryrun.integration_inputs(services, item)
    dry = dryrun.run(services, project_id=item.project, script=item.script or "", activity_json=body,
                     project=dryrun.project_object(services, item.project), variables=variables, storage=sandbox,
                     secrets=secrets)
    report: dict[str, Any] = {"valid": dry["result"] == "success", "dry_run": {"activity": activity_id, **dry}}
    if dry["result"] != "success":
        report["errors"] = {"script": dry["error"] or "the dry run failed"}
    return report


def ping_document(services: Services, item: model.Integration) -> dict[str, Any]:
    now = timefmt.now_ts()
    ping_id = ids.new_id()
    return {
        "id": ping_id,
        "_links": services.activity_links(item.project, ping_id),
        "type": "integration.webhook",
        "project": item.project,
        "integration": item.id,
        "environments": [],
        "state": "complete",
        "result": "success",
        "parameters": {"ping": True},
        "description": "Test delivery from firehook",
        "text": "Test delivery from firehook",
        "created_at": now,
        "updated_at": now,
        "completed_at": now,
        "payload": {},
    }


def _validate_webhook(services: Services, item: model.Integration) -> dict[str, Any]:
    guard = outbound.Guard(services.settings.outbound_allow)
    try:
        guard.check_url(item.url or "")
    except (errors.OutboundBlocked, errors.InvalidInput) as exc:
        return {"valid": False, "errors": {"url": exc.message}}
    body = jsonutil.dumps(ping_document(services, item)).encode("utf-8")
    delivery = webhooks.Delivery(run_id=ids.new_id(), url=item.url or "", body=body,
                                 keys=signing_keys(item, time.time()), standard_webhooks=item.standard_webhooks)

    async def send() -> webhooks.AttemptResult:
        session = webhooks.make_session(guard, 1)
        try:
            return await webhooks.send(session, delivery, services.settings.webhook_timeout, firehook.__version__)
        finally:
            await session.close()

    result = asyncio.run(send())
    report: dict[str, Any] = {
        "valid": result.success,
        "delivery": {"status": result.status, "duration_ms": round(result.duration_ms, 1),
                     "response": result.response, "error": result.error},
    }
    if not result.success:
        report["errors"] = {"url": result.error or f"the receiver answered {result.status}"}
    return report
