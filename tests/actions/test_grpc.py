"""gRPC GetActionPlan on a real grpc.aio server on loopback, called through the platform's
client channel (service credential, deadline, retries): plan fields, why it matched, runners-up,
language fallback, customer variables and the store's local time."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
import pytest
from grpc import aio

from tests.actions.conftest import Replicas, playbook_yaml, unique_id
from voc.actions.v1 import actions_pb2, actions_pb2_grpc
from voc.common.v1 import common_pb2
from voc_platform.grpc import client_channel

# Wednesday 2026-11-18 12:10 in Seoul is 03:10 UTC.
SEOUL_LUNCH_MS = int(datetime(2026, 11, 18, 3, 10, tzinfo=UTC).timestamp() * 1000)

RESTAURANT = actions_pb2.StoreFacts(format="restaurant", region="seoul", name="강남역점")
# A gold member with nothing else known: no shipped modifier applies (they are for vip, repeat,
# churn risk and chronic complainers), so the plan is the playbook's own.
GOLD = actions_pb2.CustomerFacts(tier="gold", known=True, name="김민수", last_visit="2026-11-02")
VIP_REPEAT = actions_pb2.CustomerFacts(
    tier="vip",
    known=True,
    name="김민수",
    repeat_count=2,
    last_visit="2026-11-02",
    signals={"repeat_issue": True, "vip": True, "churn_risk": False},
)


def request(
    category: str = "food_quality",
    *,
    customer: actions_pb2.CustomerFacts | None = None,
    store: actions_pb2.StoreFacts = RESTAURANT,
    language: str = "ko",
    feedback_language: str = "",
    **facts: str,
) -> actions_pb2.GetActionPlanRequest:
    return actions_pb2.GetActionPlanRequest(
        feedback=common_pb2.FeedbackFacts(
            category=category,
            sentiment=facts.pop("sentiment", "negative"),
            store_id="store-gangnam",
            channel="kiosk",
            language=feedback_language,
            **facts,
        ),
        customer=customer or actions_pb2.CustomerFacts(),
        store=store,
        language=language,
    )


async def plan_for(replicas: Replicas, req: actions_pb2.GetActionPlanRequest) -> actions_pb2.Plan:
    response = await replicas.a.stub.GetActionPlan(req)
    return response.plan


async def test_a_critical_food_safety_plan_has_every_field(actions_replicas: Replicas) -> None:
    plan = await plan_for(actions_replicas, request("food_safety", severity="critical", customer=GOLD))
    assert (plan.playbook_id, plan.version) == ("restaurant-food-safety-critical", 2)
    assert not plan.modifiers
    assert plan.title == "식당 식품 안전 사고 — 이물·식중독 의심" and plan.language == "ko"
    assert plan.priority == "urgent"
    assert len(plan.steps) == 7 and plan.steps[0].text.startswith("고객에게 몸 상태를 묻는다")
    assert [s.role for s in plan.steps] == [
        "staff", "shift_lead", "shift_lead", "shift_lead", "shift_lead", "store_manager", "store_manager",
    ]  # fmt: skip
    assert plan.script.startswith("김민수님, 정말 죄송합니다.")
    assert (plan.sla.ack_seconds, plan.sla.resolve_seconds) == (60, 1800)
    assert list(plan.notify_roles) == ["shift_lead", "store_manager"]
    assert [(e.after_seconds, list(e.roles)) for e in plan.escalation] == [
        (300, ["store_manager"]),
        (900, ["area_manager"]),
        (1800, ["cx_admin"]),
    ]
    assert plan.HasField("compensation")
    assert (plan.compensation.max_amount, plan.compensation.currency, plan.compensation.authority) == (
        50000,
        "KRW",
        "store_manager",
    )
    assert list(plan.matched_because) == [
        "category=food_safety",
        "severity in [high, critical] (critical)",
        "store.format=restaurant",
    ]
    assert [(r.playbook_id, r.specificity) for r in plan.runners_up] == [("food-safety-default", 1)]


async def test_the_plan_changes_with_the_customer(actions_replicas: Replicas) -> None:
    vip = await plan_for(actions_replicas, request(severity="high", customer=VIP_REPEAT))
    anonymous = await plan_for(actions_replicas, request(severity="high"))
    assert vip.playbook_id == "restaurant-food-quality-vip-repeat"
    assert list(vip.matched_because) == [
        "category=food_quality",
        "store.format=restaurant",
        "customer.tier in [vip, vvip, gold] (vip)",
        "signals.repeat_issue=true",
        "modifier modifier-vip: sentiment in [negative, neutral] (negative), "
        "customer.tier in [vip, vvip] (vip)",
        "modifier modifier-repeat-issue: signals.repeat_issue=true",
    ]
    assert list(vip.modifiers) == ["modifier-vip", "modifier-repeat-issue"] and not anonymous.modifiers
    assert [(r.playbook_id, r.specificity) for r in vip.runners_up] == [
        ("restaurant-food-quality-repeat", 3),
        ("food-quality-default", 1),
    ]
    assert any("2026-11-02" in s.text for s in vip.steps) and vip.script.startswith("김민수님")
    assert (anonymous.playbook_id, list(anonymous.matched_because)) == (
        "food-quality-default",
        ["category=food_quality"],
    )
    assert not anonymous.runners_up
    assert (vip.priority, anonymous.priority) == ("urgent", "normal")
    assert vip.compensation.max_amount > anonymous.compensation.max_amount
    # No name known: a neutral phrase, never a blank or a raw placeholder.
    assert anonymous.script.startswith("고객님,") and "{" not in anonymous.script


@pytest.mark.parametrize(
    ("language", "feedback_language", "expected"),
    [
        ("en", "ko", "en"),  # the staff member's language wins over the feedback's
        ("ko", "en", "ko"),
        ("ko-KR", "", "ko"),
        ("en_US", "", "en"),
        ("ja", "", "en"),  # neither ko nor en: English is the common fallback
        ("", "en", "en"),  # no staff language: the feedback's language
        ("", "", "ko"),
    ],
)
async def test_language_selection_and_fallback(
    actions_replicas: Replicas, language: str, feedback_language: str, expected: str
) -> None:
    plan = await plan_for(
        actions_replicas, request("food_safety", language=language, feedback_language=feedback_language)
    )
    assert plan.language == expected
    titles = {"ko": "식품 안전 — 즉시 대응", "en": "Food safety — act now"}
    assert (plan.playbook_id, plan.title) == ("food-safety-default", titles[expected])
    english = await plan_for(actions_replicas, request("food_safety", language="en"))
    assert english.script.startswith("Valued customer, first of all")
    assert english.script.endswith("within 30 minutes.")


async def test_a_text_written_in_one_language_falls_back_to_it(actions_replicas: Replicas) -> None:
    pid = unique_id("ko-only")
    text = playbook_yaml(pid).replace(', en: "Test playbook v1"', "")
    response = await actions_replicas.a.publish({f"{pid}.yaml": text})
    assert response.status_code == 200, response.text
    plan = await plan_for(actions_replicas, request(touchpoint=pid, language="en"))
    assert plan.playbook_id == pid
    assert plan.title == "테스트 플레이북 v1"  # only Korean was written
    assert plan.steps[1].text == "Remake the dish"  # English where it exists
    assert plan.script == "Valued customer, we are sorry."


@pytest.mark.parametrize(
    ("time_zone", "expected", "because"),
    [
        ("Asia/Seoul", "restaurant-wait-time-lunch-peak", "time.hours 11:30-13:30 (12:10)"),
        ("UTC", "wait-time-default", "category=wait_time"),
    ],
)
async def test_local_time_conditions_use_the_store_time_zone(
    actions_replicas: Replicas, time_zone: str, expected: str, because: str
) -> None:
    req = request("wait_time", severity="medium")
    req.local_time_ms = SEOUL_LUNCH_MS
    req.time_zone = time_zone
    plan = await plan_for(actions_replicas, req)
    assert plan.playbook_id == expected
    assert because in plan.matched_because


async def test_an_unknown_category_gets_the_other_default_and_says_so(actions_replicas: Replicas) -> None:
    plan = await plan_for(actions_replicas, request("teleportation"))
    assert plan.playbook_id == "other-default"
    assert plan.matched_because[0].startswith("fallback: no playbook for category 'teleportation'")


async def test_a_call_without_the_service_credential_is_refused(actions_replicas: Replicas) -> None:
    channel = client_channel(actions_replicas.a.grpc_target, token="wrong-token", timeout=2)
    try:
        with pytest.raises(aio.AioRpcError) as raised:
            await actions_pb2_grpc.ActionsServiceStub(channel).GetActionPlan(request())
        assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        await channel.close()


async def test_a_batch_answers_each_lookup_in_order_as_the_unary_call_does(
    actions_replicas: Replicas,
) -> None:
    asks = [
        request("food_safety", severity="critical", customer=VIP_REPEAT),
        request("wait_time", language="en"),
        request("staff_attitude", sentiment="negative"),
        request("praise", sentiment="positive"),
    ]
    reply = await actions_replicas.a.stub.BatchGetActionPlans(
        actions_pb2.BatchGetActionPlansRequest(requests=asks)
    )
    assert [r.WhichOneof("result") for r in reply.results] == ["response"] * 4
    for ask, result in zip(asks, reply.results, strict=True):
        assert result.response == await actions_replicas.a.stub.GetActionPlan(ask)
    empty = await actions_replicas.a.stub.BatchGetActionPlans(actions_pb2.BatchGetActionPlansRequest())
    assert list(empty.results) == []


async def test_a_batch_over_the_limit_is_refused_naming_it(actions_replicas: Replicas) -> None:
    too_many = actions_pb2.BatchGetActionPlansRequest(requests=[request()] * 257)
    with pytest.raises(aio.AioRpcError) as err:
        await actions_replicas.a.stub.BatchGetActionPlans(too_many)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details() == "requests: at most 256 per call, got 257"


BROKEN: list[tuple[str, dict[str, str | int]]] = [
    ("time_zone", {"time_zone": "Mars/Olympus_Mons", "local_time_ms": SEOUL_LUNCH_MS}),
    ("time_zone", {"time_zone": "America", "local_time_ms": SEOUL_LUNCH_MS}),  # an area, not a zone
    ("time_zone", {"time_zone": "a" * 300, "local_time_ms": SEOUL_LUNCH_MS}),
    ("local_time_ms", {"local_time_ms": 2**62}),
    ("local_time_ms", {"local_time_ms": -(2**62)}),
    ("kind", {"kind": "zzz"}),
]


async def test_a_request_breaking_a_rule_is_invalid_argument_naming_the_field(
    actions_replicas: Replicas,
) -> None:
    asks = []
    for field, change in BROKEN:
        ask = request()
        for name, value in change.items():
            setattr(ask, name, value)
        asks.append(ask)
        with pytest.raises(aio.AioRpcError) as err:
            await actions_replicas.a.stub.GetActionPlan(ask)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, field
        details = err.value.details() or ""
        assert details.startswith(f"{field}: ") and len(details) < 200
        assert "zoneinfo" not in details and ".venv" not in details  # no server paths
    # The batch answers the same refusal for each such item, and the good item still gets its plan.
    reply = await actions_replicas.a.stub.BatchGetActionPlans(
        actions_pb2.BatchGetActionPlansRequest(requests=[*asks, request()])
    )
    assert [r.WhichOneof("result") for r in reply.results] == ["error"] * len(BROKEN) + ["response"]
    for (field, _), result in zip(BROKEN, reply.results, strict=False):
        assert result.error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
        assert result.error.message.startswith(f"{field}: ")
        assert len(result.error.message) < 200
