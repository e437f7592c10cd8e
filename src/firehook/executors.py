"""The executors the worker dispatches to: one per integration type.

They adapt a run (its integration, variables, stored body) to the script runtime or the
webhook sender, and turn what those report into a worker Outcome.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import os
import time

import firehook
from firehook import delivery_http, masking, model, outbound, scripts, timefmt, webhooks
from firehook import settings as settings_mod
from firehook.service.integrations import script_variables
from firehook.store import db as dbmod
from firehook.store import kv
from firehook.worker import Outcome, RunContext

PREFETCH = 4


class ScriptExecutor:
    """Runs activity scripts in a thread pool, so scripts use every core."""

    kind = "script"

    def __init__(self, database: dbmod.Database, settings: settings_mod.Settings) -> None:
        self.database = database
        self.settings = settings
        threads = int(settings.workers) or os.cpu_count() or 2
        # Claim a few runs per thread: while one thread's run executes, the next runs' claim and
        # start transactions are already done, so no thread waits on the database between runs.
        self.concurrency = threads * PREFETCH
        self.limits = scripts.ScriptLimits.from_settings(settings)
        self.pool = concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="firehook-script")
        # The engine and the Underscore heap image (~45 MiB) are built when the first script
        # run arrives, before its time limit starts, so a worker that runs no scripts never
        # carries them.
        self._warm: asyncio.Future[None] | None = None

    async def execute(self, ctx: RunContext) -> Outcome:
        if self._warm is None:
            self._warm = asyncio.get_running_loop().run_in_executor(self.pool, scripts.warm_up)
        if not self._warm.done():
            await asyncio.shield(self._warm)
        integration = ctx.integration
        storage = kv.RunStorage(self.database, integration.id)
        call = functools.partial(
            scripts.run_script,
            integration.script or "",
            activity_json=ctx.body,
            project=ctx.project,
            variables=script_variables(ctx.variables_list),
            storage=storage,
            limits=self.limits,
            log=masking.Masker(masking.sensitive_values(ctx.variables_list)).wrap(ctx.log),
            outbound_allow=self.settings.outbound_allow,
        )
        result = await asyncio.get_running_loop().run_in_executor(self.pool, call)
        # Scripts are not retried when they fail by their own fault: they may have side effects.
        # Its storage writes are recorded with its outcome, in one transaction.
        return Outcome(result=model.Result.SUCCESS.value if result.success else model.Result.FAILURE.value,
                       storage=storage.ops())

    async def aclose(self) -> None:
        await asyncio.to_thread(self.pool.shutdown, True, cancel_futures=True)


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
