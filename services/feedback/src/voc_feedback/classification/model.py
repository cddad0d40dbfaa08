"""The learned classifier at inference: two multinomial logistic regressions over hashed features.

``sentiment``: negative / neutral / positive; ``category``: the shared taxonomy, whose hashed-LR
log-probabilities are combined with the lexicon's category evidence by a small stacked logistic
layer (``category_stack``, trained on out-of-fold predictions; see ``stack_inputs``). Weights live in
``model/model.npz`` (written by ``make train``, committed) with ``model/model.json`` (version,
hash sizes, labels, calibration temperatures). Loaded once per process, read-only afterwards,
so ``predict`` is thread-safe. numpy only; nothing touches the network.

A replica may serve another version than the packaged one: the model registry
(``voc_feedback.model_registry``) reads a promoted *bundle* (``read_bundle``: a zip of the same
``model.npz`` and ``model.json``) and swaps it in with ``serve``; ``classify`` reads the served
model once per item, so an item is classified wholly by one version.
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
import zipfile
import zlib
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import numpy as np
import numpy.typing as npt

from voc_feedback.classification.features import Features, hash_feature
from voc_platform.taxonomy import CATEGORIES

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
    category_stack: npt.NDArray[np.float32]  # (stack_width(n_categories), n_categories)
    stack_temperature: float


@dataclass(frozen=True, slots=True)
class Prediction:
    label: str
    probs: dict[str, float]
    confidence: float  # the winning label's calibrated probability
    logits: npt.NDArray[np.float32]  # raw scores, before the temperature (the stacked layer's input)
    phrases: list[tuple[str, float]]  # (customer's words, contribution toward the label)


_FUNCTION_TEXT = (
    "a an the and or but so to of in on at for with by from it its this that is was were are be been "
    "i we you he she they my our your their me us them do did does have has had all just"
)
_FUNCTION_WORDS = frozenset(_FUNCTION_TEXT.split())
_NEGATORS = frozenset(["not", "no", "never", "without", "안", "못", "nothing"])

_lock = threading.Lock()
_model: Model | None = None  # the packaged model, once loaded
_served: Model | None = None  # a promoted version from the registry; None: the packaged one
BUNDLE_MAX_BYTES = 32 * 1024 * 1024  # a bundle's uncompressed entries (the packaged model: ~7 MB)


class BundleInvalid(ValueError):
    """A model bundle that cannot be served: what is wrong with it, in words."""


def bundle_entry(archive: zipfile.ZipFile, name: str) -> bytes:
    """One entry's bytes, or BundleInvalid naming it: zipfile raises NotImplementedError for a
    compression method it lacks, RuntimeError for an encrypted entry, BadZipFile or zlib.error
    for damaged data; none of them is the uploader's server error."""
    try:
        return archive.read(name)
    except (NotImplementedError, RuntimeError, zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
        reason = f"{name} in the bundle cannot be read: {type(exc).__name__}: {exc}"
        raise BundleInvalid(reason[:300]) from exc


def bundle_json(name: str, raw: bytes) -> Any:
    """An entry's JSON, or BundleInvalid naming it (RecursionError: nested too deep to parse)."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        reason = f"{name} in the bundle is not readable JSON: {type(exc).__name__}: {exc}"
        raise BundleInvalid(reason[:300]) from exc


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
    """The model this process classifies with: the promoted version it serves, else the
    packaged one. Read once per item (one reference), so a swap never splits an item."""
    served = _served
    return served if served is not None else packaged_model()


def packaged_model() -> Model:
    """The model committed in the package (loaded on first use): the built-in default."""
    global _model
    if _model is None:
        with _lock:
            if _model is None:
                base = files("voc_feedback.classification") / MODEL_DIR
                meta = json.loads((base / "model.json").read_text(encoding="utf-8"))
                _model = _from_parts((base / "model.npz").read_bytes(), meta)
    return _model


def serve(model: Model | None) -> None:
    """Classify with `model` from now on (None: the packaged model again)."""
    global _served
    _served = model


def _from_parts(npz: bytes, meta: dict[str, Any]) -> Model:
    with np.load(io.BytesIO(npz), allow_pickle=False) as arrays:
        sentiment = _head(arrays, meta, "sentiment")
        category = _head(arrays, meta, "category")
        stack = np.asarray(arrays["category_stack"], dtype=np.float32)
    return Model(
        version=str(meta["version"]),
        sentiment=sentiment,
        category=category,
        category_stack=stack,
        stack_temperature=float(meta["category_stack"]["temperature"]),
    )


def weights_digest(sentiment: npt.NDArray[Any], category: npt.NDArray[Any], stack: npt.NDArray[Any]) -> str:
    """The version's suffix: a hash of the three weight arrays as stored (float16, float16, float32)."""
    raw = sentiment.tobytes() + category.tobytes() + stack.tobytes()
    return hashlib.sha256(raw).hexdigest()[:10]


def write_bundle(npz: bytes, meta: dict[str, Any], extra: dict[str, bytes] | None = None) -> bytes:
    """One blob for the registry: a zip holding `model.npz` and `model.json`, as `make train`
    writes them (and `extra` entries: the gate's `gate.json`)."""
    buffer = io.BytesIO()
    entries = {"model.npz": npz, "model.json": json.dumps(meta, ensure_ascii=False).encode(), **(extra or {})}
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            archive.writestr(info, data)  # stored: the npz is deflated already
    return buffer.getvalue()


def read_bundle(blob: bytes) -> tuple[Model, dict[str, Any]]:
    """The model in a bundle and its metadata, checked: both entries, the labels and dimensions
    this code reads, finite weights of the right shapes, and a version that is the weights'
    own hash. Raises BundleInvalid (never anything else) for a blob that fails any of them."""
    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as archive:
            sizes = {i.filename: i.file_size for i in archive.infolist()}
            if not {"model.npz", "model.json"} <= sizes.keys():
                raise BundleInvalid("the bundle needs model.npz and model.json")
            if sum(sizes.values()) > BUNDLE_MAX_BYTES:
                raise BundleInvalid(f"the bundle unpacks to more than {BUNDLE_MAX_BYTES} bytes")
            npz, meta_raw = bundle_entry(archive, "model.npz"), bundle_entry(archive, "model.json")
        meta = bundle_json("model.json", meta_raw)
        if not isinstance(meta, dict):
            raise BundleInvalid("model.json is not an object")
        with np.load(io.BytesIO(npz), allow_pickle=False) as arrays:
            stored = {k: np.asarray(arrays[k]) for k in ("sentiment", "category", "category_stack")}
        model = _from_parts(npz, meta)
    except BundleInvalid:
        raise
    # OverflowError: float() of a huge integer in model.json (a temperature of 10**400).
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError, OverflowError, OSError, EOFError) as exc:
        raise BundleInvalid(f"not a readable model bundle: {type(exc).__name__}: {exc}"[:300]) from exc
    _check(model, meta, stored)
    return model, meta


