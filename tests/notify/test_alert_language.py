"""Every alert in the staff member's language (#18 §1), not only feedback alerts: a pattern
alert's and a heads-up's title and body are composed again in the reader's language in the
detail, the inbox and the live stream (whose events come composed in the store's language, for
every listener). On a real database (SQLite or PostgreSQL)."""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

from sqlalchemy import select

from tests.notify.conftest import raise_alert
from tests.notify.test_arrivals import PLAN as HEADS_UP_PLAN
from tests.notify.test_arrivals import arrival
from tests.notify.test_erasure import LEAD, customer, scripted
from tests.notify.test_patterns import _raise, _record, _spike
from voc.common.v1 import common_pb2
from voc.events.v1 import events_pb2
from voc_notify import arrivals, views
from voc_notify.erasure import redact_customer
from voc_notify.events import feedback_of
from voc_notify.facts import Feedback, HouseholdMember
from voc_notify.models import Alert, Staff, Store
from voc_notify.settings import Settings
from voc_notify.workers import push_payload
from voc_platform import dbsync, taxonomy
from voc_platform.db import Database


async def reads(db: Database, language: str) -> None:
    async with db.transaction() as s:
        staff = (await s.scalars(select(Staff).where(Staff.id == "lead"))).one()
        staff.language = language


