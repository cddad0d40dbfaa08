"""Erasure in notify (#18 §6): every alert of an erased customer loses the customer context (with
its recent contacts and household), the feedback's text and the folded repeats' texts, the
body quoting them and the plan's scripts in every language; a household member named in another
customer's alert leaves that alert; what happened to the alert stays; a second pass changes
nothing; a language staff member reads an alert in their own language. Copies without the
customer id (an alert made while profile could not be asked, pattern items and the pattern
alerts listing them) are found by the feedback ids the erasure event names."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import cast

from sqlalchemy import delete, func, select, update

from tests.notify.conftest import events as outbox_events
from tests.notify.conftest import plan, raise_alert
from voc.common.v1 import common_pb2
from voc.events.v1 import events_pb2
from voc_notify import alerts as alerts_module
from voc_notify import arrivals, events, follow_ups, patterns, tombstones, views
from voc_notify.clients import Upstreams
from voc_notify.erasure import (
    ERASED_CONTEXT,
    EXPIRED_CONTEXT,
    RETENTION_BATCH,
    redact_customer,
    redact_past_retention,
)
from voc_notify.facts import (
    AlertInput,
    CustomerContext,
    Feedback,
    HouseholdMember,
    Plan,
    PlanStep,
    PlanTexts,
    RecentContact,
    Signals,
    Visit,
)
from voc_notify.models import Alert, PatternItem, Staff, Store
from voc_notify.stream import AlertBroker
from voc_notify.workers import DeliveryWorker
from voc_platform import dbsync
from voc_platform.db import Database
from voc_platform.identity import Principal
from voc_platform.retention import retention_job

NOW = 1_790_000_000.0
LEAD = Principal("lead", "shift_lead", ("s1",), None)


def customer(customer_id: str, *, household: tuple[HouseholdMember, ...] = ()) -> CustomerContext:
    return CustomerContext(
        known=True,
        customer_id=customer_id,
        masked_name="김**",
        tier="vip",
        signals=Signals(repeat_issue=True, repeat_counts={"wait_time": 2}),
        recent_contacts=(
            RecentContact(
                "f-0", "call_center", "s1", 1000, "wait_time", "negative", "resolved", "refunded", "김** …"
            ),
        ),
        household_relation="driver" if household else "",
        household=household,
        last_visits=(Visit("s1", 900_000, 12_000.0),),
    )


def scripted() -> Plan:
    """A plan rendered in Korean with the customer's name, and its English texts."""
    return dataclasses.replace(
        plan(),
        steps=(PlanStep("Greet 김민수 by name", "staff"),),
        script="김민수님, 죄송합니다.",
        language="ko",
        translations=(PlanTexts("en", "Waiting", ("Greet by name",), "Kim Minsu, we are sorry."),),
    )


async def test_an_erased_customers_alerts_are_redacted(notify_db: Database) -> None:
    erased_plan = scripted()
    own = await raise_alert(
        notify_db,
        Feedback(id="f-1", category="wait_time", text="김민수입니다, 또 기다려요", ratings={"csat": 1}),
        now=NOW,
        the_plan=erased_plan,
        customer=customer("c-erased"),
    )
    repeat = await raise_alert(  # folded into the open alert: its text is a copy too
        notify_db,
        Feedback(id="f-2", category="wait_time", text="아직도요"),
        now=NOW + 60,
        the_plan=erased_plan,
        customer=customer("c-erased"),
    )
    family = await raise_alert(
        notify_db,
        Feedback(id="f-3", category="wait_time", text="the owner's own complaint"),
        now=NOW + 120,
        customer=customer(
            "c-owner",
            household=(
                HouseholdMember("c-erased", "김**", "driver"),
                HouseholdMember("c-kid", "김**", "family_member"),
            ),
        ),
    )
    assert own is not None and repeat is not None and family is not None
    assert repeat.alert.id == own.alert.id
    async with notify_db.session() as s:
        before = await s.get(Alert, own.alert.id)
        assert before is not None and "김**" in before.body and before.related_feedback

    async with notify_db.transaction() as s:
        assert await redact_customer(s, customer_id="c-erased") == 2
    async with notify_db.session() as s:
        alert = await s.get(Alert, own.alert.id)
        other = await s.get(Alert, family.alert.id)
    assert alert is not None and other is not None
    assert alert.context == ERASED_CONTEXT and alert.customer_id is None
    assert alert.feedback["text"] == "" and all(r["text"] == "" for r in alert.related_feedback or [])
    assert alert.body == "Anonymous CSAT 1"  # the store speaks English; no name, no text
    assert alert.plan["script"] == "" and alert.plan["translations"][0]["script"] == ""
    assert alert.plan["steps"] and alert.status == "open" and alert.updates == 1  # what happened stays
    # The owner's alert keeps the owner, drops the erased driver.
    assert other.context["known"] and other.feedback["text"] == "the owner's own complaint"
    assert [m["customer_id"] for m in other.context["household"]["members"]] == ["c-kid"]

    async with notify_db.transaction() as s:  # a redelivered event finds nothing more to do
        assert await redact_customer(s, customer_id="c-erased") == 0
        assert await redact_customer(s, customer_id="") == 0


