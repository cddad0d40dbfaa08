"""Which bus event becomes which webhook type, and what its `data` carries: ids, facts and
masked personal data only (the receiver fetches details with its own credentials).

Adding a type is one line in `ROUTES`: the subject, the webhook type and the message class;
`data_of` makes the payload of any event message (times as ISO 8601, free text dropped,
identifiers masked). A subject not enqueued where notify writes it (`ENQUEUED_IN_PLACE`) is
heard by the `notify-webhooks` consumer (`enqueue.WebhookConsumer`).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from google.protobuf.message import Message

from voc.events.v1 import events_pb2

#: Every type an endpoint may subscribe to (or "*": all of them).
EVENT_TYPES: Final = (
    "feedback.received",
    "feedback.classified",
    "feedback.corrected",
    "alert.created",
    "alert.acknowledged",
    "alert.resolved",
    "alert.escalated",
    "follow_up.sent",
    "follow_up.delivered",
    "follow_up.undelivered",
    "follow_up.answered",
    "customer.erased",
)
#: What `POST /v1/admin/webhooks/{id}/test` sends (never subscribed to, always delivered).
TEST_TYPE: Final = "webhook.test"

# Free text and one-time links never leave; identifiers leave masked.
_DROPPED: Final = frozenset({"text", "note", "url", "token", "body", "explanation", "message"})
# Bookkeeping between our own services, not part of an event's public payload.
_INTERNAL: Final = frozenset({"follow_up_elsewhere"})


def _mask_phone(value: str) -> str:
    digits = "".join(ch for ch in value if ch.isdigit())
    return "***" + digits[-4:] if len(digits) >= 4 else "***"


def _mask_email(value: str) -> str:
    local, _, domain = value.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


def _mask_name(value: str) -> str:
    return value[:1] + "*" * max(1, len(value) - 1) if value else ""


def _mask_tail(value: str) -> str:
    return "***" + value[-4:] if len(value) > 4 else "***"


_MASKED: Final[Mapping[str, Callable[[str], str]]] = {
    "phone": _mask_phone,
    "email": _mask_email,
    "name": _mask_name,
    "loyalty_id": _mask_tail,
    "channel_user_id": _mask_tail,
}


def iso(ms: int) -> str:
    """Epoch milliseconds as ISO 8601 in UTC, to the millisecond."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def data_of(message: Message, *, drop: frozenset[str] = frozenset()) -> dict[str, Any]:
    """A message's fields as JSON: `*_at_ms` (and `at_ms`) as ISO 8601 `*_at`, nested messages as objects,
    unset optional fields, empty strings and zero times left out, free text dropped, identifiers masked."""
    out: dict[str, Any] = {}
    for fd in message.DESCRIPTOR.fields:
        name = fd.name
        if name in _DROPPED or name in _INTERNAL or name in drop:
            continue
        if fd.has_presence and not message.HasField(name):
            continue
        value = getattr(message, name)
        if fd.message_type is not None and not fd.is_repeated:
            value = data_of(value)
            if not value:
                continue
        elif fd.is_repeated:
            value = list(value)
        elif isinstance(value, str):
            if not value:
                continue
            if name in _MASKED:
                value = _MASKED[name](value)
        if (name == "at_ms" or name.endswith("_at_ms")) and isinstance(value, int):
            if value:  # 0: not given
                out[name[: -len("_ms")]] = iso(value)
            continue
        out[name] = value
    return out


def _event_ms(message: Message) -> int | None:
    for fd in message.DESCRIPTOR.fields:
        if fd.name.endswith("_at_ms"):
            value = getattr(message, fd.name)
            if value:
                return int(value)
    return None


def _received(message: Message) -> dict[str, Any]:
    assert isinstance(message, events_pb2.FeedbackReceived)
    facts = message.facts
    data = data_of(facts, drop=frozenset({"category", "severity", "sentiment", "score"}))
    data["received_at"] = iso(message.received_at_ms)
    customer = data_of(message.customer)
    if customer:
        data["customer"] = customer
    return data