async def seen(db: Database, alert_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The alert's detail and its inbox row, as the lead reads them."""
    async with db.session() as s:
        detail = await views.read_alert(s, alert_id=alert_id, principal=LEAD)
        page = await views.inbox(s, principal=LEAD, status=None, before=None, limit=50)
    row = next(a for a in page["alerts"] if a["id"] == alert_id)
    return detail, row


async def test_a_pattern_alert_reads_in_the_staff_members_language(notify_db: Database) -> None:
    now = time.time()
    for i in range(2):
        assert await _record(notify_db, f"l{i}", f"c{i}", now=now + i) is None
    opened = await _raise(notify_db, await _spike(notify_db, "l2", "c2", now=now + 2), now=now + 2)
    assert opened is not None
    alert = opened.alert
    assert alert.title.startswith("[URGENT]") and "Wait time" in alert.title  # the store's (en)
    await reads(notify_db, "ko")
    detail, row = await seen(notify_db, alert.id)
    for shown in (detail, row):
        assert shown["title"].startswith("[긴급]") and "대기 시간" in shown["title"], shown["title"]
        assert "고객 3명이 같은 불만" in shown["body"]
    await reads(notify_db, "en")
    detail, _ = await seen(notify_db, alert.id)
    assert detail["title"] == alert.title


async def test_a_heads_up_reads_in_the_staff_members_language(notify_db: Database) -> None:
    async with notify_db.session() as s:
        store = await s.get(Store, "s1")
    assert store is not None and store.language == "en"
    outcome = await dbsync.write(
        notify_db, arrivals.heads_up_sync, arrival=arrival(time.time()), store=store, plan=HEADS_UP_PLAN,
        language="en", now=time.time(),
    )  # fmt: skip
    assert outcome is not None
    async with notify_db.session() as s:
        alert = (await s.scalars(select(Alert).where(Alert.kind == "heads_up"))).one()
    assert "just arrived" in alert.body
    await reads(notify_db, "ko")
    detail, row = await seen(notify_db, alert.id)
    for shown in (detail, row):
        assert "김** (VIP)" in shown["title"] and "방금 도착했습니다" in shown["body"], shown
        assert "just arrived" not in shown["body"]


async def test_the_live_stream_speaks_each_listeners_language(notify_db: Database) -> None:
    now = time.time()
    for i in range(2):
        assert await _record(notify_db, f"s{i}", f"c{i}", now=now + i) is None
    opened = await _raise(notify_db, await _spike(notify_db, "s2", "c2", now=now + 2), now=now + 2)
    assert opened is not None
    event = {"type": "alert.created", "alert": views.alert_summary(opened.alert)}
    korean = await views.StreamLanguage("ko").event(notify_db.session, event)
    assert korean["alert"]["title"].startswith("[긴급]") and korean["alert"]["id"] == opened.alert.id
    assert korean["alert"]["status"] == "open" and korean["type"] == "alert.created"
    # The store's own language, or no language known (the admin): the event as it came.
    assert await views.StreamLanguage("en").event(notify_db.session, event) is event
    assert await views.StreamLanguage("").event(notify_db.session, event) is event


PUSH_FIELDS = {
    "alert_id",
    "feedback_id",
    "kind",
    "title",
    "body",
    "priority",
    "url",
    "status",
    "updates",
    "uncertain",
}


async def test_the_push_of_an_alert_with_a_story_stays_masked_and_small(notify_db: Database) -> None:
    """The story (recent contacts, household, signal reasons, the plan with the customer's name)
    is for the app: the push carries the fixed masked fields only, well under one record, and
    the quoted text has the customer's name masked like their numbers (#18 §1)."""
    text = "김민수입니다 010-1234-5678 또 40분 기다렸어요 " * 5
    event = events_pb2.FeedbackReceived(
        facts=common_pb2.FeedbackFacts(feedback_id="f-story", category="wait_time", store_id="s1"),
        text=text,
        customer=common_pb2.CustomerIdentifiers(loyalty_id="L-story"),
    )
    feedback = feedback_of(event, names=("김민수",))  # the name profile has on file
    assert feedback.text == text and feedback.lock_text.startswith("김**입니다")
    created = await raise_alert(
        notify_db,
        feedback,
        now=time.time(),
        the_plan=scripted(),
        customer=customer("c-story", household=(HouseholdMember("c-owner", "김**", "owner"),)),
    )
    assert created is not None
    async with notify_db.session() as s:
        store = await s.get(Store, "s1")
    for language in ("ko", "en"):
        raw = push_payload(created.alert, Settings(), store=store, language=language)
        payload = json.loads(raw)
        assert set(payload) == PUSH_FIELDS
        assert len(raw) < 1024, len(raw)
        # Without the alert's own id: a random uuid holds "f-0" (the contact's id) 0.4 % of the time.
        text = raw.decode().replace(created.alert.id, "")
        assert (
            "김민수" not in text and "1234-5678" not in text and "f-0" not in text and "c-owner" not in text
        )
    # Erasure clears the masked copy with the text: nothing of what they said is left to quote.
    async with notify_db.transaction() as s:
        assert await redact_customer(s, customer_id="c-story") == 1
    async with notify_db.session() as s:
        erased = await s.get(Alert, created.alert.id)
        assert erased is not None and erased.feedback["text"] == "" and "lock_text" not in erased.feedback
        raw = push_payload(erased, Settings(), store=store, language="ko")
    assert "기다렸어요" not in raw.decode() and "김**" not in json.loads(raw)["body"]


async def test_erasure_takes_the_name_out_of_the_plans_title_and_steps(notify_db: Database) -> None:
    """`{customer.name}` may stand in a plan's title (every shipped heads-up plan) or a step, not
    only in the script: erasure takes the name the plan was rendered with out of them (in every
    language), and a heads-up loses who arrived and why staff were told (#18 §6)."""
    named = dataclasses.replace(customer("c-named"), name="김민수")
    created = await raise_alert(
        notify_db, Feedback(id="f-named", category="wait_time", text="또 기다렸어요"), now=time.time(),
        the_plan=scripted(), customer=named,
    )  # fmt: skip
    assert created is not None and created.alert.plan["steps"][0]["text"] == "Greet 김민수 by name"
    async with notify_db.session() as s:
        store = await s.get(Store, "s1")
    assert store is not None
    came = dataclasses.replace(arrival(time.time(), customer="c-named"), name="김민수")
    await dbsync.write(
        notify_db, arrivals.heads_up_sync, arrival=came, store=store, plan=HEADS_UP_PLAN, language="en",
        now=time.time(),
    )  # fmt: skip
    async with notify_db.transaction() as s:
        assert await redact_customer(s, customer_id="c-named") == 2
    async with notify_db.session() as s:
        rows = list(
            await s.scalars(
                select(Alert).where(Alert.id.in_([created.alert.id]) | (Alert.kind == "heads_up"))
            )
        )
    assert len(rows) == 2
    for row in rows:
        assert "김민수" not in json.dumps([row.plan, row.items, row.title, row.body], ensure_ascii=False)
        assert row.customer_name is None and row.customer_id is None
    feedback_alert = next(r for r in rows if r.kind == "feedback")
    assert feedback_alert.plan["steps"][0]["text"] == "Greet 고객 by name"
    heads_up = next(r for r in rows if r.kind == "heads_up")
    assert heads_up.plan["title"] == "VIP 고객 just arrived"
    assert heads_up.items == [
        {"visit_id": came.visit_id, "channel": "pos", "occurred_at": came.occurred_at, "erased": True}
    ]
    assert "김**" not in heads_up.title + heads_up.body and "VIP" not in heads_up.title


async def test_the_inbox_and_the_stream_carry_the_labels_of_a_category_published_later(
    notify_db: Database,
) -> None:
    """#20 §3: a category published after the staff app was loaded: its inbox row and live event
    carry the published labels (the app shows them, not the raw id), as the detail does."""
    seed = taxonomy.seed()
    later = dataclasses.replace(
        seed, version=2, categories=(*seed.categories, taxonomy.Category("parking", "주차", "Parking")),
    )  # fmt: skip
    # force: a version an in-process actions replica (tests/actions, session-scoped) served
    # after the module's reset must not keep this one out.
    taxonomy.serve(later, force=True)
    try:
        feedback = Feedback(id="f-parking", category="parking", store_id="s1", sentiment="negative")
        created = await raise_alert(notify_db, feedback, now=time.time())
        assert created is not None
        event = {"type": "alert.created", "alert": views.alert_summary(created.alert)}
        assert event["alert"]["category_labels"] == {"ko": "주차", "en": "Parking"}
        for language in ("ko", "en", ""):
            said = await views.StreamLanguage(language).event(notify_db.session, event)
            assert said["alert"]["category_labels"] == {"ko": "주차", "en": "Parking"}
        await reads(notify_db, "ko")
        detail, row = await seen(notify_db, created.alert.id)
        assert row["category"] == "parking" and row["category_labels"]["ko"] == "주차"
        assert detail["category_label"] == "주차"
    finally:
        taxonomy.reset()
