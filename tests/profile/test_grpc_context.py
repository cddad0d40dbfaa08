"""GetCustomerContext as notify calls it (in process): by id, by one or several identifiers,
for a returning customer, one it must create and two it must merge. Each answer must be the
context the service computes for that customer, message for message."""

from __future__ import annotations

import time
from typing import Any

from tests.profile.conftest import Profile
from tests.profile.helpers import customer_with, facts, give_feedback
from voc.common.v1 import common_pb2
from voc.profile.v1 import profile_pb2
from voc_platform import dbsync
from voc_profile import context, crm
from voc_profile.facts import feedback_item
from voc_profile.grpc_server import ProfileServicer
from voc_profile.schemas import CustomerIn


class Aborted(Exception):
    pass


class ServicerContext:
    async def abort(self, code: Any, details: str) -> None:
        raise Aborted(code, details)


def reference_message(d: dict[str, Any]) -> profile_pb2.CustomerContext:
    """The message, field by field, from `Context.to_dict()` (what the REST context answers)."""
    sig = d["signals"]
    return profile_pb2.CustomerContext(
        customer_id=d["customer_id"] or "",
        found=d["found"],
        name=d["name"] or "",
        masked_name=d["masked_name"],
        masked_phone=d["masked_phone"],
        tier=d["tier"] or "",
        lifetime_value=d["lifetime_value"],
        preferred_language=d["preferred_language"] or "",
        home_store_id=d["home_store_id"] or "",
        last_visits=[
            profile_pb2.Visit(
                store_id=v["store_id"], visited_at_ms=int(v["visited_at"] * 1000), amount=v["amount"]
            )
            for v in d["last_visits"]
        ],
        feedback_count=d["feedback_count"],
        mean_csat=d["mean_csat"] or 0.0,
        contact_consent=d["contact_consent"],
        household_relation=d["household_relation"] or "",
        household=[
            profile_pb2.HouseholdMember(
                customer_id=m["customer_id"],
                masked_name=m["masked_name"],
                relation=m["relation"] or "",
                tier=m["tier"],
            )
            for m in d["household"]
        ],
        recent_feedback=[
            profile_pb2.FeedbackSummary(
                feedback_id=f["feedback_id"],
                store_id=f["store_id"],
                channel=f["channel"],
                category=f["category"],
                sentiment=f["sentiment"],
                csat=f["csat"] or 0,
                occurred_at_ms=int(f["occurred_at"] * 1000),
            )
            for f in d["recent_feedback"]
        ],
        recent_contacts=[
            profile_pb2.RecentContact(
                feedback_id=r["feedback_id"],
                channel=r["channel"],
                store_id=r["store_id"],
                occurred_at_ms=int(r["occurred_at"] * 1000),
                category=r["category"],
                sentiment=r["sentiment"],
                status=r["status"],
                outcome=r["outcome"] or "",
                excerpt=r["excerpt"],
            )
            for r in d["recent_contacts"]
        ],
        signals=profile_pb2.Signals(
            repeat_issue=sig["repeat_issue"],
            repeat_counts=sig["repeat_counts"],
            score_swing=sig["score_swing"],
            score_swing_delta=sig["score_swing_delta"],
            complaint_count_90d=sig["complaint_count_90d"],
            chronic_complainer=sig["chronic_complainer"],
            chronic_rank=sig["chronic_rank"],
            low_satisfaction=sig["low_satisfaction"],
            churn_risk=sig["churn_risk"],
            vip=sig["vip"],
            reasons=[
                profile_pb2.SignalReason(
                    signal=r["signal"],
                    reason=r["reason"],
                    feedback_ids=r["feedback_ids"],
                    reason_ko=r["reason_ko"],
                )
                for r in sig["reasons"]
            ],
        ),
    )


def feedback_facts(feedback_id: str, **kw: Any) -> common_pb2.FeedbackFacts:
    message = common_pb2.FeedbackFacts(
        feedback_id=feedback_id,
        category=kw.get("category", "wait_time"),
        sentiment=kw.get("sentiment", "negative"),
        occurred_at_ms=int(time.time() * 1000),
    )
    if "csat" in kw:
        message.ratings.csat = kw["csat"]
    return message


