"""Micro benchmark: 500 synthetic playbooks, p50/p99 of match + render.

Run: ``uv run python -m voc_actions.playbooks.bench [N_PLAYBOOKS] [N_LOOKUPS]``
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from datetime import datetime, timedelta
from typing import Any

import yaml

from voc_actions.playbooks.loader import parse_playbooks
from voc_actions.playbooks.model import Facts
from voc_actions.playbooks.render import render_plan
from voc_platform.taxonomy import (
    CATEGORIES,
    CHANNELS,
    SENTIMENTS,
    SEVERITIES,
)

FORMATS = ("restaurant", "retail", "car_service", "telecom", "bank")
TIERS = ("vip", "gold", "silver", "basic")
REGIONS = ("seoul", "busan", "daegu", "incheon")
SIGNALS = ("repeat_issue", "score_swing", "vip", "churn_risk", "low_satisfaction")


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


def _facts(rng: random.Random) -> Facts:
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


def main(argv: list[str]) -> None:
    n = int(argv[0]) if argv else 500
    lookups = int(argv[1]) if len(argv) > 1 else 20000
    files = synthesize(n)
    t0 = time.perf_counter()
    library = parse_playbooks(files, require_defaults=True)
    parse_ms = (time.perf_counter() - t0) * 1000
    rng = random.Random(11)
    facts = [_facts(rng) for _ in range(lookups)]
    customer = {"name": "김민수", "tier": "vip", "last_visit": "2026-11-20", "repeat_count": 2}
    match_ns: list[int] = []
    total_ns: list[int] = []
    for f in facts:
        a = time.perf_counter_ns()
        m = library.match(f)
        b = time.perf_counter_ns()
        render_plan(m, "ko", customer, {"name": "강남점"}).to_dict()
        c = time.perf_counter_ns()
        match_ns.append(b - a)
        total_ns.append(c - a)

    def pct(xs: list[int], q: int) -> float:
        return statistics.quantiles(xs, n=100)[q - 1] / 1000

    print(f"playbooks: {len(library)}  parse+validate: {parse_ms:.0f} ms  lookups: {lookups}")
    print(f"match          p50 {pct(match_ns, 50):7.1f} us   p99 {pct(match_ns, 99):7.1f} us")
    print(f"match+render   p50 {pct(total_ns, 50):7.1f} us   p99 {pct(total_ns, 99):7.1f} us")


if __name__ == "__main__":
    main(sys.argv[1:])
