"""Latency benchmark: ``python -m voc_bench.classifier [--rounds N]``.

Classifies every evaluation item ``rounds`` times and prints p50 / p99 / max latency per item in
microseconds, for the learned model the service uses (#17: mean under 0.5 ms, so classification
stays a small share of the >= 200 feedback/s budget on 2 cores) and for the old lexicon baseline.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from importlib.resources.abc import Traversable
from pathlib import Path

from voc_feedback.classification import classify, classify_lexicon
from voc_feedback.classification.evaluate import LANGUAGES, Classifier, default_eval_dir, load_items
from voc_feedback.classification.lexicon import lexicon
from voc_feedback.classification.model import load_model


def percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def run(
    rounds: int, eval_dir: Traversable | None = None, classifier: Classifier = classify
) -> dict[str, float]:
    base = eval_dir or default_eval_dir()
    items = [item for lang in LANGUAGES for item in load_items(base / f"{lang}.jsonl")]
    lexicon()  # load outside the timed region
    load_model()
    samples: list[float] = []
    clock = time.perf_counter_ns
    for _ in range(rounds):
        for item in items:
            start = clock()
            classifier(item.text, csat=item.csat, nps=item.nps, ces=item.ces)
            samples.append((clock() - start) / 1000.0)
    samples.sort()
    return {
        "items": float(len(items)),
        "calls": float(len(samples)),
        "p50_us": percentile(samples, 0.50),
        "p99_us": percentile(samples, 0.99),
        "max_us": samples[-1] if samples else 0.0,
        "mean_us": sum(samples) / len(samples) if samples else 0.0,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="classifier latency benchmark")
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--eval-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    for name, classifier in (("model", classify), ("lexicon", classify_lexicon)):
        stats = run(args.rounds, args.eval_dir, classifier)
        print(
            f"{name:<8} {int(stats['items'])} items x {args.rounds} rounds = {int(stats['calls'])} calls: "
            f"p50 {stats['p50_us']:.1f} us   p99 {stats['p99_us']:.1f} us   "
            f"max {stats['max_us']:.1f} us   mean {stats['mean_us']:.1f} us"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
