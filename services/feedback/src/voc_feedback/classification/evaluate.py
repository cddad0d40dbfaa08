"""Evaluate the classifier: ``make eval`` (issue #17).

``python -m voc_feedback.classification.evaluate [--errors dev|test] [--eval-dir DIR] [--data DIR]
[--corrections FILE.ndjson]``

1. The project's own set (``classification/data``): per language and split, sentiment accuracy +
   macro-F1 and category accuracy + macro-F1, and a per-category F1 table. The *dev* split is
   training data for the learned model (``train.py``); only the *test* split is a fair score.
2. The full report (``report_all``): for every held-out set in ``data/classifier`` (real public
   text kept out of training and tuning, and the held-out slice of the project-authored sentences)
   and the project test split, the learned model next to the old lexicon (baseline), sentiment
   confusion matrices, calibration by confidence bucket, and the per-item cost of each.
3. Staff corrections (``report_corrections``; ``--corrections`` or ``$VOC_EVAL_CORRECTIONS``, the
   feedback service's ndjson export): how often the served model now agrees with what staff
   said, per language, and the most frequent (model -> staff) disagreements.

Exit code 1 when a project test-split target is missed (sentiment accuracy >= 0.85 and category
macro-F1 >= 0.75 in each language).
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

from voc_feedback.classification import Classification, classify, classify_lexicon
from voc_feedback.classification.correction_export import Correction, CorrectionsInvalid, read_corrections
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


Classifier = Callable[..., Classification]


def evaluate_items(
    language: str, split: str, items: Sequence[Item], classifier: Classifier = classify
) -> Result:
    gold_s: list[str] = []
    pred_s: list[str] = []
    gold_c: list[str] = []
    pred_c: list[str] = []
    errors: list[str] = []
    for item in items:
        c = classifier(item.text, csat=item.csat, nps=item.nps, ces=item.ces)
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


def evaluate(
    eval_dir: Traversable | None = None, splits: Sequence[str] = SPLITS, classifier: Classifier = classify
) -> list[Result]:
    base = eval_dir or default_eval_dir()
    results: list[Result] = []
    for language in LANGUAGES:
        items = load_items(base / f"{language}.jsonl")
        for split in splits:
            chosen = [i for i in items if i.split == split]
            results.append(evaluate_items(language, split, chosen, classifier))
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


# --------------------------------------------------------------------------- full report (make eval)

HELDOUT_SETS = {
    # name: (file stem, language, description)
    "ko-real": ("ko-kote", "ko", "KOTE online comments (emotions -> sentiment), other domain"),
    "en-real": ("en-vader", "en", "VADER product-review snippets (human-rated), other domain"),
    "en-restaurant": ("en-mams", "en", "MAMS restaurant sentences, test file (train/val files trained on)"),
    "ko-authored": ("authored", "ko", "project-authored store sentences, held-out fifth"),
    "en-authored": ("authored", "en", "project-authored store sentences, held-out fifth"),
}
BUCKETS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.01)


def load_heldout(data_dir: Path, name: str) -> list[Item]:
    stem, language, _ = HELDOUT_SETS[name]
    path = data_dir / f"{stem}.jsonl.gz"
    if not path.exists():
        return []
    items: list[Item] = []
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for n, line in enumerate(handle):
            raw = json.loads(line)
            if raw["split"] != "heldout" or (stem == "authored" and raw["source"] != f"authored-{language}"):
                continue
            items.append(
                Item(
                    id=f"{name}-{n}",
                    text=raw["text"],
                    csat=None,
                    nps=None,
                    ces=None,
                    sentiment=raw["sentiment"],
                    category=raw["category"] or "",
                    split="heldout",
                    hard=False,
                    note=raw["source"],
                )
            )
    return items


@dataclass(frozen=True, slots=True)
class Scored:
    gold_s: list[str]
    pred_s: list[str]
    gold_c: list[str]
    pred_c: list[str]
    confidence: list[float]
    micros: list[float]

    def sentiment(self) -> tuple[float, float]:
        return accuracy(self.gold_s, self.pred_s), macro(f1_per_label(self.gold_s, self.pred_s, SENTIMENTS))

    def polar(self) -> float:
        """Accuracy on the items whose gold label is positive or negative (a neutral answer is wrong):
        the measure a star-rated review set (no neutral gold) gives."""
        pairs = [(g, p) for g, p in zip(self.gold_s, self.pred_s, strict=True) if g != "neutral"]
        return sum(g == p for g, p in pairs) / len(pairs) if pairs else 0.0

    def category(self) -> tuple[float, float] | None:
        pairs = [(g, p) for g, p in zip(self.gold_c, self.pred_c, strict=True) if g]
        if not pairs:
            return None
        gold, pred = [g for g, _ in pairs], [p for _, p in pairs]
        # Macro over the categories present in the gold labels of this set.
        f1s = f1_per_label(gold, pred, sorted(set(gold)))
        return accuracy(gold, pred), macro(f1s)


def score_items(items: Sequence[Item], classifier: Classifier) -> Scored:
    out = Scored([], [], [], [], [], [])
    clock = time.perf_counter_ns
    for item in items:
        start = clock()
        c = classifier(item.text, csat=item.csat, nps=item.nps, ces=item.ces)
        out.micros.append((clock() - start) / 1000.0)
        out.gold_s.append(item.sentiment)
        out.pred_s.append(c.sentiment)
        out.gold_c.append(item.category)
        out.pred_c.append(c.category)
        out.confidence.append(c.confidence)
    return out


def confusion(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str]) -> list[str]:
    corner = "gold / pred"
    lines = [f"{corner:<14}" + "".join(f"{label[:8]:>9}" for label in labels)]
    for g in labels:
        cells = "".join(
            f"{sum(1 for a, b in zip(gold, pred, strict=True) if a == g and b == p):>9}" for p in labels
        )
        lines.append(f"{g:<14}{cells}")
    return lines


def calibration(scored: Sequence[Scored]) -> list[str]:
    rows = [(c, g == p) for s in scored for c, g, p in zip(s.confidence, s.gold_s, s.pred_s, strict=True)]
    lines = [f"{'confidence':<12}{'n':>6}{'mean conf':>11}{'accuracy':>10}"]
    for lo, hi in itertools.pairwise(BUCKETS):
        bucket = [(c, ok) for c, ok in rows if lo <= c < hi]
        if bucket:
            mean_c = sum(c for c, _ in bucket) / len(bucket)
            acc = sum(ok for _, ok in bucket) / len(bucket)
            lines.append(f"{lo:.1f}-{min(hi, 1.0):.1f}{'':<5}{len(bucket):>6}{mean_c:>11.3f}{acc:>10.3f}")
    return lines


def _fmt(pair: tuple[float, float] | None) -> str:
    return f"{pair[0]:>6.3f} {pair[1]:>6.3f}" if pair else f"{'-':>6} {'-':>6}"


def report_all(data_dir: Path, eval_dir: Traversable | None = None) -> str:
    base = eval_dir or default_eval_dir()
    sets: list[tuple[str, str, str, list[Item]]] = []
    for name, (_, language, description) in HELDOUT_SETS.items():
        items = load_heldout(data_dir, name)
        if items:
            sets.append((name, language, description, items))
    for language in LANGUAGES:
        test = [i for i in load_items(base / f"{language}.jsonl") if i.split == "test"]
        sets.append((f"{language}-project", language, "project evaluation set, test split", test))
    classifiers: dict[str, Classifier] = {"lexicon": classify_lexicon, "model": classify}
    scored = {(name, k): score_items(items, f) for name, _, _, items in sets for k, f in classifiers.items()}

    lines = ["(a) real public text kept out of training; (b) project-written sets", ""]
    lines.append(f"{'':<20}{'lexicon (baseline)':^35}   {'learned model':^35}")
    lines.append(
        f"{'set':<15}{'n':>5}  {'sent acc/F1':>13} {'polar':>6}  {'cat acc/F1':>13}   "
        f"{'sent acc/F1':>13} {'polar':>6}  {'cat acc/F1':>13}"
    )
    for name, _, _, items in sets:
        lex, mod = scored[(name, "lexicon")], scored[(name, "model")]
        lines.append(
            f"{name:<15}{len(items):>5}  {_fmt(lex.sentiment()):>13} {lex.polar():>6.3f}  "
            f"{_fmt(lex.category()):>13}   {_fmt(mod.sentiment()):>13} {mod.polar():>6.3f}  "
            f"{_fmt(mod.category()):>13}"
        )
    lines.append("")
    lines.append("sent acc/F1: 3-class accuracy / macro-F1; polar: accuracy on gold positive+negative items")
    lines.append("cat acc/F1: accuracy / macro-F1 over the categories present in the set's gold labels")
    lines.append("")
    for name, _, description, _ in sets:
        lines.append(f"  {name}: {description}")
    for name, _, _, _ in sets:
        mod = scored[(name, "model")]
        lines.append("")
        lines.append(f"model sentiment confusion, {name}")
        lines.extend(confusion(mod.gold_s, mod.pred_s, SENTIMENTS))
    for name, _, _, _ in sets:
        mod = scored[(name, "model")]
        if mod.category() is not None:
            pairs = [(g, p) for g, p in zip(mod.gold_c, mod.pred_c, strict=True) if g]
            f1s = f1_per_label([g for g, _ in pairs], [p for _, p in pairs], sorted({g for g, _ in pairs}))
            lines.append("")
            lines.append(f"model category F1, {name}: " + ", ".join(f"{c} {f:.2f}" for c, f in f1s.items()))
    for language in LANGUAGES:
        lines.append("")
        lines.append(f"model calibration ({language}, all sets pooled)")
        lines.extend(calibration([scored[(n, "model")] for n, lang, _, _ in sets if lang == language]))
    lines.append("")
    lines.append("per-item cost (wall clock, this process, one thread)")
    for kind in classifiers:
        micros = sorted(m for (_, k), s in scored.items() if k == kind for m in s.micros)
        if micros:
            mean = sum(micros) / len(micros)
            p99 = micros[min(len(micros) - 1, round(0.99 * (len(micros) - 1)))]
            lines.append(f"  {kind:<8} mean {mean:7.1f} us  p99 {p99:7.1f} us  ({len(micros)} items)")
    return "\n".join(lines)


def report_corrections(corrections: Sequence[Correction], classifier: Classifier = classify) -> str:
    """The model against staff corrections: each corrected item classified again and compared
    with what staff said (one per feedback item, its latest correction). Note: once a model has
    been trained on corrections (`voc classifier train`), these are its training rows."""
    if not corrections:
        return "staff corrections: no corrections"
    by_language: dict[str, list[tuple[bool, bool]]] = {}
    misses: Counter[str] = Counter()
    for c in corrections:
        got = classifier(c.text, language=c.language)
        ok_s, ok_c = got.sentiment == c.sentiment, got.category == c.category
        by_language.setdefault(got.language, []).append((ok_s, ok_c))
        if not (ok_s and ok_c):
            misses[f"model {got.sentiment}/{got.category} -> staff {c.sentiment}/{c.category}"] += 1
    versions = Counter(c.model_version or "?" for c in corrections)
    lines = [
        f"staff corrections: {len(corrections)} items (classified at the time by "
        + ", ".join(f"{v} x{n}" for v, n in versions.most_common())
        + ")",
        f"{'language':<10}{'n':>6}{'sentiment acc':>15}{'category acc':>14}",
    ]
    everything = [r for rows in by_language.values() for r in rows]
    for name, rows in [*sorted(by_language.items()), ("all", everything)]:
        sentiment = sum(s for s, _ in rows) / len(rows)
        category = sum(c for _, c in rows) / len(rows)
        lines.append(f"{name:<10}{len(rows):>6}{sentiment:>15.3f}{category:>14.3f}")
    if misses:
        lines.append("most frequent disagreements (the model now -> what staff said):")
        lines.extend(f"  {n:>4}  {pair}" for pair, n in misses.most_common(10))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--eval-dir", type=Path, default=None)
    parser.add_argument("--errors", choices=SPLITS, default=None, help="list errors of a split")
    parser.add_argument("--data", type=Path, default=Path("data/classifier"), help="held-out extracts")
    parser.add_argument(
        "--corrections",
        type=Path,
        default=os.environ.get("VOC_EVAL_CORRECTIONS") or None,
        help="staff corrections, the ndjson export (default: $VOC_EVAL_CORRECTIONS)",
    )
    args = parser.parse_args(argv)
    results = evaluate(args.eval_dir)
    print("project evaluation set, learned model (the dev split is training data: read the test rows)")
    print(report(results))
    print()
    print(report_all(args.data, args.eval_dir))
    print()
    if args.corrections is None:
        print("staff corrections: no corrections (no export given: --corrections FILE.ndjson)")
    else:
        try:
            print(report_corrections(read_corrections(args.corrections)))
        except (OSError, CorrectionsInvalid) as exc:
            print(f"corrections {args.corrections}: {exc}", file=sys.stderr)
            return 2
    if args.errors:
        print()
        for r in results:
            if r.split == args.errors:
                print(f"--- {r.language}/{r.split} errors ({len(r.errors)})")
                print("\n".join(r.errors))
    return 0 if targets_met(results) else 1


if __name__ == "__main__":
    sys.exit(main())
