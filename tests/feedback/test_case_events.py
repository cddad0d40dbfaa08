"""The case-lifecycle consumer against the database, without NATS: out-of-order events, the
earliest-timestamp rule, the forward-only status, escalation, idempotency per event id, the
follow-up a first resolution opens, the mirroring on a reopened case, customer links and erasure.
The one case-event writer runs prepared statements inside whichever session records the event: a
session that already holds the cases as ORM objects (as `answer_follow_up`'s does) must end in
exactly the state a fresh session (the consumer's) leaves."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from google.protobuf.message import Message
from sqlalchemy import select, update

from tests.conftest import DatabaseFactory
from voc.events.v1 import events_pb2
from voc_feedback import cases as case_lifecycle
from voc_feedback import events, keys, stores
from voc_feedback.__main__ import MIGRATIONS
from voc_feedback.cases import CaseEvent
from voc_feedback.follow_up_links import FollowUpLinks
from voc_feedback.intake import IntakeParts, accept_feedback, authenticate_store_key
from voc_feedback.messages import SUBJECT_FOLLOW_UP_REQUESTED
from voc_feedback.models import Feedback, FollowUp, TimelineEntry, outbox_table
from voc_feedback.schemas import FeedbackIn, StoreIn
from voc_platform import dbsync, migrations
from voc_platform.db import Database
from voc_platform.ratelimit import RateLimiter

BASE = 1_800_000_000.0
LINKS = FollowUpLinks(secret="case-events-secret", public_url="http://feedback.test", ttl_seconds=3600)


def ms(seconds: float) -> int:
    return int((BASE + seconds) * 1000)


class HoldingCases:
    """A database whose transactions start with the cases loaded in the session (ORM state)."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.ids: list[str] = []

    def __getattr__(self, name: str) -> Any:
        # Paths that never open an ORM session (`dbsync` hops) use the database itself.
        return getattr(self.database, name)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Any]:
        async with self.database.transaction() as session:
            held = [await session.get(Feedback, feedback_id) for feedback_id in self.ids]
            yield session
            del held  # the identity map is weak: held for the transaction


