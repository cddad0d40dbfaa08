"""Playbook kinds (#18): `pattern` and `heads_up` playbooks give the plans of those alerts, are
matched only for their kind (never for a feedback item), may leave out `when.category`, and an
unknown kind is refused with file, line and field; through the loader, REST and gRPC."""

from __future__ import annotations

import pytest

from tests.actions.conftest import Replicas
from tests.actions.test_grpc import VIP_REPEAT, request
from voc_actions.playbooks import Facts, PlaybookValidationError, default_library, parse_playbooks

PATTERN = """\
id: spike-wait
version: 1
kind: pattern
title: {ko: 대기 불만 집중, en: Wait-time spike}
when:
  category: wait_time
priority: urgent
notify: {roles: [store_manager]}
steps:
  - {ko: 인력을 재배치한다, en: Move staff to the bottleneck, role: store_manager}
script: {ko: 죄송합니다, en: We are sorry}
"""
WAIT_DEFAULT = """\
id: wait-default
version: 1
title: {ko: 대기, en: Wait}
when: {category: wait_time}
steps: [{ko: 사과한다, en: Apologise}]
script: {ko: 죄송합니다, en: Sorry}
"""


def test_a_pattern_playbook_answers_only_pattern_lookups() -> None:
    library = parse_playbooks([("spike.yaml", PATTERN), ("wait.yaml", WAIT_DEFAULT)])
    facts = Facts(category="wait_time", sentiment="negative")
    assert library.match(facts).playbook.id == "wait-default"
    pattern = library.match(facts, "pattern")
    assert pattern.playbook.id == "spike-wait" and pattern.playbook.kind == "pattern"
    assert pattern.playbook.to_dict()["kind"] == "pattern"
    # No heads-up playbook in this set: the engine's built-in plan, flagged as a fallback.
    assert library.match(facts, "heads_up").fallback


def test_heads_up_and_pattern_playbooks_may_leave_out_the_category() -> None:
    text = PATTERN.replace("when:\n  category: wait_time\n", "when: {}\n")
    text = text.replace("kind: pattern", "kind: heads_up")
    library = parse_playbooks([("h.yaml", text)])
    for category in ("wait_time", "food_safety", "other"):
        assert library.match(Facts(category=category), "heads_up").playbook.id == "spike-wait"


def test_a_plan_playbook_still_needs_its_category() -> None:
    text = PATTERN.replace("when:\n  category: wait_time\n", "when: {}\n").replace("kind: pattern\n", "")
    with pytest.raises(PlaybookValidationError) as caught:
        parse_playbooks([("p.yaml", text)])
    assert "when.category is required" in str(caught.value)


def test_an_unknown_kind_is_refused_with_file_line_and_field() -> None:
    with pytest.raises(PlaybookValidationError) as caught:
        parse_playbooks([("k.yaml", PATTERN.replace("kind: pattern", "kind: storm"))])
    (problem,) = caught.value.problems
    assert (problem.file, problem.line, problem.field) == ("k.yaml", 3, "kind")
    assert "unknown kind 'storm'" in problem.message and "heads_up" in problem.message


def test_pattern_and_heads_up_playbooks_do_not_count_as_category_defaults() -> None:
    with pytest.raises(PlaybookValidationError) as caught:
        parse_playbooks([("spike.yaml", PATTERN)], require_defaults=True)
    assert "no default playbook for category 'wait_time'" in str(caught.value)


def test_the_shipped_library_has_pattern_and_heads_up_plans_in_both_languages() -> None:
    library = default_library()
    food = library.match(Facts(category="food_safety", sentiment="negative"), "pattern")
    assert food.playbook.id == "pattern-food-safety" and not food.fallback
    assert library.match(Facts(category="wait_time"), "pattern").playbook.id == "pattern-default"
    vip = library.match(Facts(category="food_quality", signals={"vip": True}), "heads_up")
    assert vip.playbook.id == "heads-up-vip"
    for pb in (food.playbook, vip.playbook):
        assert pb.title.ko is not None and pb.title.en is not None
        assert all(step.text.ko is not None and step.text.en is not None for step in pb.steps)


async def test_rest_lookup_takes_the_kind(actions_replicas: Replicas) -> None:
    body = {
        "kind": "heads_up",
        "feedback": {"category": "food_quality", "sentiment": "negative"},
        "customer": {"tier": "vip", "name": "김**", "signals": {"vip": True}},
        "language": "en",
    }
    plan = (await actions_replicas.a.lookup(body)).json()
    assert plan["playbook_id"] == "heads-up-vip"
    assert plan["title"] == "VIP 김** just arrived — greet by name"
    bad = await actions_replicas.a.lookup({**body, "kind": "storm"})
    assert bad.status_code == 422 and "kind" in bad.text


async def test_grpc_lookup_takes_the_kind(actions_replicas: Replicas) -> None:
    req = request("food_safety", customer=VIP_REPEAT)
    plain = (await actions_replicas.a.stub.GetActionPlan(req)).plan
    req.kind = "pattern"
    pattern = (await actions_replicas.a.stub.GetActionPlan(req)).plan
    assert plain.playbook_id != "pattern-food-safety"
    assert pattern.playbook_id == "pattern-food-safety" and pattern.priority == "urgent"
    assert "store_manager" in pattern.notify_roles
