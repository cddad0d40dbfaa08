"""Synthetic playbooks, facts and GetActionPlan requests: the workload of the actions benchmarks
(`voc_bench.playbooks`, `voc_bench.actions_grpc`), and a large library for the actions tests."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml

from voc.actions.v1 import actions_pb2
from voc.common.v1 import common_pb2
from voc_actions.playbooks import Facts
from voc_platform.taxonomy import CATEGORIES, CHANNELS, SENTIMENTS, SEVERITIES

FORMATS = ("restaurant", "retail", "car_service", "telecom", "bank")
TIERS = ("vip", "gold", "silver", "basic")
REGIONS = ("seoul", "busan", "daegu", "incheon")
SIGNALS = ("repeat_issue", "score_swing", "vip", "churn_risk", "low_satisfaction")
#: the local times of random requests fall in the week from here
START = datetime(2026, 11, 16, tzinfo=UTC)


def _conditions(rng: random.Random, category: str) -> dict[str, Any]:
    when: dict[str, Any] = {"category": category}
    pool: list[tuple[str, Any]] = [
        ("severity", rng.sample(SEVERITIES, 2)),
        ("sentiment", rng.choice(SENTIMENTS)),
        ("channel", rng.sample(CHANNELS, 3)),
        ("store.format", rng.choice(FORMATS)),
        ("store.region", rng.sample(REGIONS, 2)),
        ("customer.tier", rng.sample(TIERS, 2)),
        ("signals." + rng.choice(SIGNALS), True),
        ("time.hours", rng.choice(["22:00-06:00", "11:30-13:30", "09:00-18:00"])),
        ("time.weekdays", rng.sample(["mon", "tue", "wed", "thu", "fri", "sat", "sun"], 3)),
    ]
    for key, value in rng.sample(pool, rng.randint(0, 4)):
        when[key] = value
    return when


def synthesize(n: int, seed: int = 7) -> list[tuple[str, str]]:
    """`n` playbook files (name, YAML): one default per category, then random conditions."""
    rng = random.Random(seed)
    files: list[tuple[str, str]] = []
    for i in range(n):
        category = CATEGORIES[i % len(CATEGORIES)]
        when = {"category": category} if i < len(CATEGORIES) else _conditions(rng, category)
        doc = {
            "id": f"pb-{i:04d}",
            "version": 1,
            "title": {"ko": f"플레이북 {i}", "en": f"Playbook {i}"},
            "when": when,
            "priority": rng.choice(["info", "normal", "urgent"]),
            "escalate": [{"after": "5m", "roles": ["store_manager"]},
                         {"after": "15m", "roles": ["area_manager"]}],
            "steps": [{"ko": f"{{customer.name}}님께 사과한다 {j}", "en": f"Apologise {j}",
                       "role": rng.choice(["staff", "shift_lead"])} for j in range(5)],
            "script": {"ko": "{customer.name}님, {store.name}입니다. 죄송합니다.",
                       "en": "{customer.name}, this is {store.name}. Sorry about that."},
            "compensation": {"max_amount": 10000, "currency": "KRW", "authority": "shift_lead"},
        }  # fmt: skip
        files.append((f"pb-{i:04d}.yaml", yaml.safe_dump(doc, allow_unicode=True)))
    return files


def random_facts(rng: random.Random) -> Facts:
    """The facts of one random feedback item, as the matcher sees them."""
    return Facts(
        category=rng.choice(CATEGORIES),
        severity=rng.choice(SEVERITIES),
        sentiment=rng.choice(SENTIMENTS),
        channel=rng.choice(CHANNELS),
        store_format=rng.choice(FORMATS),
        store_region=rng.choice(REGIONS),
        customer_tier=rng.choice(TIERS),
        signals={s: rng.random() < 0.3 for s in SIGNALS},
        local_time=datetime(2026, 11, 16) + timedelta(minutes=rng.randrange(7 * 1440)),
    )


def random_request(rng: random.Random) -> actions_pb2.GetActionPlanRequest:
    """One random GetActionPlan request, as notify sends it."""
    local = START + timedelta(minutes=rng.randrange(7 * 1440))
    return actions_pb2.GetActionPlanRequest(
        feedback=common_pb2.FeedbackFacts(
            category=rng.choice(CATEGORIES),
            severity=rng.choice(SEVERITIES),
            sentiment=rng.choice(SENTIMENTS),
            channel=rng.choice(CHANNELS),
            store_id="store-bench",
            language="ko",
        ),
        customer=actions_pb2.CustomerFacts(
            tier=rng.choice(TIERS),
            known=True,
            name="김민수",
            repeat_count=rng.randrange(4),
            last_visit="2026-11-02",
            signals={s: rng.random() < 0.3 for s in SIGNALS},
        ),
        store=actions_pb2.StoreFacts(format=rng.choice(FORMATS), region=rng.choice(REGIONS), name="강남역점"),
        language=rng.choice(("ko", "en")),
        local_time_ms=int(local.timestamp() * 1000),
        time_zone="Asia/Seoul",
    )
