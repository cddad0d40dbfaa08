"""Events become deliveries: one row per subscribed active endpoint, written in the caller's
transaction (notify's own alert events with the state change that made them, the feedback
event with its alert, other services' events by the `notify-webhooks` consumer with its
processed-event mark), so an event is enqueued once, and only if what it says was committed."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence

import orjson
from google.protobuf.message import Message
from nats.aio.msg import Msg
from sqlalchemy import and_, bindparam, insert, or_, select

from voc_notify.models import WebhookDelivery, WebhookEndpoint, processed_table
from voc_notify.webhooks.catalog import ROUTES, consumed_subjects
from voc_platform import dbsync
from voc_platform.bus import ConsumerSpec
from voc_platform.db import Database
from voc_platform.dbsync import Prepared, Reader
from voc_platform.ids import uuid7
from voc_platform.loop_lag import YieldGate
from voc_platform.outbox import mark_processed_sync

log = logging.getLogger(__name__)
CONSUMER = "notify-webhooks"

#: How long an endpoint's events are still recorded after it was disabled (as `failed`, "not
#: sent: the endpoint is disabled"), so that `POST /v1/admin/webhooks/{id}/recover` can send
#: them once a fixed receiver is enabled again. An endpoint left disabled longer stops growing.
KEEP_WHILE_DISABLED_SECONDS = 7 * 86400.0
NOT_SENT_DISABLED = "not sent: the endpoint is disabled (enable it, then recover from this time)"

_ACTIVE_ENDPOINTS = select(
    WebhookEndpoint.id, WebhookEndpoint.events, WebhookEndpoint.format, WebhookEndpoint.status
).where(
    or_(
        WebhookEndpoint.status == "active",
        and_(WebhookEndpoint.status == "disabled", WebhookEndpoint.disabled_at >= bindparam("kept_since")),
    )
)
# On PostgreSQL the endpoints read are KEY SHARE locked until the caller commits: an endpoint
# deleted meanwhile waits for this transaction instead of failing its delivery rows' foreign key
# (the dispatcher's updates of an endpoint do not conflict with it). SQLite writers are serialized.
_ACTIVE = Prepared(
    lambda dialect: (
        _ACTIVE_ENDPOINTS.with_for_update(key_share=True) if dialect == "postgresql" else _ACTIVE_ENDPOINTS
    )
)
_INSERT = Prepared(insert(WebhookDelivery))

_wakers: list[Callable[[], None]] = []
_markers: list[Callable[[Iterable[str]], None]] = []


def on_enqueued(wake: Callable[[], None], mark: Callable[[Iterable[str]], None]) -> None:
    """The dispatcher's hooks: `mark(endpoint_ids)` as deliveries are written for those endpoints
    (in the transaction: a write that then rolls back leaves a mark whose read finds nothing),
    `wake()` after an enqueue this process committed, where the caller wants it sent soon."""
    _wakers.append(wake)
    _markers.append(mark)


def forget(wake: Callable[[], None], mark: Callable[[Iterable[str]], None]) -> None:
    """Undo `on_enqueued` (a dispatcher closing); forgetting twice is harmless."""
    with contextlib.suppress(ValueError):
        _wakers.remove(wake)
    with contextlib.suppress(ValueError):
        _markers.remove(mark)


def wake_dispatchers() -> None:
    for wake in _wakers:
        wake()


def requeued(endpoint_id: str) -> None:
    """Deliveries of this endpoint were made due again (committed): this process's dispatchers
    read it on their next pass (others on their next sweep)."""
    for mark in _markers:
        mark([endpoint_id])
    wake_dispatchers()


def message_id() -> str:
    """A `webhook-id`: `msg_` and a time-ordered id."""
    return "msg_" + uuid7().replace("-", "")


def enqueue_sync(reader: Reader, events: Sequence[tuple[str, Message]], *, now: float) -> int:
    """A pending delivery of each webhook type these (subject, message) events make, for each
    active endpoint subscribed to it (a failed one, kept to recover, for an endpoint disabled
    within `KEEP_WHILE_DISABLED_SECONDS`); returns how many are to be sent. Events of no webhook
    type cost nothing, and with no endpoint, one indexed read."""
    routed = [
        (route, message)
        for subject, message in events
        for route in ROUTES.get(subject, ())
        if route.applies(message)
    ]
    if not routed:
        return 0
    endpoints = reader.all(_ACTIVE, {"kept_since": now - KEEP_WHILE_DISABLED_SECONDS})
    if not endpoints:
        return 0
    disabled = {e.id for e in endpoints if e.status != "active"}
    chat = {e.id for e in endpoints if e.format != "standard"}
    rows: list[dict[str, object]] = []
    # A step of an alert that answers several feedback items is one event per item (each case
    # hears it); a chat channel hears it once.
    told: set[tuple[str, str, str]] = set()
    for route, message in routed:
        wanted = [e.id for e in endpoints if "*" in e.events or route.type in e.events]
        alert_id = getattr(message, "alert_id", "")
        if chat and alert_id and route.type != "alert.created":
            wanted = [e for e in wanted if e not in chat or (e, route.type, alert_id) not in told]
            told.update((e, route.type, alert_id) for e in wanted if e in chat)
        if not wanted:
            continue
        body = orjson.dumps(route.body(message, now=now)).decode()
        rows.extend(
            {
                "id": message_id(),
                "endpoint_id": endpoint_id,
                "event_type": route.type,
                "body": body,
                "status": "failed" if endpoint_id in disabled else "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
                "last_error": NOT_SENT_DISABLED if endpoint_id in disabled else None,
            }
            for endpoint_id in wanted
        )
    if rows:
        _INSERT.execute_many(reader, rows)
        marked = {str(row["endpoint_id"]) for row in rows} - disabled
        if marked:
            for mark in _markers:
                mark(marked)
    return sum(1 for row in rows if row["status"] == "pending")


class WebhookConsumer:
    """Other services' events of a webhook type (`catalog.consumed_subjects`): the deliveries and
    the processed-event mark in one transaction. Pages first: while notify's loop runs late, a
    message waits at the gate (JetStream keeps the rest; the ack wait is far longer)."""

    def __init__(self, database: Database, gate: YieldGate | None = None) -> None:
        self.database = database
        self.gate = gate or YieldGate(None)

    async def handle(self, msg: Msg) -> None:
        routes = ROUTES.get(msg.subject, ())
        if not routes:
            return
        await self.gate.wait()
        message = routes[0].message.FromString(msg.data)
        event_id = (msg.headers or {}).get("Nats-Msg-Id") or f"{msg.subject}:{msg.metadata.sequence.stream}"
        count = await dbsync.write_behind(self.database, self._write, msg.subject, message, event_id)
        if count:
            wake_dispatchers()

    @staticmethod
    def _write(reader: Reader, subject: str, message: Message, event_id: str) -> int:
        if not mark_processed_sync(reader, processed_table, consumer=CONSUMER, event_id=event_id):
            return 0
        return enqueue_sync(reader, [(subject, message)], now=time.time())


def consumers(database: Database, gate: YieldGate | None = None) -> list[ConsumerSpec]:
    consumer = WebhookConsumer(database, gate)
    return [ConsumerSpec(durable=CONSUMER, subjects=consumed_subjects(), handler=consumer.handle)]