async def test_the_detail_is_in_the_staff_members_language(notify_db: Database) -> None:
    created = await raise_alert(
        notify_db,
        Feedback(id="f-9", category="wait_time", text="waited long"),
        now=NOW,
        the_plan=scripted(),
        customer=customer("c-9"),
    )
    assert created is not None
    async with notify_db.session() as s:
        english = await views.read_alert(s, alert_id=created.alert.id, principal=LEAD)
    # The plan was rendered in Korean; lead reads English (the fixture's staff language).
    assert english["plan"]["language"] == "en" and english["plan"]["title"] == "Waiting"
    assert english["plan"]["steps"] == [{"text": "Greet by name", "role": "staff"}]
    assert english["plan"]["script"] == "Kim Minsu, we are sorry."
    assert english["context"]["recent_contacts"][0]["store_name"] == "Store 1"
    assert english["context"]["last_visits"][0]["store_name"] == "Store 1"  # not the store's id
    async with notify_db.transaction() as s:
        staff = (await s.scalars(select(Staff).where(Staff.id == "lead"))).one()
        staff.language = "ko"
    async with notify_db.session() as s:
        korean = await views.read_alert(s, alert_id=created.alert.id, principal=LEAD)
    assert korean["plan"]["script"] == "김민수님, 죄송합니다." and korean["plan"]["language"] == "ko"
    assert (
        korean["title"] == "[긴급] 대기 시간 · Store 1" and english["title"] == "[URGENT] Wait time · Store 1"
    )


async def _pattern_item(db: Database, feedback_id: str, customer_key: str, *, now: float) -> object:
    async with db.session() as s:
        store = await s.get(Store, "s1")
    return await dbsync.write(
        db,
        patterns.record_item_sync,
        watch=patterns.PatternWatch(rules={"*": patterns.PatternRule(3, 3600)}, repush_seconds=300),
        feedback_id=feedback_id,
        store=store,
        category="wait_time",
        customer_key=customer_key,
        alert_id=None,
        excerpt=f"waited ({feedback_id})",
        language="en",
        now=now,
    )


async def _pattern_alert(db: Database) -> tuple[alerts_module.NewAlert, Alert]:
    """An alert made while profile could not be asked (no customer on it), and a pattern alert
    quoting its text, listing it beside the erased customer's item and another customer's."""
    unlinked = await raise_alert(
        db, Feedback(id="f-late", category="wait_time", text="김민수, 010-1234-5678, 30분 기다림"), now=NOW
    )
    assert unlinked is not None and unlinked.alert.customer_id is None
    assert await _pattern_item(db, "f-other", "c-other", now=NOW) is None
    assert await _pattern_item(db, "f-mine", "c-erased", now=NOW + 1) is None
    spike = await _pattern_item(db, "f-late", patterns.customer_key(None, "f-late"), now=NOW + 2)
    assert isinstance(spike, patterns.Spike)
    async with db.session() as s:
        store = await s.get(Store, "s1")
    opened = await dbsync.write(
        db, patterns.raise_pattern_sync, spike=spike, store=store, plan=plan(), language="en",
        repush_seconds=300, now=NOW + 2,
    )  # fmt: skip
    assert opened is not None and "waited (f-late)" in opened.alert.body
    return unlinked, opened.alert


