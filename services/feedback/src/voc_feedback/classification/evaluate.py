"""Evaluate the classifier on the packaged evaluation set.

``python -m voc_feedback.classification.evaluate [--errors dev|test] [--eval-dir DIR]``

Prints, per language (ko, en) and split (dev, test), sentiment accuracy + macro-F1 and category
accuracy + macro-F1, then a per-category F1 table. Exit code 1 when a test-split target is missed
(sentiment accuracy >= 0.85 and category macro-F1 >= 0.75 in each language).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

from voc_feedback.classification import classify
from voc_platform.taxonomy import CATEGORIES, SENTIMENTS

LANGUAGES = ("ko", "en")
SPLITS = ("dev", "test")
TARGET_SENTIMENT_ACCURACY = 0.85
TARGET_CATEGORY_MACRO_F1 = 0.75


def default_eval_dir() -> Traversable:
    """The evaluation set shipped in the package (`classification/data/{ko,en}.jsonl`)."""
    return files("voc_feedback.classification") / "data"


@dataclass(frozen=True, slots=True)
class Item:
    id: str
    text: str
    csat: int | None
    nps: int | None
    ces: int | None
    sentiment: str
    category: str
    split: str
    hard: bool
    note: str


def load_items(path: Traversable) -> list[Item]:
    items: list[Item] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        raw = json.loads(line)
        items.append(
            Item(
                id=raw["id"],
                text=raw["text"],
                csat=raw.get("csat"),
                nps=raw.get("nps"),
                ces=raw.get("ces"),
                sentiment=raw["sentiment"],
                category=raw["category"],
                split=raw["split"],
                hard=bool(raw.get("hard", False)),
                note=raw.get("note", ""),
            )
        )
    return items


def f1_per_label(gold: Sequence[str], pred: Sequence[str], labels: Iterable[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for label in labels:
        tp = sum(g == label and p == label for g, p in zip(gold, pred, strict=True))
        fp = sum(g != label and p == label for g, p in zip(gold, pred, strict=True))
        fn = sum(g == label and p != label for g, p in zip(gold, pred, strict=True))
        if tp + fp + fn == 0:
            continue  # label absent from gold and predictions: not counted in the macro average
        out[label] = 2 * tp / (2 * tp + fp + fn)
    return out


def macro(f1s: dict[str, float]) -> float:
    return sum(f1s.values()) / len(f1s) if f1s else 0.0


def accuracy(gold: Sequence[str], pred: Sequence[str]) -> float:
    return sum(g == p for g, p in zip(gold, pred, strict=True)) / len(gold) if gold else 0.0


@dataclass(frozen=True, slots=True)
class Result:
    language: str
    split: str
    n: int
    sentiment_accuracy: float
    sentiment_macro_f1: float
    category_accuracy: float
    category_macro_f1: float
    category_f1: dict[str, float]
    errors: list[str]


def evaluate_items(language: str, split: str, items: Sequence[Item]) -> Result:
    gold_s: list[str] = []
    pred_s: list[str] = []
    gold_c: list[str] = []
    pred_c: list[str] = []
    errors: list[str] = []
    for item in items:
        c = classify(item.text, csat=item.csat, nps=item.nps, ces=item.ces)
        gold_s.append(item.sentiment)
        pred_s.append(c.sentiment)
        gold_c.append(item.category)
        pred_c.append(c.category)
        if c.sentiment != item.sentiment or c.category != item.category:
            ratings = f" csat={item.csat} nps={item.nps} ces={item.ces}"
            errors.append(
                f"{item.id} gold={item.sentiment}/{item.category} pred={c.sentiment}/"
                f"{c.category} score={c.score:+.2f} | {item.text!r}{ratings}"
            )
    cat_f1 = f1_per_label(gold_c, pred_c, CATEGORIES)
    return Result(
        language=language,
        split=split,
        n=len(items),
        sentiment_accuracy=accuracy(gold_s, pred_s),
        sentiment_macro_f1=macro(f1_per_label(gold_s, pred_s, SENTIMENTS)),
        category_accuracy=accuracy(gold_c, pred_c),
        category_macro_f1=macro(cat_f1),
        category_f1=cat_f1,
        errors=errors,
    )


def evaluate(eval_dir: Traversable | None = None, splits: Sequence[str] = SPLITS) -> list[Result]:
    base = eval_dir or default_eval_dir()
    results: list[Result] = []
    for language in LANGUAGES:
        items = load_items(base / f"{language}.jsonl")
        for split in splits:
            results.append(evaluate_items(language, split, [i for i in items if i.split == split]))
    return results


def targets_met(results: Iterable[Result]) -> bool:
    return all(
        r.sentiment_accuracy >= TARGET_SENTIMENT_ACCURACY and r.category_macro_f1 >= TARGET_CATEGORY_MACRO_F1
        for r in results
        if r.split == "test"
    )


def report(results: Sequence[Result]) -> str:
    lines = [f"{'lang':<5}{'split':<6}{'n':>5}  {'sent acc':>8} {'sent F1':>8}  {'cat acc':>8} {'cat F1':>8}"]
    for r in results:
        lines.append(
            f"{r.language:<5}{r.split:<6}{r.n:>5}  {r.sentiment_accuracy:>8.3f} "
            f"{r.sentiment_macro_f1:>8.3f}  {r.category_accuracy:>8.3f} {r.category_macro_f1:>8.3f}"
        )
    lines.append("")
    header = f"{'category F1':<17}" + "".join(f"{r.language + '/' + r.split:>9}" for r in results)
    lines.append(header)
    for cat in CATEGORIES:
        cells = "".join(
            f"{r.category_f1[cat]:>9.2f}" if cat in r.category_f1 else f"{'-':>9}" for r in results
        )
        lines.append(f"{cat:<17}{cells}")
    lines.append("")
    lines.append(
        f"targets (test split, each language): sentiment accuracy >= {TARGET_SENTIMENT_ACCURACY}, "
        f"category macro-F1 >= {TARGET_CATEGORY_MACRO_F1}: " + ("met" if targets_met(results) else "MISSED")
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--eval-dir", type=Path, default=None)
    parser.add_argument("--errors", choices=SPLITS, default=None, help="list errors of a split")
    args = parser.parse_args(argv)
    results = evaluate(args.eval_dir)
    print(report(results))
    if args.errors:
        print()
        for r in results:
            if r.split == args.errors:
                print(f"--- {r.language}/{r.split} errors ({len(r.errors)})")
                print("\n".join(r.errors))
    return 0 if targets_met(results) else 1


if __name__ == "__main__":
    sys.exit(main())
