"""How well the sentiment head carries over to a domain it was not trained on (issue #17).

    python scripts/classifier_transfer.py [--extra data.jsonl.gz ...] [--epochs 4] [--l2 1e-7]

Reads only *training* rows (`make train`'s, plus any `--extra` extract of candidate training
rows). For each target domain below it fits the sentiment head with `make train`'s features,
weights and schedule on every training row outside that domain (the calibration slice included:
nothing is calibrated here) and scores the domain's rows: a question about real text of a
new domain that never touches a held-out set, so candidate data and settings can be chosen on it.
Retraining noise is about +-0.01 (the Korean figures move that much when only English rows are
added).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from voc_feedback.classification.model import SENTIMENT_LABELS
from voc_feedback.classification.text import detect_language
from voc_feedback.classification.train import (
    SENTIMENT_DIM,
    example_weights,
    featurize,
    fit,
    load_rows,
    sparse_logits,
    training_rows,
)

# Each target leaves out the rows the model would otherwise know the domain from.
TARGETS = {
    "restaurant sentences (mams)": {"mams"},
    "store text, en (authored-en + project en)": {"authored-en", "project-en"},
    "store text, ko (authored-ko + project ko)": {"authored-ko", "project-ko"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data", type=Path, default=Path("data/classifier"))
    parser.add_argument("--extra", type=Path, action="append", default=[], help="candidate training rows")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--l2", type=float, default=1e-7)
    args = parser.parse_args()
    rows = load_rows(args.data)
    for path in args.extra:
        rows.extend(training_rows(path))
    langs = [detect_language(r.text) for r in rows]
    domain = np.asarray(
        [f"project-{g}" if r.source == "project" else r.source for r, g in zip(rows, langs, strict=True)]
    )
    index = {label: i for i, label in enumerate(SENTIMENT_LABELS)}
    y = np.asarray([index[r.sentiment] for r in rows], np.int64)
    x = featurize([r.text for r in rows], SENTIMENT_DIM)
    weight = example_weights(rows, [r.sentiment for r in rows], langs)
    pos, neg = index["positive"], index["negative"]
    print(f"{len(rows)} training rows; epochs {args.epochs}, lr {args.lr}, l2 {args.l2}")
    print(f"{'target':<44} {'n':>5} {'3-class':>8} {'polar':>6} {'pos->neg':>9} {'neg->pos':>9}")
    for name, sources in TARGETS.items():
        held = np.isin(domain, sorted(sources))
        train_idx = np.flatnonzero(~held).astype(np.int64)
        test_idx = np.flatnonzero(held).astype(np.int64)
        w = fit(
            x.take(train_idx),
            y[train_idx],
            weight[train_idx],
            len(SENTIMENT_LABELS),
            SENTIMENT_DIM,
            epochs=args.epochs,
            lr=args.lr,
            l2=args.l2,
        )
        pred = sparse_logits(x.take(test_idx), w).argmax(axis=1)
        gold = y[test_idx]
        polar = (gold == pos) | (gold == neg)
        accuracy = float((pred == gold).mean())
        polar_accuracy = float((pred[polar] == gold[polar]).mean())
        flipped = int(((gold == pos) & (pred == neg)).sum()), int(((gold == neg) & (pred == pos)).sum())
        print(
            f"{name:<44} {len(test_idx):>5} {accuracy:>8.3f} {polar_accuracy:>6.3f}"
            f" {flipped[0]:>9} {flipped[1]:>9}"
        )


if __name__ == "__main__":
    main()
