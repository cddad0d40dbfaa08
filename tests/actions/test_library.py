"""The shipped library: valid, complete, covers every business and category, passes its cases."""

from __future__ import annotations

from collections import Counter

import pytest

from voc_actions.playbooks import (
    Facts,
    Library,
    default_library,
    library_path,
    render_plan,
    run_cases,
)
from voc_platform.taxonomy import CATEGORIES

FORMATS = ("restaurant", "retail", "car_service", "telecom", "bank")
CASES = (library_path() / "cases.yaml").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def library() -> Library:
    return default_library()


def test_library_size_and_defaults(library: Library) -> None:
    assert len(library) >= 30
    for cat in CATEGORIES:
        default = library.default_for(cat)
        assert default is not None, cat
        assert library.match(Facts(category=cat, sentiment="positive")).playbook.id.endswith("default")


def test_every_business_format_has_playbooks(library: Library) -> None:
    formats: Counter[str] = Counter()
    for pb in library.playbooks:
        for cond in pb.conditions:
            if cond.key == "store.format":
                formats.update(cond.values)
    for fmt in FORMATS:
        assert formats[fmt] >= 4, (fmt, formats)


def test_every_text_is_bilingual(library: Library) -> None:
    for pb in library.playbooks:
        texts = [pb.title, pb.script, *(s.text for s in pb.steps)]
        assert all(t.ko is not None and t.en is not None for t in texts), pb.id


def test_safety_playbooks_are_urgent(library: Library) -> None:
    for pid in ("food-safety-default", "restaurant-food-safety-critical",
                "facility-injury-critical", "car-service-vehicle-safety"):  # fmt: skip
        pb = library.get(pid)
        assert pb is not None and pb.priority == "urgent" and pb.escalation


def test_praise_is_info(library: Library) -> None:
    praise = [p for p in library.playbooks if "praise" in p.categories and p.kind == "plan"]
    assert praise and all(p.priority == "info" for p in praise)


def test_cases(library: Library) -> None:
    results = run_cases(library, CASES)
    assert len(results) >= 25
    failed = [r for r in results if not r.ok]
    assert not failed, failed


def test_vip_repeat_gets_a_visibly_different_plan(library: Library) -> None:
    base = {"category": "food_quality", "severity": "medium", "sentiment": "negative",
            "store_format": "restaurant", "touchpoint": "dining"}  # fmt: skip
    anon = render_plan(library.match(Facts(**base)), "ko").to_dict()
    vip = render_plan(
        library.match(Facts(**base, customer_tier="vip", signals={"repeat_issue": True})),
        "ko",
        {"name": "김민수", "tier": "vip", "last_visit": "2026-11-20", "repeat_count": 2},
    ).to_dict()
    assert anon["playbook_id"] != vip["playbook_id"]
    assert vip["priority"] == "urgent" and anon["priority"] == "normal"
    assert "store_manager" in {s["role"] for s in vip["steps"]}
    assert vip["script"].startswith("김민수님") and anon["script"].startswith("고객님")
    assert "2026-11-20" in " ".join(s["text"] for s in vip["steps"])
    assert vip["compensation"]["max_amount"] > anon["compensation"]["max_amount"]
    assert vip["sla"]["ack_seconds"] <= anon["sla"]["ack_seconds"]


def test_every_playbook_renders_in_both_languages(library: Library) -> None:
    for pb in library.playbooks:
        if pb.is_modifier:  # no plan of its own: applied on top of one (test_playbook_modifiers)
            continue
        cat = pb.categories[0]
        match = library.match(Facts(category=cat))
        for lang in ("ko", "en"):
            plan = render_plan(match, lang).to_dict()
            assert plan["title"] and plan["script"] and plan["steps"]
            assert "{" not in plan["script"]


def test_run_cases_reports_failures_and_bad_cases(library: Library) -> None:
    results = run_cases(library, "cases:\n  - {name: x, facts: {category: praise, "
                                 "sentiment: positive}, expect: other-default}\n")  # fmt: skip
    assert results == [("x", "other-default", "praise-default", False)]
    from voc_actions.playbooks import PlaybookValidationError

    with pytest.raises(PlaybookValidationError):
        run_cases(library, "cases:\n  - {name: x, facts: {colour: red}, expect: a}\n")


def test_a_dirty_restroom_is_not_a_pest_sighting(library: Library) -> None:
    """ "화장실이 너무 더러워요. 휴지도 없었어요." is classified cleanliness, high; store apps
    rarely send the restroom touchpoint. That is a cleaning job, not pest control."""
    dirty = Facts(category="cleanliness", severity="high", sentiment="negative", store_format="restaurant")
    match = library.match(dirty)
    assert match.playbook.id == "cleanliness-default"
    assert "restaurant-pest-sighting" not in {pid for pid, _ in match.runners_up}
    steps = " ".join(s.text for s in render_plan(match, "en").steps).lower()
    assert "restroom" in steps and "pest" not in steps
    # With the touchpoint it is the restroom plan, whatever the severity.
    dirty.touchpoint = "restroom"
    assert library.match(dirty).playbook.id == "restaurant-restroom"


def test_a_pest_sighting_gets_pest_control(library: Library) -> None:
    """ "바퀴벌레가 나왔어요" / "I saw a cockroach" are classified food_safety, critical (a critical
    term); playbooks cannot see the text, so the restaurant food-safety plan carries the pest
    step, and the pest plan answers a cleanliness item only when it is critical."""
    pest = Facts(category="food_safety", severity="critical", sentiment="negative", store_format="restaurant")
    for lang, words in (("ko", "방역 업체"), ("en", "pest-control")):
        plan = render_plan(library.match(pest), lang)
        assert plan.playbook_id == "restaurant-food-safety-critical"
        assert any(words in s.text for s in plan.steps), plan.steps
    critical = Facts(
        category="cleanliness", severity="critical", sentiment="negative", store_format="restaurant"
    )
    plan = render_plan(library.match(critical), "en")
    assert plan.playbook_id == "restaurant-pest-sighting"
    assert any("pest-control" in s.text for s in plan.steps)
