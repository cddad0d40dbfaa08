"""Delivery and escalation with the real workers, a real database and the push-service
emulator over loopback: retries with back-off on 429/5xx, removal of dead subscriptions, the
allowlist at send time, held pushes, no page after an acknowledgement, and timers that survive
a restart of the process."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from tests.notify.conftest import SEOUL, add_device, deliveries, events, new_alert, plan
from voc_cli.push_emulator import PushEmulator
from voc_notify import alerts, lifecycle
from voc_notify.facts import UNKNOWN_CUSTOMER, AlertInput, Feedback
from voc_notify.models import Alert, Device, EscalationTimer, Staff, Store
from voc_notify.settings import Settings
from voc_notify.stream import AlertBroker
from voc_notify.webpush import DEFAULT_PUSH_HOSTS, PushAllowlist, VapidKeys, WebPushSender
from voc_notify.workers import DeliveryWorker, EscalationWorker, lease_alert_deliveries
from voc_platform import dbsync
from voc_platform.db import Database
from voc_platform.dbsync import Reader
from voc_platform.identity import Principal

VAPID = VapidKeys.generate()


@dataclass
class Workers:
    delivery: DeliveryWorker
    escalation: EscalationWorker


@asynccontextmanager
async def workers(db: Database, emulator: PushEmulator, *, run: bool = False) -> AsyncIterator[Workers]:
    """The notify workers as `python -m voc_notify` builds them; `run` starts their loops."""
    settings = Settings(escalation_poll_seconds=0.1)
    sender = WebPushSender(
        vapid=VAPID,
        subject=settings.vapid_subject,
        allowlist=PushAllowlist([*DEFAULT_PUSH_HOSTS, f"127.0.0.1:{emulator.port}"]),
        timeout=2.0,
    )
    delivery = DeliveryWorker(db, sender, settings)
    escalation = EscalationWorker(db, settings, AlertBroker(), delivery.wake)
    tasks = [asyncio.create_task(delivery.run()), asyncio.create_task(escalation.run())] if run else []
    try:
        yield Workers(delivery, escalation)
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await sender.aclose()


async def until(condition: Callable[[], Awaitable[Any]], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := await condition()):
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)
    return value


async def phone(db: Database, emulator: PushEmulator, staff_id: str) -> str:
    subscription = emulator.new_subscription(label=staff_id)
    await add_device(
        db, staff_id, subscription, f"dev-{staff_id}-{PushEmulator.subscription_id(subscription)[:8]}"
    )
    return PushEmulator.subscription_id(subscription)


async def test_retries_with_back_off_on_429_and_5xx_then_delivers(
    notify_db: Database, push_emulator: PushEmulator
) -> None:
    lead = await phone(notify_db, push_emulator, "lead")
    push_emulator.fail_next(lead, 429, retry_after=1)
    push_emulator.fail_next(lead, 503)
    created = await new_alert(notify_db, "f-retry", now=time.time())
    assert created is not None
    async with workers(notify_db, push_emulator) as w:
        assert await w.delivery.process_due() == 1
        [first] = await deliveries(notify_db, created.alert.id)
        assert first.status == "pending" and first.attempts == 1 and first.last_error
        assert first.next_attempt_at - time.time() > 0.8, "Retry-After is honoured"
        assert await w.delivery.process_due() == 0, "not due before the back-off"

        async def accepted() -> bool:
            await w.delivery.process_due()
            return (await deliveries(notify_db, created.alert.id))[0].status == "accepted"

        await until(accepted)
    [done] = await deliveries(notify_db, created.alert.id)
    assert done.attempts == 3 and done.accepted_at is not None
    assert [status for sid, status in push_emulator.responses if sid == lead] == [429, 503, 201]
    [push] = push_emulator.received(lead)
    assert push.json["alert_id"] == created.alert.id
    assert push.topic == created.alert.id.replace("-", "") and push.urgency == "high" and push.ttl >= 900
    assert [e["event_id"] for e in await events(notify_db, "voc.alert.delivered")] == [f"delivered:{done.id}"]


async def test_each_phone_gets_the_push_in_its_owners_language(
    notify_db: Database, push_emulator: PushEmulator
) -> None:
    """A Korean store with an English-speaking shift lead: the alert row (the inbox) keeps the
    store's language, each lock screen gets its owner's; an update keeps that per phone."""
    async with notify_db.transaction() as s:
        store = await s.get(Store, "s1")
        lead = await s.get(Staff, "lead")
        manager = await s.get(Staff, "mgr")
        assert store is not None and lead is not None and manager is not None
        store.language, store.name = "ko", "강남역점"
        lead.language, manager.language = "en", "ko"
    english = await phone(notify_db, push_emulator, "lead")
    korean = await phone(notify_db, push_emulator, "mgr")
    both = plan(roles=("shift_lead", "store_manager"))
    created = await new_alert(notify_db, "f-lang", now=time.time(), the_plan=both, customer_id="c-lang")
    assert created is not None
    async with workers(notify_db, push_emulator) as w:
        assert await w.delivery.process_due() == 2
        [en] = push_emulator.received(english)
        [ko] = push_emulator.received(korean)
        assert en.json["title"] == "[URGENT] Cleanliness · 강남역점", en.json["title"]
        assert ko.json["title"] == "[긴급] 청결 · 강남역점", ko.json["title"]
        assert en.json["body"].startswith("김**") and "text of f-lang" in en.json["body"]
        await new_alert(notify_db, "f-lang-2", now=time.time(), the_plan=both, customer_id="c-lang")
        assert await w.delivery.process_due() == 2
    assert push_emulator.received(english)[-1].json["title"] == "[URGENT] Cleanliness · 강남역점 (+1 more)"
    assert push_emulator.received(korean)[-1].json["title"] == "[긴급] 청결 · 강남역점 (추가 1건)"
    assert "text of f-lang-2" in push_emulator.received(english)[-1].json["body"]


async def test_gone_subscriptions_are_removed(notify_db: Database, push_emulator: PushEmulator) -> None:
    expired = await phone(notify_db, push_emulator, "lead")
    unknown = await phone(notify_db, push_emulator, "lead")
    push_emulator.expire(expired)  # answers 410
    async with notify_db.transaction() as s:  # an endpoint the push service never heard of: 404
        device = await s.scalar(select(Device).where(Device.endpoint.endswith(unknown)))
        assert device is not None
        device.endpoint = device.endpoint.replace(unknown, "no-such-subscription")
    created = await new_alert(notify_db, "f-gone", now=time.time())
    assert created is not None
    async with workers(notify_db, push_emulator) as w:
        assert await w.delivery.process_due() == 2
    rows = await deliveries(notify_db, created.alert.id)
    assert sorted(d.status for d in rows) == ["gone", "gone"]
    answered = {
        sid: status for sid, status in push_emulator.responses if sid in (expired, "no-such-subscription")
    }
    assert answered == {expired: 410, "no-such-subscription": 404}
    async with notify_db.session() as s:
        assert list(await s.scalars(select(Device.id).where(Device.staff_id == "lead"))) == []


async def test_an_endpoint_off_the_allowlist_is_never_requested(
    notify_db: Database, push_emulator: PushEmulator
) -> None:
    # A row that slipped in before the allowlist changed: checked again before every send.
    await add_device(
        notify_db,
        "lead",
        {"endpoint": "https://169.254.169.254/latest/meta-data", "keys": {"p256dh": "k", "auth": "a"}},
        "dev-evil",
    )
    created = await new_alert(notify_db, "f-ssrf", now=time.time())
    assert created is not None
    async with workers(notify_db, push_emulator) as w:
        assert await w.delivery.process_due() == 1
    [row] = await deliveries(notify_db, created.alert.id)
    assert row.status == "failed" and row.attempts == 1 and "allow" in (row.last_error or "").lower()


async def test_a_held_push_goes_out_when_quiet_hours_end(
    notify_db: Database, push_emulator: PushEmulator
) -> None:
    lead = await phone(notify_db, push_emulator, "lead")
    async with notify_db.transaction() as s:
        store = await s.get(Store, "s1")
        assert store is not None
        local = datetime.now(SEOUL)  # quiet from an hour ago until an hour from now
        store.quiet_start = (local - timedelta(hours=1)).strftime("%H:%M")
        store.quiet_end = (local + timedelta(hours=1)).strftime("%H:%M")
    created = await new_alert(notify_db, "f-held", now=time.time(), the_plan=plan(priority="normal"))
    assert created is not None
    [held] = await deliveries(notify_db, created.alert.id)
    assert held.held_until is not None and held.held_until > time.time() + 3000
    async with workers(notify_db, push_emulator) as w:
        assert await w.delivery.process_due() == 0, "held, not dropped"
        assert await w.delivery.process_due(now=held.held_until + 1) == 1
    assert [p.json["alert_id"] for p in push_emulator.received(lead)] == [created.alert.id]


async def test_unacknowledged_alert_pages_the_next_level_with_running_workers(
    notify_db: Database, push_emulator: PushEmulator
) -> None:
    lead = await phone(notify_db, push_emulator, "lead")
    mgr = await phone(notify_db, push_emulator, "mgr")
    created = await new_alert(notify_db, "f-page", now=time.time(), the_plan=plan(after=1))
    assert created is not None
    async with workers(notify_db, push_emulator, run=True) as w:
        w.delivery.wake()
        await push_emulator.wait_for(lambda p: p.subscription_id == lead, timeout=10)
        push = await push_emulator.wait_for(lambda p: p.subscription_id == mgr, timeout=10)
    assert push.json["alert_id"] == created.alert.id


async def test_no_notification_after_ack(notify_db: Database, push_emulator: PushEmulator) -> None:
    lead = await phone(notify_db, push_emulator, "lead")
    mgr = await phone(notify_db, push_emulator, "mgr")
    area = await phone(notify_db, push_emulator, "area")
    now = time.time()
    created = await new_alert(notify_db, "f-ack-stop", now=now, the_plan=plan(after=3))
    assert created is not None
    async with workers(notify_db, push_emulator, run=True) as w:
        w.delivery.wake()
        await push_emulator.wait_for(lambda p: p.subscription_id == lead, timeout=10)
        async with notify_db.transaction() as s:
            alert = await s.get(Alert, created.alert.id)
            assert alert is not None
            await lifecycle.acknowledge(
                s, alert=alert, principal=Principal("lead", "shift_lead", ("s1",), None)
            )
        # Well past every escalation step (and the resolve SLA is for the manager, not a page
        # to the lead): only the lead's one push ever went out.
        await w.escalation.fire_due(now + 60)
        await w.delivery.process_due(now=now + 60)
    assert len(push_emulator.received(lead)) == 1
    assert push_emulator.attempts(mgr) == 0 and push_emulator.attempts(area) == 0
    async with notify_db.session() as s:
        states = set(
            await s.scalars(
                select(EscalationTimer.status).where(
                    EscalationTimer.alert_id == created.alert.id, EscalationTimer.kind == "ack"
                )
            )
        )
    assert states == {"cancelled"}


async def test_timers_survive_a_restart_of_the_process(
    notify_db: Database, push_emulator: PushEmulator
) -> None:
    lead = await phone(notify_db, push_emulator, "lead")
    mgr = await phone(notify_db, push_emulator, "mgr")
    created = await new_alert(notify_db, "f-restart-2", now=time.time(), the_plan=plan(after=1))
    assert created is not None
    async with workers(notify_db, push_emulator) as w:
        assert await w.delivery.process_due() == 1
    assert [p.subscription_id for p in push_emulator.received(lead)] == [lead]
    # The "process" stopped before the timer fired; a new one (new connection pool, new
    # workers) finds the timer in the database and pages the manager.
    await notify_db.dispose()
    restarted = Database(notify_db.url)
    try:
        async with workers(restarted, push_emulator, run=True):
            push = await push_emulator.wait_for(lambda p: p.subscription_id == mgr, timeout=10)
        assert push.json["alert_id"] == created.alert.id
        async with restarted.session() as s:
            timer = await s.scalar(
                select(EscalationTimer).where(
                    EscalationTimer.alert_id == created.alert.id, EscalationTimer.kind == "ack"
                )
            )
        assert timer is not None and timer.status == "fired"
    finally:
        await restarted.dispose()


async def test_the_alerts_first_pushes_are_leased_in_its_transaction_and_sent_right_after(
    notify_db: Database, push_emulator: PushEmulator
) -> None:
    """What notify's consumer does for a new alert: lease its due deliveries inside the alert's
    transaction (so no worker pass takes them too) and send them once it committed."""
    from voc_notify.workers import LEASE_SECONDS

    lead = await phone(notify_db, push_emulator, "lead")
    now = time.time()
    async with notify_db.session() as s:
        store = await s.get(Store, "s1")
    assert store is not None
    facts = AlertInput(
        feedback=Feedback(id="f-direct", category="cleanliness", text="text of f-direct"),
        store=store,
        customer=UNKNOWN_CUSTOMER,
        plan=plan(),
        language="en",
    )

    def hop(reader: Reader) -> tuple[alerts.NewAlert | None, list[Any]]:
        created = alerts.new_alert_sync(reader, facts=facts, now=now)
        assert created is not None
        return created, lease_alert_deliveries(reader, alert_id=created.alert.id, now=now)

    created, leased = await dbsync.write(notify_db, hop)
    assert created is not None
    alert_id = created.alert.id
    assert [row.delivery_id for row in leased] == [d.id for d in await deliveries(notify_db, alert_id)]
    async with workers(notify_db, push_emulator) as w:
        assert await w.delivery.process_due() == 0, "leased by the consumer: the worker keeps off"
        assert await w.delivery.send_leased(leased) == 1
        assert await w.delivery.process_due(now=now + LEASE_SECONDS + 1) == 0, "sent once, not again"
    [row] = await deliveries(notify_db, alert_id)
    assert row.status == "accepted" and row.attempts == 1
    assert [p.json["alert_id"] for p in push_emulator.received(lead)] == [alert_id]
    assert [e["event_id"] for e in await events(notify_db, "voc.alert.delivered")] == [f"delivered:{row.id}"]


async def test_leased_first_pushes_that_were_never_sent_go_out_when_the_lease_runs_out(
    notify_db: Database, push_emulator: PushEmulator
) -> None:
    """The process died between the alert's commit and its first pushes: nothing is lost, the
    worker's pass sends them once the lease has run out."""
    from voc_notify.workers import LEASE_SECONDS
    from voc_platform.dbsync import Reader

    lead = await phone(notify_db, push_emulator, "lead")
    now = time.time()
    created = await new_alert(notify_db, "f-crash", now=now)
    assert created is not None
    async with notify_db.transaction() as s:
        leased = await s.run_sync(
            lambda sync: lease_alert_deliveries(
                Reader.of(sync.connection()), alert_id=created.alert.id, now=now
            )
        )
    assert len(leased) == 1  # ... and the process dies here, before `send_leased`
    async with workers(notify_db, push_emulator) as w:
        assert await w.delivery.process_due() == 0
        assert await w.delivery.process_due(now=now + LEASE_SECONDS + 1) == 1
    assert [p.json["alert_id"] for p in push_emulator.received(lead)] == [created.alert.id]
    [row] = await deliveries(notify_db, created.alert.id)
    assert row.status == "accepted" and row.attempts == 1


