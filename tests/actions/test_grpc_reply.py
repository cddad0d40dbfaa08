"""The gRPC reply is built straight from the request (no intermediate dictionaries or plan
dataclasses, per-playbook parts cached): it must be exactly what the REST path's
``plans.lookup`` gives for the same facts, converted field by field with ``plan_message``."""

from __future__ import annotations

import random
import zoneinfo
from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from voc.actions.v1 import actions_pb2
from voc_actions import grpc_server, plans
from voc_actions.playbooks import Facts, Library, Plan, default_library, parse_playbooks
from voc_bench.playbook_workload import random_request, synthesize
from voc_platform.errors import Invalid

ZONES = zoneinfo.available_timezones()


def plan_message(plan: Plan) -> actions_pb2.Plan:
    """The plan as protobuf, field by field: the reference for the reply ``GetActionPlan`` builds directly."""
    comp = plan.compensation
    return actions_pb2.Plan(
        playbook_id=plan.playbook_id,
        version=plan.version,
        title=plan.title,
        priority=plan.priority,
        steps=[actions_pb2.PlanStep(text=s.text, role=s.role) for s in plan.steps],
        script=plan.script,
        sla=actions_pb2.Sla(ack_seconds=plan.sla.ack_seconds, resolve_seconds=plan.sla.resolve_seconds),
        notify_roles=plan.notify_roles,
        escalation=[
            actions_pb2.EscalationStep(after_seconds=e.after_seconds, roles=e.roles) for e in plan.escalation
        ],
        compensation=(
            actions_pb2.Compensation(
                max_amount=comp.max_amount, currency=comp.currency, authority=comp.authority
            )
            if comp is not None
            else None
        ),
        matched_because=plan.matched_because,
        runners_up=[
            actions_pb2.RunnerUp(playbook_id=pid, specificity=specificity)
            for pid, specificity in plan.runners_up
        ],
        language=plan.language,
        modifiers=plan.modifiers,
        matched=[
            actions_pb2.MatchedCondition(key=m.key, values=m.values, actual=m.actual, modifier=m.modifier)
            for m in plan.matched
        ],
    )


def reference_reply(
    library: Library, request: actions_pb2.GetActionPlanRequest
) -> actions_pb2.GetActionPlanResponse:
    """The request mapped onto ``plans.lookup`` the plain way, then converted to protobuf."""
    fb, cust, st = request.feedback, request.customer, request.store
    local_time = None
    if request.time_zone and request.time_zone not in ZONES:
        raise Invalid("unknown time zone", field="time_zone")
    if request.local_time_ms:
        tz = ZoneInfo(request.time_zone) if request.time_zone else None
        local_time = datetime.fromtimestamp(request.local_time_ms / 1000, tz or UTC)
    known = (
        ("name", cust.name),
        ("tier", cust.tier),
        ("last_visit", cust.last_visit),
        ("repeat_count", cust.repeat_count),
    )
    query = plans.PlanQuery(
        facts=Facts(
            category=fb.category or "other",
            severity=fb.severity or None,
            sentiment=fb.sentiment or None,
            channel=fb.channel or None,
            touchpoint=fb.touchpoint or None,
            store_id=fb.store_id or None,
            store_format=st.format or None,
            store_region=st.region or None,
            language=fb.language or None,
            customer_tier=cust.tier or None,
            signals={**dict(cust.signals), "repeat_count": cust.repeat_count},
            local_time=local_time,
            reopened=bool(fb.reopens_id),
        ),
        language=request.language or fb.language or "ko",
        customer={name: value for name, value in known if value},
        store_name=st.name or None,
    )
    plan = plans.lookup(library, query)
    return actions_pb2.GetActionPlanResponse(plan=plan_message(plan))