async def run_scenario(database: Database, *, orm: bool) -> dict[str, Any]:
    await migrations.upgrade(database, MIGRATIONS, name="feedback")
    async with database.transaction() as session:
        await stores.put_stores(session, stores=[StoreIn(id="s1", name="s1")])  # a key's stores are in it
        _, key = await keys.create_api_key(session, name="case events", store_ids=["s1"])
    ids: dict[str, str] = {}
    limiter = RateLimiter(rate_per_second=1, burst=10)
    for name in ("A", "B", "C"):
        body = FeedbackIn.model_validate(
            {
                "store_id": "s1",
                "channel": "kiosk",
                "text": f"case {name}",
                "customer": {"phone": "010-1234-5678"},
            }
        )
        parts = IntakeParts(database, limiter, idempotency_ttl=60)
        api_key = await authenticate_store_key(parts, key)
        intake = await accept_feedback(parts, api_key=api_key, body=body, idempotency_key=None)
        ids[name] = intake.feedback_id
    a, b, c = ids["A"], ids["B"], ids["C"]
    async with database.transaction() as session:  # B is the item that reopened A
        await session.execute(update(Feedback).where(Feedback.id == b).values(reopens_id=a))

    target: Any = database
    if orm:
        target = HoldingCases(database)
        target.ids = [a, b, c]
    handle = events.consumers(target, LINKS)[0].handler

    async def publish(subject: str, message: Message, event_id: str) -> None:
        msg = SimpleNamespace(
            subject=subject, data=message.SerializeToString(), headers={"Nats-Msg-Id": event_id}, reply=""
        )
        await handle(msg)

    created = events_pb2.AlertCreated
    await publish(
        "voc.alert.created",
        created(alert_id="a1", feedback_id=a, customer_id="cust-1", priority="high", created_at_ms=ms(5)),
        "a1-created",
    )
    await publish(
        "voc.alert.escalated",
        events_pb2.AlertEscalated(
            alert_id="a1", feedback_id=a, level=1, roles=["sm"], escalated_at_ms=ms(60)
        ),
        "a1-escalated",
    )
    await publish(
        "voc.alert.acknowledged",
        events_pb2.AlertAcknowledged(alert_id="a1", feedback_id=a, staff_id="st", acknowledged_at_ms=ms(30)),
        "a1-ack",
    )
    # An earlier alert arriving late: the earliest time wins, the status does not go back.
    await publish(
        "voc.alert.created", created(alert_id="a0", feedback_id=a, created_at_ms=ms(2)), "a0-created"
    )
    resolved = events_pb2.AlertResolved
    await publish(
        "voc.alert.resolved",
        resolved(
            alert_id="a1", feedback_id=a, staff_id="st", outcome="fixed", note="n", resolved_at_ms=ms(100)
        ),
        "a1-resolved",
    )
    await publish(
        "voc.alert.acknowledged",
        events_pb2.AlertAcknowledged(alert_id="a0", feedback_id=a, staff_id="st", acknowledged_at_ms=ms(20)),
        "a0-ack",
    )
    await publish(
        "voc.alert.resolved",
        resolved(alert_id="a0", feedback_id=a, staff_id="st", outcome="again", resolved_at_ms=ms(90)),
        "a0-resolved",
    )
    await publish(
        "voc.alert.created",
        created(alert_id="b1", feedback_id=b, customer_id="cust-1", created_at_ms=ms(10)),
        "b1-created",
    )
    await publish(
        "voc.alert.resolved",
        resolved(alert_id="b1", feedback_id=b, staff_id="st", outcome="fixed", resolved_at_ms=ms(80)),
        "b1-resolved",
    )
    await publish(
        "voc.profile.feedback_linked",
        events_pb2.FeedbackLinked(feedback_id=c, customer_id="cust-2"),
        "c-linked",
    )
    await publish(
        "voc.alert.created",
        created(alert_id="x1", feedback_id="no-such-feedback", customer_id="cust-3", created_at_ms=ms(1)),
        "x1-created",
    )
    await publish("voc.profile.customer_erased", events_pb2.CustomerErased(customer_id="cust-1"), "erased-1")
    await publish(
        "voc.alert.created", created(alert_id="a1", feedback_id=a, created_at_ms=ms(1)), "a1-created"
    )

    returned: list[Any] = []
    direct: list[tuple[str, str, float, str | None]] = [
        (a, "acknowledged", 1, "a1-ack"),  # seen on the timeline: nothing recorded
        (c, "escalated", 70, None),
        (c, "alerted", 65, "c-alerted"),
        ("no-such-feedback", "alerted", 1, "x2"),
    ]
    for feedback_id, status, at, event_id in direct:
        async with target.transaction() as session:
            returned.append(
                await case_lifecycle.record_case_event(
                    session, CaseEvent(feedback_id, status, BASE + at, "test", {"n": 1}, event_id)
                )
            )
            # What the session shows afterwards: a case it held must not be stale.
            row = await session.get(Feedback, feedback_id)
            returned.append(None if row is None else (row.status, row.alerted_at, row.escalated))
    link, redact = case_lifecycle.link_customer, case_lifecycle.redact_customer
    returned.append(await dbsync.write(database, link, feedback_id=c, customer_id="cust-2"))
    returned.append(await dbsync.write(database, link, feedback_id="no-such-feedback", customer_id="x"))
    returned.append(await dbsync.write(database, redact, customer_id="cust-2"))
    returned.append(await dbsync.write(database, redact, customer_id="nobody"))

    label = {v: k for k, v in ids.items()}
    cases: dict[str, Any] = {}
    async with database.session() as session:
        for name, feedback_id in ids.items():
            row = await session.get(Feedback, feedback_id)
            assert row is not None
            timeline = await session.scalars(
                select(TimelineEntry)
                .where(TimelineEntry.feedback_id == feedback_id)
                .order_by(TimelineEntry.at, TimelineEntry.id)
            )
            follow_ups = list(
                await session.scalars(select(FollowUp).where(FollowUp.feedback_id == feedback_id))
            )
            cases[name] = {
                "row": {
                    "status": row.status,
                    "alerted_at": row.alerted_at,
                    "acknowledged_at": row.acknowledged_at,
                    "resolved_at": row.resolved_at,
                    "escalated": row.escalated,
                    "customer_id": row.customer_id,
                    "customer": row.customer,
                    "reopens_id": label.get(row.reopens_id or ""),
                },
                "timeline": [
                    (
                        t.kind,
                        None if t.kind == "received" else t.at,
                        None if t.kind == "received" else t.actor,  # the key prefix is random
                        {
                            k: label.get(v, v) if isinstance(v, str) else v
                            for k, v in t.detail.items()
                            if k not in ("follow_up_id", "expires_at", "channel")
                        },
                        t.event_id,
                    )
                    for t in timeline
                ],
                "follow_ups": len(follow_ups),
            }
        requested = (
            await session.execute(
                select(outbox_table.c.payload)
                .where(outbox_table.c.subject == SUBJECT_FOLLOW_UP_REQUESTED)
                .order_by(outbox_table.c.seq)
            )
        ).scalars()
        follow_up_events = []
        for payload in requested:
            event = events_pb2.FollowUpRequested.FromString(payload)
            follow_up_events.append((label[event.feedback_id], event.customer_id, event.language))
    await database.dispose()
    return {"returned": returned, "cases": cases, "follow_up_events": follow_up_events}


