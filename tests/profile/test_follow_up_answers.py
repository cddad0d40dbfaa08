"""A follow-up survey's unhappy answer (#19) reopens the case it answers: feedback publishes it as a
new `voc.feedback.received` with `reopens_id` set. It is the customer's verdict on how that case
was handled, not another complaint: one incident counts once for the repeat issue, the complaint
count and the chronic rank, while its score still counts (low satisfaction) and it stays among the
customer's contacts as a follow-up answer. Through the real consumer, on a real database."""

from __future__ import annotations

import time
from typing import Any

from nats.aio.msg import Msg
from sqlalchemy import select, update

from tests.profile.conftest import Profile
from tests.profile.test_grpc_context import ServicerContext
from voc.common.v1 import common_pb2
from voc.events.v1 import events_pb2
from voc.profile.v1 import profile_pb2
from voc_platform import dbsync
from voc_platform.taxonomy import is_complaint
from voc_profile import events, signals, summary
from voc_profile.facts import FeedbackItem
from voc_profile.grpc_server import ProfileServicer
from voc_profile.models import CustomerSignals, FeedbackHistory

MINUTE = 60.0


def received(
    feedback_id: str,
    *,
    loyalty_id: str,
    minutes_ago: float,
    csat: int,
    category: str = "food_safety",
    sentiment: str = "negative",
    reopens_id: str = "",
) -> events_pb2.FeedbackReceived:
    """A `voc.feedback.received` as the feedback service publishes it (a follow-up's unhappy
    answer: channel survey, `reopens_id` the case it reopened)."""
    return events_pb2.FeedbackReceived(
        facts=common_pb2.FeedbackFacts(
            feedback_id=feedback_id,
            store_id="store-gangnam",
            channel="survey" if reopens_id else "kiosk",
            touchpoint="follow_up" if reopens_id else "",
            category=category,
            sentiment=sentiment,
            severity="high",
            ratings=common_pb2.Ratings(csat=csat),
            occurred_at_ms=int((time.time() - minutes_ago * MINUTE) * 1000),
        ),
        text="국에서 머리카락이 나왔어요" if not reopens_id else "아직도 해결이 안 됐어요",
        customer=common_pb2.CustomerIdentifiers(loyalty_id=loyalty_id),
        reopens_id=reopens_id,
    )


async def consume(profile: Profile, event: events_pb2.FeedbackReceived) -> None:
    """The event through profile's own `voc.feedback.received` consumer."""
    handle = events.consumers(profile.database, profile.settings)[0].handler
    await handle(
        Msg(
            _client=None,  # type: ignore[arg-type]  # the handler never replies or acks itself
            subject="voc.feedback.received",
            data=event.SerializeToString(),
            headers={"Nats-Msg-Id": f"received:{event.facts.feedback_id}"},
        )
    )


async def customer_of(profile: Profile, feedback_id: str) -> str:
    async with profile.database.session() as session:
        customer_id = await session.scalar(
            select(FeedbackHistory.customer_id).where(FeedbackHistory.feedback_id == feedback_id)
        )
    assert customer_id is not None
    return str(customer_id)


async def rest_context(profile: Profile, customer_id: str) -> dict[str, Any]:
    response = await profile.client.get(f"/v1/customers/{customer_id}/context", headers=profile.admin)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def stored(profile: Profile, customer_id: str) -> CustomerSignals:
    async with profile.database.session() as session:
        row = await session.get(CustomerSignals, customer_id)
    assert row is not None
    return row


def test_the_rule() -> None:
    assert is_complaint("negative", None) and is_complaint("negative", "")
    assert not is_complaint("negative", "fb-1")  # a follow-up answer that reopened fb-1
    assert not is_complaint("positive", None) and not is_complaint("neutral", None)
    item = FeedbackItem("a", "s", "survey", "food_safety", "negative", 1, None, None, 0.0, "fb-1")
    assert not item.complaint and item._replace(reopens_id=None).complaint


