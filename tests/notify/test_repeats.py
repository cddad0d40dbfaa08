"""A repeat complaint folded into its open alert (`new_alert_sync` -> `merge_feedback_sync`, the
consumer's one hop): the alert row (related feedback, updates, raised priority, context, plan,
title and body), recipients (the acknowledger added once acknowledged), superseded and new
deliveries (levels, quiet-hours holds, retries in flight kept), and the `merged:` events. Plus an
open alert gone or changed meanwhile: nothing written, and the hop run again afresh."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict
from sqlalchemy import func, select, text

from tests.conftest import DATABASE, DatabaseFactory
from tests.notify.conftest import (
    MIGRATIONS,
    PEOPLE,
    add_device,
    events,
    known,
    new_alert,
    plan,
    raise_alert,
    seoul,
)
from voc.events.v1 import events_pb2
from voc_notify import alerts, lifecycle, views
from voc_notify.facts import AlertInput, CustomerContext, Feedback, Plan
from voc_notify.models import (
    Alert,
    AlertRecipient,
    Delivery,
    EscalationTimer,
    Staff,
    Store,
    outbox_table,
)
from voc_platform import dbsync, migrations
from voc_platform.db import Database
from voc_platform.identity import Principal

EVENING = seoul(2026, 11, 23, 21)  # a Monday; the store's quiet hours start at 22:00
NIGHT = seoul(2026, 11, 23, 22, 30)
MORNING = seoul(2026, 11, 24, 8)
PAYLOADS: dict[str, Any] = {
    "voc.alert.created": events_pb2.AlertCreated,
    "voc.alert.escalated": events_pb2.AlertEscalated,
    "voc.alert.acknowledged": events_pb2.AlertAcknowledged,
}


def complaint(feedback_id: str, category: str = "cleanliness", text: str = "") -> Feedback:
    return Feedback(
        id=feedback_id,
        store_id="s1",
        category=category,
        channel="kiosk",
        severity="high",
        text=text or f"text of {feedback_id}",
        ratings={"csat": 1},
        received_at_ms=1_795_000_000_000,
    )


async def prepare(database: Database) -> None:
    """The notify fixture's store and staff, with quiet hours and a phone or two each."""
    await migrations.upgrade(database, MIGRATIONS, name="notify")
    async with database.transaction() as s:
        s.add(
            Store(
                id="s1",
                name="Store 1",
                area_id="a1",
                timezone="Asia/Seoul",
                language="en",
                quiet_start="22:00",
                quiet_end="08:00",
            )
        )
        for sid, role, stores, area in PEOPLE:
            s.add(staff(sid, role, stores, area))
    for sid, device in (
        ("lead", "dev-lead-1"),
        ("lead", "dev-lead-2"),
        ("mgr", "dev-mgr"),
        ("area", "dev-area"),
    ):
        await add_device(database, sid, {"endpoint": f"https://push.example/{device}", "keys": KEYS}, device)


KEYS = {"p256dh": "k", "auth": "a"}