async def test_context_answers_match_the_service_context(profile: Profile) -> None:
    db, settings = profile.database, profile.settings
    servicer = ProfileServicer(db, settings, profile.trail)
    ctx = ServicerContext()
    async with db.transaction() as session:
        owner, _ = await crm.upsert_customer(
            session,
            customer=CustomerIn(
                loyalty_id="G-1",
                phone="010-2222-3333",
                name="김가족",
                tier="gold",
                household_id="H-9",
                household_relation="owner",
                preferred_language="ko",
                contact_consent=True,
            ),
            region="KR",
        )
        await crm.upsert_customer(
            session,
            customer=CustomerIn(
                loyalty_id="G-2", name="김동생", household_id="H-9", household_relation="driver"
            ),
            region="KR",
        )
    await give_feedback(
        db,
        settings,
        owner,
        facts("g1", category="wait_time", csat=2, days_ago=3),
        facts("g2", category="wait_time", csat=1, days_ago=1, revisit_intent=True),
        facts("g3", sentiment="positive", csat=5, days_ago=40),
    )
    visits = (
        f"customer_id,store_id,visited_at,amount\n{owner},store-gangnam,{time.time() - 2 * 86400},15000\n"
    )
    await profile.client.post(
        "/v1/visits:import", headers={**profile.admin, "Content-Type": "text/csv"}, content=visits
    )

    async def expected(
        customer_id: str, current: common_pb2.FeedbackFacts | None
    ) -> profile_pb2.CustomerContext:
        found = await dbsync.read(
            db,
            context.read_context,
            customer_id=customer_id,
            settings=settings,
            current=feedback_item(current) if current is not None else None,
        )
        return reference_message(found.to_dict())

    now = feedback_facts("g-now", csat=1)
    for request in (
        profile_pb2.GetCustomerContextRequest(customer_id=owner),
        profile_pb2.GetCustomerContextRequest(customer_id=owner, current_feedback=now),
        profile_pb2.GetCustomerContextRequest(
            identifiers=common_pb2.CustomerIdentifiers(phone="010-2222-3333"), current_feedback=now
        ),
        profile_pb2.GetCustomerContextRequest(
            identifiers=common_pb2.CustomerIdentifiers(loyalty_id="G-1", phone="01022223333"),
            current_feedback=feedback_facts("g2"),  # already recorded: counted once
        ),
    ):
        answer = (await servicer.GetCustomerContext(request, ctx)).context
        assert answer.found and answer.household and answer.last_visits and answer.recent_feedback
        assert answer.recent_contacts and all(r.status == "received" for r in answer.recent_contacts)
        current = request.current_feedback if request.current_feedback.feedback_id else None
        assert answer == await expected(owner, current)

    # First contact: the customer is created, and only the feedback being handled counts.
    first = profile_pb2.GetCustomerContextRequest(
        identifiers=common_pb2.CustomerIdentifiers(phone="010-7777-8888", name="Jane Doe"),
        current_feedback=feedback_facts("new-1", csat=1),
    )
    answer = (await servicer.GetCustomerContext(first, ctx)).context
    assert answer.found and answer.customer_id and answer.masked_phone == "***-8888"
    assert answer.signals.low_satisfaction and answer.feedback_count == 1
    assert answer == await expected(answer.customer_id, first.current_feedback)

    # Two known customers in one request: merged, then read.
    other = await customer_with(db, settings, email="merge.me@example.com")
    await give_feedback(db, settings, other, facts("m1", category="wait_time", days_ago=2))
    both = profile_pb2.GetCustomerContextRequest(
        identifiers=common_pb2.CustomerIdentifiers(loyalty_id="G-1", email="merge.me@example.com"),
        current_feedback=now,
    )
    answer = (await servicer.GetCustomerContext(both, ctx)).context
    assert answer.customer_id == owner and answer.feedback_count == 5  # g1-g3, m1 and the current one
    assert answer == await expected(owner, now)

    unknown = profile_pb2.GetCustomerContextRequest(identifiers=common_pb2.CustomerIdentifiers(phone="12"))
    assert (await servicer.GetCustomerContext(unknown, ctx)).context == profile_pb2.CustomerContext(
        found=False
    )
    nobody = profile_pb2.GetCustomerContextRequest(customer_id="no-such-customer")
    answer = (await servicer.GetCustomerContext(nobody, ctx)).context
    assert answer == reference_message(context.no_context().to_dict())