async def _excerpts(db: Database, pattern_id: str) -> tuple[dict[str, str], dict[str, str], Alert]:
    """(excerpts of the window's rows, of the alert's stored list, the alert) after erasure; the
    live list the detail shows is the rows'."""
    async with db.session() as s:
        pattern = await s.get(Alert, pattern_id)
        assert pattern is not None
        rows = {
            row.feedback_id: row.excerpt
            for row in await s.execute(select(PatternItem.feedback_id, PatternItem.excerpt))
        }
        live = await views.pattern_window(s, alert=pattern)
    assert live is not None and {i["feedback_id"]: i["excerpt"] for i in live[0]} == rows
    return rows, {i["feedback_id"]: i["excerpt"] for i in pattern.items or []}, pattern


async def test_copies_without_the_customer_are_found_by_the_feedback_ids(notify_db: Database) -> None:
    """The erasure event names the customer's feedback items: the alert without a customer and
    the pattern window's items (the anonymous-looking one, and the customer's own whose row was
    pruned while the pattern alert listing it stays) lose the text; the pattern alert quotes
    another customer's excerpt instead. Another customer's items stay."""
    unlinked, pattern = await _pattern_alert(notify_db)
    async with notify_db.transaction() as s:  # pruned: only the alert's list has it now
        await s.execute(delete(PatternItem).where(PatternItem.feedback_id == "f-mine"))

    async with notify_db.transaction() as s:
        named = ["f-late", "f-mine", "f-gone"]
        assert await redact_customer(s, customer_id="c-erased", feedback_ids=named) == 2
    async with notify_db.session() as s:
        alert = await s.get(Alert, unlinked.alert.id)
    assert alert is not None and alert.context == ERASED_CONTEXT and alert.feedback["text"] == ""
    assert "김민수" not in alert.body and "기다림" not in alert.body
    rows, listed, stored = await _excerpts(notify_db, pattern.id)
    assert rows == {"f-late": "", "f-other": "waited (f-other)"}
    assert listed == {"f-late": "", "f-mine": "", "f-other": "waited (f-other)"}
    assert "waited (f-other)" in stored.body and "f-late" not in stored.body
    assert stored.context["pattern"]["customers"] == 3  # the count stays: what happened

    async with notify_db.transaction() as s:  # a redelivered event: the alert again, nothing new
        assert await redact_customer(s, customer_id="c-erased", feedback_ids=["f-late"]) == 1


async def test_an_event_naming_no_items_finds_the_window_items_by_the_customer(notify_db: Database) -> None:
    """An older profile's event carries the customer id alone: their items in the windows are
    found by it. The unlinked alert and its item cannot be (nothing names them)."""
    unlinked, pattern = await _pattern_alert(notify_db)
    async with notify_db.transaction() as s:
        assert await redact_customer(s, customer_id="c-erased") == 1  # the pattern alert
    rows, listed, _ = await _excerpts(notify_db, pattern.id)
    assert rows == listed == {"f-late": "waited (f-late)", "f-mine": "", "f-other": "waited (f-other)"}
    async with notify_db.session() as s:
        alert = await s.get(Alert, unlinked.alert.id)
    assert alert is not None and alert.feedback["text"].startswith("김민수")


