"""Corrections of the classifier reach the customer's story (#17 with #18): when staff correct a
feedback item's category or sentiment, feedback publishes `voc.feedback.corrected`; profile's
copy of the item takes the corrected labels, so the customer's recent contacts, signals (repeat
issue per category, complaint count, the heads-up's last negative contact) and the lists read
them, not the model's.

One `dbsync` hop per event: the event marked processed, the history row updated (only when the
correction is newer than the one on file: the latest correction wins whatever order they
arrive in) and the customer's signals recomputed from the history. A correction of an item
profile does not hold (anonymous feedback) changes nothing."""

from __future__ import annotations

import logging
import time
from functools import partial

from nats.aio.msg import Msg
from sqlalchemy import bindparam, select, update

from voc.events.v1 import events_pb2
from voc_platform import dbsync
from voc_platform.bus import ConsumerSpec
from voc_platform.db import Database
from voc_platform.dbsync import Prepared, Reader
from voc_platform.outbox import mark_processed_sync
from voc_profile import signals
from voc_profile.models import history_table, processed_table
from voc_profile.settings import Settings

log = logging.getLogger(__name__)
CONSUMER = "profile-corrections"
SUBJECT = "voc.feedback.corrected"

_h = history_table.c
_ON_FILE = Prepared(select(_h.customer_id, _h.corrected_at).where(_h.feedback_id == bindparam("feedback_id")))
_CORRECT = Prepared(update(history_table).where(_h.feedback_id == bindparam("b_feedback_id")))


def consumer(database: Database, settings: Settings) -> ConsumerSpec:
    return ConsumerSpec(durable=CONSUMER, subjects=[SUBJECT], handler=partial(handle, database, settings))


async def handle(database: Database, settings: Settings, msg: Msg) -> None:
    event = events_pb2.ClassificationCorrected.FromString(msg.data)
    event_id = (msg.headers or {}).get("Nats-Msg-Id", "") or f"corrected:{event.correction_id}"
    await dbsync.write(database, apply_correction, event, event_id, settings, time.time())


def apply_correction(
    reader: Reader, event: events_pb2.ClassificationCorrected, event_id: str, settings: Settings, now: float
) -> str | None:
    """The item's corrected labels in the history and its customer's signals recomputed; the
    customer's id, None when nothing changed (a redelivery, an older correction, an item that
    is not on file)."""
    if not mark_processed_sync(reader, processed_table, consumer=CONSUMER, event_id=event_id):
        return None
    if not event.category or not event.sentiment:
        log.warning("correction %s without labels ignored", event.correction_id)
        return None
    at = event.corrected_at_ms / 1000
    on_file = reader.first(_ON_FILE, {"feedback_id": event.feedback_id})
    if on_file is None or (on_file.corrected_at is not None and on_file.corrected_at > at):
        return None
    customer_id: str = on_file.customer_id
    reader.execute(
        _CORRECT,
        {
            "b_feedback_id": event.feedback_id,
            "category": event.category,
            "sentiment": event.sentiment,
            "corrected_at": at,
        },
    )
    # Rebuilt from the history (the stored summary holds the old labels).
    signals.refresh(reader, customer_id=customer_id, settings=settings, now=now)
    return customer_id
