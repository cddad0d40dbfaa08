"""A follow-up answer that reopened its case (`FeedbackFacts.reopens_id`): the condition
`feedback.reopened` and the shipped `modifier-reopened`, which replaces the plan's first-response
steps (done already) by a follow-up, on the real library and through the real gRPC and REST
lookups."""

from __future__ import annotations

import textwrap

import pytest

from tests.actions.conftest import Replicas
from tests.actions.test_grpc import GOLD, plan_for, request
from voc_actions.playbooks import (
    Facts,
    PlaybookValidationError,
    default_library,
    parse_playbooks,
    render_plan,
    run_cases,
)
from voc_actions.playbooks.model import CONDITION_KINDS

FOOD_SAFETY = {"category": "food_safety", "severity": "critical", "sentiment": "negative"}
FIRST_RESPONSE = "restaurant-food-safety-critical"


def reopened_food_safety(reopened: bool) -> Facts:
    return Facts(
        "food_safety", severity="critical", sentiment="negative", store_format="restaurant", reopened=reopened
    )


def test_the_condition_is_a_known_bool_key() -> None:
    assert CONDITION_KINDS["feedback.reopened"] == "bool"
    assert Facts(category="other").as_map()["feedback.reopened"] is False
    assert Facts(category="other", reopened=True).as_map()["feedback.reopened"] is True


def test_a_reopened_food_safety_case_gets_a_follow_up_not_the_first_response_again() -> None:
    library = default_library()
    first = library.match(reopened_food_safety(False))
    again = library.match(reopened_food_safety(True))
    assert first.playbook.id == again.playbook.id == FIRST_RESPONSE
    assert first.modifiers == () and again.modifiers == ("modifier-reopened",)
    for lang in ("ko", "en"):
        plain, plan = render_plan(first, lang), render_plan(again, lang)
        # none of the first-response steps (stop selling, other tables, refund, ...) is repeated
        assert not {s.text for s in plain.steps} & {s.text for s in plan.steps}
        assert [s.role for s in plan.steps] == ["shift_lead", "store_manager", "store_manager"]
        # the script is the follow-up's, not the first response's with a line after it
        assert plain.script not in plan.script and "{" not in plan.script
        # the plan's urgency, escalation and compensation stay; the store manager is alerted
        assert plan.priority == plain.priority == "urgent"
        assert plan.compensation == plain.compensation
        assert plan.escalation == plain.escalation
        assert "store_manager" in plan.notify_roles
    en = render_plan(again, "en")
    assert en.steps[0].text.startswith("Read the customer's follow-up answer and the case's timeline")
    assert en.script.startswith("Valued customer, thank you for answering our follow-up.")
    assert "again" not in en.script.lower()  # one incident: not "the same problem again"
    assert en.matched_because[-1] == "modifier modifier-reopened: feedback.reopened=true"
    assert [(m.key, m.values, m.actual, m.modifier) for m in en.matched][-1] == (
        "feedback.reopened",
        ("true",),
        "true",
        "modifier-reopened",
    )


def test_a_reopened_case_is_at_least_normal_and_its_customer_modifiers_still_apply() -> None:
    library = default_library()
    praise = library.match(Facts(category="praise", sentiment="positive", reopened=True))
    assert praise.playbook.id.startswith("praise") and praise.modifiers == ("modifier-reopened",)
    assert render_plan(praise, "en").priority == "normal"  # praise is info: raised to normal
    vip = library.match(Facts(category="wait_time", sentiment="negative", customer_tier="vip", reopened=True))
    assert vip.modifiers == ("modifier-reopened", "modifier-vip")
    plan = render_plan(vip, "en")
    steps = [s.text for s in plan.steps]
    assert steps[0].startswith("Before you approach")  # the VIP modifier's, added after
    assert any(s.startswith("Record what was agreed") for s in steps)
    plain = render_plan(library.match(Facts(category="wait_time", sentiment="negative")), "en")
    assert not {s.text for s in plain.steps} & set(steps)