async def test_retention_redacts_what_was_written_on_old_alerts(notify_db: Database) -> None:
    """`VOC_RETENTION_DAYS`: an alert made before the cut-off loses the text, the customer's
    context (`EXPIRED_CONTEXT`) and the script, a pattern alert its items' excerpts; a newer one
    keeps them. What happened stays; each alert is redacted once; the hourly job drains every
    batch of a backlog."""
    old = await raise_alert(
        notify_db, Feedback(id="f-old", category="wait_time", text="김민수, 30분 기다림"), now=NOW,
        the_plan=scripted(), customer=customer("c-old"),
    )  # fmt: skip
    _, pattern = await _pattern_alert(notify_db)  # made at NOW too
    new = await raise_alert(
        notify_db, Feedback(id="f-new", category="wait_time", text="still fresh"), now=NOW + 86400 * 30,
        customer=customer("c-new"),
    )  # fmt: skip
    assert old is not None and new is not None
    async with notify_db.transaction() as s:  # what staff wrote on resolving the pattern alert
        await s.execute(update(Alert).where(Alert.id == pattern.id).values(note="김민수 고객 통화함"))
    before = NOW + 86400  # the three made at NOW are past it
    async with notify_db.transaction() as s:
        assert await redact_past_retention(s, before=before, now=NOW + 86400 * 31) == 3
    async with notify_db.session() as s:
        expired = await s.get(Alert, old.alert.id)
        kept = await s.get(Alert, new.alert.id)
        listed = await s.get(Alert, pattern.id)
    assert expired is not None and kept is not None and listed is not None
    assert expired.context == EXPIRED_CONTEXT and expired.customer_id is None
    assert expired.feedback["text"] == "" and expired.plan["script"] == "" and "김민수" not in expired.body
    assert expired.status == "open" and expired.plan["steps"]  # what happened stays
    assert {i["excerpt"] for i in listed.items or []} == {""} and "waited" not in listed.body
    assert listed.note == ""
    assert kept.feedback["text"] == "still fresh" and kept.context["known"] and kept.redacted_at is None
    async with notify_db.transaction() as s:
        assert await redact_past_retention(s, before=before, now=NOW + 86400 * 31) == 0

    # A backlog longer than a batch: the job's pass takes every batch, then waits for the next hour;
    # a row whose JSON cannot be read is redacted whole, not left to stop every later pass.
    for i in range(RETENTION_BATCH + 5):
        await raise_alert(
            notify_db, Feedback(id=f"f-bulk-{i}", category="cleanliness", text="dirty"), now=NOW
        )
    async with notify_db.transaction() as s:
        await s.execute(
            update(Alert).where(Alert.feedback_id == "f-bulk-0").values(plan=["not", "a", "plan"])
        )

    async def redact(cut: float) -> int:
        async with notify_db.transaction() as s:
            return await redact_past_retention(s, before=cut, now=time.time())

    job = asyncio.create_task(
        retention_job(days=1, redact=redact, what="alerts", every_seconds=0.05, pause_seconds=0.01)()
    )
    try:
        async with asyncio.timeout(30):
            while True:
                await asyncio.sleep(0.05)
                async with notify_db.session() as s:
                    left = await s.scalar(
                        select(func.count()).select_from(Alert).where(Alert.redacted_at.is_(None))
                    )
                if left == 0:  # every alert here is older than a day of the real clock
                    break
    finally:
        job.cancel()
    async with notify_db.session() as s:
        broken = (await s.scalars(select(Alert).where(Alert.feedback_id == "f-bulk-0"))).one()
    assert (broken.feedback, broken.context, broken.body) == ({}, EXPIRED_CONTEXT, "")