def _classified(message: Message) -> dict[str, Any]:
    assert isinstance(message, events_pb2.FeedbackReceived)
    facts = message.facts
    classification: dict[str, Any] = {
        "language": facts.language,
        "sentiment": facts.sentiment,
        "score": facts.score,
        "category": facts.category,
        "severity": facts.severity,
        "model_version": message.model_version,
        "uncertain": message.uncertain,
    }
    if message.HasField("confidence"):
        classification["confidence"] = message.confidence
    if message.HasField("category_confidence"):
        classification["category_confidence"] = message.category_confidence
    return {"feedback_id": facts.feedback_id, "store_id": facts.store_id, "classification": classification}


#: The erased customer's feedback ids a `customer.erased` body names (the newest): ~40 KB, a body
#: any receiver takes; `feedback_ids_truncated` says there were more (find those by `customer_id`).
ERASED_IDS_SENT: Final = 1000


def _erased(message: Message) -> dict[str, Any]:
    data = data_of(message)
    ids = data.get("feedback_ids") or []
    if len(ids) > ERASED_IDS_SENT:
        data["feedback_ids"], data["feedback_ids_truncated"] = ids[:ERASED_IDS_SENT], True
    return data


def _outcome(message: Message) -> str:
    assert isinstance(message, events_pb2.FollowUpSent)
    return message.outcome


@dataclass(frozen=True, slots=True)
class Route:
    """A bus event heard as a webhook `type`; `data` makes its payload (default: `data_of`)."""

    type: str
    message: builtins.type[Message]
    data: Callable[[Message], dict[str, Any]] = field(default=data_of)
    #: Whether this event makes the type at all (default: every one).
    applies: Callable[[Message], bool] = field(default=lambda _message: True)

    def body(self, message: Message, *, now: float) -> dict[str, Any]:
        """The Standard Webhooks body: {type, timestamp (when it happened), data}."""
        ms = _event_ms(message)
        return {"type": self.type, "timestamp": iso(ms or int(now * 1000)), "data": self.data(message)}


#: subject -> the webhook types it makes. One line per type.
ROUTES: Final[dict[str, tuple[Route, ...]]] = {
    "voc.feedback.received": (
        Route("feedback.received", events_pb2.FeedbackReceived, _received),
        Route("feedback.classified", events_pb2.FeedbackReceived, _classified),
    ),
    # A person corrected the labels (#17): data carries the effective and previous labels.
    "voc.feedback.corrected": (Route("feedback.corrected", events_pb2.ClassificationCorrected),),
    "voc.alert.created": (Route("alert.created", events_pb2.AlertCreated),),
    "voc.alert.acknowledged": (Route("alert.acknowledged", events_pb2.AlertAcknowledged),),
    "voc.alert.resolved": (Route("alert.resolved", events_pb2.AlertResolved),),
    "voc.alert.escalated": (Route("alert.escalated", events_pb2.AlertEscalated),),
    # Each attempt or decision is an event; only a message actually sent is `follow_up.sent`, and
    # what a bounce or a gateway reported of one `follow_up.delivered` / `.undelivered` (a CRM
    # hears that the link never reached the customer, and the server's codes, masked).
    "voc.notify.follow_up_sent": (
        Route("follow_up.sent", events_pb2.FollowUpSent, applies=lambda m: _outcome(m) == "sent"),
        Route("follow_up.delivered", events_pb2.FollowUpSent, applies=lambda m: _outcome(m) == "delivered"),
        Route(
            "follow_up.undelivered", events_pb2.FollowUpSent, applies=lambda m: _outcome(m) == "undelivered"
        ),
    ),
    "voc.feedback.follow_up_answered": (Route("follow_up.answered", events_pb2.FollowUpAnswered),),
    "voc.profile.customer_erased": (Route("customer.erased", events_pb2.CustomerErased, _erased),),
}

#: Subjects whose deliveries are enqueued in the transaction that writes the event (notify's own
#: alert events: `publishing`; voc.feedback.received: the alert consumer's hop;
#: voc.feedback.corrected: the corrections consumer's). Every other
#: subject of `ROUTES` is heard by the webhook consumer.
ENQUEUED_IN_PLACE: Final = frozenset(
    {
        "voc.feedback.received",
        "voc.feedback.corrected",  # the corrections consumer's transaction (`corrections`)
        "voc.alert.created",
        "voc.alert.acknowledged",
        "voc.alert.resolved",
        "voc.alert.escalated",
        "voc.notify.follow_up_sent",
    }
)


def consumed_subjects() -> list[str]:
    return sorted(s for s in ROUTES if s not in ENQUEUED_IN_PLACE)
