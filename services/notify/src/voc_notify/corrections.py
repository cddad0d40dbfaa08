"""Corrections of the classifier in the staff app (#17). Feedback owns the rule (who may correct
which item, which labels exist): the app's correction is relayed to feedback over gRPC with the
staff member's own token (`FeedbackCorrections`), and the alert learns the corrected labels like
everything else notify hears of feedback, from the bus: `voc.feedback.corrected` updates the
alert's `classification` (and a feedback alert's category), enqueues the `feedback.corrected`
webhooks and tells open apps (`CorrectionConsumer`)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import grpc
from grpc import aio
from nats.aio.msg import Msg
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from voc.events.v1 import events_pb2
from voc.feedback.v1 import feedback_pb2, feedback_pb2_grpc
from voc_notify import views
from voc_notify.models import Alert, PatternItem, processed_table
from voc_notify.settings import Settings
from voc_notify.stream import AlertBroker
from voc_notify.webhooks.enqueue import enqueue_sync, wake_dispatchers
from voc_platform.bus import ConsumerSpec
from voc_platform.db import Database
from voc_platform.dbsync import Reader
from voc_platform.errors import DomainError, Forbidden, Invalid, NotFound, Unauthenticated, Unavailable
from voc_platform.grpc import client_channel
from voc_platform.outbox import mark_processed

log = logging.getLogger(__name__)
CONSUMER = "notify-corrections"
SUBJECT = "voc.feedback.corrected"

# Feedback's refusal, as the problem the app gets (feedback's own words in the detail).
_REFUSALS: dict[grpc.StatusCode, type[DomainError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: Invalid,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.PERMISSION_DENIED: Forbidden,
}


@dataclass(frozen=True, slots=True)
class Labels:
    """A correction as the app asks for it: None leaves that label as it is."""

    sentiment: str | None
    category: str | None


class FeedbackCorrections:
    """One long-lived channel to feedback, created on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._channel: aio.Channel | None = None
        self._stub: feedback_pb2_grpc.FeedbackServiceStub | None = None

    def _feedback(self) -> feedback_pb2_grpc.FeedbackServiceStub:
        if self._stub is None:
            s = self.settings
            self._channel = client_channel(
                s.feedback_grpc_target,
                token=s.internal_token,
                timeout=s.grpc_timeout_seconds,
                tls=s.grpc_tls(),
            )
            self._stub = feedback_pb2_grpc.FeedbackServiceStub(self._channel)
        return self._stub

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()

    async def correct(self, *, feedback_id: str, access_token: str, labels: Labels) -> dict[str, Any]:
        """Feedback's answer to the correction, as the app shows it; feedback's refusal as the
        same problem (422 unknown label, 404 outside the caller's stores, 403, 401), 503 when
        feedback cannot be asked."""
        request = feedback_pb2.CorrectClassificationRequest(
            feedback_id=feedback_id,
            access_token=access_token,
            sentiment=labels.sentiment or "",
            category=labels.category or "",
        )
        try:
            reply = await self._feedback().CorrectClassification(request)
        except aio.AioRpcError as exc:
            code, detail = exc.code(), exc.details() or "refused"
            if code == grpc.StatusCode.UNAUTHENTICATED:
                raise Unauthenticated(detail) from exc
            refusal = _REFUSALS.get(code)
            if refusal is not None:
                raise refusal(detail) from exc
            log.warning("feedback unavailable for a correction (%s)", code.name)
            raise Unavailable("The correction could not reach the feedback service; try again.") from exc
        return {
            "feedback_id": reply.feedback_id,
            "sentiment": reply.sentiment,
            "category": reply.category,
            "correction": {
                "by": reply.corrected_by,
                "at": reply.corrected_at_ms / 1000,
                "previous_sentiment": reply.previous_sentiment,
                "previous_category": reply.previous_category,
                "model_version": reply.model_version or None,
            },
        }


def corrected_classification(alert: Alert, event: events_pb2.ClassificationCorrected) -> dict[str, Any]:
    """The alert's classification with the corrected labels and who corrected them, when."""
    return {
        **views.classification(alert),
        "sentiment": event.sentiment,
        "category": event.category,
        "corrected": {
            "by": event.corrected_by,
            "at": event.corrected_at_ms / 1000,
            "previous_sentiment": event.previous_sentiment,
            "previous_category": event.previous_category,
        },
    }


async def apply(session: AsyncSession, event: events_pb2.ClassificationCorrected) -> list[Alert]:
    """The feedback's alerts take the corrected labels (a correction older than the one shown
    changes nothing: the latest wins), and so does its place in the pattern windows; the alerts
    changed."""
    changed = []
    for alert in await session.scalars(select(Alert).where(Alert.feedback_id == event.feedback_id)):
        shown = (alert.classification or {}).get("corrected") or {}
        if float(shown.get("at") or 0) > event.corrected_at_ms / 1000:
            continue
        alert.classification = corrected_classification(alert, event)
        alert.category = event.category
        changed.append(alert)
    await correct_pattern_item(session, event)
    return changed


async def correct_pattern_item(session: AsyncSession, event: events_pb2.ClassificationCorrected) -> None:
    """The item counts for pattern alerts under its corrected category (#18 with #17): a negative
    item moves to its corrected category's window, an item corrected to neutral or positive
    leaves the windows (pattern alerts count negative items only). An item that was not negative
    when it arrived is not added by a correction (see docs/NOTIFY.md)."""
    item = await session.get(PatternItem, event.feedback_id)
    at = event.corrected_at_ms / 1000
    if item is None or (item.corrected_at is not None and item.corrected_at > at):
        return
    if event.sentiment != "negative":
        await session.delete(item)
    else:
        item.category, item.corrected_at = event.category, at


class CorrectionConsumer:
    def __init__(self, database: Database, broker: AlertBroker) -> None:
        self.database, self.broker = database, broker

    async def handle(self, msg: Msg) -> None:
        event = events_pb2.ClassificationCorrected.FromString(msg.data)
        event_id = (msg.headers or {}).get("Nats-Msg-Id", "") or f"corrected:{event.correction_id}"
        await self.record(event, event_id)

    async def record(self, event: events_pb2.ClassificationCorrected, event_id: str) -> None:
        """The alerts updated, the webhooks enqueued and the event marked processed in one
        transaction (a redelivery changes nothing); then open apps are told."""
        async with self.database.transaction() as session:
            if not await mark_processed(session, processed_table, consumer=CONSUMER, event_id=event_id):
                return
            changed = await apply(session, event)
            webhooks = await session.run_sync(
                lambda s: enqueue_sync(Reader.of(s.connection()), [(SUBJECT, event)], now=time.time())
            )
            summaries = [(alert, views.alert_summary(alert)) for alert in changed]
        if webhooks:
            wake_dispatchers()
        for alert, summary in summaries:
            self.broker.announce("alert.updated", alert, summary)


def consumers(database: Database, broker: AlertBroker) -> list[ConsumerSpec]:
    consumer = CorrectionConsumer(database, broker)
    return [ConsumerSpec(durable=CONSUMER, subjects=[SUBJECT], handler=consumer.handle)]
