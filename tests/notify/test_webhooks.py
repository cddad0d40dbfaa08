"""Outbound webhooks in process (#19): the real dispatcher, a real database (SQLite or
PostgreSQL), a real webhook_receiver on loopback checking every signature with the `standardwebhooks`
library, and a clock the test sets (24 h of failures without sleeping). Over the API, end to
end through the running system: tests/e2e/test_webhooks.py."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

import httpx
import orjson
import pytest
from nats.aio.msg import Msg
from sqlalchemy import delete, func, select, update
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.conftest import RunningSystem
from tests.notify.conftest import new_alert, plan, raise_alert
from tests.notify.test_alerts_api import problem
from tests.support.webhook_receiver import WebhookReceiver
from voc.events.v1 import events_pb2
from voc_notify import lifecycle
from voc_notify import metrics as notify_metrics
from voc_notify.facts import CustomerContext, Feedback
from voc_notify.models import Alert, EscalationTimer, WebhookDelivery, WebhookEndpoint
from voc_notify.schemas import WebhookIn
from voc_notify.settings import Settings
from voc_notify.stream import AlertBroker
from voc_notify.webhooks import formats, registry
from voc_notify.webhooks.catalog import EVENT_TYPES, ROUTES, consumed_subjects
from voc_notify.webhooks.dispatch import (
    CHAT_IN_FLIGHT,
    MIN_ATTEMPTS,
    RETRY_CAP_SECONDS,
    YIELDING_PASS,
    WebhookDispatcher,
    lease_due_sync,
)
from voc_notify.webhooks.enqueue import (
    KEEP_WHILE_DISABLED_SECONDS,
    NOT_SENT_DISABLED,
    WebhookConsumer,
    enqueue_sync,
)
from voc_notify.webhooks.sender import WebhookSender
from voc_notify.webhooks.signing import SecretBox
from voc_notify.webhooks.targets import PublicResolver, UrlRefused, WebhookTargets
from voc_notify.workers import EscalationWorker
from voc_platform import dbsync, metrics
from voc_platform.db import Database
from voc_platform.errors import Conflict, NotFound
from voc_platform.identity import Principal
from voc_platform.loop_lag import LoopLag, YieldGate

LEAD = Principal(staff_id="lead", role="shift_lead", store_ids=("s1",), area_id=None)


class Clock:
    """The wall clock, moved ahead by what the test advanced it."""

    def __init__(self) -> None:
        self.offset = 0.0

    @property
    def now(self) -> float:
        return time.time() + self.offset

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@dataclass
class Hooks:
    db: Database
    settings: Settings
    dispatcher: WebhookDispatcher
    sender: WebhookSender
    box: SecretBox
    clock: Clock

    async def register(self, url: str, events: list[str] | None = None, **more: Any) -> dict[str, Any]:
        spec = WebhookIn(url=url, events=events or ["*"], **more)
        return await registry.create_endpoint(self.db, spec=spec, targets=self.sender.targets, box=self.box)

    async def send_due(self, rounds: int = 1) -> None:
        for _ in range(rounds):
            await self.dispatcher.process_due()
            await self.dispatcher.drain()

    async def endpoint(self, endpoint_id: str) -> WebhookEndpoint:
        async with self.db.session() as s:
            found = await s.get(WebhookEndpoint, endpoint_id)
            assert found is not None
            return found

    async def deliveries(self, endpoint_id: str) -> list[WebhookDelivery]:
        async with self.db.session() as s:
            rows = await s.scalars(
                select(WebhookDelivery)
                .where(WebhookDelivery.endpoint_id == endpoint_id)
                .order_by(WebhookDelivery.created_at, WebhookDelivery.id)
            )
            return list(rows)


@asynccontextmanager
async def hooks(db: Database, **settings: Any) -> AsyncIterator[Hooks]:
    config = Settings(webhook_allowed_hosts="127.0.0.1:*", **settings)
    sender = WebhookSender(
        WebhookTargets(config.allowed_webhook_hosts()), timeout=config.webhook_timeout_seconds
    )
    clock = Clock()
    dispatcher = WebhookDispatcher(db, sender, config, clock=clock)
    try:
        yield Hooks(db, config, dispatcher, sender, SecretBox.of(config), clock)
    finally:
        await dispatcher.aclose()
        await sender.aclose()


async def test_an_alert_and_its_steps_reach_a_subscribed_endpoint_signed(
    notify_db: Database, webhook_receiver: WebhookReceiver
) -> None:
    async with hooks(notify_db) as h:
        every = await h.register(webhook_receiver.url("/all"))
        only_resolved = await h.register(webhook_receiver.url("/resolved"), ["alert.resolved"])
        assert every["secret"].startswith("whsec_") and len(every["secret"]) == 6 + 44
        # A playbook's title may name the customer (`{customer.name}`): the events carry it masked.
        jane = CustomerContext(known=True, customer_id="cust-1", masked_name="J*** D**", name="Jane Doe")
        created = await raise_alert(
            notify_db,
            Feedback(id="fb-hook-1", category="cleanliness", text="text of fb-hook-1"),
            now=time.time(),
            the_plan=replace(plan(), title="Call Jane Doe back today"),
            customer=jane,
        )
        assert created is not None
        # Enqueued in the alert's own transaction: there before any send.
        assert [d.event_type for d in await h.deliveries(every["id"])] == ["alert.created"]
        assert await h.deliveries(only_resolved["id"]) == []
        async with notify_db.transaction() as s:
            alert = await s.get(Alert, created.alert.id)
            assert alert is not None
            await lifecycle.acknowledge(s, alert=alert, principal=LEAD)
        async with notify_db.transaction() as s:
            alert = await s.get(Alert, created.alert.id)
            assert alert is not None
            await lifecycle.resolve(
                s, alert=alert, principal=LEAD, outcome="resolved", note="called 010-1234-5678"
            )
        await h.send_due()
        webhook_receiver.wait_for(3, "/all")
        bodies = webhook_receiver.verified(every["secret"], "/all")
        # Sent concurrently (several at once per endpoint): Standard Webhooks promise no order.
        assert sorted(b["type"] for b in bodies) == ["alert.acknowledged", "alert.created", "alert.resolved"]
        by_type = {b["type"]: b for b in bodies}
        first = by_type["alert.created"]
        assert first["data"]["alert_id"] == created.alert.id and first["data"]["feedback_id"] == "fb-hook-1"
        assert first["data"]["customer_id"] == "cust-1" and first["timestamp"].endswith("Z")
        resolved = by_type["alert.resolved"]["data"]
        assert resolved["outcome"] == "resolved" and resolved["staff_id"] == "lead"
        assert resolved["priority"] == first["data"]["priority"] != ""  # for a receiver's own rules
        assert first["data"]["playbook_title"] == resolved["playbook_title"] == "Call J*** D** back today"
        assert "Jane" not in str(bodies) and "Doe" not in str(bodies)
        assert "note" not in resolved and "5678" not in str(bodies)  # free text never leaves
        assert "follow_up_elsewhere" not in resolved  # our services' bookkeeping, not the payload
        # The other endpoint heard only what it subscribed to.
        assert [b["type"] for b in webhook_receiver.verified(only_resolved["secret"], "/resolved")] == [
            "alert.resolved"
        ]
        # A signature does not verify with another secret (a request to /all, whichever arrived
        # first: the two endpoints are sent to concurrently).
        to_all = next(r for r in webhook_receiver.received if r.path == "/all")
        with pytest.raises(WebhookVerificationError):
            Webhook(only_resolved["secret"]).verify(to_all.body, to_all.headers)
        deliveries = await h.deliveries(every["id"])
        assert {d.status for d in deliveries} == {"delivered"}
        attempts = await registry_attempts(h, every["id"])
        assert len(attempts) == 3 and all(a["status_code"] == 200 and a["latency_ms"] >= 0 for a in attempts)
        assert attempts[0]["response"] == '{"ok":true}'


async def registry_attempts(h: Hooks, endpoint_id: str) -> list[dict[str, Any]]:
    async with h.db.session() as s:
        return (await registry.recent_attempts(s, endpoint_id=endpoint_id, limit=50))["attempts"]


async def test_an_escalation_reaches_the_endpoint(
    notify_db: Database, webhook_receiver: WebhookReceiver
) -> None:
    async with hooks(notify_db) as h:
        endpoint = await h.register(webhook_receiver.url("/esc"), ["alert.escalated"])
        now = time.time()
        created = await new_alert(notify_db, "fb-esc-1", now=now, the_plan=plan(after=60))
        assert created is not None
        escalation = EscalationWorker(notify_db, h.settings, AlertBroker(), lambda: None)
        assert await escalation.fire_due(now=now + 61) >= 1
        await h.send_due()
        webhook_receiver.wait_for(1, "/esc")
        (body,) = webhook_receiver.verified(endpoint["secret"], "/esc")
        assert body["type"] == "alert.escalated"
        assert body["data"]["alert_id"] == created.alert.id and body["data"]["level"] == 1
        assert body["data"]["roles"] == ["store_manager"]
        async with notify_db.session() as s:
            fired = await s.scalar(
                select(func.count()).where(
                    EscalationTimer.alert_id == created.alert.id, EscalationTimer.status == "fired"
                )
            )
        assert fired == 1


async def test_a_receiver_down_for_a_while_gets_everything_with_the_same_ids(
    notify_db: Database, webhook_receiver: WebhookReceiver
) -> None:
    async with hooks(notify_db) as h:
        endpoint = await h.register(webhook_receiver.url("/down"))
        webhook_receiver.stop()
        for i in range(3):
            await new_alert(notify_db, f"fb-down-{i}", now=time.time())
        await h.send_due()
        pending = await h.deliveries(endpoint["id"])
        assert [(d.status, d.attempts) for d in pending] == [("pending", 1)] * 3
        assert all(d.last_error == "network error" for d in pending)
        ids = {d.id for d in pending}
        # Still down an hour later (a few more attempts each), then it answers 500 once, then 200.
        for _ in range(3):
            h.clock.advance(3600)
            await h.send_due()
        webhook_receiver.answer("/down", 500, 200)
        webhook_receiver.start()
        h.clock.advance(3 * 3600)
        await h.send_due()
        h.clock.advance(3 * 3600)
        await h.send_due()
        arrived = webhook_receiver.wait_for(4, "/down")
        assert arrived[0].status == 500
        delivered = [r for r in arrived if r.status == 200]
        assert {r.webhook_id for r in delivered} == ids  # everything, each once accepted
        assert arrived[0].webhook_id in ids  # the refused attempt's id came again, accepted
        assert arrived[0].body == next(r.body for r in delivered if r.webhook_id == arrived[0].webhook_id)
        webhook_receiver.verified(endpoint["secret"], "/down")  # every attempt signed
        assert {d.status for d in await h.deliveries(endpoint["id"])} == {"delivered"}
        state = await h.endpoint(endpoint["id"])
        assert state.status == "active" and state.failing_since is None and state.last_success_at


async def test_a_hanging_receiver_times_out_without_delaying_another_endpoint(
    notify_db: Database, webhook_receiver: WebhookReceiver
) -> None:
    async with hooks(notify_db, webhook_timeout_seconds=1.5) as h:
        hanging = await h.register(webhook_receiver.url("/hang"))
        healthy = await h.register(webhook_receiver.url("/fine"))
        webhook_receiver.hanging.add("/hang")
        await new_alert(notify_db, "fb-hang-1", now=time.time())
        started = time.monotonic()
        await h.dispatcher.process_due()
        await asyncio.to_thread(webhook_receiver.wait_for, 1, "/fine", timeout=5)
        assert time.monotonic() - started < 1.0  # not behind the hanging one
        await h.dispatcher.drain()
        assert time.monotonic() - started >= 1.4  # the hanging one waited for its timeout
        (attempt,) = await registry_attempts(h, hanging["id"])
        assert attempt["error"] == "timeout" and attempt["status_code"] is None
        (waiting,) = await h.deliveries(hanging["id"])
        assert waiting.status == "pending" and waiting.next_attempt_at > h.clock.now  # retried later
        assert [d.status for d in await h.deliveries(healthy["id"])] == ["delivered"]


async def test_each_endpoint_gets_its_share_of_a_pass_whatever_waits_ahead_of_it(
    notify_db: Database, webhook_receiver: WebhookReceiver
) -> None:
    """A backlog at one endpoint, older than anything due at another, fills only its own share;
    when the free slots run out first, the endpoint reached first changes from pass to pass."""
    async with hooks(notify_db) as h:
        busy = await h.register(webhook_receiver.url("/busy"), ["feedback.received"])
        earlier = time.time() - 600
        events = [("voc.feedback.received", _received(f"fb-backlog-{i}")) for i in range(30)]
        await dbsync.write(notify_db, lambda r: enqueue_sync(r, events, now=earlier))
        quiet = await h.register(webhook_receiver.url("/quiet"), ["feedback.received"])
        await dbsync.write(
            notify_db,
            lambda r: enqueue_sync(r, [("voc.feedback.received", _received("fb-new"))], now=time.time()),
        )
        now = time.time()
        taken, left_behind = await dbsync.write(
            notify_db, lease_due_sync, now=now, free=12, inflight=Counter(), per_endpoint=8
        )
        by_endpoint = Counter(d.endpoint_id for d in taken)
        assert by_endpoint == {busy["id"]: 8, quiet["id"]: 1} and left_behind
        # Leased: the next pass does not take them again; two slots and both endpoints waiting.
        firsts = set()
        for turn in range(2):
            again, _ = await dbsync.write(
                notify_db, lease_due_sync, now=now, free=1, inflight=Counter(), per_endpoint=8, turn=turn
            )
            assert len(again) == 1 and again[0].id not in {d.id for d in taken}
            firsts.add(again[0].endpoint_id)
        assert firsts == {busy["id"]}  # only the busy one has anything left
        more = await dbsync.write(
            notify_db, lambda r: enqueue_sync(r, [("voc.feedback.received", _received("fb-later"))], now=now)
        )
        assert more == 2
        firsts = set()
        for turn in range(2):
            again, _ = await dbsync.write(
                notify_db, lease_due_sync, now=now, free=1, inflight=Counter(), per_endpoint=8, turn=turn
            )
            firsts.add(again[0].endpoint_id)
        assert firsts == {busy["id"], quiet["id"]}


async def test_between_polls_a_pass_reads_only_the_endpoints_enqueued_for(
    notify_db: Database, webhook_receiver: WebhookReceiver
) -> None:
    """A delivery this process did not enqueue (another replica's, a retry come due) waits for
    the next poll's sweep of every endpoint; one it enqueued goes at the next pass."""
    async with hooks(notify_db) as h:
        mine = await h.register(webhook_receiver.url("/mine"), ["feedback.received"])
        now = time.time()
        assert await h.dispatcher.process_due(now=now) == 0  # the sweep: nothing due yet

        async def elsewhere(delivery_id: str) -> None:
            async with notify_db.transaction() as s:
                s.add(
                    WebhookDelivery(
                        id=delivery_id,
                        endpoint_id=mine["id"],
                        event_type="feedback.received",
                        body='{"type":"feedback.received","timestamp":"2026-12-06T00:00:00.000Z","data":{}}',
                        status="pending",
                        attempts=0,
                        next_attempt_at=now,
                        created_at=now,
                    )
                )

        await elsewhere("msg_elsewhere_1")
        assert await h.dispatcher.process_due(now=now + 0.1) == 0  # not marked: no read
        events = [("voc.feedback.received", _received("fb-mine"))]
        await dbsync.write(notify_db, lambda r: enqueue_sync(r, events, now=now))
        assert await h.dispatcher.process_due(now=now + 0.2) == 2  # marked: all its due ones
        await elsewhere("msg_elsewhere_2")
        assert await h.dispatcher.process_due(now=now + 0.3) == 0
        assert await h.dispatcher.process_due(now=now + h.dispatcher.interval + 0.1) == 1  # the sweep
        await h.dispatcher.drain()
        webhook_receiver.wait_for(3, "/mine")
        assert {d.status for d in await h.deliveries(mine["id"])} == {"delivered"}


def _received(feedback_id: str) -> events_pb2.FeedbackReceived:
    event = events_pb2.FeedbackReceived(text="-", received_at_ms=int(time.time() * 1000))
    event.facts.feedback_id, event.facts.store_id, event.facts.channel = feedback_id, "s1", "kiosk"
    return event


async def test_attempts_are_recorded_in_batches_and_a_deleted_endpoint_drops_its_own(
    notify_db: Database, webhook_receiver: WebhookReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    # 3 s: the webhook_receiver's listen backlog is 5, and a connection beyond it under load is
    # retried by the kernel after 1 s.
    async with hooks(notify_db, webhook_timeout_seconds=3.0) as h:
        kept = await h.register(webhook_receiver.url("/kept"))
        deleted = await h.register(webhook_receiver.url("/deleted"))
        webhook_receiver.hanging.add("/deleted")
        for i in range(6):
            await new_alert(notify_db, f"fb-batch-{i}", now=time.time(), customer_id=f"cust-batch-{i}")
        with caplog.at_level(logging.ERROR, logger="voc_notify.webhooks.dispatch"):
            await h.dispatcher.process_due()
            await asyncio.to_thread(webhook_receiver.wait_for, 6, "/kept", timeout=10)
            # Deleted while its attempts hang: their outcomes find no endpoint and are dropped,
            # the batch around them is recorded.
            await registry.delete_endpoint(notify_db, endpoint_id=deleted["id"])
            await h.dispatcher.drain()
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
        attempts = await registry_attempts(h, kept["id"])
        assert len(attempts) == 6 and {a["status_code"] for a in attempts} == {200}
        assert {d.status for d in await h.deliveries(kept["id"])} == {"delivered"}
        state = await h.endpoint(kept["id"])
        assert state.last_success_at is not None and state.failing_since is None
        async with notify_db.session() as s:
            left = await s.scalar(
                select(func.count())
                .select_from(WebhookDelivery)
                .where(WebhookDelivery.endpoint_id == deleted["id"])
            )
        assert left == 0


async def test_redirects_are_not_followed_and_answers_are_kept_to_300_bytes(
    notify_db: Database, webhook_receiver: WebhookReceiver
) -> None:
    async with hooks(notify_db) as h:
        moved = await h.register(webhook_receiver.url("/moved"))
        chatty = await h.register(webhook_receiver.url("/chatty"))
        webhook_receiver.answer("/moved", 302)
        webhook_receiver.reply = b'{"ok":true,"padding":"' + b"x" * 2000 + b'"}'
        await new_alert(notify_db, "fb-redirect-1", now=time.time())
        await h.send_due()
        (redirected,) = await registry_attempts(h, moved["id"])
        assert redirected["status_code"] == 302 and "redirect not followed" in redirected["error"]
        assert [d.status for d in await h.deliveries(moved["id"])] == ["pending"]  # retried later
        (answered,) = await registry_attempts(h, chatty["id"])
        assert answered["status_code"] == 200 and len(answered["response"].encode()) <= 300
        assert answered["response"].startswith('{"ok":true,"padding":"xxx')


async def test_an_answer_that_is_not_utf8_is_kept_to_300_bytes_too(
    notify_db: Database, webhook_receiver: WebhookReceiver
) -> None:
    """Decoding with replacement turned 300 bytes of junk into 300 U+FFFD, 900 bytes stored."""
    async with hooks(notify_db) as h:
        binary = await h.register(webhook_receiver.url("/binary"))
        webhook_receiver.reply = "한".encode() * 99 + b"\xff" * 2000  # 297 bytes of text, then junk
        await new_alert(notify_db, "fb-binary-1", now=time.time())
        await h.send_due()
        (answered,) = await registry_attempts(h, binary["id"])
        assert answered["status_code"] == 200 and answered["response"] == "한" * 99


async def scrape(source: metrics.Source) -> dict[str, float]:
    return {sample.name: sample.value for family in await source.collect() for sample in family.samples}


async def test_the_backlog_and_how_long_it_has_waited_are_measured(
    notify_db: Database, webhook_receiver: WebhookReceiver
) -> None:
    """`/metrics` shows how many deliveries wait and how long the longest-waiting due one has
    waited; a delivery waiting out its back-off after a failure is pending but not late."""
    async with hooks(notify_db) as h:
        backlog = notify_metrics.webhook_backlog_source(notify_db, clock=h.clock)
        endpoint = await h.register(webhook_receiver.url("/backlog"))
        idle = {"voc_webhook_pending_deliveries": 0.0, "voc_webhook_due_lag_seconds": 0.0}
        assert await scrape(backlog) == idle
        for i in range(3):
            await new_alert(notify_db, f"fb-backlog-{i}", now=time.time())
        h.clock.advance(30)  # nothing sent for 30 s: a notify busy with pages
        waiting = await scrape(backlog)
        assert waiting["voc_webhook_pending_deliveries"] == 3
        assert 30 <= waiting["voc_webhook_due_lag_seconds"] < 60
        webhook_receiver.stop()
        await h.send_due()  # attempted, refused: each waits for its retry
        assert {(d.status, d.attempts) for d in await h.deliveries(endpoint["id"])} == {("pending", 1)}
        assert await scrape(backlog) == {
            "voc_webhook_pending_deliveries": 3.0,
            "voc_webhook_due_lag_seconds": 0.0,
        }
        webhook_receiver.start()
        h.clock.advance(3600)
        await h.send_due()
        assert len(webhook_receiver.wait_for(3, "/backlog")) == 3
        assert await scrape(backlog) == idle


async def test_a_410_disables_the_endpoint_at_once(
    notify_db: Database, webhook_receiver: WebhookReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    async with hooks(notify_db) as h:
        endpoint = await h.register(webhook_receiver.url("/gone"))
        webhook_receiver.answer("/gone", 410)
        await new_alert(notify_db, "fb-gone-1", now=time.time())
        await new_alert(notify_db, "fb-gone-2", now=time.time())
        with caplog.at_level(logging.WARNING, logger="voc_notify.webhooks.dispatch"):
            await h.send_due()
        state = await h.endpoint(endpoint["id"])
        assert state.status == "disabled" and "410" in (state.disabled_reason or "")
        assert {d.status for d in await h.deliveries(endpoint["id"])} == {"failed"}
        assert any("disabled" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
        # Nothing more is sent to it; what it misses is kept, failed, to recover once it is fixed.
        await new_alert(notify_db, "fb-gone-3", now=time.time())
        await h.send_due()
        missed = (await h.deliveries(endpoint["id"]))[-1]
        assert (missed.status, missed.attempts, missed.last_error) == ("failed", 0, NOT_SENT_DISABLED)
        assert len(webhook_receiver.received) == 2  # the two 410s
        with pytest.raises(Conflict, match="enable it first"):
            await registry.recover_endpoint(notify_db, endpoint_id=endpoint["id"], since=0)
        # Fixed, it is enabled again with its secret: what happens from then on reaches it, signed
        # with the secret the receiver already has; what failed stays failed until recovered.
        webhook_receiver.answer("/gone")
        enabled = await registry.enable_endpoint(notify_db, endpoint_id=endpoint["id"])
        assert (enabled["status"], enabled["disabled_reason"], enabled["disabled_at"]) == (
            "active",
            None,
            None,
        )
        failed = await h.deliveries(endpoint["id"])
        assert enabled["failed_deliveries"] == 3
        assert (await h.endpoint(endpoint["id"])).failing_since is None
        assert await registry.enable_endpoint(notify_db, endpoint_id=endpoint["id"]) == enabled  # idempotent
        await new_alert(notify_db, "fb-gone-4", now=time.time())
        await h.send_due()
        (body,) = [
            b
            for b in webhook_receiver.verified(endpoint["secret"], "/gone")
            if b["data"].get("feedback_id") == "fb-gone-4"
        ]
        assert body["type"] == "alert.created"
        assert sorted(d.status for d in await h.deliveries(endpoint["id"])) == [
            "delivered",
            "failed",
            "failed",
            "failed",
        ]
        # Recovered: each failed delivery once more, under the webhook-id it had (a receiver that
        # took one before knows it); the later ones only when `since` leaves out the first. No
        # sweep from here on: the recovery itself tells this process's dispatcher.
        h.dispatcher.interval = 3600.0
        later = await registry.recover_endpoint(
            notify_db, endpoint_id=endpoint["id"], since=failed[1].created_at
        )
        assert later["requeued"] == 2
        await h.send_due()
        recovered = await registry.recover_endpoint(notify_db, endpoint_id=endpoint["id"], since=0)
        assert recovered["requeued"] == 1 and recovered["since"] == "1970-01-01T00:00:00.000Z"
        await h.send_due()
        arrived = webhook_receiver.wait_for(4, "/gone", ok=True)
        assert sorted(
            r.webhook_id for r in arrived if r.json()["data"]["feedback_id"] != "fb-gone-4"
        ) == sorted(d.id for d in failed)
        assert {d.status for d in await h.deliveries(endpoint["id"])} == {"delivered"}
        assert (await registry.recover_endpoint(notify_db, endpoint_id=endpoint["id"], since=0))[
            "requeued"
        ] == 0
        with pytest.raises(NotFound):
            await registry.enable_endpoint(notify_db, endpoint_id="no-such-endpoint")


async def test_an_endpoint_left_disabled_stops_keeping_what_it_misses(notify_db: Database) -> None:
    """What a disabled endpoint misses is kept for a week, not for ever: one abandoned endpoint
    would otherwise grow by every event of the chain."""
    async with hooks(notify_db) as h:
        endpoint = await h.register("http://127.0.0.1:9/abandoned")
        async with notify_db.transaction() as s:
            await s.execute(
                update(WebhookEndpoint)
                .where(WebhookEndpoint.id == endpoint["id"])
                .values(
                    status="disabled",
                    disabled_reason="test",
                    disabled_at=time.time() - KEEP_WHILE_DISABLED_SECONDS + 60,
                )
            )
        await new_alert(notify_db, "fb-kept-1", now=time.time())
        assert [d.status for d in await h.deliveries(endpoint["id"])] == ["failed"]
        async with notify_db.transaction() as s:
            await s.execute(
                update(WebhookEndpoint)
                .where(WebhookEndpoint.id == endpoint["id"])
                .values(disabled_at=time.time() - KEEP_WHILE_DISABLED_SECONDS - 60)
            )
        await new_alert(notify_db, "fb-kept-2", now=time.time())
        assert len(await h.deliveries(endpoint["id"])) == 1


async def test_a_recovery_goes_a_chunk_at_a_time_and_takes_each_row_once(
    notify_db: Database, webhook_receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks of `RECOVER_CHUNK` in the order the rows failed, each read from the endpoint's due
    index: all of them, once each."""
    monkeypatch.setattr(registry, "RECOVER_CHUNK", 2)
    async with hooks(notify_db) as h:
        endpoint = await h.register(webhook_receiver.url("/chunks"))
        for n in range(5):
            await new_alert(notify_db, f"fb-chunk-{n}", now=h.clock.now - 100 + n)
        async with notify_db.transaction() as s:
            await s.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.endpoint_id == endpoint["id"])
                .values(status="failed", next_attempt_at=WebhookDelivery.created_at)
            )
        recovered = await registry.recover_endpoint(notify_db, endpoint_id=endpoint["id"], since=0)
        assert (recovered["requeued"], recovered["complete"]) == (5, True)
        assert {d.status for d in await h.deliveries(endpoint["id"])} == {"pending"}
        await h.send_due()
        assert len(webhook_receiver.wait_for(5, "/chunks")) == 5


async def test_a_recovered_old_delivery_is_retried_not_given_up_at_once(
    notify_db: Database, webhook_receiver: WebhookReceiver
) -> None:
    """A delivery recovered days after its event gets `MIN_ATTEMPTS` before it fails again: a
    receiver still busy (503, a chat service's 429) does not end a whole recovery at once."""
    async with hooks(notify_db) as h:
        endpoint = await h.register(webhook_receiver.url("/busy"))
        webhook_receiver.answer("/busy", 503)
        await new_alert(notify_db, "fb-old-1", now=time.time() - 2 * 86400)
        async with notify_db.transaction() as s:
            await s.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.endpoint_id == endpoint["id"])
                .values(status="failed", last_error="given up")
            )
        assert (await registry.recover_endpoint(notify_db, endpoint_id=endpoint["id"], since=0))[
            "requeued"
        ] == 1
        for attempt in range(1, MIN_ATTEMPTS + 1):
            await h.send_due()
            (row,) = await h.deliveries(endpoint["id"])
            assert row.attempts == attempt
            if attempt < MIN_ATTEMPTS:
                assert row.status == "pending", attempt
                h.clock.advance(RETRY_CAP_SECONDS + 1)
        assert row.status == "failed" and row.last_error.startswith(f"given up after {MIN_ATTEMPTS} attempts")


async def test_a_busy_receiver_s_retry_after_is_honoured_and_a_chat_channel_gets_two_at_a_time(
    notify_db: Database, webhook_receiver: WebhookReceiver
) -> None:
    """A 429 (or 503) with `Retry-After: 600` is tried again no sooner than that (5 s otherwise);
    a Slack or Teams endpoint has at most `CHAT_IN_FLIGHT` attempts at once, a standard one its
    whole share: chat services take about a message a second."""
    async with hooks(notify_db) as h:
        busy = await h.register(webhook_receiver.url("/busy"), ["alert.created"])
        webhook_receiver.answer("/busy", 429)
        webhook_receiver.extra_headers["/busy"] = {"Retry-After": "600"}
        await new_alert(notify_db, "fb-busy-1", now=h.clock.now)
        await h.send_due()
        (row,) = await h.deliveries(busy["id"])
        assert row.status == "pending" and row.next_attempt_at - h.clock.now > 590
        # The endpoint as a whole waits: a new event is not sent into the 429 either.
        webhook_receiver.answer("/busy")
        await new_alert(notify_db, "fb-busy-2", now=h.clock.now)
        await h.send_due()
        assert len(webhook_receiver.received) == 1
        h.clock.advance(601)
        await h.send_due()
        assert {d.status for d in await h.deliveries(busy["id"])} == {"delivered"}
        assert len(webhook_receiver.received) == 3
        async with notify_db.transaction() as s:
            await s.execute(delete(WebhookEndpoint).where(WebhookEndpoint.id == busy["id"]))
        chat = await h.register(webhook_receiver.url("/chat-slow"), ["alert.created"], format="slack")
        standard = await h.register(webhook_receiver.url("/std-slow"), ["alert.created"])
        webhook_receiver.hanging.update({"/chat-slow", "/std-slow"})
        try:
            for n in range(6):
                await new_alert(notify_db, f"fb-many-{n}", now=h.clock.now)
            assert await h.dispatcher.process_due() == CHAT_IN_FLIGHT + 6
            leased = {
                e["id"]: sum(d.next_attempt_at > h.clock.now for d in await h.deliveries(e["id"]))
                for e in (chat, standard)
            }
            assert leased == {chat["id"]: CHAT_IN_FLIGHT, standard["id"]: 6}
        finally:
            webhook_receiver.release()


async def test_an_endpoint_failing_for_24_hours_is_disabled(
    notify_db: Database, webhook_receiver: WebhookReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    async with hooks(notify_db) as h:
        endpoint = await h.register(webhook_receiver.url("/broken"))
        webhook_receiver.answer("/broken", 503)
        await new_alert(notify_db, "fb-broken-1", now=time.time())
        await h.send_due()
        started = (await h.endpoint(endpoint["id"])).failing_since
        assert started is not None and abs(started - h.clock.now) < 5
        # A success in between resets the count: 20 h of failures, one success, 20 h again.
        h.clock.advance(20 * 3600)
        await h.send_due()
        webhook_receiver.answer("/broken", 200)
        await new_alert(notify_db, "fb-broken-2", now=h.clock.now - 1)
        await h.send_due()
        assert (await h.endpoint(endpoint["id"])).failing_since is None
        webhook_receiver.answer("/broken", 503)
        await new_alert(notify_db, "fb-broken-3", now=h.clock.now - 1)
        await h.send_due()
        with caplog.at_level(logging.WARNING, logger="voc_notify.webhooks.dispatch"):
            for step in range(11):  # 22 h of failures, in 2 h steps with new events: still active
                h.clock.advance(2 * 3600)
                await new_alert(notify_db, f"fb-broken-step-{step}", now=h.clock.now - 1)
                await h.send_due()
            assert (await h.endpoint(endpoint["id"])).status == "active"
            h.clock.advance(2 * 3600 + 1)
            await new_alert(notify_db, "fb-broken-last", now=h.clock.now - 1)
            await h.send_due()
        state = await h.endpoint(endpoint["id"])
        assert state.status == "disabled" and "failed for 24 h" in (state.disabled_reason or "")
        assert any("disabled" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
        statuses = sorted(d.status for d in await h.deliveries(endpoint["id"]))
        assert statuses.count("failed") >= 1 and "pending" not in statuses


async def test_slack_and_teams_endpoints_get_their_shapes_signed(
    notify_db: Database, webhook_receiver: WebhookReceiver
) -> None:
    async with hooks(notify_db, public_url="https://voc.example.com") as h:
        slack = await h.register(webhook_receiver.url("/slack"), ["alert.created"], format="slack")
        teams = await h.register(webhook_receiver.url("/teams"), ["alert.created"], format="teams")
        the_plan = replace(plan(priority="urgent"), title="Deep clean before the next service")
        created = await new_alert(notify_db, "fb-chat-1", now=time.time(), the_plan=the_plan)
        assert created is not None
        await h.send_due()
        webhook_receiver.wait_for(1, "/slack")
        webhook_receiver.wait_for(1, "/teams")
        (message,) = webhook_receiver.verified(slack["secret"], "/slack")
        # The store (language en, Asia/Seoul) by its name, the category in words, not their ids
        assert message["text"] == "New alert (urgent): Cleanliness at Store 1"
        header, section, actions, context = message["blocks"]
        assert header["type"] == "header" and actions["type"] == "actions"
        assert actions["elements"][0]["url"] == f"https://voc.example.com/#/alerts/{created.alert.id}"
        lines = section["text"]["text"]
        assert lines.startswith("*Category*: Cleanliness\n*Priority*: urgent") and " KST" in lines
        assert created.alert.id not in lines and f"alert {created.alert.id}" in context["elements"][0]["text"]
        (posted,) = webhook_receiver.verified(teams["secret"], "/teams")
        # A Teams Workflows webhook's message: one Adaptive Card attachment
        assert posted["type"] == "message"
        (attachment,) = posted["attachments"]
        assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
        card = attachment["content"]
        assert (card["type"], card["version"], card["lang"]) == ("AdaptiveCard", "1.4", "en")
        heading, fact_set, footer = card["body"]
        assert (
            heading["text"] == "New alert (urgent): Cleanliness at Store 1"
            and heading["color"] == "Attention"
        )
        assert footer["text"].startswith("alert.created · ") and "fb-chat-1" in footer["text"]
        # People read the plan by its title; its id and version are in the footer with the ids.
        assert footer["text"].endswith(" · playbook test v1")
        assert card["actions"] == [
            {"type": "Action.OpenUrl", "title": "Open in the app", "url": actions["elements"][0]["url"]}
        ]
        facts = {f["title"]: f["value"] for f in fact_set["facts"]}
        assert facts["Category"] == "Cleanliness", facts
        assert facts["Playbook"] == "Deep clean before the next service", facts
        assert "*Playbook*: Deep clean before the next service" in lines
        # What says nothing is left out of a message people read ("degraded: " on every alert).
        assert all(value not in ("", "False", "None", "no") for value in facts.values()), facts
        assert "Missing context" not in facts and "degraded" not in lines


async def test_a_chat_channel_hears_a_step_of_a_merged_alert_once(
    notify_db: Database, webhook_receiver: WebhookReceiver
) -> None:
    """An acknowledgement of an alert answering two feedback items is one event per case: a
    receiver of the standard body gets both, a Slack channel one message."""
    async with hooks(notify_db) as h:
        standard = await h.register(webhook_receiver.url("/std"), ["alert.acknowledged"])
        chat = await h.register(webhook_receiver.url("/chat"), ["alert.acknowledged"], format="slack")
        created = await h.register(webhook_receiver.url("/created"), ["alert.created"], format="slack")
        first = await new_alert(notify_db, "fb-merge-1", now=time.time(), customer_id="cust-merge")
        again = await new_alert(notify_db, "fb-merge-2", now=time.time(), customer_id="cust-merge")
        assert first is not None and again is not None and again.alert.id == first.alert.id
        async with notify_db.transaction() as s:
            alert = await s.get(Alert, first.alert.id)
            assert alert is not None
            await lifecycle.acknowledge(s, alert=alert, principal=LEAD)
        await h.send_due()
        acks = webhook_receiver.wait_for(2, "/std")
        assert sorted(orjson.loads(r.body)["data"]["feedback_id"] for r in acks) == [
            "fb-merge-1",
            "fb-merge-2",
        ]
        assert {orjson.loads(r.body)["data"]["store_id"] for r in acks} == {"s1"}  # since the field was added
        webhook_receiver.wait_for(1, "/chat")
        assert len(await h.deliveries(chat["id"])) == 1
        (message,) = webhook_receiver.verified(chat["secret"], "/chat")
        assert (
            message["text"] == "Alert acknowledged at Store 1"
            and "*By*: lead" in message["blocks"][1]["text"]["text"]
        )
        assert len(await h.deliveries(standard["id"])) == 2
        # The repeat is said as one, not as a new alert.
        webhook_receiver.wait_for(2, "/created")
        messages = webhook_receiver.verified(created["secret"], "/created")
        new, repeat = sorted(messages, key=lambda m: str(m["text"]))
        assert new["text"] == "New alert (urgent): Cleanliness at Store 1"
        assert repeat["text"] == "Repeat complaint (urgent): Cleanliness at Store 1"
        assert "*Repeat complaints*: 1" in repeat["blocks"][1]["text"]["text"].splitlines()
        assert "Repeat" not in new["blocks"][1]["text"]["text"]


def test_a_chat_message_speaks_the_store_s_language_and_time() -> None:
    """A Korean store's channel reads Korean: labels, values in words, staff by name, the time in
    the store's zone, the customer's "no"; Slack's markup characters in a name are escaped."""
    directory = formats.ChatDirectory(
        stores={
            "s1": formats.StoreFacts("강남역점 <!channel>", "Asia/Seoul", "ko"),
            "s2": formats.StoreFacts("Downtown", "America/New_York", "en"),
            "s3": formats.StoreFacts("홍대점", "Asia/Seoul", "ko"),
        },
        staff={"st-1": "김민수", "st-2": "Jane Doe"},
        app_url="https://voc.example.com/",
    )
    escalated = {
        "type": "alert.escalated",
        "timestamp": "2026-12-07T05:03:00.000Z",
        "data": {"alert_id": "a1", "feedback_id": "fb-1", "store_id": "s1", "level": -1,
                 "roles": ["store_manager"], "recipient_staff_ids": ["st-1", "st-2"],
                 "escalated_at": "2026-12-07T05:03:00.000Z"},
    }  # fmt: skip
    message = formats.slack(escalated, directory)
    assert message["text"] == "알림 상향 전달 · 강남역점 &lt;!channel&gt;"  # mrkdwn: pings nobody
    assert message["blocks"][0]["text"]["text"] == "알림 상향 전달 · 강남역점 <!channel>"  # plain_text
    lines = message["blocks"][1]["text"]["text"]
    assert lines.splitlines() == [
        "*단계*: 해결 기한 초과",
        "*역할*: 점장",
        "*받는 사람*: 김민수, Jane Doe",
        "*전달*: 2026-12-07 14:03 KST",
    ]
    assert message["blocks"][2]["elements"][0] == {
        "type": "button", "text": {"type": "plain_text", "text": "앱에서 열기"},
        "url": "https://voc.example.com/#/alerts/a1",
    }  # fmt: skip
    answered = {
        "type": "follow_up.answered",
        "timestamp": "2026-12-07T11:00:00Z",
        "data": {"feedback_id": "fb-1", "store_id": "s2", "csat": 1, "satisfied": False,
                 "revisit_intent": False, "reopened_feedback_id": "fb-2", "vip": False},
    }  # fmt: skip
    (card,) = [a["content"] for a in formats.teams(answered, directory)["attachments"]]
    facts = {f["title"]: f["value"] for f in card["body"][1]["facts"]}
    assert facts == {"CSAT": "1", "Satisfied": "no", "Would return": "no", "Case reopened": "yes"}
    assert card["body"][2]["text"] == "follow_up.answered · 2026-12-07 06:00 EST · feedback fb-1"
    assert "actions" not in card  # no alert to open
    # An event about no store: the language and zone most stores have.
    # The erased customer's feedback ids are for systems, not a list people read.
    erased = {"type": "customer.erased", "timestamp": "2026-12-07T05:03:00Z",
              "data": {"customer_id": "c1", "erased_at": "2026-12-07T05:03:00Z",
                       "feedback_ids": [f"fb-{i}" for i in range(1000)]}}  # fmt: skip
    assert formats.slack(erased, directory)["blocks"][1]["text"]["text"] == "*삭제*: 2026-12-07 14:03 KST"
    assert "fb-1" not in str(formats.slack(erased, directory)) + str(formats.teams(erased, directory))
    # A body any receiver takes: the newest 1,000 of a long history, and a flag that there are more.
    (route,) = ROUTES["voc.profile.customer_erased"]
    many = events_pb2.CustomerErased(customer_id="c1", feedback_ids=[f"fb-{i}" for i in range(2500)])
    data = route.body(many, now=0)["data"]
    assert data["feedback_ids"] == [f"fb-{i}" for i in range(1000)] and data["feedback_ids_truncated"] is True
    few = route.body(events_pb2.CustomerErased(customer_id="c1", feedback_ids=["fb-1"]), now=0)["data"]
    assert few == {"customer_id": "c1", "feedback_ids": ["fb-1"]}
    # The plan by its title in the store's language, its id in the footer; by its id from a
    # producer before the title was carried.
    resolved = {"type": "alert.resolved", "timestamp": "2026-12-07T05:03:00Z",
                "data": {"alert_id": "a1", "store_id": "s1", "outcome": "resolved", "steps_done": 2,
                         "steps_total": 3, "playbook_id": "food-critical",
                         "playbook_title": "식품 안전 — 즉시 대응"}}  # fmt: skip
    said = formats.slack(resolved, directory)["blocks"]
    assert "*대응 매뉴얼*: 식품 안전 — 즉시 대응" in said[1]["text"]["text"].splitlines()
    assert said[3]["elements"][0]["text"].endswith(" · alert a1 · playbook food-critical")
    # The resolution's priority (carried for the case) does not make it read as an alarm.
    urgent = dict(resolved, data={**resolved["data"], "priority": "urgent"})
    said = formats.slack(urgent, directory)["blocks"]
    assert "긴급" not in str(said) and said == formats.slack(resolved, directory)["blocks"]
    card = formats.teams(urgent, directory)["attachments"][0]["content"]
    assert card["body"][0]["color"] == "Default"
    untitled = dict(resolved, data={k: v for k, v in resolved["data"].items() if k != "playbook_title"})
    said = formats.slack(untitled, directory)["blocks"]
    assert "*대응 매뉴얼*: food-critical" in said[1]["text"]["text"].splitlines()
    assert "playbook" not in said[3]["elements"][0]["text"]
    repeated = {"type": "alert.created", "timestamp": "2026-12-07T05:03:00Z",
                "data": {"alert_id": "a1", "store_id": "s1", "priority": "urgent",
                         "category": "food_safety", "updates": 2}}  # fmt: skip
    said = formats.slack(repeated, directory)
    assert said["blocks"][0]["text"]["text"].startswith("반복 불만 (긴급) · 식품 안전 · ")
    assert "*같은 고객의 반복 불만*: 2건" in said["blocks"][1]["text"]["text"].splitlines()
    # What a store app wrote is not said to people; a name cannot become a link in Teams.
    received = {"type": "feedback.received", "timestamp": "2026-12-07T05:03:00Z",
                "data": {"feedback_id": "fb-9", "store_id": "s2", "channel": "kiosk",
                         "touchpoint": "[Claim your refund](https://evil.example/r)"}}  # fmt: skip
    assert "evil" not in str(formats.slack(received, directory))
    assert "evil" not in str(formats.teams(received, directory))
    linked = formats.ChatDirectory(stores={"s2": formats.StoreFacts("[Win](https://x.example)", "UTC", "en")})
    card = formats.teams(received, linked)["attachments"][0]["content"]
    assert "](" not in str(card) and "[Win]\u200b(https://x.example)" in card["body"][0]["text"]
    named = dict(escalated, data={**escalated["data"], "level": 1})
    assert "*매장*" not in formats.slack(named, directory)["blocks"][1]["text"]["text"]
    assert (
        "&lt;!channel&gt;"
        in formats.slack(
            {"type": "feedback.corrected", "data": {"store_id": "s1", "corrected_by": "<!channel>"}},
            directory,
        )["blocks"][1]["text"]["text"]
    )


async def test_a_rotated_secret_signs_from_then_on(
    notify_db: Database, webhook_receiver: WebhookReceiver
) -> None:
    async with hooks(notify_db) as h:
        endpoint = await h.register(webhook_receiver.url("/rot"))
        rotated = await registry.rotate_secret(notify_db, endpoint_id=endpoint["id"], box=h.box)
        assert rotated["secret"] != endpoint["secret"] and rotated["secret"].startswith("whsec_")
        assert rotated["previous_secret_until"] == pytest.approx(time.time() + 86400, abs=60)
        await new_alert(notify_db, "fb-rot-1", now=time.time())
        await h.send_due()
        (arrived,) = webhook_receiver.wait_for(1, "/rot")
        assert Webhook(rotated["secret"]).verify(arrived.body, arrived.headers)["type"] == "alert.created"
        # For a day the replaced secret signs too (a second signature): a receiver switches
        # without a delivery failing verification.
        assert len(arrived.headers["webhook-signature"].split(" ")) == 2
        assert Webhook(endpoint["secret"]).verify(arrived.body, arrived.headers)["type"] == "alert.created"
        h.clock.advance(86400 + 1)
        await new_alert(notify_db, "fb-rot-2", now=h.clock.now)
        await h.send_due()
        later = webhook_receiver.wait_for(2, "/rot")[1]
        assert Webhook(rotated["secret"]).verify(later.body, later.headers)["type"] == "alert.created"
        with pytest.raises(WebhookVerificationError):
            Webhook(endpoint["secret"]).verify(later.body, later.headers)
        # A secret that leaked: rotated with no overlap, it signs nothing more at once.
        leaked = rotated["secret"]
        rotated = await registry.rotate_secret(
            notify_db, endpoint_id=endpoint["id"], box=h.box, keep_previous_seconds=0
        )
        assert rotated["previous_secret_until"] is None
        # Stored encrypted: the database alone cannot sign.
        stored = (await h.endpoint(endpoint["id"])).secret
        assert rotated["secret"] not in stored and rotated["secret"][6:] not in stored
        # The test message: sent now, recorded, signed with the new secret alone.
        result = await registry.send_test(notify_db, endpoint_id=endpoint["id"], sender=h.sender, box=h.box)
        assert result["ok"] and result["status_code"] == 200
        test = webhook_receiver.wait_for(3, "/rot")[2]
        assert Webhook(rotated["secret"]).verify(test.body, test.headers)["type"] == "webhook.test"
        with pytest.raises(WebhookVerificationError):
            Webhook(leaked).verify(test.body, test.headers)
        assert "webhook.test" in {a["event_type"] for a in await registry_attempts(h, endpoint["id"])}
        # A month on, what finished is forgotten.
        h.clock.advance(31 * 86400)
        await h.send_due()
        assert await registry_attempts(h, endpoint["id"]) == [] and await h.deliveries(endpoint["id"]) == []


async def test_parallel_rotations_answer_only_secrets_that_sign(
    running_system: RunningSystem, webhook_receiver: WebhookReceiver
) -> None:
    """20 rotations of one endpoint at once, over HTTP to the running service: each used to be a
    200 with its own secret while only the last one stored signed anything. Rotation is a
    compare-and-set on the secret it read: the losers are 409 problem+json and every secret
    answered was in force when it was answered; the one in force signs."""
    notify, admin = running_system.url("notify"), running_system.admin_headers
    hooks = f"{notify}/v1/admin/webhooks"
    async with httpx.AsyncClient(headers=admin, timeout=60) as client:
        created = await client.post(hooks, json={"url": webhook_receiver.url("/race"), "events": ["*"]})
        assert created.status_code == 201, created.text
        endpoint_id = created.json()["id"]
        try:
            # An overlap longer than a week is refused, naming the field.
            too_long = await client.post(
                f"{hooks}/{endpoint_id}/rotate-secret", json={"keep_previous_seconds": 8 * 86400}
            )
            assert [e["field"] for e in problem(too_long, 422)["errors"]] == ["body.keep_previous_seconds"]
            answers = await asyncio.gather(
                *(
                    client.post(f"{hooks}/{endpoint_id}/rotate-secret", json={"keep_previous_seconds": 0})
                    for _ in range(20)
                )
            )
            statuses = Counter(r.status_code for r in answers)
            assert set(statuses) <= {200, 409} and statuses[200] >= 1, statuses
            assert statuses[409] >= 1, f"every parallel rotation won: {statuses}"
            for lost in (r for r in answers if r.status_code == 409):
                assert problem(lost, 409)["detail"].startswith("The secret of webhook endpoint")
            won = [r.json()["secret"] for r in answers if r.status_code == 200]
            assert len(set(won)) == len(won)
            tested = await client.post(f"{hooks}/{endpoint_id}/test")
            assert tested.status_code == 200 and tested.json()["ok"] is True, tested.text
            (message,) = [
                m
                for m in webhook_receiver.wait_for(1, "/race")
                if m.webhook_id == tested.json()["delivery_id"]
            ]
            signing = []
            for secret in won:
                try:
                    Webhook(secret).verify(message.body, message.headers)
                    signing.append(secret)
                except WebhookVerificationError:
                    pass
            assert len(signing) == 1, "the secret in force is one a rotation answered"
        finally:
            await client.delete(f"{hooks}/{endpoint_id}")


@pytest.mark.parametrize(
    ("since", "blamed"),
    [
        ("2026-12-01T00:00:00", "needs a time zone offset"),
        ("2999-01-01T00:00:00Z", "is in the future"),
        ("yesterday", "datetime"),
    ],
)
async def test_recover_refuses_a_time_it_cannot_use(
    running_system: RunningSystem, webhook_receiver: WebhookReceiver, since: str, blamed: str
) -> None:
    """Over HTTP: a `since` without an offset, in the future or not a time is 422 naming
    `body.since`; an unknown endpoint 404; a good one answers how many were queued."""
    hooks = f"{running_system.url('notify')}/v1/admin/webhooks"
    async with httpx.AsyncClient(headers=running_system.admin_headers, timeout=30) as client:
        created = await client.post(hooks, json={"url": webhook_receiver.url("/recover"), "events": ["*"]})
        endpoint_id = created.json()["id"]
        try:
            refused = await client.post(f"{hooks}/{endpoint_id}/recover", json={"since": since})
            body = problem(refused, 422)
            assert body["errors"][0]["field"] == "body.since" and blamed in str(body), body
            unknown = await client.post(f"{hooks}/no-such/recover", json={"since": "2026-12-01T00:00:00Z"})
            assert problem(unknown, 404)
            fine = await client.post(
                f"{hooks}/{endpoint_id}/recover", json={"since": "2026-12-01T00:00:00+09:00"}
            )
            assert fine.status_code == 200 and fine.json() == {
                "id": endpoint_id,
                "since": "2026-11-30T15:00:00.000Z",
                "requeued": 0,
                "complete": True,
            }
        finally:
            await client.delete(f"{hooks}/{endpoint_id}")


async def test_other_services_events_are_heard_once(
    notify_db: Database, webhook_receiver: WebhookReceiver
) -> None:
    """The consumer's write (deliveries and the processed mark in one transaction): a redelivery
    enqueues nothing more. (Through NATS end to end: tests/e2e/test_webhooks.py.)"""
    async with hooks(notify_db) as h:
        endpoint = await h.register(webhook_receiver.url("/bus"))
        erased = events_pb2.CustomerErased(
            customer_id="cust-9", erased_at_ms=1_700_000_000_000, feedback_ids=["fb-9", "fb-8"]
        )
        for _ in range(2):
            await dbsync.write(
                notify_db, WebhookConsumer._write, "voc.profile.customer_erased", erased, "ev-1"
            )
        answered = events_pb2.FollowUpAnswered(
            feedback_id="fb-9", store_id="s1", customer_id="cust-9", csat=2, satisfied=False, answered_at_ms=1
        )
        await dbsync.write(
            notify_db, WebhookConsumer._write, "voc.feedback.follow_up_answered", answered, "ev-2"
        )
        assert [d.event_type for d in await h.deliveries(endpoint["id"])] == [
            "customer.erased",
            "follow_up.answered",
        ]
        await h.send_due()
        webhook_receiver.wait_for(2, "/bus")
        bodies = sorted(webhook_receiver.verified(endpoint["secret"], "/bus"), key=lambda b: str(b["type"]))
        assert bodies[0] == {
            "type": "customer.erased",
            "timestamp": "2023-11-14T22:13:20.000Z",
            "data": {
                "customer_id": "cust-9",
                "erased_at": "2023-11-14T22:13:20.000Z",
                "feedback_ids": ["fb-9", "fb-8"],  # receivers find their copies by these too
            },
        }
        assert bodies[1]["data"]["csat"] == 2 and bodies[1]["data"]["satisfied"] is False


async def test_webhook_work_yields_to_pages_while_the_loop_runs_late(
    notify_db: Database, webhook_receiver: WebhookReceiver
) -> None:
    """Pages first (#19): while notify's loop runs late, a pass waits for it (at most the gate's
    limit) and then takes a few deliveries, and a bus event waits before it is enqueued; once
    the loop catches up, the rest goes at full width. Nothing is dropped by waiting."""
    lag = LoopLag()
    gate = YieldGate(lag, max_wait=0.1, step=0.02)
    async with hooks(notify_db) as h:
        h.dispatcher.gate = gate
        endpoint = await h.register(webhook_receiver.url("/late"))
        for i in range(YIELDING_PASS + 4):
            await new_alert(notify_db, f"fb-late-{i}", now=time.time(), customer_id=f"cust-late-{i}")
        lag.seconds = 0.05  # pages are waiting 50 ms
        assert await h.dispatcher.process_due() == YIELDING_PASS
        await h.dispatcher.drain()
        assert gate.waits == 1
        lag.seconds = 0.0
        assert await h.dispatcher.process_due() == 4
        await h.dispatcher.drain()
        webhook_receiver.wait_for(YIELDING_PASS + 4, "/late")
        assert {d.status for d in await h.deliveries(endpoint["id"])} == {"delivered"}

        consumer = WebhookConsumer(notify_db, gate)
        lag.seconds = 0.05
        erased = events_pb2.CustomerErased(customer_id="cust-late", erased_at_ms=1_700_000_000_000)
        message = Msg(
            _client=None,  # type: ignore[arg-type]  # never acked here: the bus's loop does that
            subject="voc.profile.customer_erased",
            data=erased.SerializeToString(),
            headers={"Nats-Msg-Id": "ev-late"},
        )
        started = time.monotonic()
        await consumer.handle(message)
        assert time.monotonic() - started >= 0.1 and gate.waits == 2
        assert [d.event_type for d in await h.deliveries(endpoint["id"])][-1] == "customer.erased"


def test_a_chat_message_says_the_customer_s_no_but_not_a_flag_that_is_false() -> None:
    """follow_up.answered lost `satisfied: false`, the most important fact in it (the walk-through)."""
    body = {
        "type": "follow_up.answered",
        "timestamp": "2026-12-07T11:00:00Z",
        "data": {"feedback_id": "fb-1", "csat": 1, "satisfied": False, "revisit_intent": False, "vip": False},
    }
    lines = formats.slack(body)["blocks"][1]["text"]["text"]
    assert "*Satisfied*: no" in lines and "*Would return*: no" in lines and "vip" not in lines
    (card,) = [a["content"] for a in formats.teams(body)["attachments"]]
    facts = {f["title"]: f["value"] for f in card["body"][1]["facts"]}
    assert (facts["Satisfied"], facts["Would return"], "vip" in facts) == ("no", "no", False)


def test_the_catalog_covers_every_type_and_masks_what_identifies() -> None:
    mapped = {route.type for routes in ROUTES.values() for route in routes}
    # a chat message (slack, teams) is titled in words for every type, not with the raw type
    assert all(formats.title_of({"type": kind}) != kind for kind in EVENT_TYPES)
    assert mapped == set(EVENT_TYPES)  # follow_up.sent too: from notify's own voc.notify.follow_up_sent
    assert consumed_subjects() == ["voc.feedback.follow_up_answered", "voc.profile.customer_erased"]
    event = events_pb2.FeedbackReceived(
        text="김민수 010-1234-5678 국이 식었어요", received_at_ms=1_700_000_000_000
    )
    event.facts.feedback_id, event.facts.store_id, event.facts.channel = "fb-1", "s1", "kiosk"
    event.facts.category, event.facts.sentiment, event.facts.severity = "food_quality", "negative", "high"
    event.facts.ratings.csat = 1
    event.customer.phone, event.customer.email, event.customer.name = (
        "+821012345678",
        "minsu@example.com",
        "김민수",
    )
    event.customer.loyalty_id = "L-100234"
    event.confidence, event.model_version = 0.91, "hashlr-2"
    received, classified = (r.body(event, now=0) for r in ROUTES["voc.feedback.received"])
    assert received["data"] == {
        "feedback_id": "fb-1",
        "store_id": "s1",
        "channel": "kiosk",
        "ratings": {"csat": 1},
        "received_at": "2023-11-14T22:13:20.000Z",
        "customer": {
            "loyalty_id": "***0234",
            "phone": "***5678",
            "email": "m***@example.com",
            "name": "김**",
        },
    }
    text = orjson.dumps([received, classified]).decode()
    assert "5678" in text and "1234-5678" not in text and "국이" not in text and "minsu@" not in text
    assert classified["type"] == "feedback.classified"
    assert classified["data"]["classification"] == {
        "language": "",
        "sentiment": "negative",
        "score": 0.0,
        "category": "food_quality",
        "severity": "high",
        "model_version": "hashlr-2",
        "uncertain": False,
        "confidence": 0.91,
    }


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://hooks.example.com/x", "https"),
        ("https://user:pw@hooks.example.com/x", "userinfo"),
        ("https://10.0.0.8/x", "private"),
        ("https://127.0.0.1/x", "private"),
        ("https://169.254.169.254/latest/meta-data", "private"),
        ("https://[::1]/x", "private"),
        ("https://[::ffff:192.168.0.1]/x", "private"),
        # IPv6 forms that reach an IPv4 address: NAT64, 6to4, IPv4-compatible, Teredo, local NAT64.
        ("https://[64:ff9b::7f00:1]/x", "private"),
        ("https://[64:ff9b::a9fe:a9fe]/x", "private"),
        ("https://[2002:7f00:1::]/x", "private"),
        ("https://[::127.0.0.1]/x", "private"),
        ("https://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/x", "private"),
        ("https://[64:ff9b:1::5db8:d822]/x", "private"),
        # SIIT's IPv4-translated form, and IPv6 outside global unicast that Python 3.11 calls global.
        ("https://[::ffff:0:7f00:1]/x", "private"),
        ("https://[fec0::1]/x", "private"),
        ("https://[5f00::1]/x", "private"),
        ("https://[3fff::1]/x", "private"),
        ("https://localhost/x", "localhost"),
        ("ftp://hooks.example.com/x", "scheme"),
        ("https://hooks.example.com/x#frag", "fragment"),
        ("https://hooks.example.com:0/x", "port 0"),
    ],
)
def test_with_no_allowlist_only_https_to_public_addresses(url: str, why: str) -> None:
    with pytest.raises(UrlRefused, match=why) as refused:
        WebhookTargets(()).parse(url)
    if why in ("private", "localhost"):  # says how to allow one for a local test
        assert "VOC_WEBHOOK_ALLOWED_HOSTS" in str(refused.value)


def test_a_refusal_reads_in_a_urls_words() -> None:
    """The push endpoint checks say "endpoint"; a webhook's refusal says "URL", once: a plain
    replace answered "url: ambiguous URL URL" for https://xn--zz.com/."""
    targets = WebhookTargets(())
    with pytest.raises(UrlRefused) as refused:
        targets.parse("https://xn--zz.com/")
    assert str(refused.value) == "ambiguous URL"
    with pytest.raises(UrlRefused) as refused:
        targets.parse("https://user:pw@hooks.example.com/x")
    assert str(refused.value) == "userinfo in URL not allowed"


async def test_names_are_resolved_and_checked_at_registration_and_at_every_connection() -> None:
    public = WebhookTargets(())
    assert str(public.parse("https://93.184.216.34/hook")) == "https://93.184.216.34/hook"
    # A public IPv4 address through NAT64 or 6to4 stays reachable (an IPv6-only cluster's way out).
    assert public.parse("https://[64:ff9b::5db8:d822]/hook")
    assert public.parse("https://[2002:5db8:d822::1]/hook")
    # "vm" and "runsc" resolve to 127.0.0.1 here (/etc/hosts): a name is no way around the rule.
    host = next((h for h in ("vm", "runsc") if _resolves_to_loopback(h)), None)
    if host is None:
        pytest.skip("no name other than localhost resolves to loopback on this machine")
    with pytest.raises(UrlRefused, match="resolves to a private"):
        await public.check(f"https://{host}/hook")
    # At connection time (a name that passed registration and then rebinds): refused before connecting.
    with pytest.raises(OSError, match="non-public"):
        await PublicResolver().resolve(host, 443)
    sender = WebhookSender(public, timeout=2)
    try:
        attempt = await sender.send(f"https://{host}/hook", body=b"{}", headers={})
    finally:
        await sender.aclose()
    assert attempt.status_code is None and attempt.error == "non-public address refused"


def _resolves_to_loopback(host: str) -> bool:
    import socket

    try:
        return all(info[4][0].startswith("127.") for info in socket.getaddrinfo(host, 443))
    except OSError:
        return False


def test_an_allowlist_decides_with_the_push_allowlists_rules() -> None:
    targets = WebhookTargets(["hooks.example.com", "*.crm.example.net", "127.0.0.1:*"])
    assert targets.parse("https://hooks.example.com/a")
    assert targets.parse("https://eu.crm.example.net/a")
    assert targets.parse("http://127.0.0.1:9999/a")  # plain http only for a listed loopback host
    for url, why in (
        ("https://other.example.com/a", "not on allowlist"),
        ("https://hooks.example.com:8443/a", "not on allowlist"),
        ("http://hooks.example.com/a", "plain http"),
        ("https://10.1.2.3/a", "private"),
    ):
        with pytest.raises(UrlRefused, match=why):
            targets.parse(url)


def test_secrets_are_sealed_with_the_configured_key() -> None:
    box = SecretBox("k" * 40)
    sealed = box.seal("whsec_abc")
    assert box.open(sealed) == "whsec_abc" and "abc" not in sealed
    with pytest.raises(ValueError, match="another key"):
        SecretBox("j" * 40).open(sealed)


def test_production_refuses_a_development_webhook_key() -> None:
    with pytest.raises(ValueError, match="VOC_NOTIFY_WEBHOOK_KEY"):
        Settings(
            VOC_ENV="production",
            admin_token="a" * 10 + "Zq8xK2mP9vR4tW7yB3nF6hJ",
            internal_token="b" * 10 + "Zq8xK2mP9vR4tW7yB3nF6hJ",
            jwt_secret="c" * 10 + "Zq8xK2mP9vR4tW7yB3nF6hJ",
            webhook_key="change-me",
        )


def test_a_rotated_secret_sealed_with_a_changed_key_is_left_out_not_fatal() -> None:
    """After VOC_NOTIFY_WEBHOOK_KEY changed, rotating is how an endpoint recovers: the replaced
    secret (sealed with the old key) no longer opens, and the new one signs alone at once."""
    old_box, new_box = SecretBox("the key before"), SecretBox("the key after")
    current = new_box.seal("whsec_" + "A" * 43 + "=")
    replaced = old_box.seal("whsec_" + "B" * 43 + "=")
    now = time.time()
    assert new_box.open_signing(current, replaced, now + 3600, now=now) == ("whsec_" + "A" * 43 + "=", None)
    with pytest.raises(ValueError, match="another key"):
        new_box.open_signing(replaced, None, None, now=now)  # the secret itself: still an error
    both = new_box.open_signing(current, new_box.seal("whsec_" + "C" * 43 + "="), now + 1, now=now)
    assert both[1] == "whsec_" + "C" * 43 + "="
    assert new_box.open_signing(current, replaced, now - 1, now=now)[1] is None  # the overlap ended
