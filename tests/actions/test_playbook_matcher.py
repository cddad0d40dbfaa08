"""Matching: specificity, tie-breaks, each condition key, time windows, fallbacks, versions."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
import yaml

from voc_actions.playbooks import (
    Facts,
    Library,
    Playbook,
    PlaybookValidationError,
    default_library,
    parse_playbooks,
)
from voc_bench.playbook_workload import FORMATS, REGIONS, SIGNALS, TIERS, synthesize
from voc_platform.taxonomy import CATEGORIES, CHANNELS, SENTIMENTS, SEVERITIES


def pb_yaml(pid: str, when: dict[str, Any], priority: str = "normal", version: int = 1,
            **extra: Any) -> tuple[str, str]:  # fmt: skip
    doc: dict[str, Any] = {
        "id": pid,
        "version": version,
        "title": {"ko": f"{pid} 제목", "en": f"{pid} title"},
        "when": when,
        "priority": priority,
        "steps": [{"ko": "사과한다", "en": "Apologise"}],
        "script": {"ko": "{customer.name}님, 죄송합니다.", "en": "Sorry, {customer.name}."},
    }
    doc.update(extra)
    return f"{pid}.yaml", yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


def lib(*specs: tuple[str, dict[str, Any]] | tuple[str, dict[str, Any], str]) -> Library:
    return parse_playbooks([pb_yaml(*s) for s in specs])  # type: ignore[arg-type]


BASE = (
    ("fq-default", {"category": "food_quality"}),
    ("fq-high", {"category": "food_quality", "severity": ["high", "critical"]}),
    (
        "fq-high-vip",
        {"category": "food_quality", "severity": ["high", "critical"], "customer.tier": ["vip", "gold"]},
    ),
    ("other-default", {"category": "other"}),
)


def test_most_specific_wins_and_runners_up() -> None:
    m = lib(*BASE).match(Facts(category="food_quality", severity="high", customer_tier="vip"))
    assert m.playbook.id == "fq-high-vip" and not m.fallback
    assert m.matched_because == [
        "category=food_quality",
        "severity in [high, critical] (high)",
        "customer.tier in [vip, gold] (vip)",
    ]
    assert m.runners_up == [("fq-high", 2), ("fq-default", 1)]


def test_less_specific_when_a_condition_fails() -> None:
    m = lib(*BASE).match(Facts(category="food_quality", severity="high", customer_tier="silver"))
    assert m.playbook.id == "fq-high"
    m = lib(*BASE).match(Facts(category="food_quality", severity="low"))
    assert m.playbook.id == "fq-default" and m.runners_up == []


def test_absent_fact_fails_the_condition() -> None:
    m = lib(*BASE).match(Facts(category="food_quality"))
    assert m.playbook.id == "fq-default"


def test_tie_broken_by_priority_then_id() -> None:
    library = lib(
        ("b-normal", {"category": "delivery", "channel": "app"}, "normal"),
        ("c-urgent", {"category": "delivery", "severity": "high"}, "urgent"),
        ("a-info", {"category": "delivery", "sentiment": "negative"}, "info"),
        ("a-normal", {"category": "delivery", "touchpoint": "door"}, "normal"),
    )
    facts = Facts(category="delivery", channel="app", severity="high", sentiment="negative",
                  touchpoint="door")  # fmt: skip
    m = library.match(facts)
    assert m.playbook.id == "c-urgent"
    assert m.runners_up == [("a-normal", 2), ("b-normal", 2), ("a-info", 2)]


CONDITION_CASES: list[tuple[str, Any, dict[str, Any], dict[str, Any]]] = [
    ("severity", ["high"], {"severity": "high"}, {"severity": "low"}),
    ("sentiment", "negative", {"sentiment": "negative"}, {"sentiment": "positive"}),
    ("channel", ["kiosk", "app"], {"channel": "app"}, {"channel": "email"}),
    ("touchpoint", "dining", {"touchpoint": "dining"}, {"touchpoint": "drive_thru"}),
    ("store.format", "bank", {"store_format": "bank"}, {"store_format": "retail"}),
    ("store.region", ["seoul"], {"store_region": "Seoul"}, {"store_region": "busan"}),
    ("customer.tier", ["vip", "gold"], {"customer_tier": "gold"}, {"customer_tier": "silver"}),
    ("signals.repeat_issue", True, {"signals": {"repeat_issue": True}}, {"signals": {"repeat_issue": False}}),
    ("signals.score_swing", True, {"signals": {"score_swing": True}}, {"signals": {}}),
    ("signals.vip", False, {"signals": {"vip": False}}, {"signals": {"vip": True}}),
    ("signals.churn_risk", True, {"signals": {"churn_risk": True}}, {"signals": {"churn_risk": False}}),
    ("signals.low_satisfaction", True, {"signals": {"low_satisfaction": True}}, {}),
    (
        "time.hours",
        "09:00-18:00",
        {"local_time": datetime(2026, 11, 18, 9, 0)},
        {"local_time": datetime(2026, 11, 18, 18, 0)},
    ),
    (
        "time.weekdays",
        ["sat", "sun"],
        {"local_time": datetime(2026, 11, 22, 10, 0)},
        {"local_time": datetime(2026, 11, 20, 10, 0)},
    ),
    ("time.weekdays", ["sat"], {"local_time": datetime(2026, 11, 21, 10, 0)}, {}),
]


@pytest.mark.parametrize(("key", "value", "hit", "miss"), CONDITION_CASES)
def test_each_condition_key(key: str, value: Any, hit: dict[str, Any],
                            miss: dict[str, Any]) -> None:  # fmt: skip
    library = lib(("default", {"category": "other"}), ("special", {"category": "other", key: value}))
    assert library.match(Facts(category="other", **hit)).playbook.id == "special"
    assert library.match(Facts(category="other", **miss)).playbook.id == "default"


@pytest.mark.parametrize(
    ("hhmm", "inside"),
    [
        ((22, 0), True),
        ((23, 59), True),
        ((0, 0), True),
        ((5, 59), True),
        ((6, 0), False),
        ((12, 0), False),
        ((21, 59), False),
    ],
)
def test_time_window_across_midnight(hhmm: tuple[int, int], inside: bool) -> None:
    library = lib(("day", {"category": "facility"}),
                  ("night", {"category": "facility", "time.hours": "22:00-06:00"}))  # fmt: skip
    m = library.match(Facts(category="facility", local_time=datetime(2026, 1, 1, *hhmm)))
    assert (m.playbook.id == "night") is inside
    if inside:
        assert m.matched_because[1] == f"time.hours 22:00-06:00 ({hhmm[0]:02d}:{hhmm[1]:02d})"


def test_several_time_windows_and_no_time() -> None:
    library = lib(("day", {"category": "facility"}),
                  ("meals", {"category": "facility",
                             "time.hours": ["11:30-13:30", "17:30-20:00"]}))  # fmt: skip
    assert library.match(Facts(category="facility", local_time=datetime(2026, 1, 1, 18, 0))
                         ).playbook.id == "meals"  # fmt: skip
    assert library.match(Facts(category="facility")).playbook.id == "day"


def test_fallback_to_category_default_ignoring_sentiment() -> None:
    library = lib(("praise-default", {"category": "praise", "sentiment": "positive"}, "info"),
                  ("other-default", {"category": "other"}))  # fmt: skip
    m = library.match(Facts(category="praise", sentiment="neutral"))
    assert m.playbook.id == "praise-default" and m.fallback
    assert m.matched_because[0].startswith("fallback:")
    assert "sentiment=positive not met (neutral)" in m.matched_because


def test_fallback_to_other_default_then_builtin() -> None:
    library = lib(*BASE)
    m = library.match(Facts(category="wait_time"))
    assert m.playbook.id == "other-default" and m.fallback
    assert "default for category other" in m.matched_because[0]
    m = library.match(Facts(category="no_such_category"))
    assert m.playbook.id == "other-default"
    m = lib(("fq-default", {"category": "food_quality"})).match(Facts(category="praise"))
    assert m.playbook.id == "builtin-default" and m.fallback


def test_multi_category_playbook_is_indexed_under_each() -> None:
    library = lib(("queue", {"category": ["wait_time", "delivery"]}))
    assert library.match(Facts(category="delivery")).playbook.id == "queue"
    assert library.match(Facts(category="wait_time")).playbook.id == "queue"
    assert library.default_for("delivery") is not None


def test_with_published_keeps_old_versions() -> None:
    v1 = lib(*BASE)
    v2 = parse_playbooks([pb_yaml("fq-high", {"category": "food_quality", "severity": "critical"},
                                  version=2)])  # fmt: skip
    v = v1.with_published(v2)
    assert [p.version for p in v.versions("fq-high")] == [1, 2]
    assert v.get("fq-high") is not None and v.get("fq-high").version == 2  # type: ignore[union-attr]
    assert v.match(Facts(category="food_quality", severity="high")).playbook.id == "fq-default"
    # the original library is unchanged
    assert v1.get("fq-high").version == 1  # type: ignore[union-attr]
    assert v1.match(Facts(category="food_quality", severity="high")).playbook.id == "fq-high"
    # new ids are simply added
    v3 = v.with_published(lib(("new-one", {"category": "praise"})))
    assert v3.get("new-one") is not None and len(v3) == len(v) + 1


@pytest.mark.parametrize("version", [1, 0])
def test_with_published_rejects_same_or_lower_version(version: int) -> None:
    v1 = lib(*BASE)
    if version < 1:
        # a broken set never reaches with_published: parsing fails first
        with pytest.raises(PlaybookValidationError):
            parse_playbooks([pb_yaml("fq-high", {"category": "food_quality"}, version=version)])
        return
    again = parse_playbooks([pb_yaml("fq-high", {"category": "food_quality"}, version=version)])
    with pytest.raises(PlaybookValidationError) as exc:
        v1.with_published(again)
    p = exc.value.problems[0]
    assert (p.file, p.line, p.field) == ("fq-high.yaml", 2, "version")
    assert "not greater" in p.message
    assert v1.get("fq-high").version == 1  # type: ignore[union-attr]


def test_broken_set_never_replaces_a_working_one() -> None:
    working = lib(*BASE)
    _, good = pb_yaml("fq-high", {"category": "food_quality"}, version=2)
    _, broken = pb_yaml("fq-default", {"category": "food_quality", "mood": "bad"}, version=2)
    with pytest.raises(PlaybookValidationError):
        working = working.with_published(
            parse_playbooks([("fq-high.yaml", good), ("fq-default.yaml", broken)])
        )
    assert working.get("fq-high").version == 1  # type: ignore[union-attr]
    assert working.get("fq-default").version == 1  # type: ignore[union-attr]


def reference_match(
    ranked: list[Playbook], facts: Facts
) -> tuple[str, list[str], list[tuple[str, int]]] | None:
    """Matching as specified, the slow way: every condition of every playbook of the category,
    in specificity / priority / id order. None when nothing matches (a fallback)."""
    fm = facts.as_map()
    bucket = [p for p in ranked if facts.category in p.categories and p.kind == "plan"]
    hits = [p for p in bucket if all(c.holds(fm) for c in p.conditions)]
    if not hits:
        return None
    best = hits[0]
    modifiers = sorted((p for p in ranked if p.is_modifier), key=lambda p: (p.order, p.id))
    why = [c.explain(fm) for c in best.conditions] + [
        f"modifier {m.id}: " + ", ".join(c.explain(fm) for c in m.conditions)
        for m in modifiers
        if all(c.holds(fm) for c in m.conditions)
    ]
    return best.id, why, [(p.id, p.specificity) for p in hits[1:6]]


def synthetic_library() -> Library:
    return parse_playbooks(synthesize(300), require_defaults=True)


def random_facts(rng: random.Random) -> Facts:
    def maybe(values: Sequence[str]) -> str | None:
        return None if rng.random() < 0.15 else rng.choice(values)

    minute = rng.randrange(7 * 1440)
    return Facts(
        category=rng.choice(CATEGORIES),
        severity=maybe(SEVERITIES),
        sentiment=maybe(SENTIMENTS),
        channel=maybe(CHANNELS),
        store_format=maybe(FORMATS),
        store_region=maybe(REGIONS),
        customer_tier=maybe(TIERS),
        signals={s: rng.random() < 0.3 for s in SIGNALS if rng.random() < 0.8},
        local_time=None if rng.random() < 0.1 else datetime(2026, 11, 16) + timedelta(minutes=minute),
    )


@pytest.mark.parametrize("library", [synthetic_library, default_library], ids=["synthetic", "bundled"])
def test_the_indexed_match_is_the_specified_match(library: Callable[[], Library]) -> None:
    """The bitset index (and its caches) picks what evaluating every condition would pick."""
    lib_ = library()
    ranked = sorted(lib_.playbooks, key=lambda p: p.sort_key)
    rng = random.Random(5)
    for _ in range(1500):
        facts = random_facts(rng)
        m = lib_.match(facts)
        expected = reference_match(ranked, facts)
        if expected is None:
            assert m.fallback and not m.runners_up
        else:
            assert not m.fallback
            assert (m.playbook.id, m.matched_because, m.runners_up) == expected