async def test_a_reopening_answer_is_not_another_complaint(profile: Profile) -> None:
    await consume(profile, received("fu-case", loyalty_id="FU-1", minutes_ago=120, csat=1))
    customer = await customer_of(profile, "fu-case")
    await consume(
        profile, received("fu-answer", loyalty_id="FU-1", minutes_ago=5, csat=1, reopens_id="fu-case")
    )

    # The stored signals (what the lists read) and the context: one incident, one complaint.
    row = await stored(profile, customer)
    assert row.repeat_issue is False and row.complaint_count_90d == 1
    body = await rest_context(profile, customer)
    sig = body["signals"]
    assert sig["repeat_issue"] is False and sig["repeat_counts"] == {"food_safety": 1}
    assert sig["complaint_count_90d"] == 1 and sig["chronic_rank"] == 0
    assert not [r for r in sig["reasons"] if r["signal"] in ("repeat_issue", "chronic_complainer")]
    # Its score is the customer's verdict on the case: it counts.
    assert sig["low_satisfaction"] is True and body["mean_csat"] == 1.0
    low = next(r for r in sig["reasons"] if r["signal"] == "low_satisfaction")
    assert low["feedback_ids"] == ["fu-case", "fu-answer"]
    assert body["feedback_count"] == 2
    # Among the customer's contacts, as the answer that reopened the case.
    contacts = {c["feedback_id"]: c for c in body["recent_contacts"]}
    assert contacts["fu-answer"]["reopens_id"] == "fu-case" and contacts["fu-case"]["reopens_id"] is None
    assert contacts["fu-answer"]["channel"] == "survey"
    timeline = (await profile.client.get(f"/v1/customers/{customer}/timeline", headers=profile.admin)).json()
    answers = [e for e in timeline["entries"] if e["kind"] == "feedback" and e.get("reopens_id")]
    assert [(e["feedback_id"], e["reopens_id"]) for e in answers] == [("fu-answer", "fu-case")]

    # The same from the history as from the summary (a refresh rebuilds it from the table).
    await dbsync.write(profile.database, signals.refresh, customer_id=customer, settings=profile.settings)
    row = await stored(profile, customer)
    assert row.repeat_issue is False and row.complaint_count_90d == 1
    assert (await rest_context(profile, customer))["signals"] == sig

    # notify's lookup for the answer's own alert, once profile has it on file: still one.
    servicer = ProfileServicer(profile.database, profile.settings, profile.trail)
    request = profile_pb2.GetCustomerContextRequest(
        identifiers=common_pb2.CustomerIdentifiers(loyalty_id="FU-1"),
        current_feedback=received(
            "fu-answer", loyalty_id="FU-1", minutes_ago=5, csat=1, reopens_id="fu-case"
        ).facts,
    )
    answer = (await servicer.GetCustomerContext(request, ServicerContext())).context
    assert answer.signals.repeat_issue is False and dict(answer.signals.repeat_counts) == {"food_safety": 1}
    assert answer.signals.complaint_count_90d == 1

    # Another complaint of the same kind is a repeat issue: of two complaints, not three.
    await consume(profile, received("fu-again", loyalty_id="FU-1", minutes_ago=1, csat=2))
    sig = (await rest_context(profile, customer))["signals"]
    assert sig["repeat_issue"] is True and sig["repeat_counts"] == {"food_safety": 2}
    repeat = next(r for r in sig["reasons"] if r["signal"] == "repeat_issue")
    assert repeat["feedback_ids"] == ["fu-case", "fu-again"]
    assert repeat["reason_ko"] == "30일 동안 식품 안전 불만 2건"
    assert sig["complaint_count_90d"] == 2 and sig["chronic_rank"] == 0  # under the minimum 3
    assert (await stored(profile, customer)).complaint_count_90d == 2


