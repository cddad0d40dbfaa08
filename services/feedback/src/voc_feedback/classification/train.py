"""Train the learned classifier from the committed data: ``make train`` (issue #17).

``python -m voc_feedback.classification.train [--data data/classifier] [--out DIR] [--no-progress]
[--corrections FILE.ndjson] [--max-rows N]``

Reads the ``split == "train"`` rows of ``data/classifier/*.jsonl.gz`` plus the *dev* split of the
project's evaluation set (``classification/data``), fits two multinomial logistic regressions
(sentiment; category) on hashed features with mini-batch Adam, a per-category stacked layer that
weighs the category head's out-of-fold predictions against the lexicon's category evidence,
calibrates each with a temperature fitted on a 10% slice of the training rows, and writes
``model.npz`` + ``model.json``.
Deterministic: fixed seeds, sorted inputs, single-threaded numpy arithmetic. Held-out rows
(``split == "heldout"``) and the project set's *test* split are never read here.
Staff corrections (``--corrections``, the feedback service's ndjson export) are added as rows of
their own source, weighted like the project-authored rows; ``voc classifier train`` calls
``train_model`` the same way and uploads the result to the model registry.
A progress bar per head (epoch k/n, rows seen, rows/s) goes to stderr when it is a terminal
(``--progress`` forces it, ``--no-progress`` turns it off); stdout and the artefact are unchanged.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import sys
import time
import zipfile
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from voc_feedback.classification.correction_export import Correction, CorrectionsInvalid, read_corrections
from voc_feedback.classification.evaluate import default_eval_dir, load_items
from voc_feedback.classification.features import clean_text, extract, hash_feature, lexicon_category
from voc_feedback.classification.lexicon import lexicon
from voc_feedback.classification.model import SENTIMENT_LABELS, stack_inputs, stack_width, weights_digest
from voc_feedback.classification.text import detect_language
from voc_platform.progress import Progress, add_flag, shown
from voc_platform.taxonomy import CATEGORIES

Float = TypeVar("Float", np.float32, np.float64)  # _softmax serves float32 heads and the float64 stack

SENTIMENT_DIM = 1 << 18
CATEGORY_DIM = 1 << 16
SEED = 17
STACK_FOLDS = 5  # out-of-fold category predictions that the stacked layer is trained on
STACK_L2 = 1e-3
# In-domain rows (store / restaurant / service feedback) count more than movie or social text.
# Staff corrections are store feedback labelled by the people who handle it: weighted like the
# rows the project wrote.
SOURCE_WEIGHT = {"authored-ko": 3.0, "authored-en": 3.0, "project": 3.0, "correction": 3.0, "mams": 1.5}
CORRECTION_SOURCE = "correction"


@dataclass(frozen=True, slots=True)
class Row:
    text: str
    sentiment: str
    category: str | None
    source: str


def training_rows(path: Path) -> list[Row]:
    """The ``split == "train"`` rows of one extract (``data/classifier/*.jsonl.gz``)."""
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [
            Row(raw["text"], raw["sentiment"], raw["category"], raw["source"])
            for raw in map(json.loads, handle)
            if raw["split"] == "train"
        ]


def load_rows(data_dir: Path) -> list[Row]:
    rows: list[Row] = []
    for path in sorted(data_dir.glob("*.jsonl.gz")):
        rows.extend(training_rows(path))
    base = default_eval_dir()
    for lang in ("ko", "en"):
        for item in load_items(base / f"{lang}.jsonl"):
            if item.split == "dev" and item.text.strip():
                rows.append(Row(item.text, item.sentiment, item.category, "project"))
    return rows


def correction_rows(corrections: Sequence[Correction]) -> list[Row]:
    """Corrections as training rows (already one per feedback item: `correction_export`)."""
    return [Row(c.text, c.sentiment, c.category, CORRECTION_SOURCE) for c in corrections if c.text.strip()]


def small_sample(rows: Sequence[Row], max_rows: int) -> list[Row]:
    """About `max_rows` of `rows`, chosen by CRC32 of the text (deterministic), corrections all
    kept: a deliberately small, weak model (tests use it to see the promotion gate refuse one)."""
    if max_rows <= 0 or len(rows) <= max_rows:
        return list(rows)
    keep = max(1, len(rows) // max_rows)
    return [r for r in rows if r.source == CORRECTION_SOURCE or zlib.crc32(r.text.encode()) % keep == 0]


@dataclass(slots=True)
class Matrix:
    indptr: npt.NDArray[np.int64]
    indices: npt.NDArray[np.int64]
    data: npt.NDArray[np.float32]

    def take(self, order: npt.NDArray[np.int64]) -> Matrix:
        lengths = np.diff(self.indptr)[order]
        indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        starts = self.indptr[order]
        offsets = np.arange(int(indptr[-1]), dtype=np.int64) - np.repeat(indptr[:-1], lengths)
        pos = np.repeat(starts, lengths) + offsets
        return Matrix(indptr, self.indices[pos], self.data[pos])


@dataclass(frozen=True, slots=True)
class LexiconSide:
    """What the stacked category layer reads besides the hashed model: per text."""

    evidence: dict[str, float]
    choice: str
    lang: str


def featurize(texts: Sequence[str], dim: int, side: list[LexiconSide] | None = None) -> Matrix:
    lex = lexicon()
    indptr = [0]
    indices: list[int] = []
    data: list[float] = []
    for text in texts:
        cleaned = clean_text(text)
        lang = detect_language(cleaned) if cleaned else "other"
        feats = extract(cleaned, lang, lex)
        indices.extend(hash_feature(n, dim) for n in feats.names)
        data.extend(feats.values)
        indptr.append(len(indices))
        if side is not None:
            a = feats.lexicon
            side.append(LexiconSide(dict(a.categories) if a else {}, lexicon_category(a, lex), lang))
    return Matrix(np.asarray(indptr, np.int64), np.asarray(indices, np.int64), np.asarray(data, np.float32))


def sparse_logits(x: Matrix, w: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    contrib = w[x.indices] * x.data[:, None]
    out: npt.NDArray[np.float32] = np.add.reduceat(contrib, x.indptr[:-1], axis=0)
    return out


def _softmax(z: npt.NDArray[Float]) -> npt.NDArray[Float]:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    out: npt.NDArray[Float] = e / e.sum(axis=1, keepdims=True)
    return out


def fit(
    x: Matrix,
    y: npt.NDArray[np.int64],
    weight: npt.NDArray[np.float32],
    n_labels: int,
    dim: int,
    *,
    epochs: int,
    batch: int = 128,
    lr: float = 0.01,
    l2: float = 1e-7,
    progress: Progress | None = None,
    stage: str = "",
) -> npt.NDArray[np.float32]:
    """Weighted multinomial logistic regression, mini-batch Adam with lazy L2. `progress`
    counts the rows seen, its label naming `stage` and the epoch (it never touches the numbers)."""
    rng = np.random.default_rng(SEED)
    w = np.zeros((dim, n_labels), np.float32)
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    b1, b2, eps = 0.9, 0.999, 1e-8
    step = 0
    n = len(y)
    for epoch in range(1, epochs + 1):
        if progress is not None:
            progress.label = f"{stage} epoch {epoch}/{epochs}"
        order = rng.permutation(n).astype(np.int64)
        xs, ys, ws = x.take(order), y[order], weight[order]
        for start in range(0, n, batch):
            stop = min(n, start + batch)
            lo, hi = int(xs.indptr[start]), int(xs.indptr[stop])
            part = Matrix(xs.indptr[start : stop + 1] - lo, xs.indices[lo:hi], xs.data[lo:hi])
            p = _softmax(sparse_logits(part, w))
            p[np.arange(stop - start), ys[start:stop]] -= 1.0
            p *= ws[start:stop, None] / ws[start:stop].sum()
            rows = np.repeat(np.arange(stop - start), np.diff(part.indptr))
            touched = np.unique(part.indices)
            g = np.zeros((len(touched), n_labels), np.float32)
            local = np.searchsorted(touched, part.indices)
            np.add.at(g, local, part.data[:, None] * p[rows])
            g += l2 * w[touched]
            step += 1
            m[touched] = b1 * m[touched] + (1 - b1) * g
            v[touched] = b2 * v[touched] + (1 - b2) * g * g
            mhat = m[touched] / (1 - b1**step)
            vhat = v[touched] / (1 - b2**step)
            w[touched] -= lr * mhat / (np.sqrt(vhat) + eps)
            if progress is not None:
                progress.advance(stop - start)
    return w


def fit_temperature(logits: npt.NDArray[np.float32], y: npt.NDArray[np.int64]) -> float:
    """The temperature minimising the negative log-likelihood on the calibration slice."""
    best_t, best_nll = 1.0, float("inf")
    for t in np.arange(0.5, 4.01, 0.05):
        p = _softmax(logits / t)
        nll = float(-np.log(p[np.arange(len(y)), y] + 1e-9).mean())
        if nll < best_nll:
            best_t, best_nll = float(t), nll
    return round(best_t, 2)


def example_weights(
    rows: Sequence[Row], labels: Sequence[str], langs: Sequence[str]
) -> npt.NDArray[np.float32]:
    """Source weight x inverse-sqrt class frequency per language; each language sums equal."""
    counts = Counter(zip(langs, labels, strict=True))
    w = np.asarray(
        [
            SOURCE_WEIGHT.get(r.source, 1.0) / counts[(lang, label)] ** 0.5
            for r, lang, label in zip(rows, langs, labels, strict=True)
        ],
        np.float32,
    )
    for lang in set(langs):
        mask = np.asarray([g == lang for g in langs])
        w[mask] /= w[mask].sum()
    out: npt.NDArray[np.float32] = w * (len(w) / w.sum())
    return out


@dataclass(frozen=True, slots=True)
class _HeadFit:
    """One training's hashed head: its rows' features, labels and weights and its schedule; each
    fit (a fold's, the final one) reads a subset of the rows."""

    x: Matrix
    y: npt.NDArray[np.int64]
    weight: npt.NDArray[np.float32]
    n_labels: int
    dim: int
    epochs: int
    lr: float
    progress: Progress

    def on(self, idx: npt.NDArray[np.int64], stage: str) -> npt.NDArray[np.float32]:
        return fit(
            self.x.take(idx),
            self.y[idx],
            self.weight[idx],
            self.n_labels,
            self.dim,
            epochs=self.epochs,
            lr=self.lr,
            progress=self.progress,
            stage=stage,
        )


def train_head(
    rows: Sequence[Row],
    labels: Sequence[str],
    label_set: Sequence[str],
    dim: int,
    epochs: int,
    lr: float,
    show_progress: bool = False,
) -> tuple[npt.NDArray[np.float32], float, float]:
    langs = [detect_language(r.text) for r in rows]
    index = {label: i for i, label in enumerate(label_set)}
    y = np.asarray([index[label] for label in labels], np.int64)
    calib = np.asarray([zlib.crc32(r.text.encode()) % 10 == 0 for r in rows])
    x = featurize([r.text for r in rows], dim)
    weight = example_weights(rows, labels, langs)
    fit_idx = np.flatnonzero(~calib).astype(np.int64)
    cal_idx = np.flatnonzero(calib).astype(np.int64)
    progress = Progress("sentiment:", len(fit_idx) * epochs, "rows", show=show_progress)
    w = _HeadFit(x, y, weight, len(label_set), dim, epochs, lr, progress).on(fit_idx, "sentiment:")
    progress.finish()
    cal_logits = sparse_logits(x.take(cal_idx), w)
    temperature = fit_temperature(cal_logits, y[cal_idx])
    hits = cal_logits.argmax(axis=1) == y[cal_idx]
    accuracy = float(hits.mean())
    by_source: dict[str, list[bool]] = {}
    for i, ok in zip(cal_idx.tolist(), hits.tolist(), strict=True):
        by_source.setdefault(rows[i].source, []).append(bool(ok))
    print(
        "  calibration slice by source: "
        + ", ".join(f"{k} {sum(v) / len(v):.3f} ({len(v)})" for k, v in sorted(by_source.items()))
    )
    return w, temperature, accuracy


def stack_mask(n_labels: int) -> npt.NDArray[np.float32]:
    """Which stacked-layer weights may be non-zero: category c's score reads only category c's
    inputs (its head log-probability, its lexicon strength, whether the lexicon chose it) plus
    language and bias. A full 42 x 13 layer also learned cross-category sums ("wait_time" and
    "food_quality" evidence together -> delivery) that misread two complaints in one sentence."""
    mask = np.zeros((stack_width(n_labels), n_labels), np.float32)
    for c in range(n_labels):
        mask[c, c] = mask[n_labels + c, c] = mask[2 * n_labels + c, c] = 1.0
    mask[3 * n_labels :, :] = 1.0
    return mask


def fit_dense(
    x: npt.NDArray[np.float32],
    y: npt.NDArray[np.int64],
    weight: npt.NDArray[np.float32],
    n_labels: int,
    *,
    mask: npt.NDArray[np.float32] | None = None,
    l2: float = STACK_L2,
    iters: int = 600,
    lr: float = 0.05,
) -> npt.NDArray[np.float32]:
    """Weighted multinomial logistic regression on a small dense matrix, full-batch Adam; weights
    outside ``mask`` stay zero. The arithmetic is float64 and only the result float32: the matrix
    products go through BLAS, whose kernel (chosen per CPU) changes the last bits of a float32
    sum, and 600 steps of that changed stacked weights by ~1e-7 between two machines, so
    `make train` wrote a different version on each."""
    x64 = x.astype(np.float64)
    w = np.zeros((x.shape[1], n_labels), np.float64)
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    share = weight.astype(np.float64) / float(weight.sum(dtype=np.float64))
    keep = None if mask is None else mask.astype(np.float64)
    rows = np.arange(len(y))
    for t in range(1, iters + 1):
        p = _softmax(x64 @ w)
        p[rows, y] -= 1.0
        g = x64.T @ (p * share[:, None]) + l2 * w
        if keep is not None:
            g *= keep
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        w -= lr * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    out: npt.NDArray[np.float32] = w.astype(np.float32)
    return out


def train_category(
    rows: Sequence[Row], epochs: int, lr: float, show_progress: bool = False
) -> tuple[npt.NDArray[np.float32], float, npt.NDArray[np.float32], float, float]:
    """The hashed category head plus the stacked layer over [its log-probabilities, the lexicon's
    category evidence and choice]. The stacked layer is trained on out-of-fold predictions of the
    fit rows (5 folds by CRC32), so it learns how far to trust the hashed head on text it has not
    memorised; both temperatures and the reported accuracy come from the calibration slice."""
    labels = [r.category or "other" for r in rows]
    langs = [detect_language(r.text) for r in rows]
    index = {label: i for i, label in enumerate(CATEGORIES)}
    n_labels = len(CATEGORIES)
    y = np.asarray([index[label] for label in labels], np.int64)
    crc = np.asarray([zlib.crc32(r.text.encode()) for r in rows], np.int64)
    calib = crc % 10 == 0
    fold = crc // 10 % STACK_FOLDS
    side: list[LexiconSide] = []
    x = featurize([r.text for r in rows], CATEGORY_DIM, side)
    weight = example_weights(rows, labels, langs)
    oof = np.zeros((len(rows), n_labels), np.float32)
    fit_idx = np.flatnonzero(~calib).astype(np.int64)
    cal_idx = np.flatnonzero(calib).astype(np.int64)
    # One bar for the head: the folds' fits see (STACK_FOLDS - 1) x the fit rows, the last fit once.
    planned = STACK_FOLDS * len(fit_idx) * epochs
    progress = Progress("category:", planned, "rows", show=show_progress)
    head = _HeadFit(x, y, weight, n_labels, CATEGORY_DIM, epochs, lr, progress)
    for k in range(STACK_FOLDS):
        tr = np.flatnonzero(~calib & (fold != k)).astype(np.int64)
        te = np.flatnonzero(~calib & (fold == k)).astype(np.int64)
        oof[te] = sparse_logits(x.take(te), head.on(tr, f"category fold {k + 1}/{STACK_FOLDS}:"))
    w = head.on(fit_idx, "category final:")
    progress.finish()
    cal_logits = sparse_logits(x.take(cal_idx), w)
    base_t = fit_temperature(cal_logits, y[cal_idx])

    def inputs(i: int, logits: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        s = side[i]
        return stack_inputs(logits, s.evidence, s.choice, s.lang, CATEGORIES)

    stack_x = np.stack([inputs(i, oof[i]) for i in fit_idx.tolist()])
    stack = fit_dense(stack_x, y[fit_idx], weight[fit_idx], n_labels, mask=stack_mask(n_labels))
    cal_x = np.stack([inputs(i, cal_logits[j]) for j, i in enumerate(cal_idx.tolist())])
    stacked = (cal_x.astype(np.float64) @ stack.astype(np.float64)).astype(np.float32)
    stack_t = fit_temperature(stacked, y[cal_idx])
    base_hits = cal_logits.argmax(axis=1) == y[cal_idx]
    hits = stacked.argmax(axis=1) == y[cal_idx]
    lex_hits = np.asarray([index[side[i].choice] for i in cal_idx.tolist()]) == y[cal_idx]
    by_source: dict[str, list[tuple[bool, bool, bool]]] = {}
    for i, a, b, c in zip(
        cal_idx.tolist(), lex_hits.tolist(), base_hits.tolist(), hits.tolist(), strict=True
    ):
        by_source.setdefault(rows[i].source, []).append((bool(a), bool(b), bool(c)))
    print("  calibration slice by source, accuracy lexicon / hashed head / stacked:")
    for source, v in sorted(by_source.items()):
        acc = [sum(t[j] for t in v) / len(v) for j in range(3)]
        print(f"    {source:<12} {acc[0]:.3f} / {acc[1]:.3f} / {acc[2]:.3f} ({len(v)})")
    return w, base_t, stack, stack_t, float(hits.mean())


def npz_bytes(arrays: dict[str, npt.NDArray[np.float16] | npt.NDArray[np.float32]]) -> bytes:
    """Like `np.savez_compressed`, but byte-for-byte reproducible (fixed zip timestamps)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.save(buffer, array, allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, buffer.getvalue())
    return out.getvalue()


@dataclass(frozen=True, slots=True)
class Trained:
    """A trained model as `model.npz` bytes and `model.json`'s content."""

    npz: bytes
    meta: dict[str, object]

    @property
    def version(self) -> str:
        return str(self.meta["version"])


def train_model(rows: Sequence[Row], *, epochs: int = 4, lr: float = 0.01, show: bool = False) -> Trained:
    """Both heads and the stacked layer from `rows` (deterministic), with the calibration-slice
    figures printed on stdout."""
    print(f"{len(rows)} training rows: {dict(sorted(Counter(r.source for r in rows).items()))}")
    s_w, s_t, s_acc = train_head(
        rows, [r.sentiment for r in rows], SENTIMENT_LABELS, SENTIMENT_DIM, epochs, lr, show
    )
    print(f"sentiment: calibration-slice accuracy {s_acc:.3f}, temperature {s_t}")
    cat_rows = [r for r in rows if r.category is not None]
    c_w, c_t, stack, stack_t, c_acc = train_category(cat_rows, epochs * 3, lr, show)
    print(
        f"category: {len(cat_rows)} rows, calibration-slice accuracy (stacked) {c_acc:.3f}, "
        f"temperatures {c_t} / {stack_t}"
    )
    sentiment16, category16 = s_w.astype(np.float16), c_w.astype(np.float16)
    stack32 = stack.astype(np.float32)
    npz = npz_bytes({"sentiment": sentiment16, "category": category16, "category_stack": stack32})
    meta: dict[str, object] = {
        "version": f"hashlr-2-{weights_digest(sentiment16, category16, stack32)}",
        "sentiment": {"labels": list(SENTIMENT_LABELS), "dim": SENTIMENT_DIM, "temperature": s_t},
        "category": {"labels": list(CATEGORIES), "dim": CATEGORY_DIM, "temperature": c_t},
        "category_stack": {
            "inputs": "head log-probs, lexicon evidence, lexicon choice, ko, en, bias",
            "per_category": True,
            "folds": STACK_FOLDS,
            "l2": STACK_L2,
            "temperature": stack_t,
        },
        "training_rows": dict(sorted(Counter(r.source for r in rows).items())),
    }
    return Trained(npz, meta)


def main(argv: Sequence[str] | None = None) -> int:
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data", type=Path, default=Path("data/classifier"))
    parser.add_argument("--out", type=Path, default=here / "model")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--corrections", type=Path, default=None, help="staff corrections, ndjson export")
    parser.add_argument(
        "--max-rows", type=int, default=0, help="train on about N rows (a deliberately weak model, for tests)"
    )
    add_flag(parser)  # per head on stderr: epoch k/n, rows seen, rows/s
    args = parser.parse_args(argv)
    show = shown(args.progress)
    started = time.perf_counter()
    rows = load_rows(args.data)
    if not rows:
        print(f"no training rows under {args.data}", file=sys.stderr)
        return 1
    if args.corrections is not None:
        try:
            rows += correction_rows(read_corrections(args.corrections))
        except (OSError, CorrectionsInvalid) as exc:
            print(f"corrections {args.corrections}: {exc}", file=sys.stderr)
            return 1
    trained = train_model(small_sample(rows, args.max_rows), epochs=args.epochs, lr=args.lr, show=show)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "model.npz").write_bytes(trained.npz)
    (args.out / "model.json").write_text(json.dumps(trained.meta, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {args.out} version {trained.version} in {time.perf_counter() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