def staff(sid: str, role: str, stores: list[str], area: str | None) -> Staff:
    return Staff(
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


async def acknowledge(database: Database, alert_id: str, staff_id: str, role: str, now: float) -> None:
    async with database.transaction() as s:
        alert = await s.get(Alert, alert_id)
        assert alert is not None
        await lifecycle.acknowledge(
            s, alert=alert, principal=Principal(staff_id, role, ("s1",), "a1"), now=now
        )


async def run_scenario(database: Database) -> dict[str, Any]:
    await prepare(database)
    returned: list[Any] = []

    async def merge(
        feedback: Feedback, *, context: CustomerContext, the_plan: Plan, now: float
    ) -> alerts.NewAlert | None:
        created = await raise_alert(database, feedback, customer=context, the_plan=the_plan, now=now)
        returned.append(
            None
            if created is None
            else {
                "merged": created.merged,
                "recipients": sorted(p.id for p in created.recipients),
                "deliveries": created.deliveries,
                "summary": {**views.alert_summary(created.alert), "id": created.alert.feedback_id},
                "area_id": created.alert.area_id,
                "store_id": created.alert.store_id,
            }
        )
        return created

    # A: paged to the shift lead (two phones), raised, escalated, acknowledged by the area manager.
    a = await new_alert(database, "f-a1", now=EVENING, customer_id="c1", the_plan=plan(priority="normal"))
    assert a is not None and a.deliveries == 2
    # B: paged to the store manager during quiet hours, acknowledged by them.
    b = await new_alert(
        database,
        "f-b1",
        now=NIGHT,
        customer_id="c2",
        category="wait_time",
        the_plan=plan(priority="normal", roles=("store_manager",)),
    )
    assert b is not None and b.deliveries == 1
    async with database.transaction() as s:  # one of A's first pushes went out
        first = await s.scalar(
            select(Delivery).where(Delivery.alert_id == a.alert.id, Delivery.device_id == "dev-lead-1")
        )
        assert first is not None
        first.status, first.attempts, first.accepted_at = "accepted", 1, EVENING + 1

    raised = await merge(
        complaint("f-a2", text="Dirty again, call me at 010-1234-5678"),
        context=known("c1", repeat=2, tier="gold"),
        the_plan=plan(priority="urgent"),
        now=EVENING + 300,
    )
    assert raised is not None and raised.merged and raised.alert.id == a.alert.id
    assert (
        await merge(
            complaint("f-a2"), context=known("c1"), the_plan=plan(priority="urgent"), now=EVENING + 301
        )
        is None
    ), "already merged"

    async with database.transaction() as s:
        timer = await s.scalar(
            select(EscalationTimer).where(
                EscalationTimer.alert_id == a.alert.id, EscalationTimer.kind == "ack"
            )
        )
        assert timer is not None
        assert await lifecycle.escalate(s, timer=timer, now=EVENING + 400) is not None
        # A retry in flight (attempted once, still pending) is not superseded.
        retry = await s.scalar(
            select(Delivery)
            .where(Delivery.alert_id == a.alert.id, Delivery.device_id == "dev-lead-2")
            .order_by(Delivery.created_at.desc())
        )
        assert retry is not None
        retry.attempts, retry.last_error = 1, "503"

    # Context without `known`: the alert keeps the context it has (priority info: not lowered).
    await merge(
        complaint("f-a3"),
        context=CustomerContext(known=False, customer_id="c1"),
        the_plan=plan(priority="info"),
        now=EVENING + 500,
    )
    await acknowledge(database, a.alert.id, "area", "area_manager", EVENING + 600)
    await merge(complaint("f-a4"), context=known("c1", repeat=3), the_plan=plan(), now=EVENING + 700)

    await acknowledge(database, b.alert.id, "mgr", "store_manager", NIGHT + 100)
    await merge(
        complaint("f-b2", category="wait_time"),
        context=known("c2"),
        the_plan=plan(priority="normal"),
        now=NIGHT + 200,
    )

    # C: paged to two shift leads, one of whom is removed before the repeat.
    async with database.transaction() as s:
        s.add(staff("temp", "shift_lead", ["s1"], None))
    await add_device(database, "temp", {"endpoint": "https://push.example/temp", "keys": KEYS}, "dev-temp")
    c = await new_alert(database, "f-c1", now=EVENING, customer_id="c3", category="food_quality")
    assert c is not None and c.deliveries == 3
    async with database.transaction() as s:
        await s.delete(await s.get(Staff, "temp"))
    await merge(
        complaint("f-c2", category="food_quality"), context=known("c3"), the_plan=plan(), now=EVENING + 60
    )

    return {"returned": returned, **(await snapshot(database))}


async def snapshot(database: Database) -> dict[str, Any]:
    """Every alert, recipient, delivery, timer and event, with generated ids replaced by the
    feedback id of their alert (ids are random per run)."""
    async with database.session() as s:
        alerts = list(await s.scalars(select(Alert)))
        label = {alert.id: alert.feedback_id for alert in alerts}
        columns = [c.key for c in Alert.__table__.columns if c.key != "id"]
        recipients = sorted(
            (label[r.alert_id], r.staff_id, r.level, r.added_at)
            for r in await s.scalars(select(AlertRecipient))
        )
        delivery_columns = [c.key for c in Delivery.__table__.columns if c.key not in ("id", "alert_id")]
        deliveries = sorted(
            (
                (label[d.alert_id], *(getattr(d, k) for k in delivery_columns))
                for d in await s.scalars(select(Delivery))
            ),
            key=repr,
        )
        timers = sorted(
            (
                (label[t.alert_id], t.kind, t.level, tuple(t.roles), t.fire_at, t.status)
                for t in await s.scalars(select(EscalationTimer))
            ),
            key=repr,
        )
        outbox = (await s.execute(select(outbox_table).order_by(outbox_table.c.seq))).all()
    events = []
    for row in outbox:
        body = MessageToDict(PAYLOADS[row.subject].FromString(row.payload), preserving_proto_field_name=True)
        body["alert_id"] = label[body["alert_id"]]
        if "recipient_staff_ids" in body:
            body["recipient_staff_ids"] = sorted(body["recipient_staff_ids"])
        merged = row.event_id.startswith("merged:")
        events.append((row.subject, row.event_id if merged else "generated", row.event_type, body))
    return {
        "alerts": {alert.feedback_id: {k: getattr(alert, k) for k in columns} for alert in alerts},
        "recipients": recipients,
        "deliveries": deliveries,
        "timers": timers,
        "events": events,
    }


async def test_repeat_complaints_fold_into_their_open_alert(databases: DatabaseFactory) -> None:
    database = Database(databases.url("notify_repeats"))
    try:
        prepared = await run_scenario(database)
    finally:
        await database.dispose()
    a = prepared["alerts"]["f-a1"]
    assert [item["id"] for item in a["related_feedback"]] == ["f-a2", "f-a3", "f-a4"]
    assert a["updates"] == 3 and a["updated_at"] == EVENING + 700
    assert a["priority"] == "urgent", "raised by f-a2, never lowered"
    assert a["status"] == "acknowledged" and a["escalation_level"] == 1
    assert a["context"]["signals"]["repeat_counts"]["cleanliness"] == 3
    assert a["title"] == "[URGENT] Cleanliness · Store 1 (+3 more)" and "text of f-a4" in a["body"]
    assert "+1 more" in prepared["returned"][0]["summary"]["title"]
    assert "GOLD · repeat x2" in prepared["returned"][0]["summary"]["body"]
    assert prepared["returned"][0]["summary"]["body"].endswith("call me at ***5678"), "masked"
    assert [r["recipients"] for r in prepared["returned"] if r] == [
        ["lead"],
        ["lead", "mgr"],
        ["area"],
        ["mgr"],
        ["lead"],
    ]
    assert [r["deliveries"] for r in prepared["returned"] if r] == [2, 3, 1, 1, 2]
    assert ("f-a1", "area", 1, EVENING + 700) in prepared["recipients"], "the acknowledger, added once"
    assert ("f-b1", "mgr", 0, NIGHT) in prepared["recipients"], "already a recipient: unchanged"
    by_alert: dict[str, list[tuple[Any, ...]]] = {}
    for d in prepared["deliveries"]:
        by_alert.setdefault(d[0], []).append(d)
    # (device, level, status, attempts, last error, held until) of each alert's pushes.
    statuses = {
        name: sorted(((d[1], d[3], d[4], d[5], d[11], d[12]) for d in rows), key=repr)
        for name, rows in by_alert.items()
    }
    superseded = "superseded by an update"
    assert statuses["f-a1"] == sorted(
        [
            ("dev-lead-1", 0, "accepted", 1, None, None),
            ("dev-lead-2", 0, "cancelled", 0, superseded, None),  # f-a1's, by f-a2
            ("dev-lead-1", 0, "cancelled", 0, superseded, None),  # f-a2's, by f-a3
            ("dev-lead-2", 0, "pending", 1, "503", None),  # f-a2's, in flight: kept
            ("dev-mgr", 1, "cancelled", 0, superseded, None),  # escalation's, by f-a3
            ("dev-lead-1", 1, "cancelled", 0, None, None),  # f-a3's, by the acknowledgement
            ("dev-lead-2", 1, "cancelled", 0, None, None),
            ("dev-mgr", 1, "cancelled", 0, None, None),
            ("dev-area", 1, "pending", 0, None, None),  # f-a4's: urgent, never held
        ],
        key=repr,
    )
    assert statuses["f-b1"] == [
        ("dev-mgr", 0, "cancelled", 0, None, MORNING),  # by the acknowledgement
        ("dev-mgr", 0, "pending", 0, None, MORNING),  # f-b2's: held for quiet hours
    ]
    assert statuses["f-c1"] == sorted(
        [
            ("dev-lead-1", 0, "cancelled", 0, superseded, None),
            ("dev-lead-2", 0, "cancelled", 0, superseded, None),
            ("dev-temp", 0, "cancelled", 0, superseded, None),  # the phone is gone, its push stays
            ("dev-lead-1", 0, "pending", 0, None, None),
            ("dev-lead-2", 0, "pending", 0, None, None),
        ],
        key=repr,
    ), "the removed lead is not paged again"
    merged = [e for e in prepared["events"] if e[1].startswith("merged:")]
    assert [(e[1], e[3]["alert_id"], e[3]["recipient_staff_ids"]) for e in merged] == [
        ("merged:f-a2", "f-a1", ["lead"]),
        ("merged:f-a3", "f-a1", ["lead", "mgr"]),
        ("merged:f-a4", "f-a1", ["area"]),
        ("merged:f-b2", "f-b1", ["mgr"]),
        ("merged:f-c2", "f-c1", ["lead"]),
    ]
    assert merged[0][3]["priority"] == "urgent" and merged[2][3]["feedback_id"] == "f-a4"


async def test_a_merge_keeps_the_name_its_new_plan_was_rendered_with(notify_db: Database) -> None:
    """A repeat replaces the plan with one rendered under the customer's name as profile has it
    now: the alert keeps that name, so the resolved event's plan title and erasure mask it."""
    first = replace(known("c-named"), name="Jane Doe")
    titled = replace(plan(), title="Call {name} back")
    created = await raise_alert(
        notify_db, complaint("f-named-1"), now=time.time(), customer=first,
        the_plan=replace(titled, title="Call Jane Doe back"),
    )  # fmt: skip
    assert created is not None
    renamed = replace(known("c-named"), name="Janet Roe")
    merged = await raise_alert(
        notify_db, complaint("f-named-2"), now=time.time(), customer=renamed,
        the_plan=replace(titled, title="Call Janet Roe back"),
    )  # fmt: skip
    assert merged is not None and merged.alert.id == created.alert.id
    async with notify_db.transaction() as s:
        alert = await s.get(Alert, created.alert.id)
        assert alert is not None and alert.customer_name == "Janet Roe"
        lead = Principal("lead", "shift_lead", ("s1",), None)
        await lifecycle.resolve(s, alert=alert, principal=lead, outcome="resolved", note="")
    titles = {
        events_pb2.AlertResolved.FromString(e["payload"]).playbook_title
        for e in await events(notify_db, "voc.alert.resolved")
    }
    assert titles == {"Call J**** R** back"}  # one event per item the alert answers


async def test_a_merge_into_a_vanished_alert_writes_nothing(notify_db: Database) -> None:
    async with notify_db.session() as s:
        store = await s.get(Store, "s1")
    assert store is not None
    facts = AlertInput(
        feedback=complaint("f-gone"), store=store, customer=known("c1"), plan=plan(), language="en"
    )
    with pytest.raises(alerts.OpenAlertChanged) as raised:
        await dbsync.write(
            notify_db, alerts.merge_feedback_sync, alert_id="no-such-alert", facts=facts, now=time.time()
        )
    assert raised.value.args == ("no-such-alert",)
    async with notify_db.session() as s:
        assert await s.scalar(select(outbox_table.c.seq)) is None


@pytest.mark.skipif(DATABASE != "postgres", reason="SQLite writers are serialized: nothing can interleave")
async def test_a_merge_raced_by_an_acknowledgement_is_run_again_afresh(
    notify_db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """The merge reads the open alert while an acknowledgement of it is uncommitted; its guarded
    update waits for the row, then matches nothing: the hop raises and writes nothing, and
    `write_alert` runs it again in a fresh transaction, which tells the acknowledger only."""
    caplog.set_level("INFO", logger="voc_notify.alerts")
    await add_device(notify_db, "lead", {"endpoint": "https://push.example/lead", "keys": KEYS}, "dev-lead")
    await add_device(notify_db, "mgr", {"endpoint": "https://push.example/mgr", "keys": KEYS}, "dev-mgr")
    now = time.time()
    first = await new_alert(notify_db, "f-1", now=now, customer_id="c1")
    assert first is not None and [p.id for p in first.recipients] == ["lead"]

    async with notify_db.transaction() as ack:
        alert = await ack.get(Alert, first.alert.id)
        assert alert is not None
        await lifecycle.acknowledge(
            ack, alert=alert, principal=Principal("mgr", "store_manager", ("s1",), None)
        )
        await ack.flush()
        merge = asyncio.create_task(new_alert(notify_db, "f-2", now=now + 1, customer_id="c1"))
        deadline = time.monotonic() + 10
        while True:  # until the merge waits for the acknowledgement's row lock
            async with notify_db.session() as probe:
                waiting = await probe.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                    )
                )
            if waiting or merge.done() or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.02)
        assert waiting and not merge.done()
    second = await merge
    assert "changed under a repeat complaint; trying again" in caplog.text
    assert second is not None and second.merged and [p.id for p in second.recipients] == ["mgr"]
    async with notify_db.session() as s:
        merged_events = await s.scalar(
            select(func.count()).select_from(outbox_table).where(outbox_table.c.event_id == "merged:f-2")
        )
        row = await s.get(Alert, first.alert.id)
        pending = list(
            await s.scalars(
                select(Delivery.device_id).where(
                    Delivery.alert_id == first.alert.id, Delivery.status == "pending"
                )
            )
        )
    assert merged_events == 1 and row is not None and row.updates == 1, "the first attempt wrote nothing"
    assert pending == ["dev-mgr"]


@pytest.mark.parametrize(
    ("feedback_id", "related", "told"),
    [
        ("f-1", [{"id": "f-2"}, {"id": "f-3"}], [("f-1", True), ("f-2", True), ("f-3", False)]),
        ("f-1", [], [("f-1", False)]),
        (None, [], [("", False)]),  # a pattern or heads-up alert: no item, no survey to place
    ],
)
def test_one_resolution_asks_the_customer_once_on_the_latest_item(
    feedback_id: str | None, related: list[dict[str, str]], told: list[tuple[str, bool]]
) -> None:
    alert = Alert(id="a-1", feedback_id=feedback_id, related_feedback=related, store_id="s1")
    events = lifecycle.resolved_events(alert, events_pb2.AlertResolved(alert_id="a-1", outcome="resolved"))
    assert [(e.feedback_id, e.follow_up_elsewhere) for _, e, _ in events] == told  # type: ignore[attr-defined]
    assert {subject for subject, _, _ in events} == {"voc.alert.resolved"}