async def test_the_answers_own_alert_counts_it_as_the_reopened_case_before_profile_has_it(
    profile: Profile,
) -> None:
    """notify asks for the context of the answer as it pages about it, often before profile has
    consumed the answer's event: the facts it sends carry `reopens_id` (from the event), so the
    answer's own alert did not read "repeat issue, 2 complaints" (UX review)."""
    await consume(profile, received("fl-case", loyalty_id="FL-1", minutes_ago=120, csat=1))
    servicer = ProfileServicer(profile.database, profile.settings, profile.trail)

    async def lookup(reopens_id: str) -> profile_pb2.CustomerContext:
        facts = received("fl-answer", loyalty_id="FL-1", minutes_ago=1, csat=1).facts
        facts.reopens_id = reopens_id
        request = profile_pb2.GetCustomerContextRequest(
            identifiers=common_pb2.CustomerIdentifiers(loyalty_id="FL-1"), current_feedback=facts
        )
        return (await servicer.GetCustomerContext(request, ServicerContext())).context

    answer = await lookup("fl-case")
    assert answer.signals.repeat_issue is False and dict(answer.signals.repeat_counts) == {"food_safety": 1}
    assert answer.signals.complaint_count_90d == 1
    plain = await lookup("")  # the same item as a new complaint: the repeat it would have been
    assert plain.signals.repeat_issue is True and dict(plain.signals.repeat_counts) == {"food_safety": 2}


async def test_answers_do_not_make_a_chronic_complainer(profile: Profile) -> None:
    """Two cases, each answered unhappily: two complaints, not four (the minimum is 3)."""
    for n, minutes in ((1, 300), (2, 200)):
        case = f"fc-case-{n}"
        await consume(profile, received(case, loyalty_id="FC-1", minutes_ago=minutes, csat=1))
        await consume(
            profile,
            received(f"fc-answer-{n}", loyalty_id="FC-1", minutes_ago=minutes - 60, csat=1, reopens_id=case),
        )
    customer = await customer_of(profile, "fc-case-1")
    sig = (await rest_context(profile, customer))["signals"]
    assert sig["complaint_count_90d"] == 2 and sig["chronic_complainer"] is False and sig["chronic_rank"] == 0
    assert sig["repeat_counts"] == {"food_safety": 2}  # the two cases, not their answers
    listed = (
        await profile.client.get(
            "/v1/customers", params={"signal": "chronic_complainer"}, headers=profile.admin
        )
    ).json()["customers"]
    assert customer not in [c["id"] for c in listed]

    # A third case makes them one: the chronic reason names the three complaints only.
    await consume(profile, received("fc-case-3", loyalty_id="FC-1", minutes_ago=10, csat=1))
    sig = (await rest_context(profile, customer))["signals"]
    assert sig["complaint_count_90d"] == 3 and sig["chronic_complainer"] is True and sig["chronic_rank"] == 1
    chronic = next(r for r in sig["reasons"] if r["signal"] == "chronic_complainer")
    assert chronic["feedback_ids"] == ["fc-case-1", "fc-case-2", "fc-case-3"]
    assert chronic["reason"] == "rank 1: 3 complaints in 90 days"


async def test_a_summary_kept_before_the_answers_were_told_apart_is_rebuilt(profile: Profile) -> None:
    """A stored summary of the previous version (items without `reopens_id`) is not read: the
    context reads the history, and the customer's next event rebuilds it."""
    await consume(profile, received("sv-case", loyalty_id="SV-1", minutes_ago=60, csat=1))
    customer = await customer_of(profile, "sv-case")
    await consume(
        profile, received("sv-answer", loyalty_id="SV-1", minutes_ago=30, csat=1, reopens_id="sv-case")
    )
    async with profile.database.transaction() as session:
        current = await session.scalar(
            select(CustomerSignals.summary).where(CustomerSignals.customer_id == customer)
        )
        assert current is not None and current["v"] == summary.VERSION
        old = {**current, "v": 1, "items": [item[:9] for item in current["items"]]}
        await session.execute(
            update(CustomerSignals).where(CustomerSignals.customer_id == customer).values(summary=old)
        )
    sig = (await rest_context(profile, customer))["signals"]
    assert sig["repeat_counts"] == {"food_safety": 1} and sig["complaint_count_90d"] == 1
    await consume(
        profile, received("sv-praise", loyalty_id="SV-1", minutes_ago=1, csat=5, sentiment="positive")
    )
    row = await stored(profile, customer)
    async with profile.database.session() as session:
        kept = await session.scalar(
            select(CustomerSignals.summary).where(CustomerSignals.customer_id == customer)
        )
    assert kept is not None and kept["v"] == summary.VERSION and row.complaint_count_90d == 1
    assert [item[0] for item in kept["items"]] == ["sv-case", "sv-answer", "sv-praise"]
    assert kept["items"][1][9] == "sv-case"