def odd_request(rng: random.Random) -> actions_pb2.GetActionPlanRequest:
    """A bench request with some fields blank and some values unusual."""
    req = random_request(rng)
    for message, fields in (
        (req.feedback, ["category", "severity", "sentiment", "channel", "language"]),
        (req.customer, ["name", "tier", "repeat_count", "last_visit", "signals"]),
        (req.store, ["name", "format", "region"]),
        (req, ["language", "local_time_ms", "time_zone"]),
    ):
        if rng.random() < 0.3:
            message.ClearField(rng.choice(fields))
    if rng.random() < 0.1:
        req.time_zone = rng.choice(["Nope/Zone", "../etc", "America/New_York", "UTC"])
    if rng.random() < 0.1:
        req.feedback.touchpoint = "counter"
    if rng.random() < 0.2:
        req.feedback.reopens_id = "fb-reopened"
    if rng.random() < 0.1:
        req.language = rng.choice(["ja", "en-US", "KO"])
    if rng.random() < 0.05:
        req.customer.name = "{store.name}\n" + "김" * 80
    return req


def synthetic_library() -> Library:
    return parse_playbooks(synthesize(120), require_defaults=True)


@pytest.mark.parametrize("library", [synthetic_library, default_library], ids=["synthetic", "bundled"])
def test_the_reply_is_the_lookup_plan(library: Callable[[], Library]) -> None:
    lib = library()
    rng = random.Random(9)
    for _ in range(1000):
        req = odd_request(rng)
        try:
            expected = reference_reply(lib, req)
        except Invalid as refused:
            with pytest.raises(Invalid) as err:
                grpc_server.plan_reply(lib, req)
            assert err.value.errors[0].field == refused.errors[0].field
            continue
        reply = grpc_server.plan_reply(lib, req)
        assert reply == expected
        assert reply.SerializeToString(deterministic=True) == expected.SerializeToString(deterministic=True)


def test_cached_parts_are_not_shared_between_replies() -> None:
    lib = default_library()
    rng = random.Random(1)
    req = random_request(rng)
    first = grpc_server.plan_reply(lib, req)
    first.plan.notify_roles.append("intruder")
    first.plan.escalation.add(after_seconds=1)
    second = grpc_server.plan_reply(lib, req)
    assert "intruder" not in second.plan.notify_roles
    assert second == reference_reply(lib, req)


@pytest.mark.parametrize(
    ("field", "change", "shown"),
    [
        ("time_zone", {"time_zone": "America"}, "'America'"),  # an area: a directory of the tz database
        ("time_zone", {"time_zone": "a" * 300}, "'" + "a" * 100 + "…'"),  # too long for a file name
        ("time_zone", {"time_zone": "../etc"}, "'../etc'"),
        ("time_zone", {"time_zone": "Asia/Seoul\x00"}, "'Asia/Seoul\\x00'"),
        ("local_time_ms", {"local_time_ms": 2**62}, str(2**62)),
        ("local_time_ms", {"local_time_ms": -(2**62)}, str(-(2**62))),
        ("local_time_ms", {"local_time_ms": grpc_server.MAX_LOCAL_TIME_MS + 1}, "outside"),
        ("kind", {"kind": "zzz"}, "'zzz'"),
        ("kind", {"kind": "modifier"}, "'modifier'"),  # a file kind, never matched on its own
    ],
)
def test_a_request_breaking_a_rule_is_invalid_naming_the_field(
    field: str, change: dict[str, object], shown: str
) -> None:
    req = random_request(random.Random(3))
    for name, value in change.items():
        setattr(req, name, value)
    with pytest.raises(Invalid) as err:
        grpc_server.plan_reply(default_library(), req)
    assert [e.field for e in err.value.errors] == [field]
    assert err.value.detail.startswith(f"{field}: ")
    assert shown in err.value.detail
    assert len(err.value.detail) < 200 and "zoneinfo" not in err.value.detail


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Etc/GMT+12", "Asia/Seoul", ""])
def test_the_first_and_last_store_clock_are_answered_in_every_zone(zone: str) -> None:
    lib = default_library()
    for ms in (grpc_server.MIN_LOCAL_TIME_MS, grpc_server.MAX_LOCAL_TIME_MS):
        req = random_request(random.Random(4))
        req.local_time_ms, req.time_zone = ms, zone
        assert grpc_server.plan_reply(lib, req) == reference_reply(lib, req)
