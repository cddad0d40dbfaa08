"""The delivery watchdog (#23) with the real workers, a real database, the push-service emulator
(it accepts the pushes and no phone ever shows them: a push service silently dropping) and a real
SMTP server on loopback: the device becomes suspect, the staff member's other device gets the
page, then the fallback e-mail goes out once; a shown receipt clears the suspicion; non-urgent
and acknowledged alerts are left alone; an SMTP server that is down is recorded, not raised."""

from __future__ import annotations

import time

from prometheus_client import generate_latest
from sqlalchemy import event, select

from tests.notify.conftest import deliveries, new_alert, plan
from tests.notify.test_delivery import phone, workers
from tests.support.metrics import Scrape
from voc_cli.mail_sink import MailSink
from voc_cli.push_emulator import PushEmulator
from voc_cli.supervisor import free_port
from voc_notify import lifecycle
from voc_notify.channels.mail import MailSender, parse_smtp_url
from voc_notify.fallback import MailChannel
from voc_notify.models import Alert, Device, EscalationTimer, FallbackPage
from voc_notify.settings import Settings
from voc_notify.watchdog import DeliveryWatchdog
from voc_platform.db import Database
from voc_platform.identity import Principal
from voc_platform.metrics import REGISTRY

WATCH = 60.0
# Escalation well after the watchdog: these tests look at the watchdog's own time.
LATER = plan(after=600)


def scrape() -> Scrape:
    return Scrape(generate_latest(REGISTRY).decode())


def watchdog(db: Database, smtp_url: str | None, woken: list[int]) -> DeliveryWatchdog:
    settings = Settings(VOC_ENV="test", watchdog_seconds=WATCH, public_url="https://voc.example")
    channel = (
        MailChannel(MailSender(parse_smtp_url(smtp_url), mail_from="VoC <pager@voc.example>"))
        if smtp_url
        else None
    )
    return DeliveryWatchdog(db, settings, channel, lambda: woken.append(1))


async def device_of(db: Database, subscription_id: str) -> Device:
    async with db.session() as s:
        device = await s.scalar(select(Device).where(Device.endpoint.endswith(subscription_id)))
    assert device is not None
    return device


async def fallback_rows(db: Database) -> list[FallbackPage]:
    async with db.session() as s:
        return list(await s.scalars(select(FallbackPage)))


