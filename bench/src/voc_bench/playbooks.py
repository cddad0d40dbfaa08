"""Micro benchmark: 500 synthetic playbooks, p50/p99 of match + render.

Run: ``uv run python -m voc_bench.playbooks [N_PLAYBOOKS] [N_LOOKUPS]``
"""

from __future__ import annotations

import random
import statistics
import sys
import time

from voc_actions.playbooks import parse_playbooks, render_plan
from voc_bench.playbook_workload import random_facts, synthesize


def main(argv: list[str]) -> None:
    n = int(argv[0]) if argv else 500
    lookups = int(argv[1]) if len(argv) > 1 else 20000
    files = synthesize(n)
    t0 = time.perf_counter()
    library = parse_playbooks(files, require_defaults=True)
    parse_ms = (time.perf_counter() - t0) * 1000
    rng = random.Random(11)
    facts = [random_facts(rng) for _ in range(lookups)]
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
