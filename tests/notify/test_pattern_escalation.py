"""A pattern alert climbs its plan's escalation ladder like any alert (#18 §3): unacknowledged,
its timer pages the next role (the area manager here) once; an acknowledgement stops it; it
publishes no `voc.alert.escalated` (a store-level alert is on no customer's timeline or case).
On a real database (SQLite or PostgreSQL)."""

from __future__ import annotations

import dataclasses
import time

from sqlalchemy import func, select

from tests.notify.conftest import add_device
from tests.notify.test_patterns import PLAN, _record, _spike, _store
from voc_notify import lifecycle, patterns
from voc_notify.facts import EscalationStep
from voc_notify.models import Alert, Delivery, outbox_table
from voc_notify.settings import Settings
from voc_notify.stream import AlertBroker
from voc_notify.workers import EscalationWorker
from voc_platform import dbsync
from voc_platform.db import Database
from voc_platform.identity import Principal

LADDER = dataclasses.replace(PLAN, escalation=(EscalationStep(300, ("area_manager",)),))


def subscription(staff_id: str) -> dict[str, object]:
    return {"endpoint": f"https://push.example.test/sub/{staff_id}", "keys": {"p256dh": "k", "auth": "a"}}


async def paged(db: Database, alert_id: str) -> list[str]:
    async with db.session() as s:
        rows = await s.scalars(select(Delivery).where(Delivery.alert_id == alert_id).order_by(Delivery.level))
        return [f"{d.staff_id}:{d.level}" for d in rows]


async def open_pattern(db: Database, now: float, prefix: str) -> Alert:
    for staff_id in ("mgr", "area"):
        await add_device(db, staff_id, subscription(staff_id), f"dev-{prefix}-{staff_id}")
    for i in range(2):
        assert await _record(db, f"{prefix}{i}", f"c{i}", now=now + i) is None
    spike = await _spike(db, f"{prefix}2", "c2", now=now + 2)
    opened = await dbsync.write(
        db, patterns.raise_pattern_sync, spike=spike, store=await _store(db, "s1"), plan=LADDER,
        language="en", repush_seconds=300, now=now + 2,
    )  # fmt: skip
    assert opened is not None and opened.created
    return opened.alert


async def escalated_events(db: Database) -> int:
    async with db.session() as s:
        count = (
            select(func.count())
            .select_from(outbox_table)
            .where(outbox_table.c.subject == "voc.alert.escalated")
        )
        return int(await s.scalar(count) or 0)


async def test_an_unacknowledged_pattern_alert_pages_the_next_role(notify_db: Database) -> None:
    now = time.time()
    alert = await open_pattern(notify_db, now, "e")
    assert await paged(notify_db, alert.id) == ["mgr:0"]
    worker = EscalationWorker(notify_db, Settings(), AlertBroker(), lambda: None)
    assert await worker.fire_due(now + 100) == 0
    assert await worker.fire_due(now + 303) == 1
    assert await paged(notify_db, alert.id) == ["mgr:0", "area:1"]
    assert await worker.fire_due(now + 400) == 0, "a timer fires once"
    assert await escalated_events(notify_db) == 0


async def test_an_acknowledged_pattern_alert_pages_nobody_else(notify_db: Database) -> None:
    now = time.time()
    alert = await open_pattern(notify_db, now, "k")
    async with notify_db.transaction() as s:
        row = await s.get(Alert, alert.id)
        assert row is not None
        await lifecycle.acknowledge(
            s, alert=row, principal=Principal("mgr", "store_manager", ("s1",), None), now=now + 10
        )
    worker = EscalationWorker(notify_db, Settings(), AlertBroker(), lambda: None)
    await worker.fire_due(now + 600)
    assert await paged(notify_db, alert.id) == ["mgr:0"]