def test_validation_knows_the_key() -> None:
    ok = textwrap.dedent(
        """\
        id: reopened-only
        version: 1
        kind: modifier
        title: {en: Reopened}
        when: {feedback.reopened: true}
        priority: urgent
        """
    )
    base = textwrap.dedent(
        """\
        id: other-base
        version: 1
        title: {en: Other}
        when: {category: other}
        steps: [{en: Listen}]
        script: {en: Thanks.}
        """
    )
    library = parse_playbooks([("other-base.yaml", base), ("reopened-only.yaml", ok)])
    assert library.match(Facts(category="other", reopened=True)).modifiers == ("reopened-only",)
    assert library.match(Facts(category="other")).modifiers == ()
    bad = ok.replace("when: {feedback.reopened: true}", "when: {feedback.reopened: sometimes}")
    with pytest.raises(PlaybookValidationError) as caught:
        parse_playbooks([("other-base.yaml", base), ("reopened-only.yaml", bad)])
    (problem,) = caught.value.problems
    assert (problem.line, problem.field) == (5, "when.feedback.reopened")
    assert "true or false" in problem.message


def test_cases_take_the_fact() -> None:
    library = default_library()
    cases = textwrap.dedent(
        """\
        cases:
          - name: reopened
            facts: {category: food_safety, severity: critical, store.format: restaurant,
                    feedback.reopened: true}
            expect: restaurant-food-safety-critical
            modifiers: [modifier-reopened]
          - name: not reopened
            facts: {category: food_safety, severity: critical, store.format: restaurant}
            expect: restaurant-food-safety-critical
            modifiers: []
        """
    )
    assert [r.ok for r in run_cases(library, cases)] == [True, True]
    with pytest.raises(PlaybookValidationError) as caught:
        run_cases(library, cases.replace("feedback.reopened: true", 'feedback.reopened: "yes"'))
    (problem,) = caught.value.problems
    assert problem.field == "cases[0].facts" and "feedback.reopened" in problem.message


async def test_the_grpc_request_s_reopens_id_applies_the_modifier(actions_replicas: Replicas) -> None:
    reopening = await plan_for(
        actions_replicas, request("food_safety", severity="critical", customer=GOLD, reopens_id="fb-first")
    )
    first = await plan_for(actions_replicas, request("food_safety", severity="critical", customer=GOLD))
    assert reopening.playbook_id == first.playbook_id == FIRST_RESPONSE
    assert list(reopening.modifiers) == ["modifier-reopened"] and not first.modifiers
    assert not {s.text for s in first.steps} & {s.text for s in reopening.steps}
    assert reopening.steps[0].text.startswith("고객의 후속 설문 답변과 사례 타임라인을 읽고")
    assert "store_manager" in reopening.notify_roles
    assert reopening.compensation == first.compensation
    assert reopening.matched_because[-1] == "modifier modifier-reopened: feedback.reopened=true"
    assert [(m.key, m.modifier) for m in reopening.matched][-1] == ("feedback.reopened", "modifier-reopened")
    assert all(m.key != "feedback.reopened" for m in first.matched)


async def test_the_rest_lookup_takes_reopens_id(actions_replicas: Replicas) -> None:
    feedback = {**FOOD_SAFETY, "store_id": "store-gangnam"}
    store = {"format": "restaurant"}
    reopening = await actions_replicas.a.lookup(
        {"feedback": {**feedback, "reopens_id": "fb-first"}, "store": store, "language": "en"}
    )
    first = await actions_replicas.a.lookup({"feedback": feedback, "store": store, "language": "en"})
    assert reopening.status_code == first.status_code == 200, (reopening.text, first.text)
    assert reopening.json()["modifiers"] == ["modifier-reopened"] and first.json()["modifiers"] == []
    blank = await actions_replicas.a.lookup(
        {"feedback": {**feedback, "reopens_id": ""}, "store": store, "language": "en"}
    )
    assert blank.status_code == 200 and blank.json()["modifiers"] == []
