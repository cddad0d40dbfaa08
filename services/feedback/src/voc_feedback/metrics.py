"""The feedback service's own metrics (the platform's HTTP, gRPC, event and outbox metrics come
with every service): intake accepted by channel and refused by reason, and the classifier's
latency and confidence."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from voc_feedback.schemas import Channel
from voc_platform import metrics

ACCEPTED = metrics.counter(
    "voc_feedback_accepted_total", "Feedback items accepted (202, a new item), by channel.", ["channel"]
)
REPLAYED = metrics.counter(
    "voc_feedback_idempotent_replays_total",
    "Submissions answered with an earlier item (same Idempotency-Key).",
)
REFUSED = metrics.counter(
    "voc_feedback_refused_total", "Submissions refused, by reason (the answer's status).", ["reason"]
)
CLASSIFICATION_SECONDS = metrics.histogram(
    "voc_classification_duration_seconds",
    "Time to classify one item (language, sentiment, category, severity).",
    buckets=(0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1),
)
CLASSIFICATION_CONFIDENCE = metrics.histogram(
    "voc_classification_confidence",
    "The classifier's confidence in the sentiment it gave, 0..1 (when it reports one).",
    buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0),
)

#: The status of a refused `POST /v1/feedback` and the reason it is counted under.
REASONS = {
    400: "malformed",  # not JSON
    401: "unauthenticated",
    403: "forbidden",
    409: "idempotency_conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "rate_limited",
}
_accepted = {channel.value: ACCEPTED.labels(channel.value) for channel in Channel}
_refused = {status: REFUSED.labels(reason) for status, reason in REASONS.items()}
_other_refusal = REFUSED.labels("other")


def count_accepted(channel: str, *, replay: bool) -> None:
    if replay:
        REPLAYED.inc()
        return
    child = _accepted.get(channel)
    if child is not None:
        child.inc()


def count_refusal(status: int) -> None:
    """A hook on `POST /v1/feedback`'s answers (refusals happen in the body limit, the
    framework's validation and the domain alike, so they are counted by status)."""
    if 400 <= status < 500:
        _refused.get(status, _other_refusal).inc()


def observe_classification(seconds: float, result: Any) -> None:
    CLASSIFICATION_SECONDS.observe(seconds)
    confidence = getattr(result, "confidence", None)
    if isinstance(confidence, float):
        CLASSIFICATION_CONFIDENCE.observe(confidence)


def install(app: FastAPI) -> None:
    metrics.watch_status(app, "POST", "/v1/feedback", count_refusal)
