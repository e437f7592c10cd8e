"""The executors the worker dispatches to: one per integration type.

They adapt a run (its integration, variables, stored body) to the script runtime or the
webhook sender, and turn what those report into a worker Outcome.
"""

from __future__ import annotations

import time

import firehook
from firehook import delivery_http, masking, model, outbound, scripts, timefmt, webhooks
from firehook import settings as settings_mod
from firehook.scripts import pool as pool_mod
from firehook.service.integrations import script_variables
from firehook.store import db as dbmod
from firehook.store import kv
from firehook.worker import Outcome, RunContext

PREFETCH = 8


class ScriptExecutor:
    """Runs activity scripts in a pool of child processes (:mod:`firehook.scripts.pool`)."""

    kind = "script"

    def __init__(self, database: dbmod.Database, settings: settings_mod.Settings) -> None:
        self.database = database
        self.settings = settings
        self.pool = pool_mod.ScriptPool(pool_mod.default_size(int(settings.workers)))
        # Claim a few runs per child: while one child's run executes, the next runs' claim and
        # start transactions are already done, so no child waits on the database between runs.
        self.concurrency = self.pool.size * PREFETCH
        self.limits = scripts.ScriptLimits.from_settings(settings)

    async def execute(self, ctx: RunContext) -> Outcome:
        integration = ctx.integration
        storage = kv.RunStorage(self.database, integration.id, ctx.storage_base)
        result = await self.pool.run(pool_mod.Request(
            project_id=integration.project,
            source=integration.script or "",
            activity_json=ctx.body,
            project=ctx.project,
            variables=script_variables(ctx.variables_list),
            storage=storage,
            limits=self.limits,
            log=masking.Masker(masking.sensitive_values(ctx.variables_list)).wrap(ctx.log),
            outbound_allow=self.settings.outbound_allow,
        ))
        # Scripts are not retried when they fail by their own fault: they may have side effects.
        # Its storage writes are recorded with its outcome, in one transaction.
        ops = storage.ops()
        return Outcome(result=model.Result.SUCCESS.value if result.success else model.Result.FAILURE.value,
                       storage=ops, storage_total=storage.total_known() if ops else None,
                       storage_used=storage.touched, began_at=result.began_at)

    async def aclose(self) -> None:
        await self.pool.aclose()


def signing_keys(integration: model.Integration, now: float) -> tuple[str, ...]:
    """The shared key, then the previous one while its rotation window is open."""
    if not integration.shared_key:
        return ()
    keys = [integration.shared_key]
    if integration.previous_shared_key and integration.previous_key_expires_at:
        if timefmt.to_epoch(integration.previous_key_expires_at) > now:
            keys.append(integration.previous_shared_key)
    return tuple(keys)


class WebhookExecutor:
    """Sends deliveries concurrently through one delivery client (a connection pool) per worker."""

    kind = "webhook"

    def __init__(self, settings: settings_mod.Settings) -> None:
        self.settings = settings
        self.concurrency = max(1, int(settings.webhook_concurrency))
        self.guard = outbound.Guard(settings.outbound_allow)
        self._session: delivery_http.Client | None = None

    def session(self) -> delivery_http.Client:
        if self._session is None or self._session.closed:
            self._session = webhooks.make_session(self.guard, self.concurrency)
        return self._session

    async def execute(self, ctx: RunContext) -> Outcome:
        integration = ctx.integration
        now = time.time()
        delivery = webhooks.Delivery(
            run_id=ctx.run_id,
            url=integration.url or "",
            body=ctx.body.encode("utf-8"),
            keys=signing_keys(integration, now),
            standard_webhooks=integration.standard_webhooks,
        )
        ctx.log(f"Sending webhook to {integration.url} (attempt {ctx.attempt})")
        result = await webhooks.send(self.session(), delivery, self.settings.webhook_timeout, firehook.__version__)
        attempt = model.Attempt(number=ctx.attempt, started_at=result.started_at, duration_ms=result.duration_ms,
                                status=result.status, response=result.response, error=result.error)
        if result.status is not None:
            ctx.log(f"HTTP response: {result.status} ({result.duration_ms:.0f} ms)")
        if result.error:
            ctx.log(f"Delivery failed: {result.error}")
        if result.success:
            return Outcome(result=model.Result.SUCCESS.value, attempt=attempt)
        if result.retryable:
            schedule = integration.retry if integration.retry is not None else self.settings.retry_schedule
            delay = webhooks.next_delay(schedule, ctx.attempt, result.retry_after)
            if delay is not None:
                ctx.log(f"Next attempt in {delay:.1f} s.")
                return Outcome(retry_at=time.time() + delay, attempt=attempt)
            ctx.log(f"Giving up after {ctx.attempt} attempts.")
        return Outcome(result=model.Result.FAILURE.value, attempt=attempt)

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
