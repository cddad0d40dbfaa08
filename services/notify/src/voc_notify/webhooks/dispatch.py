"""Sending due webhook deliveries: the push worker's loop (`polling.PollingWorker`), its lease
(`next_attempt_at` moved `workers.LEASE_SECONDS` ahead while in flight, `FOR UPDATE SKIP LOCKED`
on PostgreSQL) and its back-off (`webpush.backoff_delay`), with what webhooks need on top:

- each attempt is its own task, at most `VOC_WEBHOOK_CONCURRENCY` at once and a quarter of
  them for one endpoint, so a receiver that hangs (5 s timeout) holds its own slots, never
  the pass or another endpoint's deliveries;
- every attempt is recorded (status code, latency, error, 300 bytes of the answer), and kept
  with its finished delivery for 30 days;
- a failure is retried with exponential back-off (5 s doubling, at most 2 h apart), with the
  same `webhook-id` and body, until the delivery is `VOC_WEBHOOK_DISABLE_AFTER_SECONDS` (24 h)
  old; an endpoint failing that long without a success, or answering 410 Gone, is disabled:
  its pending deliveries fail, a WARNING is logged and the API shows `status: disabled` with
  the reason.

`clock` is the time every decision uses (tests set it; the signature's timestamp is the wall
clock of the send).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, select, update

from voc_notify import metrics
from voc_notify.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from voc_notify.polling import PollingWorker
from voc_notify.settings import Settings
from voc_notify.webhooks import enqueue, formats
from voc_notify.webhooks.sender import Attempt, WebhookSender, signed_headers
from voc_notify.webhooks.signing import SecretBox
from voc_notify.webpush import backoff_delay
from voc_notify.workers import LEASE_SECONDS
from voc_platform.db import Database
from voc_platform.ids import uuid7

log = logging.getLogger(__name__)

RETRY_BASE_SECONDS = 5.0
RETRY_CAP_SECONDS = 2 * 3600.0
#: Finished deliveries and attempts are kept this long (what `…/deliveries` can show), pruned hourly.
RETENTION_SECONDS = 30 * 86400.0
PRUNE_EVERY_SECONDS = 3600.0

_DUE_COLUMNS = (
    WebhookDelivery.id,
    WebhookDelivery.endpoint_id,
    WebhookDelivery.event_type,
    WebhookDelivery.body,
    WebhookDelivery.attempts,
    WebhookDelivery.created_at,
    WebhookEndpoint.url,
    WebhookEndpoint.format,
    WebhookEndpoint.secret,
)


def retry_delay(attempts: int) -> float:
    """Seconds before the next try after `attempts` failed ones: 5 s, 10 s, 20 s, … ≤ 2 h."""
    return backoff_delay(attempts - 1, base=RETRY_BASE_SECONDS, cap=RETRY_CAP_SECONDS)


class WebhookDispatcher(PollingWorker):
    name = "webhook"
    interval = 0.5

    def __init__(
        self,
        database: Database,
        sender: WebhookSender,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.database = database
        self.sender = sender
        self.box = SecretBox.of(settings)
        self.concurrency = settings.webhook_concurrency
        self.per_endpoint = max(1, settings.webhook_concurrency // 4)
        self.pass_size = self.concurrency
        self.disable_after = settings.webhook_disable_after_seconds
        self.clock = clock
        self._tasks: set[asyncio.Task[None]] = set()
        self._inflight: Counter[str] = Counter()
        self._pruned_at = 0.0
        enqueue.on_enqueued(self.wake)

    async def process_due(self, *, now: float | None = None) -> int:
        """Lease what is due and start its attempts (not waiting for them); returns how many."""
        now = self.clock() if now is None else now
        if now - self._pruned_at >= PRUNE_EVERY_SECONDS:
            await self.prune(now=now)
        free = self.concurrency - len(self._tasks)
        if free <= 0:
            return 0
        busy = [e for e, n in self._inflight.items() if n >= self.per_endpoint]
        query = (
            select(*_DUE_COLUMNS)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .where(
                WebhookDelivery.status == "pending",
                WebhookDelivery.next_attempt_at <= now,
                WebhookEndpoint.status == "active",
            )
            .order_by(WebhookDelivery.next_attempt_at)
            .limit(free * 2)
        )
        if busy:
            query = query.where(WebhookDelivery.endpoint_id.not_in(busy))
        if not self.database.sqlite:
            query = query.with_for_update(skip_locked=True, of=WebhookDelivery)
        taken: list[Any] = []
        async with self.database.transaction() as session:
            per_endpoint = Counter(self._inflight)
            for row in (await session.execute(query)).all():
                if len(taken) == free or per_endpoint[row.endpoint_id] >= self.per_endpoint:
                    continue
                per_endpoint[row.endpoint_id] += 1
                taken.append(row)
            if taken:
                await session.execute(
                    update(WebhookDelivery)
                    .where(WebhookDelivery.id.in_([r.id for r in taken]))
                    .values(next_attempt_at=now + LEASE_SECONDS)
                )
        for row in taken:
            self._inflight[row.endpoint_id] += 1
            task = asyncio.create_task(self._deliver(row), name=f"webhook {row.id}")
            self._tasks.add(task)
            task.add_done_callback(functools.partial(self._done, endpoint_id=row.endpoint_id))
        return len(taken)

    async def prune(self, *, now: float) -> None:
        """Forget attempts, and delivered or failed deliveries, older than the retention."""
        self._pruned_at = now
        before = now - RETENTION_SECONDS
        async with self.database.transaction() as session:
            await session.execute(delete(WebhookAttempt).where(WebhookAttempt.attempted_at < before))
            await session.execute(
                delete(WebhookDelivery).where(
                    WebhookDelivery.status.in_(("delivered", "failed")), WebhookDelivery.created_at < before
                )
            )

    def _done(self, task: asyncio.Task[None], *, endpoint_id: str) -> None:
        self._tasks.discard(task)
        self._inflight[endpoint_id] -= 1
        if self._inflight[endpoint_id] <= 0:
            del self._inflight[endpoint_id]
        if not task.cancelled() and task.exception() is not None:
            log.error("webhook delivery failed to record", exc_info=task.exception())
        self.wake()  # a slot is free: what waited for it may go

    async def drain(self) -> None:
        """Wait for the attempts in flight (tests; shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()  # its lease runs out; the next pass (here or elsewhere) sends it again
        await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _deliver(self, row: Any) -> None:
        try:
            secret = self.box.open(row.secret)
        except ValueError as exc:
            attempt = Attempt(None, 0.0, str(exc)[:300], None)
        else:
            body = formats.render(row.body.encode(), row.format)
            headers = signed_headers(secret, msg_id=row.id, body=body)
            attempt = await self.sender.send(row.url, body=body, headers=headers)
        metrics.webhook_attempted(ok=attempt.ok)
        await self.record(row, attempt)

    async def record(self, row: Any, attempt: Attempt) -> None:
        """The attempt, the delivery's new state and the endpoint's, in one transaction."""
        now = self.clock()
        async with self.database.transaction() as session:
            endpoint = await session.get(WebhookEndpoint, row.endpoint_id)
            if endpoint is None:
                return  # deleted meanwhile, its deliveries with it
            session.add(
                WebhookAttempt(
                    id=uuid7(),
                    endpoint_id=row.endpoint_id,
                    delivery_id=row.id,
                    event_type=row.event_type,
                    attempted_at=now,
                    status_code=attempt.status_code,
                    latency_ms=attempt.latency_ms,
                    error=attempt.error,
                    response=attempt.response,
                )
            )
            attempts = row.attempts + 1
            change: dict[str, Any] = {"attempts": attempts, "last_error": attempt.error}
            if attempt.ok:
                change.update(status="delivered", delivered_at=now)
                endpoint.failing_since = None
                endpoint.last_success_at = now
            elif attempt.gone:
                change.update(status="failed")
            elif now - row.created_at >= self.disable_after:
                change.update(
                    status="failed", last_error=f"given up after {attempts} attempts: {attempt.error}"
                )
            else:
                change.update(next_attempt_at=now + retry_delay(attempts))
            await session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == row.id, WebhookDelivery.status == "pending")
                .values(**change)
            )
            if not attempt.ok:
                if endpoint.failing_since is None:
                    endpoint.failing_since = now
                if attempt.gone:
                    await disable(session, endpoint, reason="the receiver answered 410 Gone", now=now)
                elif endpoint.status == "active" and now - endpoint.failing_since >= self.disable_after:
                    hours = (now - endpoint.failing_since) / 3600
                    await disable(
                        session,
                        endpoint,
                        reason=f"every attempt failed for {hours:.0f} h: {attempt.error}",
                        now=now,
                    )


async def disable(session: Any, endpoint: WebhookEndpoint, *, reason: str, now: float) -> None:
    """The endpoint gets nothing more; its pending deliveries fail (kept, with the reason)."""
    if endpoint.status == "disabled":
        return
    endpoint.status = "disabled"
    endpoint.disabled_reason = reason[:300]
    endpoint.disabled_at = now
    await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint.id, WebhookDelivery.status == "pending")
        .values(status="failed", last_error=f"endpoint disabled: {reason}"[:300])
    )
    log.warning("webhook endpoint %s disabled: %s", endpoint.id, reason)
