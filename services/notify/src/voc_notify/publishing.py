"""Notify's own events leave through here: the outbox row for the bus and, in the same
transaction, the webhook deliveries they make (`webhooks.enqueue`), so an outside system hears
exactly what was committed, once."""

from __future__ import annotations

import time
from collections.abc import Sequence

from google.protobuf.message import Message
from sqlalchemy.ext.asyncio import AsyncSession

from voc_notify.models import outbox_table
from voc_notify.webhooks.enqueue import enqueue_sync, wake_dispatchers
from voc_platform.db import on_commit
from voc_platform.dbsync import Reader
from voc_platform.outbox import add_events, insert_outbox_rows, outbox_rows

Event = tuple[str, Message, str | None]  # subject, message, event id (None: a new one)


def publish_sync(reader: Reader, events: Sequence[Event], *, now: float) -> int:
    """Inside a `dbsync` hop; returns the webhook deliveries enqueued (the caller's worker polls
    for them; off the hot path)."""
    insert_outbox_rows(reader, outbox_table, outbox_rows(events))
    return enqueue_sync(reader, [(subject, message) for subject, message, _ in events], now=now)


async def publish(session: AsyncSession, events: Sequence[Event], *, now: float | None = None) -> None:
    """In a session's transaction; the relay and the webhook dispatcher wake on commit."""
    await add_events(session, outbox_table, events)
    at = time.time() if now is None else now
    enqueued = await session.run_sync(
        lambda s: enqueue_sync(Reader.of(s.connection()), [(sub, msg) for sub, msg, _ in events], now=at)
    )
    if enqueued:
        on_commit(session, wake_dispatchers)
