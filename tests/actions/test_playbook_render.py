"""Rendering: languages and fallbacks, variables, neutral phrases, defaults, the sandbox."""

from __future__ import annotations

from typing import Any

import pytest

from tests.actions.test_playbook_matcher import pb_yaml
from voc_actions.playbooks import (
    Facts,
    PlaybookValidationError,
    parse_playbooks,
    render_plan,
)
from voc_actions.playbooks.template import VARIABLES, compile_template

PLAN_KEYS = {
    "playbook_id", "version", "title", "priority", "steps", "script", "sla", "notify_roles",
    "escalation", "compensation", "matched_because", "runners_up", "language", "modifiers", "matched",
}  # fmt: skip


def plan_for(language: str | None = "ko", customer: dict[str, Any] | None = None,
             facts: Facts | None = None, **extra: Any) -> dict[str, Any]:  # fmt: skip
    extra.setdefault(
        "script",
        {
            "ko": "{customer.name}님 ({customer.tier}), {store.name}입니다.",
            "en": "{customer.name} ({customer.tier}), this is {store.name}.",
        },
    )
    library = parse_playbooks([pb_yaml("p", {"category": "food_quality"}, **extra)])
    match = library.match(facts or Facts(category="food_quality"))
    return render_plan(match, language, customer, store={"name": "강남점"}).to_dict()


def test_plan_has_exactly_the_contract_keys() -> None:
    plan = plan_for(customer={"name": "김민수", "tier": "vip"})
    assert set(plan) == PLAN_KEYS
    assert plan["script"] == "김민수님 (VIP), 강남점입니다."
    assert plan["steps"] == [{"text": "사과한다", "role": "staff"}]
    assert plan["language"] == "ko" and plan["compensation"] is None
    assert plan["runners_up"] == [] and plan["matched_because"] == ["category=food_quality"]
    assert plan["matched"] == [
        {"key": "category", "values": ["food_quality"], "actual": "food_quality", "modifier": ""}
    ]


def test_english_and_language_fallback_both_ways() -> None:
    plan = plan_for("en", {"name": "Minsu Kim", "tier": "gold"})
    assert plan["script"] == "Minsu Kim (Gold), this is 강남점."
    only_ko = plan_for("en", title={"ko": "한국어 제목"}, steps=[{"ko": "한국어만", "role": "shift_lead"}])
    assert only_ko["title"] == "한국어 제목"
    assert only_ko["steps"] == [{"text": "한국어만", "role": "shift_lead"}]
    only_en = plan_for("ko", title={"en": "English title"})
    assert only_en["title"] == "English title"


@pytest.mark.parametrize(("asked", "got"), [("ko-KR", "ko"), ("en_US", "en"), ("ja", "en"),
                                            (None, "ko")])  # fmt: skip
def test_language_normalisation(asked: str | None, got: str) -> None:
    assert plan_for(asked)["language"] == got


def test_language_defaults_to_the_feedback_language() -> None:
    plan = plan_for(None, facts=Facts(category="food_quality", language="en"))
    assert plan["language"] == "en"


def test_missing_values_render_neutral_phrases_never_blanks() -> None:
    assert plan_for("ko", None)["script"] == "고객님 (회원), 강남점입니다."
    assert plan_for("en", {})["script"] == "Valued customer (member), this is 강남점."
    script = {
        "ko": "{customer.last_visit} {customer.repeat_count}번 {feedback.channel}",
        "en": "{customer.name|friend}, {customer.repeat_count} times",
    }
    assert plan_for("ko", {"name": None}, script=script)["script"] == "지난 방문 여러번 접수 채널"
    assert plan_for("en", {"name": ""}, script=script)["script"] == "friend, several times"
    for name, phrases in VARIABLES.items():
        assert phrases["ko"] and phrases["en"], name


def test_all_variables_render() -> None:
    script = {"en": " | ".join("{" + v + "}" for v in sorted(VARIABLES))}
    facts = Facts(category="food_quality", channel="kiosk", touchpoint="dining")
    plan = plan_for("en", {"name": "Kim", "tier": "vip", "last_visit": "2026-11-20",
                           "repeat_count": 2}, facts=facts, script=script,
                    compensation={"max_amount": 20000, "currency": "KRW",
                                  "authority": "shift_lead"},
                    sla={"ack": "2m", "resolve": "1h30m"})  # fmt: skip
    assert plan["script"] == (
        "KRW 20,000 | 2026-11-20 | Kim | 2 | VIP | Food quality | kiosk | dining | "
        "2 minutes | 1 hour 30 minutes | 강남점"
    )
    ko = plan_for(
        "ko",
        {},
        facts=facts,
        script={"ko": "{compensation.max_amount} {sla.ack}"},
        compensation={"max_amount": 20000, "currency": "KRW", "authority": "staff"},
    )
    assert ko["script"] == "20,000원 5분"


def test_customer_values_are_not_reparsed() -> None:
    plan = plan_for("ko", {"name": "{store.name}\n{{ 7*7 }}"})
    assert plan["script"].startswith("{store.name} {{ 7*7 }}님")


def test_sla_and_notify_defaults_per_priority() -> None:
    urgent = plan_for(priority="urgent")
    assert urgent["sla"] == {"ack_seconds": 120, "resolve_seconds": 1800}
    assert urgent["notify_roles"] == ["shift_lead", "store_manager"]
    normal = plan_for(priority="normal")
    assert normal["sla"] == {"ack_seconds": 300, "resolve_seconds": 3600}
    info = plan_for(priority="info")
    assert info["sla"] == {"ack_seconds": 14400, "resolve_seconds": 86400}
    assert info["notify_roles"] == ["staff"]
    partial = plan_for(sla={"ack": "1m"})
    assert partial["sla"] == {"ack_seconds": 60, "resolve_seconds": 3600}


def test_escalation_and_compensation_in_plan() -> None:
    plan = plan_for(
        escalate=[{"after": "5m", "roles": ["store_manager"]}, {"after": "1h30m", "roles": "area_manager"}],
        compensation={"max_amount": 9.5, "currency": "USD", "authority": "staff"},
    )
    assert plan["escalation"] == [
        {"after_seconds": 300, "roles": ["store_manager"]},
        {"after_seconds": 5400, "roles": ["area_manager"]},
    ]
    assert plan["compensation"] == {"max_amount": 9.5, "currency": "USD", "authority": "staff"}


@pytest.mark.parametrize(
    "attack",
    [
        "{customer.__class__}",
        "{{ ''.__class__.__mro__ }}",
        "{customer.name.__globals__}",
        "{% import os %}",
        "{__import__('os')}",
        "{customer['name']}",
        "{customer.name|{store.name}}",
    ],
)
def test_sandbox_rejects_code_at_load_time(attack: str) -> None:
    with pytest.raises(PlaybookValidationError) as exc:
        parse_playbooks([pb_yaml("p", {"category": "other"}, script={"en": attack})])
    assert exc.value.problems[0].field == "script.en"
    assert "template error" in exc.value.problems[0].message


def test_compiled_template_is_only_text_and_variables() -> None:
    t = compile_template("Hi {customer.name|friend}, from { store.name }.")
    assert t.variables == ("customer.name", "store.name")
    assert t.render({}, "en") == "Hi friend, from our store."
