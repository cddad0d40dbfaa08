"""The protobuf messages feedback publishes and serves, built from its rows (proto/ is the contract)."""

from __future__ import annotations

from voc.common.v1 import common_pb2
from voc.events.v1 import events_pb2
from voc_feedback.models import Feedback

SUBJECT_RECEIVED = "voc.feedback.received"
SUBJECT_FOLLOW_UP_REQUESTED = "voc.feedback.follow_up_requested"
SUBJECT_FOLLOW_UP_ANSWERED = "voc.feedback.follow_up_answered"
SUBJECT_CORRECTED = "voc.feedback.corrected"


def feedback_facts(row: Feedback) -> common_pb2.FeedbackFacts:
    """What other services need to know of an item (its classification, ratings, store, time)."""
    facts = common_pb2.FeedbackFacts(
        feedback_id=row.id,
        store_id=row.store_id,
        channel=row.channel,
        touchpoint=row.touchpoint or "",
        language=row.language,
        category=row.category,
        severity=row.severity,
        sentiment=row.sentiment,
        score=row.score,
        ratings=common_pb2.Ratings(csat=row.csat, nps=row.nps, ces=row.ces),
        occurred_at_ms=int(row.occurred_at * 1000),
    )
    if row.revisit_intent is not None:
        facts.revisit_intent = row.revisit_intent
    return facts


def feedback_received(row: Feedback) -> events_pb2.FeedbackReceived:
    """`voc.feedback.received`: the facts, the text, the identifiers as submitted and how sure
    the classifier was (`uncertain` as `GET /v1/feedback/{id}` serves it)."""
    customer = row.customer or {}
    return events_pb2.FeedbackReceived(
        facts=feedback_facts(row),
        text=row.text or "",
        customer=common_pb2.CustomerIdentifiers(
            loyalty_id=customer.get("loyalty_id", ""),
            phone=customer.get("phone", ""),
            email=customer.get("email", ""),
            name=customer.get("name", ""),
            channel_user_id=customer.get("channel_user_id", ""),
            channel=row.channel,
        ),
        received_at_ms=int(row.received_at * 1000),
        explanation=list(row.explanation),
        confidence=row.confidence,  # None: unset (an item classified without one)
        category_confidence=row.category_confidence,
        model_version=row.model_version or "",
        uncertain=row.uncertain,
        reopens_id=row.reopens_id or "",
    )