def _check(model: Model, meta: dict[str, Any], stored: dict[str, npt.NDArray[Any]]) -> None:
    if model.sentiment.labels != SENTIMENT_LABELS:
        raise BundleInvalid(f"sentiment labels must be {list(SENTIMENT_LABELS)}")
    if model.category.labels != tuple(CATEGORIES):
        raise BundleInvalid("category labels must be the taxonomy's, in its order")
    for head in (model.sentiment, model.category):
        if head.dim < 2 or head.dim & (head.dim - 1) or head.dim > 1 << 20:
            raise BundleInvalid("a head's dim must be a power of two up to 2^20")
        if head.weights.shape != (head.dim, len(head.labels)):
            raise BundleInvalid(
                f"weights of shape {head.weights.shape}, expected ({head.dim}, {len(head.labels)})"
            )
        if not 0 < head.temperature < 100:
            raise BundleInvalid("a temperature must be in (0, 100)")
    n = len(model.category.labels)
    if model.category_stack.shape != (stack_width(n), n) or not 0 < model.stack_temperature < 100:
        raise BundleInvalid("the category stack has the wrong shape or temperature")
    if not all(
        np.isfinite(a).all() for a in (model.sentiment.weights, model.category.weights, model.category_stack)
    ):
        raise BundleInvalid("the weights hold NaN or infinity")
    digest = weights_digest(stored["sentiment"], stored["category"], stored["category_stack"])
    if not model.version.endswith(f"-{digest}") or len(model.version) > 64:
        raise BundleInvalid(f"version {model.version[:64]!r} is not the weights' hash (…-{digest})")


def stack_width(n_labels: int) -> int:
    return 3 * n_labels + 3


def stack_inputs(
    logits: npt.NDArray[np.float32],
    evidence: dict[str, float],
    choice: str,
    lang: str,
    labels: tuple[str, ...] | list[str],
) -> npt.NDArray[np.float32]:
    """The stacked category layer's input for one text, identical in training and inference:
    the hashed model's log-probabilities (raw logits, no temperature), the lexicon's category
    evidence (``analyse_text`` strengths, capped at 2 and halved), a one-hot of the lexicon's own
    category choice (``choose_category`` with the lexicon's sentiment), language and bias."""
    n = len(labels)
    out = np.zeros(stack_width(n), np.float32)
    z = logits.astype(np.float32) - float(logits.max())
    out[:n] = z - np.log(np.exp(z).sum())
    for i, label in enumerate(labels):
        if label in evidence:
            out[n + i] = min(evidence[label], 2.0) / 2.0
        if label == choice:
            out[2 * n + i] = 1.0
    out[3 * n] = lang == "ko"
    out[3 * n + 1] = lang == "en"
    out[3 * n + 2] = 1.0
    return out


def stacked_category(model: Model, inputs: npt.NDArray[np.float32]) -> dict[str, float]:
    """Calibrated category probabilities from the stacked layer."""
    z = (inputs @ model.category_stack) / model.stack_temperature
    z -= z.max()
    e = np.exp(z)
    p = e / e.sum()
    return {label: float(v) for label, v in zip(model.category.labels, p.tolist(), strict=True)}


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
    raw = rows.sum(axis=0)
    logits = raw / head.temperature
    logits -= logits.max()
    exp = np.exp(logits)
    probs = exp / exp.sum()
    best = int(probs.argmax())
    phrases = _phrases(rows, best, features, explain) if explain else []
    return Prediction(
        label=head.labels[best],
        probs={label: float(p) for label, p in zip(head.labels, probs.tolist(), strict=True)},
        confidence=float(probs[best]),
        logits=raw,
        phrases=phrases,
    )


def explain_label(
    head: Head,
    features: Features,
    label: str,
    *,
    codes: npt.NDArray[np.int64] | None = None,
    explain: int = 3,
) -> list[tuple[str, float]]:
    """The customer's words that pushed hardest toward `label` (for when a later step, such as the
    stacked category layer, picks another label than the head's own winner)."""
    if codes is None:
        codes = feature_codes(features)
    values = np.asarray(features.values, dtype=np.float32)
    rows = head.weights[codes & (head.dim - 1)] * values[:, None]
    return _phrases(rows, head.labels.index(label), features, explain)


def _phrases(
    rows: npt.NDArray[np.float32], best: int, features: Features, explain: int
) -> list[tuple[str, float]]:
    """Per token, the summed contribution of its features toward label `best` relative to the
    average label; the strongest `explain` words a manager can read."""
    phrases: list[tuple[str, float]] = []
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
    return phrases
