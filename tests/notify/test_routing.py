"""Routing against a real database: who is on duty (weekly shifts in the store's time zone,
one-off overrides), the next level up when nobody is, quiet hours holding non-urgent pushes,
and a repeat complaint updating the open alert instead of paging again."""

from __future__ import annotations

import asyncio
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select, text

from tests.conftest import DatabaseFactory
from tests.notify.conftest import MIGRATIONS, add_device, deliveries, events, new_alert, plan, seoul
from voc.events.v1 import events_pb2
from voc_notify import duty, lifecycle, routing
from voc_notify.models import Alert, EscalationTimer, Shift, ShiftOverride, Staff, StaffStore, Store
from voc_platform import migrations
from voc_platform.db import Database
from voc_platform.identity import Principal

MONDAY_10 = seoul(2026, 11, 23, 10)  # 2026-11-23 is a Monday
LEAD = Principal("lead", "shift_lead", ("s1",), None)


def shift(weekday: int, starts: str, ends: str) -> Shift:
    return Shift(id=f"{weekday}{starts}", staff_id="x", weekday=weekday, starts=starts, ends=ends)


def override(starts_on: str, ends_on: str, on: bool, created_at: float = 1.0) -> ShiftOverride:
    return ShiftOverride(
        id=f"o{created_at}",
        staff_id="x",
        starts_on=starts_on,
        ends_on=ends_on,
        on_duty=on,
        note="",
        created_at=created_at,
    )


def test_on_duty_follows_shifts_in_the_store_time_zone() -> None:
    day = [shift(0, "09:00", "18:00")]
    assert duty.on_duty(shifts=day, overrides=[], timezone="Asia/Seoul", now=MONDAY_10)
    assert not duty.on_duty(shifts=day, overrides=[], timezone="Asia/Seoul", now=seoul(2026, 11, 23, 18))
    assert not duty.on_duty(shifts=day, overrides=[], timezone="Asia/Seoul", now=seoul(2026, 11, 24, 10))
    # The same instant is 01:00 in London: outside the shift there.
    assert not duty.on_duty(shifts=day, overrides=[], timezone="Europe/London", now=MONDAY_10)
    # Overnight: Sunday 22:00 until Monday 06:00.
    night = [shift(6, "22:00", "06:00")]
    assert duty.on_duty(shifts=night, overrides=[], timezone="Asia/Seoul", now=seoul(2026, 11, 23, 3))
    assert duty.on_duty(shifts=night, overrides=[], timezone="Asia/Seoul", now=seoul(2026, 11, 22, 23))
    assert not duty.on_duty(shifts=night, overrides=[], timezone="Asia/Seoul", now=seoul(2026, 11, 23, 6))
    # No shifts configured: always on duty (the demo directory has none).
    assert duty.on_duty(shifts=[], overrides=[], timezone="Asia/Seoul", now=MONDAY_10)


def test_overrides_win_and_the_newest_one_counts() -> None:
    day = [shift(0, "09:00", "18:00")]
    sick = override("2026-11-23", "2026-11-24", on=False)
    assert not duty.on_duty(shifts=day, overrides=[sick], timezone="Asia/Seoul", now=MONDAY_10)
    assert duty.on_duty(
        shifts=day,
        overrides=[override("2026-11-20", "2026-11-22", on=False)],
        timezone="Asia/Seoul",
        now=MONDAY_10,
    )
    extra = override("2026-11-23", "2026-11-23", on=True, created_at=2.0)
    assert duty.on_duty(
        shifts=day, overrides=[sick, extra], timezone="Asia/Seoul", now=seoul(2026, 11, 23, 20)
    )
    assert duty.on_duty(shifts=[], overrides=[extra], timezone="Asia/Seoul", now=MONDAY_10)


def test_quiet_hours_ending_in_a_repeated_hour_end_after_now() -> None:
    """New York falls back at 02:00 on 2025-11-02: 01:10 happens twice. In the second one, quiet
    hours to 01:30 end at the second 01:30 (the first was already past: it sent inside them)."""
    new_york = ZoneInfo("America/New_York")
    for fold in (0, 1):
        now = datetime(2025, 11, 2, 1, 10, fold=fold, tzinfo=new_york).timestamp()
        ends = duty.quiet_until(quiet_start="00:00", quiet_end="01:30", timezone="America/New_York", now=now)
        assert ends == now + 20 * 60