async def test_case_events_alike_whether_the_session_holds_the_cases_or_not(
    databases: DatabaseFactory,
) -> None:
    fast = await run_scenario(Database(databases.url("case_events_fresh")), orm=False)
    orm = await run_scenario(Database(databases.url("case_events_held")), orm=True)
    assert fast == orm

    seen = [("resolved", BASE + 2, True), ("received", None, True), ("alerted", BASE + 65, True), None]
    assert fast["returned"][0:8:2] == ["resolved", "received", "alerted", None]
    assert fast["returned"][1:8:2] == seen
    assert fast["returned"][8:] == [True, False, 1, 0]
    a, b, c = (fast["cases"][name] for name in "ABC")
    assert a["row"] == {
        "status": "resolved",
        "alerted_at": BASE + 2,
        "acknowledged_at": BASE + 20,
        "resolved_at": BASE + 80,  # mirrored from B
        "escalated": True,
        "customer_id": "cust-1",
        "customer": {},
        "reopens_id": None,
    }
    assert [(t[0], t[4]) for t in a["timeline"]] == [
        ("received", None),
        ("alerted", "a0-created"),
        ("alerted", "a1-created"),
        ("acknowledged", "a0-ack"),
        ("acknowledged", "a1-ack"),
        ("escalated", "a1-escalated"),
        ("resolved", "b1-resolved:parent"),
        ("resolved", "a0-resolved"),
        ("resolved", "a1-resolved"),
        ("follow_up_requested", None),
    ]
    mirrored = a["timeline"][6]
    assert mirrored[3] == {"alert_id": "b1", "outcome": "fixed", "note": "", "via_feedback_id": "B"}
    assert a["timeline"][2][3] == {
        "alert_id": "a1",
        "priority": "high",
        "playbook_id": "",
        "recipients": 0,
        "degraded": [],
    }
    assert a["follow_ups"] == 1 and b["follow_ups"] == 1 and c["follow_ups"] == 0
    assert b["row"]["status"] == "resolved" and b["row"]["customer"] == {} and b["row"]["reopens_id"] == "A"
    assert c["row"] == {
        "status": "alerted",
        "alerted_at": BASE + 65,
        "acknowledged_at": None,
        "resolved_at": None,
        "escalated": True,
        "customer_id": "cust-2",
        "customer": {},
        "reopens_id": None,
    }
    assert fast["follow_up_events"] == [("A", "cust-1", "en"), ("B", "cust-1", "en")]


