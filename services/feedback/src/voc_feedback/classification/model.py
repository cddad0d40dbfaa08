"""The learned classifier at inference: two multinomial logistic regressions over hashed features.

``sentiment``: negative / neutral / positive; ``category``: the shared taxonomy. Weights live in
``model/model.npz`` (written by ``make train``, committed) with ``model/model.json`` (version,
hash sizes, labels, calibration temperatures). Loaded once per process, read-only afterwards,
so ``predict`` is thread-safe. numpy only; nothing touches the network.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import numpy as np
import numpy.typing as npt

from voc_feedback.classification.features import Features, hash_feature

MODEL_DIR = "model"
SENTIMENT_LABELS = ("negative", "neutral", "positive")


@dataclass(frozen=True, slots=True)
class Head:
    labels: tuple[str, ...]
    weights: npt.NDArray[np.float32]  # (dim, len(labels))
    dim: int
    temperature: float


@dataclass(frozen=True, slots=True)
class Model:
    version: str
    sentiment: Head
    category: Head


@dataclass(frozen=True, slots=True)
class Prediction:
    label: str
    probs: dict[str, float]
    confidence: float  # the winning label's calibrated probability
    phrases: list[tuple[str, float]]  # (customer's words, contribution toward the label)


_FUNCTION_TEXT = (
    "a an the and or but so to of in on at for with by from it its this that is was were are be been "
    "i we you he she they my our your their me us them do did does have has had all just"
)
_FUNCTION_WORDS = frozenset(_FUNCTION_TEXT.split())
_NEGATORS = frozenset(["not", "no", "never", "without", "안", "못", "nothing"])

_lock = threading.Lock()
_model: Model | None = None


def _head(arrays: Any, meta: dict[str, Any], name: str) -> Head:
    weights = np.asarray(arrays[name], dtype=np.float32)
    spec = meta[name]
    return Head(
        labels=tuple(spec["labels"]),
        weights=weights,
        dim=int(spec["dim"]),
        temperature=float(spec["temperature"]),
    )


def load_model() -> Model:
    """The packaged model (loaded on first use)."""
    global _model
    if _model is None:
        with _lock:
            if _model is None:
                base = files("voc_feedback.classification") / MODEL_DIR
                meta = json.loads((base / "model.json").read_text(encoding="utf-8"))
                with (base / "model.npz").open("rb") as handle, np.load(handle) as arrays:
                    sentiment = _head(arrays, meta, "sentiment")
                    category = _head(arrays, meta, "category")
                _model = Model(version=str(meta["version"]), sentiment=sentiment, category=category)
    return _model


def feature_codes(features: Features) -> npt.NDArray[np.int64]:
    """The features' full 32-bit hashes, computed once and masked per head."""
    return np.fromiter((hash_feature(n, 1 << 32) for n in features.names), dtype=np.int64)


def predict(
    head: Head, features: Features, *, codes: npt.NDArray[np.int64] | None = None, explain: int = 3
) -> Prediction:
    if codes is None:
        codes = feature_codes(features)
    idx = codes & (head.dim - 1)
    values = np.asarray(features.values, dtype=np.float32)
    rows = head.weights[idx] * values[:, None]  # (n_features, n_labels)
    logits = rows.sum(axis=0) / head.temperature
    logits -= logits.max()
    exp = np.exp(logits)
    probs = exp / exp.sum()
    best = int(probs.argmax())
    phrases: list[tuple[str, float]] = []
    if explain:
        # Contribution of each feature toward the winner relative to the average label.
        contrib = rows[:, best] - rows.mean(axis=1)
        words = features.words
        tokens = np.asarray(features.tokens, dtype=np.int64)
        mine = tokens >= 0
        per_token = np.bincount(tokens[mine], weights=contrib[mine], minlength=len(words))
        order = np.argsort(-per_token, kind="stable")[: 4 * explain + 4]
        for t, c in zip(order.tolist(), per_token[order].tolist(), strict=True):
            if len(phrases) == explain or c <= 0.05:
                break
            word = words[t]
            if (
                word in _FUNCTION_WORDS
                or word in _NEGATORS
                or not any(ch.isalnum() or ord(ch) > 0x2000 for ch in word)
            ):
                continue  # "the", "at", "." say nothing to a manager; "not" goes with its word
            if t > 0 and words[t - 1] in _NEGATORS:
                word = f"{words[t - 1]} {word}"  # "not friendly", "안 맛있어요"
            phrases.append((word, round(c, 2)))
    return Prediction(
        label=head.labels[best],
        probs={label: float(p) for label, p in zip(head.labels, probs.tolist(), strict=True)},
        confidence=float(probs[best]),
        phrases=phrases,
    )