def test_quiet_hours_end_at_the_local_end_time() -> None:
    def until(start: str, end: str, now: float) -> float | None:
        return duty.quiet_until(quiet_start=start, quiet_end=end, timezone="Asia/Seoul", now=now)

    assert until("22:00", "08:00", seoul(2026, 11, 23, 23)) == seoul(2026, 11, 24, 8)
    assert until("22:00", "08:00", seoul(2026, 11, 23, 7, 59)) == seoul(2026, 11, 23, 8)
    assert until("22:00", "08:00", MONDAY_10) is None
    assert until("12:00", "14:00", seoul(2026, 11, 23, 13)) == seoul(2026, 11, 23, 14)
    assert duty.quiet_until(quiet_start=None, quiet_end=None, timezone="Asia/Seoul", now=MONDAY_10) is None


def test_a_stored_zone_that_names_no_zone_falls_back_to_utc() -> None:
    """Old rows may hold an area ("America") or garbage: ZoneInfo raised IsADirectoryError or
    OSError for those, which stopped routing, heads-ups and plan requests alike."""
    for name in ("America", "x" * 300, "Asia/Seoul\x00", "../etc", "", None):
        assert duty.zone(name).key == "UTC", name
        assert duty.on_duty(shifts=[], overrides=[], timezone=name, now=MONDAY_10)
    assert duty.zone("Asia/Seoul").key == "Asia/Seoul"


async def set_shifts(db: Database, staff_id: str, *slots: tuple[int, str, str]) -> None:
    async with db.transaction() as s:
        for weekday, starts, ends in slots:
            s.add(
                Shift(
                    id=f"{staff_id}-{weekday}-{starts}",
                    staff_id=staff_id,
                    weekday=weekday,
                    starts=starts,
                    ends=ends,
                )
            )


async def test_routing_pages_who_is_on_duty_else_one_level_up(notify_db: Database) -> None:
    await set_shifts(notify_db, "lead", (0, "14:00", "22:00"))
    await set_shifts(notify_db, "mgr", (0, "09:00", "18:00"))
    async with notify_db.session() as s:
        store = await s.get(Store, "s1")
        assert store is not None

        async def routed(now: float) -> list[str]:
            assert store is not None
            return [
                p.id for p in await routing.staff_for_roles(s, store=store, wanted=["shift_lead"], now=now)
            ]

        assert await routed(seoul(2026, 11, 23, 15)) == ["lead"]
        assert await routed(MONDAY_10) == ["mgr"], "lead off duty: the store manager"
        # Area managers have no shifts: always on duty, so they catch the evening.
        assert await routed(seoul(2026, 11, 23, 23)) == ["area"]
    await set_shifts(notify_db, "area", (2, "09:00", "10:00"))
    async with notify_db.session() as s:
        store = await s.get(Store, "s1")
        assert store is not None
        # Nobody on duty at any level: the plain ladder, so the alert still has an owner.
        night = await routing.staff_for_roles(
            s, store=store, wanted=["shift_lead"], now=seoul(2026, 11, 23, 23)
        )
        assert [p.id for p in night] == ["lead"]