async def test_an_unshown_urgent_push_tries_the_other_device_then_mails_once(
    notify_db: Database, push_emulator: PushEmulator, mail_server: MailSink
) -> None:
    first = await phone(notify_db, push_emulator, "lead")
    created = await new_alert(notify_db, "f-watch", now=time.time(), the_plan=LATER)
    assert created is not None
    woken: list[int] = []
    dog = watchdog(notify_db, mail_server.url, woken)
    before = scrape()
    async with workers(notify_db, push_emulator) as w:
        assert await w.delivery.process_due() == 1
        [sent] = await deliveries(notify_db, created.alert.id)
        assert sent.status == "accepted" and push_emulator.received(first)  # accepted, dropped
        assert sent.accepted_at is not None

        assert (await dog.check(now=sent.accepted_at + WATCH - 1)).overdue == 0, "not before its time"
        # A second phone, registered after the alert went out.
        second = await phone(notify_db, push_emulator, "lead")
        step = await dog.check(now=sent.accepted_at + WATCH + 1)
        assert (step.overdue, step.suspect, step.repushed, step.fallbacks) == (1, 1, 1, ())
        assert woken == [1], "the delivery worker is woken for the new push"
        assert (await device_of(notify_db, first)).suspect_since == sent.accepted_at + WATCH + 1
        assert mail_server.received() == []
        assert await w.delivery.process_due(now=sent.accepted_at + WATCH + 2) == 1
        assert [p.json["alert_id"] for p in push_emulator.received(second)] == [created.alert.id]
        later = max(d.accepted_at or 0 for d in await deliveries(notify_db, created.alert.id)) + WATCH + 1
        step = await dog.check(now=later)
        assert step.repushed == 0 and step.fallbacks == ((created.alert.id, "lead", "sent"),)
        assert (await dog.check(now=later + 600)).fallbacks == (), "once per alert and staff member"

    # What the watchdog found, for the dashboards: two overdue pushes (the first phone's, then the
    # second's), two devices newly suspect, one page to the other device, one fallback sent.
    after = scrape()

    def delta(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert delta("voc_push_watchdog_total", step="overdue") == 2
    assert delta("voc_push_watchdog_total", step="suspect") == 2
    assert delta("voc_push_watchdog_total", step="repushed") == 1
    assert delta("voc_fallback_pages_total", status="sent") == 1
    assert delta("voc_fallback_pages_total") == 1
    [mail] = mail_server.received()
    assert mail.rcpt_tos == ("lead@x.demo",) and mail.mail_from == "pager@voc.example"
    assert mail.subject == "[URGENT] Cleanliness · Store 1"
    assert "text of f-watch" in mail.part("plain")
    assert f"https://voc.example/#/alerts/{created.alert.id}" in mail.part("plain")
    assert "did not show" in mail.part("plain")
    [row] = await fallback_rows(notify_db)
    assert (row.alert_id, row.staff_id, row.channel, row.status) == (
        created.alert.id,
        "lead",
        "email",
        "sent",
    )
    assert (await device_of(notify_db, second)).suspect_since is not None


async def test_a_shown_push_clears_the_suspicion_and_stops_the_watchdog(
    notify_db: Database, push_emulator: PushEmulator, mail_server: MailSink
) -> None:
    lead = await phone(notify_db, push_emulator, "lead")
    earlier = await new_alert(notify_db, "f-earlier", now=time.time(), the_plan=LATER)
    shown = await new_alert(
        notify_db, "f-shown", now=time.time(), customer_id=None, category="wait_time", the_plan=LATER
    )
    assert earlier is not None and shown is not None
    dog = watchdog(notify_db, mail_server.url, [])
    async with workers(notify_db, push_emulator) as w:
        assert await w.delivery.process_due() == 2
    accepted = max(d.accepted_at or 0 for d in await deliveries(notify_db, shown.alert.id))
    # The earlier alert's push was never shown: suspect; then the phone shows the next one.
    async with notify_db.transaction() as s:
        await lifecycle.record_receipt(
            s, alert_id=shown.alert.id, staff_id="lead", kind="shown", device_id=None, now=accepted + 1
        )
    step = await dog.check(now=accepted + WATCH + 5)
    assert step.overdue == 1  # only the earlier alert's
    device = await device_of(notify_db, lead)
    assert device.suspect_since == accepted + WATCH + 5 and device.last_shown_at == accepted + 1
    async with notify_db.transaction() as s:
        await lifecycle.record_receipt(
            s,
            alert_id=earlier.alert.id,
            staff_id="lead",
            kind="shown",
            device_id=device.id,
            now=accepted + 70,
        )
    device = await device_of(notify_db, lead)
    assert device.suspect_since is None and device.last_shown_at == accepted + 70
    # The earlier alert had no other device: the fallback went out before it was shown.
    assert [m.rcpt_tos for m in mail_server.received()] == [("lead@x.demo",)]


async def test_normal_and_acknowledged_alerts_are_left_alone(
    notify_db: Database, push_emulator: PushEmulator, mail_server: MailSink
) -> None:
    await phone(notify_db, push_emulator, "lead")
    normal = await new_alert(notify_db, "f-normal", now=time.time(), the_plan=plan(priority="normal"))
    acked = await new_alert(notify_db, "f-acked", now=time.time(), category="wait_time", the_plan=LATER)
    assert normal is not None and acked is not None
    async with workers(notify_db, push_emulator) as w:
        assert await w.delivery.process_due() == 2
    async with notify_db.transaction() as s:
        alert = await s.get(Alert, acked.alert.id)
        assert alert is not None
        await lifecycle.acknowledge(s, alert=alert, principal=Principal("lead", "shift_lead", ("s1",), None))
    step = await watchdog(notify_db, mail_server.url, []).check(now=time.time() + 3600)
    assert step.overdue == 0 and mail_server.received() == [] and await fallback_rows(notify_db) == []


async def test_an_smtp_server_that_is_down_is_recorded_not_raised(
    notify_db: Database, push_emulator: PushEmulator
) -> None:
    await phone(notify_db, push_emulator, "lead")
    created = await new_alert(notify_db, "f-nosmtp", now=time.time(), the_plan=LATER)
    assert created is not None
    async with workers(notify_db, push_emulator) as w:
        assert await w.delivery.process_due() == 1
    before = scrape()
    step = await watchdog(notify_db, f"smtp://127.0.0.1:{free_port()}", []).check(now=time.time() + WATCH + 1)
    assert step.fallbacks == ((created.alert.id, "lead", "failed"),)
    [row] = await fallback_rows(notify_db)
    assert row.status == "failed" and row.detail and row.detail.startswith("SMTP: ")
    # Without a channel: recorded as unavailable, no error either.
    again = await new_alert(notify_db, "f-nochannel", now=time.time(), category="wait_time", the_plan=LATER)
    assert again is not None
    async with workers(notify_db, push_emulator) as w:
        assert await w.delivery.process_due() == 1
    await watchdog(notify_db, None, []).check(now=time.time() + WATCH + 1)
    statuses = {r.alert_id: r.status for r in await fallback_rows(notify_db)}
    assert statuses[again.alert.id] == "unavailable"
    after = scrape()
    assert (
        after.value("voc_fallback_pages_total", status="failed")
        - before.value("voc_fallback_pages_total", status="failed")
        == 1
    )
    assert (
        after.value("voc_fallback_pages_total", status="unavailable")
        - before.value("voc_fallback_pages_total", status="unavailable")
        == 1
    )


async def test_an_escalation_sooner_than_the_watchdog_brings_it_forward(
    notify_db: Database, push_emulator: PushEmulator, mail_server: MailSink
) -> None:
    """A playbook escalating 40 s after the alert, the watchdog at 60 s: the unshown push is
    looked at halfway to the escalation, so the person's fallback page goes out before the alert
    climbs to the next roles."""
    await phone(notify_db, push_emulator, "lead")
    created = await new_alert(notify_db, "f-soon", now=time.time(), the_plan=plan(after=40))
    assert created is not None
    dog = watchdog(notify_db, mail_server.url, [])
    async with workers(notify_db, push_emulator) as w:
        assert await w.delivery.process_due() == 1
    [sent] = await deliveries(notify_db, created.alert.id)
    assert sent.status == "accepted" and sent.accepted_at is not None
    async with notify_db.session() as s:
        fire_at = await s.scalar(
            select(EscalationTimer.fire_at).where(
                EscalationTimer.alert_id == created.alert.id, EscalationTimer.kind == "ack"
            )
        )
    assert fire_at is not None and fire_at < sent.accepted_at + WATCH
    halfway = (fire_at + sent.accepted_at) / 2
    assert (await dog.check(now=halfway - 1)).overdue == 0, "not before halfway"
    step = await dog.check(now=halfway + 0.5)
    assert step.overdue == 1 and step.fallbacks == ((created.alert.id, "lead", "sent"),)
    assert halfway + 0.5 < fire_at, "before the escalation"
    [mail] = mail_server.received()
    assert mail.rcpt_tos == ("lead@x.demo",)


async def test_a_pass_reads_deliveries_through_an_index_not_a_scan(notify_db: Database) -> None:
    """The watchdog runs every second beside the alert hop: a pass that walks the deliveries table
    held SQLite's write lock long enough to stall intake at 100 feedback/s (afdb5e9). The plan of
    every query a pass makes is read from SQLite itself (PostgreSQL's plans depend on its
    statistics, so this is SQLite's check)."""
    if not notify_db.sqlite:
        return
    statements: list[tuple[str, object]] = []

    def keep(conn: object, cursor: object, statement: str, parameters: object, *_: object) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    engine = notify_db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", keep)
    try:
        await watchdog(notify_db, None, []).check(now=time.time() + WATCH + 1)
    finally:
        event.remove(engine, "before_cursor_execute", keep)
    claims = [(sql, params) for sql, params in statements if "FROM deliveries" in sql]
    assert claims, "a pass reads deliveries"
    async with notify_db.engine.connect() as conn:
        for sql, params in claims:
            rows = (await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params)).all()  # type: ignore[arg-type]
            steps = [str(row[-1]) for row in rows]
            assert not [step for step in steps if step.startswith("SCAN")], steps
            for step in steps:
                if "escalation_timers" in step:
                    assert "(alert_id=?" in step, f"an alert's own timers, not every pending one: {steps}"
                if "deliveries USING" in step and "status=? AND shown_at=? AND accepted_at" not in step:
                    assert "INDEX 2" in steps, f"only failed ones read without a time range: {steps}"
