"""The typed alert input is stored and served in the JSON shape it always had: the plan as the
proto's JSON form (compensation null when absent), the customer context as staff may see it."""

from __future__ import annotations

from google.protobuf.json_format import MessageToDict

from voc.actions.v1 import actions_pb2
from voc.common.v1 import common_pb2
from voc.events.v1 import events_pb2
from voc.profile.v1 import profile_pb2
from voc_notify.clients import customer_from_proto, plan_from_proto
from voc_notify.defaults import default_plan
from voc_notify.events import feedback_of, upstream_facts


def proto_json(plan: actions_pb2.Plan) -> dict[str, object]:
    """What notify stored before the plan was typed: MessageToDict, compensation null."""
    stored = MessageToDict(plan, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
    if not plan.HasField("compensation"):
        stored["compensation"] = None
    return stored


def test_a_plan_is_stored_as_its_proto_json() -> None:
    full = actions_pb2.Plan(
        playbook_id="pb-1",
        version=3,
        title="Hygiene",
        priority="urgent",
        steps=[actions_pb2.PlanStep(text="Clean", role="staff")],
        script="Sorry",
        sla=actions_pb2.Sla(ack_seconds=120, resolve_seconds=1800),
        notify_roles=["shift_lead", "store_manager"],
        escalation=[actions_pb2.EscalationStep(after_seconds=300, roles=["area_manager"])],
        compensation=actions_pb2.Compensation(max_amount=5000, currency="KRW", authority="store_manager"),
        matched_because=["category"],
        runners_up=[actions_pb2.RunnerUp(playbook_id="pb-2", specificity=1)],
        language="ko",
    )
    bare = actions_pb2.Plan(playbook_id="pb-3")
    for plan in (full, bare):
        assert plan_from_proto(plan).as_stored() == proto_json(plan)
    assert (
        default_plan(category="food_safety", severity="high", language="en").as_stored()["compensation"]
        is None
    )


def test_the_customer_context_is_stored_as_staff_may_see_it() -> None:
    context = profile_pb2.CustomerContext(
        customer_id="c-1",
        found=True,
        name="김민수",
        masked_name="김**",
        masked_phone="010-****-5678",
        tier="gold",
        lifetime_value=12.5,
        last_visits=[profile_pb2.Visit(store_id="s1", visited_at_ms=1000, amount=9.5)],
        signals=profile_pb2.Signals(
            repeat_issue=True,
            repeat_counts={"cleanliness": 2},
            complaint_count_90d=3,
            reasons=[
                profile_pb2.SignalReason(
                    signal="repeat_issue", reason="2 in 90 days", reason_ko="90일 동안 2건"
                )
            ],
        ),
        feedback_count=4,
        household_relation="driver",
        household=[profile_pb2.HouseholdMember(customer_id="c-2", masked_name="김**", relation="owner")],
        recent_contacts=[
            profile_pb2.RecentContact(
                feedback_id="f-0",
                channel="call_center",
                store_id="s2",
                occurred_at_ms=500,
                category="cleanliness",
                sentiment="negative",
                status="resolved",
                outcome="refunded",
                excerpt="김**: 테이블이 끈적해요",
            )
        ],
    )
    stored = customer_from_proto(context).as_stored()
    assert stored == {
        "known": True,
        "customer_id": "c-1",
        "masked_name": "김**",
        "masked_phone": "010-****-5678",
        "tier": "gold",
        "lifetime_value": 12.5,
        "feedback_count": 4,
        "mean_csat": None,
        "last_visits": [{"store_id": "s1", "visited_at_ms": 1000, "amount": 9.5}],
        "signals": {
            "repeat_issue": True,
            "repeat_counts": {"cleanliness": 2},
            "score_swing": False,
            "score_swing_delta": 0.0,
            "complaint_count_90d": 3,
            "chronic_complainer": False,
            "low_satisfaction": False,
            "churn_risk": False,
            "vip": False,
            "reasons": [{"signal": "repeat_issue", "reason": "2 in 90 days", "reason_ko": "90일 동안 2건"}],
        },
        "recent_contacts": [
            {
                "feedback_id": "f-0",
                "channel": "call_center",
                "store_id": "s2",
                "occurred_at_ms": 500,
                "category": "cleanliness",
                "sentiment": "negative",
                "status": "resolved",
                "outcome": "refunded",
                "excerpt": "김**: 테이블이 끈적해요",
            }
        ],
        "household": {
            "relation": "driver",
            "members": [{"customer_id": "c-2", "masked_name": "김**", "relation": "owner"}],
        },
    }
    assert "김민수" not in str(stored), "the unmasked name never reaches an alert"
    assert customer_from_proto(None).as_stored() == {"known": False}
    assert customer_from_proto(profile_pb2.CustomerContext(found=False)).as_stored() == {"known": False}


def test_the_feedback_keeps_only_the_ratings_given() -> None:
    event = events_pb2.FeedbackReceived(text="dirty", received_at_ms=7)
    event.facts.feedback_id, event.facts.category, event.facts.store_id = "f-1", "cleanliness", "s1"
    event.facts.ratings.csat = 1
    stored = feedback_of(event).as_stored()
    assert stored["ratings"] == {"csat": 1} and stored["text"] == "dirty" and stored["received_at_ms"] == 7
    assert set(stored) == {
        "id", "store_id", "channel", "text", "category", "severity", "sentiment", "score", "language",
        "touchpoint", "ratings", "received_at_ms",
    }  # fmt: skip


def test_profile_and_actions_are_asked_with_the_case_an_answer_reopens() -> None:
    """An unhappy follow-up answer's event carries `reopens_id` beside its facts; the facts notify
    sends upstream carry it too, so profile counts the answer as the reopened incident even
    before it has consumed the answer's event (UX review: "반복 불만 2회" on the answer's alert)."""
    event = events_pb2.FeedbackReceived(
        facts=common_pb2.FeedbackFacts(feedback_id="answer", category="food_safety", sentiment="negative"),
        reopens_id="case",
    )
    facts = upstream_facts(event)
    assert (facts.feedback_id, facts.category, facts.reopens_id) == ("answer", "food_safety", "case")
    assert event.facts.reopens_id == ""  # the event itself is left as it came
    plain = events_pb2.FeedbackReceived(facts=common_pb2.FeedbackFacts(feedback_id="new"))
    assert upstream_facts(plain) is plain.facts and upstream_facts(plain).reopens_id == ""