def test_a_long_staff_id_is_cut_to_the_timelines_actor_column() -> None:
    """`feedback_timeline.actor` holds 64 and a staff id may have 64: "staff:" and such an id
    made PostgreSQL refuse the step (the API review), on the event path and over gRPC alike."""
    step = case_lifecycle.CaseEvent(
        feedback_id="f", status="acknowledged", at=0.0, actor="staff:" + "s" * 64, detail={}, event_id=None
    )
    assert step.actor == ("staff:" + "s" * 64)[: case_lifecycle.ACTOR_CHARS] and len(step.actor) == 64


def _js_table(script: str, name: str) -> dict[str, str]:
    body = script.split(f"const {name} = {{", 1)[1].split("\n  };", 1)[0]
    return dict(re.findall(r'^\s*(\w+): "([^"]*)",', body, flags=re.MULTILINE))


def test_the_console_reads_the_follow_up_notes_this_service_writes() -> None:
    """The console says a follow-up step's note in the reader's words only when the note is one
    of these sentences, so its copies must match them word for word: a held note said in
    English on a Korean console is what a mismatch looked like."""
    script = (Path(events.__file__).parent / "dashboard" / "cases.js").read_text(encoding="utf-8")
    assert _js_table(script, "FOLLOW_UP_NOTES") == {
        **events.FOLLOW_UP_NOTES,
        "not_requested": "follow-up not asked: {reason}",
    }
    assert _js_table(script, "FOLLOW_UP_NOTES_NO_CHANNEL") == events.FOLLOW_UP_NOTES_NO_CHANNEL
    held = events.follow_up_message(
        events_pb2.FollowUpSent(feedback_id="f", outcome="held", reason="store quiet hours", channel=""), "e"
    )
    assert held.detail["note"] == "follow-up held: store quiet hours; sent when they end"


async def items_taken(databases: DatabaseFactory, name: str, *texts: str) -> tuple[Database, list[str]]:
    """A migrated database of its own, and one item per text taken at store s1's intake, each with
    the customer's phone copied from the submission."""
    database = Database(databases.url(name))
    await migrations.upgrade(database, MIGRATIONS, name="feedback")
    async with database.transaction() as session:
        await stores.put_stores(session, stores=[StoreIn(id="s1", name="s1")])
        _, key = await keys.create_api_key(session, name=name, store_ids=["s1"])
    parts = IntakeParts(database, RateLimiter(rate_per_second=1, burst=10), idempotency_ttl=60)
    api_key = await authenticate_store_key(parts, key)
    ids = []
    for text in texts:
        body = FeedbackIn.model_validate(
            {"store_id": "s1", "channel": "kiosk", "text": text, "customer": {"phone": "010-1234-5678"}}
        )
        ids.append(
            (await accept_feedback(parts, api_key=api_key, body=body, idempotency_key=None)).feedback_id
        )
    return database, ids