async def test_routing_follows_the_stores_each_person_works_at(notify_db: Database) -> None:
    """Routing looks staff up by store (staff_stores), kept in step with every change of
    `store_ids`: a transfer, a second store, deactivation and removal."""
    async with notify_db.transaction() as s:
        s.add(Store(id="s2", name="Store 2", area_id="a2", timezone="Asia/Seoul", language="en"))
        s.add(
            Staff(
                id="float",
                name="float",
                email="float@x.demo",
                password_hash="x",
                role="shift_lead",
                store_ids=["s2"],
                area_id=None,
                language="en",
                active=True,
            )
        )

    async def at(store_id: str) -> list[str]:
        async with notify_db.session() as s:
            store = await s.get(Store, store_id)
            assert store is not None
            return [p.id for p in await routing.store_staff(s, store=store)]

    assert await at("s1") == ["area", "lead", "mgr"]
    assert await at("s2") == ["float"], "another area: s1's area manager is not asked"
    async with notify_db.transaction() as s:
        person = await s.get(Staff, "float")
        assert person is not None
        person.store_ids = ["s1", "s2"]
    assert await at("s1") == ["area", "float", "lead", "mgr"]
    async with notify_db.transaction() as s:
        person = await s.get(Staff, "float")
        assert person is not None
        person.store_ids = ["s1"]
        person.name = "renamed"  # an unrelated change leaves the store links alone
    assert await at("s2") == []
    async with notify_db.transaction() as s:
        person = await s.get(Staff, "float")
        assert person is not None
        person.active = False
    assert await at("s1") == ["area", "lead", "mgr"]
    async with notify_db.transaction() as s:
        await s.delete(await s.get(Staff, "float"))
    async with notify_db.session() as s:
        assert list(await s.scalars(select(StaffStore.staff_id).where(StaffStore.staff_id == "float"))) == []


async def test_quiet_hours_hold_non_urgent_pushes_and_shift_the_timers(notify_db: Database) -> None:
    async with notify_db.transaction() as s:
        store = await s.get(Store, "s1")
        assert store is not None
        store.quiet_start, store.quiet_end = "22:00", "08:00"
    await add_device(
        notify_db,
        "lead",
        {"endpoint": "https://push.example/lead", "keys": {"p256dh": "k", "auth": "a"}},
        "dev-lead",
    )
    late = seoul(2026, 11, 23, 23)
    morning = seoul(2026, 11, 24, 8)
    normal = await new_alert(notify_db, "f-quiet", now=late, the_plan=plan(priority="normal"))
    assert normal is not None
    [held] = await deliveries(notify_db, normal.alert.id)
    assert held.status == "pending" and held.held_until == morning and held.next_attempt_at == morning
    async with notify_db.session() as s:
        fire_at = sorted(
            await s.scalars(
                select(EscalationTimer.fire_at).where(EscalationTimer.alert_id == normal.alert.id)
            )
        )
    assert fire_at == [morning + 60, morning + 600], "escalation counts from the first page"
    urgent = await new_alert(notify_db, "f-urgent", now=late, the_plan=plan(priority="urgent"))
    assert urgent is not None
    [now_push] = await deliveries(notify_db, urgent.alert.id)
    assert now_push.held_until is None and now_push.next_attempt_at == late


