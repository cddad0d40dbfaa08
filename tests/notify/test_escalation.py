"""Escalation timers live in the database: they fire once, page the next roles, and an
acknowledgement stops all further paging. Also the degraded paths of the alert pipeline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.conftest import DatabaseFactory
from voc.common.v1 import common_pb2
from voc_notify import alerts, lifecycle, views
from voc_notify.clients import Upstreams
from voc_notify.facts import UNKNOWN_CUSTOMER, AlertInput, EscalationStep, Feedback, Plan, Sla
from voc_notify.models import Alert, Delivery, Device, EscalationTimer, Staff, Store, outbox_table
from voc_notify.settings import Settings
from voc_notify.stream import AlertBroker
from voc_notify.workers import EscalationWorker
from voc_platform import migrations
from voc_platform.db import Database
from voc_platform.identity import Principal

MIGRATIONS = Path(alerts.__file__).parent / "migrations"

PLAN = Plan(
    playbook_id="test",
    version=1,
    priority="urgent",
    title="t",
    notify_roles=("shift_lead",),
    sla=Sla(ack_seconds=60, resolve_seconds=600),
    escalation=(EscalationStep(60, ("store_manager",)), EscalationStep(120, ("area_manager",))),
)


@pytest.fixture
async def db(databases: DatabaseFactory) -> AsyncIterator[Database]:
    database = Database(databases.url("notify_esc"))
    await migrations.upgrade(database, MIGRATIONS, name="notify")
    async with database.transaction() as s:
        s.add(Store(id="s1", name="Store 1", area_id="a1", timezone="Asia/Seoul", language="en"))
        for sid, role, stores, area in (
            ("lead", "shift_lead", ["s1"], None),
            ("mgr", "store_manager", ["s1"], None),
            ("area", "area_manager", [], "a1"),
        ):
            s.add(
                Staff(
                    id=sid,
                    name=sid,
                    email=f"{sid}@x.demo",
                    password_hash="x",
                    role=role,
                    store_ids=stores,
                    area_id=area,
                    language="en",
                    active=True,
                )
            )
            await s.flush()
            s.add(
                Device(
                    id=f"dev-{sid}",
                    staff_id=sid,
                    endpoint=f"https://push.example/{sid}",
                    endpoint_hash=sid,
                    p256dh="k",
                    auth="a",
                    created_at=time.time(),
                )
            )
    yield database
    await database.dispose()


async def new_alert(db: Database, feedback_id: str, now: float, plan: Plan = PLAN) -> str:
    async with db.session() as s:
        store = await s.get(Store, "s1")
    assert store is not None
    facts = AlertInput(
        feedback=Feedback(id=feedback_id, category="cleanliness", text="dirty"),
        store=store,
        customer=UNKNOWN_CUSTOMER,
        plan=plan,
        language="en",
    )
    created = await alerts.write_alert(db, alerts.new_alert_sync, facts=facts, now=now)
    assert created is not None
    assert [r.id for r in created.recipients] == ["lead"]
    return created.alert.id


async def deliveries_for(db: Database, alert_id: str) -> list[str]:
    async with db.session() as s:
        rows = await s.scalars(select(Delivery).where(Delivery.alert_id == alert_id).order_by(Delivery.level))
        return [f"{d.staff_id}:{d.status}" for d in rows]


async def test_unacknowledged_alert_escalates_level_by_level(db: Database) -> None:
    now = time.time()
    alert_id = await new_alert(db, "f-esc", now)
    worker = EscalationWorker(db, Settings(), AlertBroker(), lambda: None)
    assert await worker.fire_due(now + 30) == 0
    assert await worker.fire_due(now + 61) == 1
    assert await deliveries_for(db, alert_id) == ["lead:pending", "mgr:pending"]
    assert await worker.fire_due(now + 61) == 0, "a timer fires once"
    assert await worker.fire_due(now + 121) == 1
    assert await deliveries_for(db, alert_id) == ["lead:pending", "mgr:pending", "area:pending"]
    async with db.session() as s:
        events = await s.scalar(
            select(func.count())
            .select_from(outbox_table)
            .where(outbox_table.c.subject == "voc.alert.escalated")
        )
    assert events == 2


async def test_ack_stops_paging_at_once(db: Database) -> None:
    now = time.time()
    alert_id = await new_alert(db, "f-ack", now)
    async with db.transaction() as s:
        alert = await s.get(Alert, alert_id)
        assert alert is not None
        await lifecycle.acknowledge(
            s, alert=alert, principal=Principal("lead", "shift_lead", ("s1",), None), now=now + 10
        )
    worker = EscalationWorker(db, Settings(), AlertBroker(), lambda: None)
    await worker.fire_due(now + 500)
    assert await deliveries_for(db, alert_id) == ["lead:cancelled"], "no push after the ack"
    async with db.session() as s:
        states = set(
            await s.scalars(
                select(EscalationTimer.status).where(
                    EscalationTimer.alert_id == alert_id, EscalationTimer.kind == "ack"
                )
            )
        )
    assert states == {"cancelled"}


async def test_missed_resolve_sla_tells_the_manager(db: Database) -> None:
    now = time.time()
    alert_id = await new_alert(db, "f-sla", now)
    async with db.transaction() as s:
        alert = await s.get(Alert, alert_id)
        assert alert is not None
        await lifecycle.acknowledge(
            s, alert=alert, principal=Principal("lead", "shift_lead", ("s1",), None), now=now + 5
        )
    worker = EscalationWorker(db, Settings(), AlertBroker(), lambda: None)
    await worker.fire_due(now + 601)
    assert "mgr:pending" in await deliveries_for(db, alert_id)


async def test_praise_left_unresolved_pages_nobody(db: Database) -> None:
    """An FYI plan (praise, priority info) keeps its SLA for the record, but nothing is put right
    when it is not resolved: no resolve timer, so no manager is paged a day later."""
    praise = Plan(
        playbook_id="praise-default",
        version=1,
        priority="info",
        title="Praise",
        notify_roles=("shift_lead",),
        sla=Sla(ack_seconds=4 * 3600, resolve_seconds=24 * 3600),
    )
    now = time.time()
    alert_id = await new_alert(db, "f-praise", now, plan=praise)
    async with db.session() as s:
        timers = (await s.scalars(select(EscalationTimer).where(EscalationTimer.alert_id == alert_id))).all()
    assert timers == []
    await EscalationWorker(db, Settings(), AlertBroker(), lambda: None).fire_due(now + 25 * 3600)
    assert await deliveries_for(db, alert_id) == ["lead:pending"]


async def test_timers_survive_a_restart(db: Database, databases: DatabaseFactory) -> None:
    now = time.time()
    alert_id = await new_alert(db, "f-restart", now)
    # A new Database object (a restarted process) sees the same pending timers.
    fresh = Database(db.url)
    try:
        fired = await EscalationWorker(fresh, Settings(), AlertBroker(), lambda: None).fire_due(now + 61)
        assert fired == 1
        assert "mgr:pending" in await deliveries_for(fresh, alert_id)
    finally:
        await fresh.dispose()


async def test_degraded_paths_when_profile_and_actions_are_down() -> None:
    from voc_cli.supervisor import free_port

    settings = Settings(
        profile_grpc_target=f"127.0.0.1:{free_port()}",
        actions_grpc_target=f"127.0.0.1:{free_port()}",
        grpc_timeout_seconds=0.5,
    )
    upstreams = Upstreams(settings)
    try:
        facts = common_pb2.FeedbackFacts(feedback_id="f", category="food_safety", severity="critical")
        context, profile_down = await upstreams.customer_context(
            identifiers=common_pb2.CustomerIdentifiers(loyalty_id="L-1"), facts=facts
        )
        assert context is None and profile_down
        anonymous, down = await upstreams.customer_context(
            identifiers=common_pb2.CustomerIdentifiers(), facts=facts
        )
        assert anonymous is None and not down, "anonymous feedback needs no profile call"
        plan, actions_down = await upstreams.action_plan(facts=facts, context=None, store=None, language="ko")
        assert actions_down and plan.playbook_id == "builtin-food_safety"
        assert plan.priority == "urgent" and plan.steps
        assert "actions service unavailable" in plan.matched_because[0]
    finally:
        await upstreams.close()


async def test_a_due_timer_waits_for_an_ack_in_progress_instead_of_deadlocking(db: Database) -> None:
    """PostgreSQL: an acknowledgement locks the alert and then its timers; the escalation pass
    locks due timers and then the alert. The pass now skips an alert a staff action holds (the
    timer stays pending), so neither waits for the other, and the next pass sees the ack."""
    if db.sqlite:
        pytest.skip("SQLite runs one writer at a time: the two transactions cannot overlap")
    now = time.time()
    alert_id = await new_alert(db, "f-race", now)
    worker = EscalationWorker(db, Settings(), AlertBroker(), lambda: None)
    lead = Principal("lead", "shift_lead", ("s1",), None)
    held, release = asyncio.Event(), asyncio.Event()

    async def acknowledge() -> None:
        async with db.transaction() as s:
            alert = await views.visible_alert(s, alert_id=alert_id, principal=lead, for_update=True)
            held.set()
            await release.wait()
            await lifecycle.acknowledge(s, alert=alert, principal=lead, now=now + 61)

    ack = asyncio.create_task(acknowledge())
    await held.wait()
    await asyncio.wait_for(worker.fire_due(now + 61), 10)  # does not wait for the ack's lock
    release.set()
    await asyncio.wait_for(ack, 10)
    await worker.fire_due(now + 62)
    assert await deliveries_for(db, alert_id) == ["lead:cancelled"], "no page after the ack"
