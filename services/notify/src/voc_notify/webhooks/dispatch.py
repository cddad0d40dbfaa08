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
  old and has had `MIN_ATTEMPTS`; an endpoint failing that long without a success, or answering
  410 Gone, is disabled: its pending deliveries fail, a WARNING is logged and the API shows
  `status: disabled` with the reason.

The bookkeeping shares the alert path's database, so it is batched and made of prepared
statements, and written behind the alert path's writes (`voc_platform.dbsync.write_behind`: on
SQLite in transactions of its own after theirs, so a page never waits for a webhook's
bookkeeping to commit with it): a pass leases in one write; the attempts that finish
together are recorded in one write (`record_sync`: the attempts, the deliveries' and the
endpoints' new states); and a finished attempt wakes the next pass only when the last one left
due deliveries behind for want of slots, or new ones were enqueued meanwhile (#19: one ORM
transaction per attempt and a pass per finished attempt had doubled notify's CPU at 100
feedback/s and tripled the alerts' p99).

`clock` is the time every decision uses (tests set it; the signature's timestamp is the wall
clock of the send).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import bindparam, delete, insert, select, true, update

from voc_notify import metrics
from voc_notify.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from voc_notify.polling import PollingWorker
from voc_notify.settings import Settings
from voc_notify.webhooks import enqueue, formats, registry
from voc_notify.webhooks.sender import Attempt, WebhookSender, signed_headers
from voc_notify.webhooks.signing import SecretBox
from voc_notify.webpush import backoff_delay
from voc_notify.workers import LEASE_SECONDS
from voc_platform import dbsync
from voc_platform.batching import fail_waiting
from voc_platform.db import Database
from voc_platform.dbsync import Prepared, Reader
from voc_platform.loop_lag import YieldGate

log = logging.getLogger(__name__)

RETRY_BASE_SECONDS = 5.0
RETRY_CAP_SECONDS = 2 * 3600.0
#: Finished deliveries and attempts are kept this long (what `…/deliveries` can show), pruned hourly.
RETENTION_SECONDS = 30 * 86400.0
#: Attempts a delivery gets even when its event is older than the retry window: one recovered
#: after a receiver was fixed (`registry.recover_endpoint`) is retried about 3 h (5 s doubling,
#: at most 2 h apart) before it fails again, so a busy receiver's 429s do not end it at once.
#: A delivery made when it happened reaches this long before 24 h.
MIN_ATTEMPTS = 12
PRUNE_EVERY_SECONDS = 3600.0

#: How long a chat message's store names are kept before they are read again.
STORE_NAMES_SECONDS = 60.0

#: Attempts in flight at once for a chat endpoint (Slack, Teams): their incoming webhooks take
#: about one message a second and answer more with 429 (whose `Retry-After` is honoured).
CHAT_IN_FLIGHT = 2

#: What a pass takes when pages still wait after the gate's longest wait (`YieldGate`).
YIELDING_PASS = 8

_ACTIVE_ENDPOINTS = Prepared(
    select(
        WebhookEndpoint.id,
        WebhookEndpoint.url,
        WebhookEndpoint.format,
        WebhookEndpoint.secret,
        WebhookEndpoint.previous_secret,
        WebhookEndpoint.previous_secret_until,
    )
    .where(WebhookEndpoint.status == "active")
    .order_by(WebhookEndpoint.id)
)


def _due_rows(endpoint_id: Any) -> Any:
    """The due pending deliveries of `endpoint_id` (a parameter, or a column of an outer
    query), oldest first (`ix_webhook_deliveries_endpoint_due`)."""
    return (
        select(
            WebhookDelivery.id,
            WebhookDelivery.event_type,
            WebhookDelivery.body,
            WebhookDelivery.attempts,
            WebhookDelivery.created_at,
            WebhookDelivery.next_attempt_at,
        )
        .where(
            WebhookDelivery.endpoint_id == endpoint_id,
            WebhookDelivery.status == "pending",
            WebhookDelivery.next_attempt_at <= bindparam("now"),
        )
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(bindparam("limit"))
    )


#: SQLite: one endpoint's, a statement per endpoint (the writer is alone: no row locks).
_ENDPOINT_DUE = Prepared(_due_rows(bindparam("endpoint_id")))


def _all_due_query() -> Any:
    """PostgreSQL: every active endpoint's first due deliveries in one statement (a LATERAL
    read per endpoint on the same index, rows other replicas hold skipped), so a sweep of
    hundreds of endpoints is not hundreds of round trips."""
    due = _due_rows(WebhookEndpoint.id).with_for_update(skip_locked=True).lateral("due")
    return (
        select(
            due.c.id,
            WebhookEndpoint.id.label("endpoint_id"),
            due.c.event_type,
            due.c.body,
            due.c.attempts,
            due.c.created_at,
            WebhookEndpoint.url,
            WebhookEndpoint.format,
            WebhookEndpoint.secret,
            WebhookEndpoint.previous_secret,
            WebhookEndpoint.previous_secret_until,
        )
        .select_from(WebhookEndpoint)
        .join(due, true())
        .where(WebhookEndpoint.status == "active")
        .order_by(WebhookEndpoint.id, due.c.next_attempt_at)
    )


_ALL_DUE = Prepared(lambda dialect: _all_due_query())


class Due(NamedTuple):
    """A leased delivery with what sending it needs of its endpoint."""

    id: str
    endpoint_id: str
    event_type: str
    body: str
    attempts: int
    created_at: float
    url: str
    format: str
    secret: str
    previous_secret: str | None = None  # a rotated secret, signing beside `secret` until
    previous_until: float | None = None


_LEASE = Prepared(update(WebhookDelivery).where(WebhookDelivery.id == bindparam("delivery_id")))
# Outcomes only apply to a delivery still pending (its endpoint may have been disabled meanwhile).
_OUTCOME = Prepared(
    update(WebhookDelivery).where(
        WebhookDelivery.id == bindparam("delivery_id"), WebhookDelivery.status == "pending"
    )
)
_ATTEMPTS = Prepared(insert(WebhookAttempt))
_ENDPOINT_COLUMNS = select(
    WebhookEndpoint.id, WebhookEndpoint.status, WebhookEndpoint.failing_since, WebhookEndpoint.last_success_at
).where(WebhookEndpoint.id == bindparam("endpoint_id"))
# PostgreSQL: KEY SHARE, as enqueueing does: an endpoint deleted meanwhile waits for this
# transaction instead of failing its attempt rows' foreign key.
_ENDPOINT = Prepared(
    lambda dialect: (
        _ENDPOINT_COLUMNS.with_for_update(key_share=True) if dialect == "postgresql" else _ENDPOINT_COLUMNS
    )
)
# Conditional on the status read: an admin who enabled (or a pass that disabled) the endpoint
# meanwhile wins over this pass's older view of it (KEY SHARE does not hold that UPDATE back).
_ENDPOINT_STATE = Prepared(
    update(WebhookEndpoint).where(
        WebhookEndpoint.id == bindparam("endpoint_id"), WebhookEndpoint.status == bindparam("read_status")
    )
)
_FAIL_PENDING = Prepared(
    update(WebhookDelivery).where(
        WebhookDelivery.endpoint_id == bindparam("disabled_endpoint_id"), WebhookDelivery.status == "pending"
    )
)


def retry_delay(attempts: int) -> float:
    """Seconds before the next try after `attempts` failed ones: 5 s, 10 s, 20 s, … ≤ 2 h."""
    return backoff_delay(attempts - 1, base=RETRY_BASE_SECONDS, cap=RETRY_CAP_SECONDS)


@dataclass(frozen=True, slots=True)
class Outcome:
    """One finished attempt of a leased delivery, at `at`."""

    row: Due
    attempt: Attempt
    at: float


@dataclass(slots=True)
class _EndpointState:
    status: str
    failing_since: float | None
    last_success_at: float | None
    read_status: str = ""  # as read, for the conditional write
    disabled_reason: str | None = None
    disabled_at: float | None = None
    changed: bool = False


class Lease(NamedTuple):
    taken: list[Due]
    #: Endpoints that may have due deliveries left: more than their room, or not read (at their
    #: share, or no slot left when their turn came).
    behind: set[str]


def lease_due_sync(
    reader: Reader,
    *,
    now: float,
    free: int,
    inflight: Counter[str],
    per_endpoint: int,
    only: Collection[str] | None = None,
    turn: int = 0,
    skip: Collection[str] = (),
) -> Lease:
    """Lease up to `free` due deliveries of the active endpoints (those in `only`, if given),
    at most `per_endpoint` in flight per endpoint counting `inflight` (a chat endpoint's:
    `CHAT_IN_FLIGHT`).

    Each endpoint's due deliveries are one indexed read of at most what its share has room for
    (a receiver that hangs fills only its own share, and another endpoint's deliveries are never
    behind its backlog): on SQLite a statement each, on PostgreSQL one LATERAL statement for
    all of them (only endpoints with due deliveries come back). When the free slots run out
    first, the endpoints reached first take them, starting from a different one each `turn`."""
    if reader.dialect.name == "postgresql":
        found: dict[str, list[Due]] = {}
        for row in reader.all(_ALL_DUE, {"now": now, "limit": per_endpoint + 1}):
            found.setdefault(row.endpoint_id, []).append(Due(*row))
        ids = list(found)
        formats = {endpoint_id: rows[0].format for endpoint_id, rows in found.items()}

        def read(endpoint_id: str, room: int) -> list[Due]:
            return found[endpoint_id][: room + 1]

    else:
        active = {e.id: e for e in reader.all(_ACTIVE_ENDPOINTS, {})}
        ids = list(active)
        formats = {e.id: e.format for e in active.values()}

        def read(endpoint_id: str, room: int) -> list[Due]:
            e = active[endpoint_id]
            rows = reader.all(_ENDPOINT_DUE, {"endpoint_id": e.id, "now": now, "limit": room + 1})
            return [
                Due(
                    r.id,
                    e.id,
                    r.event_type,
                    r.body,
                    r.attempts,
                    r.created_at,
                    e.url,
                    e.format,
                    e.secret,
                    e.previous_secret,
                    e.previous_secret_until,
                )
                for r in rows
            ]

    if only is not None:
        ids = [i for i in ids if i in only]
    if skip:  # endpoints that asked for a pause (`Retry-After`)
        ids = [i for i in ids if i not in skip]
    taken: list[Due] = []
    behind: set[str] = set()
    for k in range(len(ids)):
        endpoint_id = ids[(turn + k) % len(ids)]
        share = per_endpoint if formats[endpoint_id] == "standard" else min(per_endpoint, CHAT_IN_FLIGHT)
        room = min(share - inflight[endpoint_id], free - len(taken))
        if room <= 0:
            behind.add(endpoint_id)
            continue
        rows = read(endpoint_id, room)
        if len(rows) > room:
            behind.add(endpoint_id)
        taken.extend(rows[:room])
    if taken:
        _LEASE.execute_many(
            reader, [{"next_attempt_at": now + LEASE_SECONDS, "delivery_id": d.id} for d in taken]
        )
    return Lease(taken, behind)


def record_sync(
    reader: Reader, outcomes: Sequence[Outcome], *, disable_after: float
) -> list[tuple[str, str]]:
    """The attempts, their deliveries' new states and their endpoints', in the order they
    finished; returns the (endpoint id, reason) of each endpoint this disabled. Attempts of an
    endpoint deleted meanwhile are dropped with it."""
    endpoints: dict[str, _EndpointState] = {}
    for endpoint_id in sorted({o.row.endpoint_id for o in outcomes}):  # one lock order (PostgreSQL)
        found = reader.first(_ENDPOINT, {"endpoint_id": endpoint_id})
        if found is not None:
            endpoints[endpoint_id] = _EndpointState(
                found.status, found.failing_since, found.last_success_at, read_status=found.status
            )
    kept = sorted((o for o in outcomes if o.row.endpoint_id in endpoints), key=lambda o: o.at)
    if not kept:
        return []
    _ATTEMPTS.execute_many(
        reader,
        [
            o.attempt.as_row(
                endpoint_id=o.row.endpoint_id,
                delivery_id=o.row.id,
                event_type=o.row.event_type,
                attempted_at=o.at,
            )
            for o in kept
        ],
    )
    disabled: list[tuple[str, str]] = []
    # The deliveries' updates, grouped by the columns they set: one executemany a group (most
    # attempts succeed, so most of a batch is one statement).
    changes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for o in kept:
        row, attempt, now = o.row, o.attempt, o.at
        endpoint = endpoints[row.endpoint_id]
        attempts = row.attempts + 1
        change: dict[str, Any] = {"attempts": attempts, "last_error": attempt.error}
        if attempt.ok:
            change.update(status="delivered", delivered_at=now)
        elif attempt.gone:
            change.update(status="failed", next_attempt_at=now)  # its lease ends
        elif now - row.created_at >= disable_after and attempts >= MIN_ATTEMPTS:
            change.update(
                status="failed",
                next_attempt_at=now,
                last_error=f"given up after {attempts} attempts: {attempt.error}",
            )
        else:
            wait = retry_delay(attempts)
            if attempt.retry_after is not None:  # the receiver's own (429, 503), within the cap
                wait = max(wait, min(attempt.retry_after, RETRY_CAP_SECONDS))
            change.update(next_attempt_at=now + wait)
        change["delivery_id"] = row.id
        changes.setdefault(tuple(change), []).append(change)
        endpoint.changed = True
        if attempt.ok:
            endpoint.failing_since = None
            endpoint.last_success_at = now
            continue
        if endpoint.failing_since is None:
            endpoint.failing_since = now
        reason = None
        if attempt.gone:
            reason = "the receiver answered 410 Gone"
        elif now - endpoint.failing_since >= disable_after:
            hours = (now - endpoint.failing_since) / 3600
            reason = f"every attempt failed for {hours:.0f} h: {attempt.error}"
        if reason is not None and endpoint.status == "active":
            _apply(reader, changes)  # what came before the disabling, as it came
            _disable_sync(reader, row.endpoint_id, endpoint, reason=reason, now=now)
            disabled.append((row.endpoint_id, reason))
    _apply(reader, changes)
    for endpoint_id, endpoint in endpoints.items():
        if endpoint.changed:
            state: dict[str, Any] = {
                "failing_since": endpoint.failing_since,
                "last_success_at": endpoint.last_success_at,
            }
            if endpoint.disabled_at is not None:
                state.update(
                    status="disabled",
                    disabled_reason=endpoint.disabled_reason,
                    disabled_at=endpoint.disabled_at,
                )
            _ENDPOINT_STATE.execute(
                reader, {**state, "endpoint_id": endpoint_id, "read_status": endpoint.read_status}
            )
    return disabled


def _apply(reader: Reader, changes: dict[tuple[str, ...], list[dict[str, Any]]]) -> None:
    for group in changes.values():
        _OUTCOME.execute_many(reader, group)
    changes.clear()


def _disable_sync(
    reader: Reader, endpoint_id: str, endpoint: _EndpointState, *, reason: str, now: float
) -> None:
    """The endpoint gets nothing more; its pending deliveries fail (kept, with the reason)."""
    endpoint.status = "disabled"
    endpoint.disabled_reason = reason[:300]
    endpoint.disabled_at = now
    _FAIL_PENDING.execute(
        reader,
        {
            "status": "failed",
            "next_attempt_at": now,  # a failed row's is when it failed (`registry.recover_endpoint`)
            "last_error": f"endpoint disabled: {reason}"[:300],
            "disabled_endpoint_id": endpoint_id,
        },
    )


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
        gate: YieldGate | None = None,
    ) -> None:
        super().__init__()
        self.database = database
        # Pages first: while notify's loop runs late, a pass waits (at most the gate's
        # `max_wait`) and then takes at most `YIELDING_PASS` deliveries.
        self.gate = gate or YieldGate(None)
        self.sender = sender
        self.box = SecretBox.of(settings)
        self.concurrency = settings.webhook_concurrency
        self.per_endpoint = max(1, settings.webhook_concurrency // 4)
        self.pass_size = self.concurrency
        self.disable_after = settings.webhook_disable_after_seconds
        self.clock = clock
        self._turn = 0  # which endpoint a pass reaches first (`lease_due_sync`)
        self._tasks: set[asyncio.Task[None]] = set()
        self._inflight: Counter[str] = Counter()
        # Which endpoints a pass reads. Every `interval` (the poll) all active ones: retries that
        # came due, other replicas' deliveries. Between, only those this process enqueued for
        # since (`_marked`) and those the last pass left due deliveries behind at (`_behind`):
        # with hundreds of endpoints, a read of each on every pass would cost more than the
        # deliveries. A finished attempt wakes the next pass only while some are behind or marked.
        self._marked: set[str] = set()
        self._behind: set[str] = set()
        # Endpoints that answered 429/503 with `Retry-After`, until when: none of their
        # deliveries is leased before (this process's view; each replica learns its own).
        self._paused: dict[str, float] = {}
        self._swept_at = -math.inf
        self._outcomes: list[tuple[Outcome, asyncio.Future[None]]] = []
        self._recording: asyncio.Task[None] | None = None
        self._pruned_at = 0.0
        # What chat messages (Slack, Teams) name in words, read again at most every STORE_NAMES_SECONDS.
        self._directory = formats.ChatDirectory()
        self._names_read_at = -math.inf
        self._app_url = str(settings.public_url)
        enqueue.on_enqueued(self.wake, self._mark)

    async def process_due(self, *, now: float | None = None) -> int:
        """Lease what is due and start its attempts (not waiting for them); returns how many."""
        free = self.concurrency - len(self._tasks)
        if free <= 0:
            return 0  # the marks stay; a finished attempt wakes the next pass
        if await self.gate.wait():
            free = min(free, YIELDING_PASS)
        now = self.clock() if now is None else now
        if now - self._pruned_at >= PRUNE_EVERY_SECONDS:
            await self.prune(now=now)
        sweep = not self._swept_at <= now < self._swept_at + self.interval  # (or the clock went back)
        only = None if sweep else self._marked | self._behind
        if only is not None and not only:
            return 0  # nothing this process knows of: no transaction
        # Marks arriving during the read stay for the next pass. On PostgreSQL a pass between an
        # enqueue's insert and its commit uses up the mark without seeing the rows: the next
        # sweep finds them, at most `interval` later.
        marked, self._marked = self._marked, set()
        self._turn += 1
        self._paused = {e: until for e, until in self._paused.items() if until > now}
        try:
            taken, self._behind = await dbsync.write_behind(
                self.database,
                lease_due_sync,
                now=now,
                free=free,
                inflight=Counter(self._inflight),
                per_endpoint=self.per_endpoint,
                only=only,
                turn=self._turn,
                skip=set(self._paused),
            )
        except BaseException:
            self._marked |= marked  # read again next time
            raise
        if sweep:
            self._swept_at = now
        if (
            any(row.format != "standard" for row in taken)
            and now - self._names_read_at >= STORE_NAMES_SECONDS
        ):
            self._names_read_at = now
            self._directory = await registry.chat_directory(self.database, app_url=self._app_url)
        for row in taken:
            self._inflight[row.endpoint_id] += 1
            task = asyncio.create_task(self._deliver(row), name=f"webhook {row.id}")
            self._tasks.add(task)
            task.add_done_callback(functools.partial(self._done, endpoint_id=row.endpoint_id))
        return len(taken)

    def _mark(self, endpoint_ids: Iterable[str]) -> None:
        self._marked.update(endpoint_ids)

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
        if self._behind or self._marked:
            self.wake()  # a slot is free: what waited for it may go

    async def drain(self) -> None:
        """Wait for the attempts in flight and their records (tests; shutdown)."""
        while self._tasks or self._recording is not None:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
            if self._recording is not None:
                await asyncio.gather(self._recording, return_exceptions=True)

    async def aclose(self) -> None:
        enqueue.forget(self.wake, self._mark)
        for task in list(self._tasks):
            task.cancel()  # its lease runs out; the next pass (here or elsewhere) sends it again
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._recording is not None:  # what finished is recorded before the database closes
            await asyncio.gather(self._recording, return_exceptions=True)

    async def _deliver(self, row: Due) -> None:
        try:
            secret, previous = self.box.open_signing(
                row.secret, row.previous_secret, row.previous_until, now=self.clock()
            )
        except ValueError as exc:
            attempt = Attempt(None, 0.0, str(exc)[:300], None)
        else:
            body = formats.render(row.body.encode(), row.format, self._directory)
            headers = signed_headers(secret, msg_id=row.id, body=body, previous=previous)
            attempt = await self.sender.send(row.url, body=body, headers=headers)
        if attempt.retry_after is not None:
            until = self.clock() + min(attempt.retry_after, RETRY_CAP_SECONDS)
            self._paused[row.endpoint_id] = max(self._paused.get(row.endpoint_id, 0.0), until)
        metrics.webhook_attempted(ok=attempt.ok)
        await self.record(row, attempt)

    async def record(self, row: Due, attempt: Attempt) -> None:
        """Record the attempt with the others finishing about now (one write for all of them);
        returns once it is committed."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._outcomes.append((Outcome(row, attempt, self.clock()), future))
        if self._recording is None:
            self._recording = asyncio.create_task(self._write_outcomes(), name="webhook outcomes")
        await future

    async def _write_outcomes(self) -> None:
        try:
            while self._outcomes:
                # Those that finished while the last write ran go together in the next one.
                batch, self._outcomes = self._outcomes, []
                try:
                    disabled = await dbsync.write_behind(
                        self.database, record_sync, [o for o, _ in batch], disable_after=self.disable_after
                    )
                except Exception as exc:  # nothing of the batch was recorded; the leases run out
                    fail_waiting((f for _, f in batch), exc)
                    continue
                for endpoint_id, reason in disabled:
                    log.warning("webhook endpoint %s disabled: %s", endpoint_id, reason)
                for _, future in batch:
                    if not future.done():
                        future.set_result(None)
        finally:
            self._recording = None
