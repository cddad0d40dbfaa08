"""Profile's consumer: each feedback item joins its customer's history (signals follow)."""

from __future__ import annotations

import logging

from nats.aio.msg import Msg

from voc.events.v1 import events_pb2
from voc_platform.bus import ConsumerSpec
from voc_platform.db import Database
from voc_platform.outbox import add_event, mark_processed
from voc_profile import service
from voc_profile.grpc_server import current_facts, identifiers_of
from voc_profile.identity import InvalidIdentifier
from voc_profile.models import outbox_table, processed_table
from voc_profile.settings import Settings

log = logging.getLogger(__name__)
CONSUMER = "profile-history"


def consumers(database: Database, settings: Settings) -> list[ConsumerSpec]:
    async def handle(msg: Msg) -> None:
        event = events_pb2.FeedbackReceived.FromString(msg.data)
        event_id = (msg.headers or {}).get("Nats-Msg-Id", event.facts.feedback_id)
        try:
            ids = identifiers_of(event.customer, settings.default_region)
        except InvalidIdentifier as exc:
            log.info("feedback %s: identifier ignored (%s)", event.facts.feedback_id, exc.field)
            ids = []
        async with database.transaction() as session:
            if not await mark_processed(session, processed_table, consumer=CONSUMER, event_id=event_id):
                return
            if not ids:
                return  # anonymous feedback stays anonymous
            res = await service.resolve(
                session, identifiers=ids, name=event.customer.name or None, create_if_missing=True
            )
            facts = current_facts(event.facts)
            assert res.customer_id is not None and facts is not None
            await service.record_feedback(
                session,
                customer_id=res.customer_id,
                facts={
                    **facts,
                    "store_id": event.facts.store_id,
                    "channel": event.facts.channel,
                    "severity": event.facts.severity,
                },
            )
            await add_event(
                session,
                outbox_table,
                subject="voc.profile.feedback_linked",
                message=events_pb2.FeedbackLinked(
                    feedback_id=event.facts.feedback_id, customer_id=res.customer_id
                ),
                event_id=f"linked:{event.facts.feedback_id}",
            )

    return [ConsumerSpec(durable=CONSUMER, subjects=["voc.feedback.received"], handler=handle)]