async def test_concurrent_consumers_record_outcomes_for_shared_phones_without_deadlock(
    notify_db: Database, push_emulator: PushEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    """Every consumer task records its alert's push outcomes in its own transaction, and the
    alerts share the same phones: on PostgreSQL, updates of the same device rows in different
    orders deadlocked (an unrecorded accepted push was then sent again after its lease). Rows
    are updated in one global order, so twenty alerts at once all record cleanly, once."""
    from voc_platform.dbsync import Reader

    phones = [await phone(notify_db, push_emulator, staff) for staff in ("lead", "lead", "mgr", "mgr")]
    both = plan(roles=("shift_lead", "store_manager"))
    leased_sets = []
    for i in range(20):
        created = await new_alert(notify_db, f"f-many-{i}", now=time.time(), the_plan=both)
        assert created is not None and created.deliveries == 4
        async with notify_db.transaction() as s:
            leased_sets.append(
                await s.run_sync(
                    lambda sync, alert_id=created.alert.id: lease_alert_deliveries(
                        Reader.of(sync.connection()), alert_id=alert_id, now=time.time()
                    )
                )
            )
    for rows in leased_sets[::2]:
        rows.reverse()  # half of them record their phones in the opposite order
    caplog.set_level("WARNING", logger="voc_notify.workers")
    async with workers(notify_db, push_emulator) as w:
        accepted = await asyncio.gather(*(w.delivery.send_leased(rows) for rows in leased_sets))
    assert accepted == [4] * 20
    assert not [r for r in caplog.records if "trying again" in r.getMessage()], "no failed attempt"
    for sid in phones:
        got = [p.json["alert_id"] for p in push_emulator.received(sid)]
        assert len(got) == 20 and len(set(got)) == 20, "one push per alert and phone"
    assert len(await events(notify_db, "voc.alert.delivered")) == 80