async def test_a_repeat_complaint_updates_the_open_alert(notify_db: Database) -> None:
    await add_device(
        notify_db,
        "lead",
        {"endpoint": "https://push.example/lead", "keys": {"p256dh": "k", "auth": "a"}},
        "dev-lead",
    )
    first = await new_alert(notify_db, "f-1", now=MONDAY_10, customer_id="c1")
    assert first is not None and not first.merged
    alert_id = first.alert.id
    second = await new_alert(notify_db, "f-2", now=MONDAY_10 + 600, customer_id="c1")
    assert second is not None and second.merged and second.alert.id == alert_id
    assert second.deliveries == 1 and [p.id for p in second.recipients] == ["lead"]
    # Redelivery of the same feedback changes nothing.
    assert await new_alert(notify_db, "f-2", now=MONDAY_10 + 601, customer_id="c1") is None
    async with notify_db.session() as s:
        alert = await s.get(Alert, alert_id)
        assert alert is not None
        assert alert.updates == 1 and [r["id"] for r in alert.related_feedback or []] == ["f-2"]
        assert alert.title.endswith("(+1 more)") and "f-2" in alert.body
        assert await s.scalar(select(Alert.id).where(Alert.feedback_id == "f-2")) is None
    # The unsent first push is superseded; the update goes out (same alert, so the same Topic).
    assert [d.status for d in await deliveries(notify_db, alert_id)] == ["cancelled", "pending"]
    created = [
        events_pb2.AlertCreated.FromString(e["payload"]) for e in await events(notify_db, "voc.alert.created")
    ]
    assert [(c.alert_id, c.feedback_id) for c in created] == [(alert_id, "f-1"), (alert_id, "f-2")]
    merged_event = (await events(notify_db, "voc.alert.created"))[1]["event_id"]
    assert merged_event == "merged:f-2", "fits consumers' 64-character processed_events ids"

    # Not merged: another category, an anonymous customer, or after the window.
    other = await new_alert(notify_db, "f-3", now=MONDAY_10 + 700, customer_id="c1", category="wait_time")
    anonymous = await new_alert(notify_db, "f-4", now=MONDAY_10 + 700)
    later = await new_alert(notify_db, "f-5", now=MONDAY_10 + 600 + 1801, customer_id="c1")
    assert other is not None and anonymous is not None and later is not None
    assert not (other.merged or anonymous.merged or later.merged)
    assert len({alert_id, other.alert.id, anonymous.alert.id, later.alert.id}) == 4

    # Acknowledging answers every merged feedback's case; later repeats go to the acknowledger only.
    async with notify_db.transaction() as s:
        alert = await s.get(Alert, later.alert.id)
        assert alert is not None
        await lifecycle.acknowledge(s, alert=alert, principal=LEAD, now=MONDAY_10 + 2500)
    update = await new_alert(notify_db, "f-6", now=MONDAY_10 + 2600, customer_id="c1")
    assert update is not None and update.merged and [p.id for p in update.recipients] == ["lead"]
    async with notify_db.transaction() as s:
        alert = await s.get(Alert, later.alert.id)
        assert alert is not None
        await lifecycle.resolve(
            s, alert=alert, principal=LEAD, outcome="resolved", note="", now=MONDAY_10 + 2700
        )
    resolved = [
        events_pb2.AlertResolved.FromString(e["payload"])
        for e in await events(notify_db, "voc.alert.resolved")
    ]
    assert sorted(r.feedback_id for r in resolved) == ["f-5", "f-6"]
    # Each carries the alert's priority: the case decides on it whether to ask the customer.
    assert {r.priority for r in resolved} == {later.alert.priority} and later.alert.priority
    # A resolved alert is closed: the next complaint is a new alert.
    fresh = await new_alert(notify_db, "f-7", now=MONDAY_10 + 2800, customer_id="c1")
    assert fresh is not None and not fresh.merged


async def test_simultaneous_repeat_complaints_make_one_alert(notify_db: Database) -> None:
    """Two complaints of one customer about one category, handled at the same instant (two
    consumer tasks or replicas), become one alert updated once, never two alerts."""
    results = await asyncio.gather(
        *(
            new_alert(notify_db, f"fb-same-{i}", now=MONDAY_10 + i / 10, customer_id="c-twice")
            for i in range(2)
        )
    )
    assert all(r is not None for r in results)
    assert sorted(bool(r and r.merged) for r in results) == [False, True]
    async with notify_db.session() as s:
        alerts = list(await s.scalars(select(Alert).where(Alert.customer_id == "c-twice")))
    assert len(alerts) == 1
    assert alerts[0].updates == 1
    assert [item["id"] for item in alerts[0].related_feedback] in (["fb-same-0"], ["fb-same-1"])


async def test_the_staff_stores_migration_backfills_existing_staff(databases: DatabaseFactory) -> None:
    database = Database(databases.url("notify_backfill"))
    await migrations.upgrade(database, MIGRATIONS, name="notify", revision="0002")
    async with database.engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO staff (id, name, email, password_hash, role, store_ids, area_id, language,"
                " active, failed_logins, locked_until) VALUES"
                " ('two', 'two', 'two@x.demo', 'x', 'shift_lead', :stores, NULL, 'ko', true, 0, 0),"
                " ('none', 'none', 'none@x.demo', 'x', 'area_manager', '[]', 'a1', 'ko', true, 0, 0)"
            ),
            {"stores": '["s1", "s2", "s1"]'},
        )
    await migrations.upgrade(database, MIGRATIONS, name="notify")
    async with database.session() as s:
        rows = (await s.execute(select(StaffStore.staff_id, StaffStore.store_id).order_by("store_id"))).all()
    assert [tuple(r) for r in rows] == [("two", "s1"), ("two", "s2")]
    await database.dispose()