async def test_erasure_finds_an_item_not_yet_linked_by_the_ids_profile_names(
    databases: DatabaseFactory,
) -> None:
    """Profile tied the item to the customer, but its `feedback_linked` has not been read here
    (no customer on the case) when the erasure comes: the event's feedback ids find it. An item
    it does not name keeps its text."""
    database, ids = await items_taken(
        databases, "case_events_erasure", "김민수입니다, 010-1234-5678로 연락 주세요", "someone else's words"
    )
    handle = events.consumers(database, LINKS)[0].handler
    erased = events_pb2.CustomerErased(customer_id="cust-9", feedback_ids=[ids[0], "not-here"])
    await handle(
        SimpleNamespace(
            subject="voc.profile.customer_erased",
            data=erased.SerializeToString(),
            headers={"Nats-Msg-Id": "erased:cust-9"},
            reply="",
        )
    )
    async with database.session() as session:
        named, other = [await session.get(Feedback, feedback_id) for feedback_id in ids]
        assert named is not None and other is not None
        assert (named.text, named.customer, named.customer_id) == (None, {}, None)
        assert named.redacted_at is not None and other.redacted_at is None  # retention passes it by
        assert other.text == "someone else's words" and other.customer
    # A delivery report that comes after (a bounce naming the mailbox) keeps no words on the case.
    late = events_pb2.FollowUpSent(
        feedback_id=ids[0], store_id="s1", channel="email", outcome="undelivered",
        reason="5.2.2; smtp; 552 5.2.2 kim.minsu mailbox full", attempt=1, at_ms=int(time.time() * 1000),
    )  # fmt: skip
    await handle(
        SimpleNamespace(
            subject="voc.notify.follow_up_sent", data=late.SerializeToString(), headers={}, reply=""
        )
    )
    async with database.session() as session:
        (step,) = await session.scalars(
            select(TimelineEntry).where(
                TimelineEntry.feedback_id == ids[0], TimelineEntry.kind == "follow_up_undelivered"
            )
        )
    assert (
        step.detail["note"] == "" and step.detail["reason"] == "" and step.detail["outcome"] == "undelivered"
    )
    await database.dispose()


async def test_retention_redacts_what_was_written_on_old_items(databases: DatabaseFactory) -> None:
    """`VOC_RETENTION_DAYS`: an item that arrived before the cut-off loses its text, the
    identifiers copied at intake, the notes on its timeline and the survey's comment, as an
    erased customer's do; a newer item keeps them; each is redacted once."""
    database, ids = await items_taken(
        databases, "case_events_retention", "김민수입니다, 국이 식었어요", "still fresh"
    )
    old = ids[0]
    long_ago = time.time() - 10 * 86400
    async with database.transaction() as session:
        await session.execute(update(Feedback).where(Feedback.id == old).values(received_at=long_ago))
        session.add(
            TimelineEntry(
                feedback_id=old, at=BASE, kind="resolved", actor="staff:s", detail={"note": "called 김민수"}
            )
        )
        session.add(  # the services' own words: kept
            TimelineEntry(
                feedback_id=old, at=BASE, kind="follow_up_not_requested", actor="feedback",
                detail={"note": "follow-up not asked: resolved as no action needed",
                        "reason": "resolved as no action needed"},
            )
        )  # fmt: skip
        session.add(
            FollowUp(
                id="fu-old", feedback_id=old, language="ko", created_at=BASE, expires_at=BASE, comment="짜요"
            )
        )
    before = time.time() - 86400
    assert (
        await dbsync.write(database, case_lifecycle.redact_past_retention, before=before, now=BASE + 2) == 1
    )
    assert (
        await dbsync.write(database, case_lifecycle.redact_past_retention, before=before, now=BASE + 3) == 0
    )
    async with database.session() as session:
        expired, kept = [await session.get(Feedback, feedback_id) for feedback_id in ids]
        notes = [
            t.detail
            for t in await session.scalars(select(TimelineEntry).where(TimelineEntry.feedback_id == old))
        ]
        comment = await session.scalar(select(FollowUp.comment).where(FollowUp.feedback_id == old))
    assert expired is not None and kept is not None
    assert (expired.text, expired.customer, expired.redacted_at) == (None, {}, BASE + 2)
    assert expired.csat is None and expired.sentiment and expired.category  # the numbers stay
    assert {"note": ""} in notes and comment is None
    assert {
        "note": "follow-up not asked: resolved as no action needed",
        "reason": "resolved as no action needed",
    } in notes
    assert kept.text == "still fresh" and kept.customer and kept.redacted_at is None
    await database.dispose()