async def test_an_event_read_after_the_erasure_copies_nothing_of_the_customer(notify_db: Database) -> None:
    """A consumer that lagged reads the erasure before the item's own event: the alert consumer's
    hop makes the alert as the erasure leaves one (no text, no customer, no script, redacted) and
    counts the item in its pattern window without an excerpt; a follow-up asked for it is never
    sent. Another customer's item is made as ever. The names are forgotten once no event can
    name the item any more."""
    async with notify_db.transaction() as s:
        await tombstones.remember(s, customer_id="c-gone", feedback_ids=["f-gone", "f-gone"], now=NOW)
    watch = patterns.PatternWatch(rules={"*": patterns.PatternRule(3, 3600)})
    consumer = events.AlertConsumer(
        notify_db,
        cast(Upstreams, None),  # the hop asks no upstream: its input is gathered before it
        AlertBroker(),
        cast(DeliveryWorker, None),
        dedupe_window=alerts_module.DEFAULT_DEDUPE_WINDOW_SECONDS,
        watch=watch,
    )
    async with notify_db.session() as s:
        store = await s.get(Store, "s1")
    assert store is not None
    made = {}
    for feedback_id, text in (
        ("f-gone", "김민수입니다, 010-1234-5678, 또 기다려요"),
        ("f-kept", "someone else waited"),
    ):
        facts = AlertInput(
            feedback=Feedback(
                id=feedback_id, category="wait_time", sentiment="negative", text=text, ratings={"csat": 1}
            ),
            store=store,
            customer=dataclasses.replace(customer("c-" + feedback_id), name="김민수"),
            plan=dataclasses.replace(scripted(), title="김민수 고객 대기 응대"),
            language="en",
        )
        event = events_pb2.FeedbackReceived(
            facts=common_pb2.FeedbackFacts(feedback_id=feedback_id, store_id="s1"), text=text
        )
        created, _, _ = await alerts_module.write_alert(
            notify_db, consumer._write, facts=facts, event=event, event_id=f"e-{feedback_id}", now=NOW + 10
        )
        assert created is not None
        made[feedback_id] = created.alert.id
    async with notify_db.session() as s:
        gone, kept = await s.get(Alert, made["f-gone"]), await s.get(Alert, made["f-kept"])
        excerpts = {
            row.feedback_id: row.excerpt
            for row in await s.execute(select(PatternItem.feedback_id, PatternItem.excerpt))
        }
    assert gone is not None and kept is not None
    assert gone.context == ERASED_CONTEXT and gone.customer_id is None and gone.redacted_at == NOW + 10
    assert gone.feedback["text"] == "" and "김민수" not in gone.body and "기다려요" not in gone.body
    assert gone.plan["script"] == "" and "김민수" not in str(gone.plan)
    assert gone.status == "open" and gone.category == "wait_time"  # what happened stays
    assert kept.feedback["text"] == "someone else waited" and kept.context["known"]
    assert excerpts["f-gone"] == "" and excerpts["f-kept"]
    created_events = [
        events_pb2.AlertCreated.FromString(e["payload"])
        for e in await outbox_events(notify_db, "voc.alert.created")
    ]
    titles = {e.feedback_id: e.playbook_title for e in created_events}
    assert "김민수" not in titles["f-gone"] and titles["f-gone"]  # the plan's title, without the name

    # A visit of the erased customer read after the erasure: no heads-up (nobody to announce);
    # another customer's arrival is announced as ever.
    greeter = events.ArrivalConsumer(
        notify_db, cast(Upstreams, None), AlertBroker(), cast(DeliveryWorker, None)
    )
    for customer_id in ("c-gone", "c-other"):
        arrived = events_pb2.CustomerArrived(
            visit_id=f"v-{customer_id}", customer_id=customer_id, store_id="s1", name="김민수",
            masked_name="김**", tier="vip", vip=True, occurred_at_ms=int(NOW * 1000),
        )  # fmt: skip
        heads_up, _ = await dbsync.write(
            notify_db, greeter._write, arrival=arrivals.arrival_of(arrived), store=store, plan=plan(),
            language="en", event_id=f"arrived:{customer_id}", customer=None, degraded=(),
        )  # fmt: skip
        assert (heads_up is None) == (customer_id == "c-gone"), customer_id

    # Asked for a follow-up of the erased item: recorded as not sent, no contact kept.
    request = events_pb2.FollowUpRequested(
        feedback_id="f-gone", store_id="s1", url="http://feedback.test/f/x", language="ko",
        email="minsu.kim@example.com", expires_at_ms=int((NOW + 86400) * 1000),
    )  # fmt: skip
    async with notify_db.transaction() as s:
        row = await follow_ups.schedule(s, request=request, now=NOW + 20)
    assert row is not None and (row.status, row.email, row.last_error) == (
        "not_sent",
        None,
        follow_ups.ERASED,
    )

    async with notify_db.transaction() as s:
        await tombstones.remember(
            s, customer_id="", feedback_ids=["f-later"], now=NOW + tombstones.TOMBSTONE_SECONDS
        )
    forgotten = await dbsync.write(
        notify_db, tombstones.prune_sync, now=NOW + tombstones.TOMBSTONE_SECONDS + 1
    )
    assert forgotten == 2  # the customer's name and their item's
    assert await dbsync.write(notify_db, tombstones.erased_sync, tombstones.feedback_key("f-gone")) is False
    assert await dbsync.write(notify_db, tombstones.erased_sync, tombstones.feedback_key("f-later")) is True
