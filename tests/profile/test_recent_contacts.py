"""The customer's story (#18 §1): the context's `recent_contacts` are the earlier contacts across
every channel and store, newest first, at most five, with their case status and outcome (from
the alert events) and a masked excerpt; the feedback being handled is not one of them; signal
reasons come in Korean too."""

from __future__ import annotations

import time

from tests.profile.conftest import Profile
from tests.profile.helpers import DAY, customer_with, facts
from tests.profile.test_grpc_context import ServicerContext
from voc.common.v1 import common_pb2
from voc.profile.v1 import profile_pb2
from voc_platform import dbsync
from voc_platform.dbsync import Reader
from voc_profile import crm, signals, timeline
from voc_profile.events import EXCERPT_LIMIT, excerpt_of
from voc_profile.facts import FeedbackItem
from voc_profile.grpc_server import ProfileServicer
from voc_profile.schemas import CustomerIn


def test_the_excerpt_is_masked_and_short() -> None:
    text = "김민수입니다. 010-1234-5678 로 연락 주세요, minsu@example.com " + "아주 " * 40
    excerpt = excerpt_of(text, "김민수")
    assert excerpt is not None and len(excerpt) <= EXCERPT_LIMIT
    assert "김민수" not in excerpt and excerpt.startswith("김**입니다.")
    assert "1234-5678" not in excerpt and "***5678" in excerpt and "***@***" in excerpt
    assert excerpt.endswith("…")
    assert excerpt_of("Jane Doe here,\n\tcold soup", "Jane Doe") == "J*** D** here, cold soup"
    assert excerpt_of("   ", None) is None


async def give(profile: Profile, customer_id: str, *items: tuple[FeedbackItem, str]) -> None:
    def record(reader: Reader) -> None:
        for item, text in items:
            signals.record_feedback(
                reader,
                customer_id=customer_id,
                item=item,
                severity="medium",
                settings=profile.settings,
                now=time.time(),
                excerpt=excerpt_of(text, "김민수"),
            )

    await dbsync.write(profile.database, record)


async def alert(profile: Profile, alert_id: str, feedback_id: str, *steps: tuple[str, str | None]) -> None:
    db = profile.database
    await dbsync.write(
        db,
        timeline.record_alert,
        alert_id=alert_id,
        feedback_id=feedback_id,
        customer_id=None,
        store_id="store-gangnam",
        priority="normal",
        at=time.time(),
    )
    for status, outcome in steps:
        await dbsync.write(
            db, timeline.alert_progress, alert_id=alert_id, status=status, outcome=outcome, at=time.time()
        )


async def test_recent_contacts_across_channels_and_stores(profile: Profile) -> None:
    db, settings = profile.database, profile.settings
    async with db.transaction() as session:
        customer, _ = await crm.upsert_customer(
            session,
            customer=CustomerIn(
                loyalty_id="RC-1", name="김민수", tier="vip", household_id="H-RC", household_relation="driver"
            ),
            region="KR",
        )
        await crm.upsert_customer(
            session,
            customer=CustomerIn(
                loyalty_id="RC-2", name="김아빠", household_id="H-RC", household_relation="owner"
            ),
            region="KR",
        )
    now = time.time()
    call = facts("rc-call", category="wait_time", days_ago=2, store_id="store-hongdae", now=now)._replace(
        channel="call_center"
    )
    await give(
        profile,
        customer,
        (facts("rc-old", days_ago=30, now=now), "오래된 불만"),
        (facts("rc-1", category="wait_time", days_ago=6, now=now), "기다림이 길어요"),
        (facts("rc-2", category="food_quality", days_ago=5, now=now), "국이 식었어요"),
        (facts("rc-3", category="cleanliness", days_ago=4, now=now), "테이블이 끈적해요"),
        (facts("rc-4", sentiment="positive", category="praise", days_ago=3, now=now), "친절했어요"),
        (call, "김민수인데요, 전화로 말씀드렸던 대기 문제요 010-9999-8888"),
        (facts("rc-now", category="wait_time", days_ago=0, now=now), "또 기다려요"),
    )
    await alert(profile, "rc-a1", "rc-1", ("acknowledged", None), ("resolved", "refunded"))
    await alert(profile, "rc-a2", "rc-2", ("acknowledged", None))
    await alert(profile, "rc-a3", "rc-call")

    # The admin's REST context: the five newest contacts of everything on file.
    response = await profile.client.get(f"/v1/customers/{customer}/context", headers=profile.admin)
    assert response.status_code == 200, response.text
    body = response.json()
    contacts = body["recent_contacts"]
    assert [c["feedback_id"] for c in contacts] == ["rc-now", "rc-call", "rc-4", "rc-3", "rc-2"]
    assert body["household_relation"] == "driver"
    assert [(m["relation"], m["masked_name"]) for m in body["household"]] == [("owner", "김**")]

    # notify's lookup while handling rc-now: the earlier ones only.
    servicer = ProfileServicer(db, settings, profile.trail)
    request = profile_pb2.GetCustomerContextRequest(
        identifiers=common_pb2.CustomerIdentifiers(loyalty_id="RC-1"),
        current_feedback=common_pb2.FeedbackFacts(
            feedback_id="rc-now", category="wait_time", sentiment="negative", occurred_at_ms=int(now * 1000)
        ),
    )
    answer = (await servicer.GetCustomerContext(request, ServicerContext())).context
    got = [(c.feedback_id, c.channel, c.store_id, c.status, c.outcome) for c in answer.recent_contacts]
    assert got == [
        ("rc-call", "call_center", "store-hongdae", "alerted", ""),
        ("rc-4", "kiosk", "store-gangnam", "received", ""),
        ("rc-3", "kiosk", "store-gangnam", "received", ""),
        ("rc-2", "kiosk", "store-gangnam", "acknowledged", ""),
        ("rc-1", "kiosk", "store-gangnam", "resolved", "refunded"),
    ]
    first = answer.recent_contacts[0]
    assert first.excerpt == "김**인데요, 전화로 말씀드렸던 대기 문제요 ***8888"
    assert (first.category, first.sentiment) == ("wait_time", "negative")
    assert abs(first.occurred_at_ms / 1000 - (now - 2 * DAY)) < 1
    assert answer.household_relation == "driver" and answer.household[0].relation == "owner"
    # Signal reasons in both languages: the repeat wait-time complaints.
    repeat = next(r for r in answer.signals.reasons if r.signal == "repeat_issue")
    assert repeat.reason.endswith("Wait time") and "대기 시간" in repeat.reason_ko


async def test_a_first_contact_has_no_story(profile: Profile) -> None:
    customer = await customer_with(profile.database, profile.settings, loyalty_id="RC-NEW")
    response = await profile.client.get(f"/v1/customers/{customer}/context", headers=profile.admin)
    assert response.status_code == 200 and response.json()["recent_contacts"] == []
