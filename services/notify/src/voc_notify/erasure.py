"""Erasure (`voc.profile.customer_erased`): notify's copies of an erased customer are redacted.

An alert keeps what it was made from: the masked customer context (with the recent contacts'
excerpts and the household), the feedback's text and the texts of repeats folded into it, a
lock-screen body quoting the text, and the plan whose script was rendered with the customer's
name. For every alert of the customer these become the context of nobody (`{"known": false,
"erased": true}`), empty texts, a body composed again without the customer or the text, a plan
without its scripts and without the name in its title and steps (`alerts.customer_name`), and a
heads-up without who arrived and why, and an empty resolution note; the alert itself (what
happened, who handled it, when) stays. A
household member named in another customer's alert is dropped from that alert's household. The
customer's pending follow-up messages are not sent, and drop the contact they copied. The
customer's items in the pattern windows and in pattern alerts' lists lose their excerpts.

The customer's copies are found by the customer id they carry and by the feedback ids the event
names: an alert made while profile could not be asked, or a follow-up asked for before profile
tied the item to the customer, carries no customer id.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from nats.aio.msg import Msg
from sqlalchemy import ColumnElement, String, and_, cast, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from voc.events.v1 import events_pb2
from voc_notify import follow_ups, patterns, suppressions, tombstones
from voc_notify.masking import pattern_text
from voc_notify.models import Alert, PatternItem, Store, processed_table
from voc_notify.redaction import ERASED_CONTEXT, EXPIRED_CONTEXT, redact_alert
from voc_platform.bus import ConsumerSpec
from voc_platform.db import Database
from voc_platform.dbsync import Reader
from voc_platform.outbox import mark_processed

log = logging.getLogger(__name__)
CONSUMER = "notify-erasure"
SUBJECT = "voc.profile.customer_erased"


def consumers(database: Database) -> list[ConsumerSpec]:
    async def handle(msg: Msg) -> None:
        erased = events_pb2.CustomerErased.FromString(msg.data)
        event_id = (msg.headers or {}).get("Nats-Msg-Id", "") or f"erased:{erased.customer_id}"
        feedback_ids = list(erased.feedback_ids)
        # First the names, committed on their own (holding the erasure lock alone: writers of
        # copies under way finish first), then the copies: each written before the names were
        # is found now, each written after finds the names (`tombstones`). Remembering is
        # idempotent, so a redelivery after a crash between the two does both again.
        async with database.transaction() as session:
            await tombstones.remember(
                session, customer_id=erased.customer_id, feedback_ids=feedback_ids, now=time.time()
            )
        async with database.transaction() as session:
            if await mark_processed(session, processed_table, consumer=CONSUMER, event_id=event_id):
                count = await redact_customer(
                    session, customer_id=erased.customer_id, feedback_ids=feedback_ids
                )
                # The suppressions first: they are found by the address keys on the messages too.
                lifted = await suppressions.forget_customer(
                    session, customer_id=erased.customer_id, feedback_ids=feedback_ids
                )
                dropped = await follow_ups.forget_customer(
                    session, customer_id=erased.customer_id, feedback_ids=feedback_ids, now=time.time()
                )
                log.info(
                    "erasure: %d alerts redacted, %d follow-up messages dropped, %d mail suppressions gone",
                    count,
                    dropped,
                    lifted,
                )

    return [ConsumerSpec(durable=CONSUMER, subjects=[SUBJECT], handler=handle)]


async def redact_customer(
    session: AsyncSession, *, customer_id: str, feedback_ids: Sequence[str] = ()
) -> int:
    """Redact every copy of the customer's data in the alerts (theirs by customer id, and those
    of their feedback items by id); how many alerts changed."""
    if not customer_id and not feedback_ids:
        return 0
    # At most 10,000 ids (profile's cap): within what SQLite and asyncpg bind in one statement.
    whose = [Alert.customer_id == customer_id] if customer_id else []
    whose += [Alert.feedback_id.in_(list(feedback_ids))] if feedback_ids else []
    own = list(await session.scalars(select(Alert).where(or_(*whose))))
    stores = await _stores(session, {a.store_id for a in own})
    now = time.time()
    for alert in own:
        redact_alert(alert, stores.get(alert.store_id), context=ERASED_CONTEXT, now=now)
    listing = await _redact_patterns(session, customer_id=customer_id, feedback_ids=feedback_ids, own=own)
    if not customer_id:
        return len(own) + listing
    # Another customer's alert may name this one as a household member.
    named = await session.scalars(
        select(Alert).where(
            Alert.customer_id != customer_id, cast(Alert.context, String).contains(customer_id)
        )
    )
    others = 0
    for alert in named:
        household = (alert.context or {}).get("household") or {}
        members = household.get("members") or []
        kept = [m for m in members if m.get("customer_id") != customer_id]
        if len(kept) != len(members):
            alert.context = {**alert.context, "household": {**household, "members": kept}}
            others += 1
    return len(own) + listing + others


async def _redact_patterns(
    session: AsyncSession, *, customer_id: str, feedback_ids: Sequence[str], own: list[Alert]
) -> int:
    """The customer's items in the pattern windows lose their excerpts, and so do the pattern
    alerts listing them (their body, quoting the newest excerpt, is composed again); how many
    pattern alerts changed. The items are found by feedback id (and by the customer id when the
    event names none: an older profile), the alerts among their stores' pattern alerts touched
    since the customer's first item there: an item's own row may be gone (pruned after the
    baseline period) while the alert listing it stays. Each window is locked as counting and
    folding lock it, so a fold under way does not write the excerpts back."""
    ids = set(feedback_ids) | {a.feedback_id for a in own if a.feedback_id}
    ids |= {str(item.get("id")) for a in own for item in a.related_feedback or [] if item.get("id")}
    found_by: list[ColumnElement[bool]] = [PatternItem.feedback_id.in_(sorted(ids))] if ids else []
    if customer_id and not feedback_ids:  # an older profile names no items: theirs by the customer
        found_by.append(PatternItem.customer_key == customer_id)
    if not found_by:
        return 0
    whose = or_(*found_by)
    items = (
        await session.execute(
            select(PatternItem.feedback_id, PatternItem.store_id, PatternItem.category, PatternItem.at).where(
                whose
            )
        )
    ).all()
    ids |= {i.feedback_id for i in items}  # found by the customer id
    # When the customer was first seen at each store: their items' rows, else their alerts.
    since: dict[str, float] = {}
    for store_id, at in [(i.store_id, i.at) for i in items] + [(a.store_id, a.created_at) for a in own]:
        since[store_id] = min(since.get(store_id, at), at)
    if not since:
        return 0
    touched = func.coalesce(Alert.updated_at, Alert.created_at)
    candidates = (
        await session.execute(
            select(Alert.id, Alert.store_id, Alert.category).where(
                Alert.kind == "pattern",
                or_(*(and_(Alert.store_id == store_id, touched >= at) for store_id, at in since.items())),
            )
        )
    ).all()
    windows = sorted(
        {(i.store_id, i.category) for i in items} | {(c.store_id, c.category) for c in candidates}
    )

    def lock(sync: Session) -> None:
        reader = Reader.of(sync.connection())
        for store_id, category in windows:
            patterns.lock_window(reader, store_id, category)

    await session.run_sync(lock)
    await session.execute(
        update(PatternItem).where(whose).values(excerpt="").execution_options(synchronize_session=False)
    )
    listing = await session.scalars(select(Alert).where(Alert.id.in_([c.id for c in candidates])))
    stores = await _stores(session, set(since))
    return sum(_blank_pattern_items(alert, stores.get(alert.store_id), ids=ids) for alert in listing)


#: What a retention pass leaves of the customer an alert was made for (`VOC_RETENTION_DAYS`).
#: Alerts a retention pass redacts per transaction (a hop holds SQLite's one writer).
RETENTION_BATCH = 200


async def redact_past_retention(session: AsyncSession, *, before: float, now: float) -> int:
    """Retention: alerts made before `before` lose what customers and staff wrote, as an erased
    customer's do (their context becomes `EXPIRED_CONTEXT`), and a pattern alert its items'
    excerpts; the oldest first, at most `RETENTION_BATCH` a call; returns how many (fewer: none
    is left)."""
    alerts = list(
        await session.scalars(
            select(Alert)
            .where(Alert.redacted_at.is_(None), Alert.created_at < before)
            .order_by(Alert.created_at)
            .limit(RETENTION_BATCH)
        )
    )
    stores = await _stores(session, {a.store_id for a in alerts})
    for alert in alerts:
        store = stores.get(alert.store_id)
        try:
            if alert.kind == "pattern":  # no one customer's: its items' excerpts, and what staff wrote
                _blank_pattern_items(alert, store, ids=None)
                alert.note = "" if alert.note else alert.note
                alert.redacted_at = now
            else:
                redact_alert(alert, store, context=EXPIRED_CONTEXT, now=now)
        except Exception:  # a row our code cannot read must not hold the retention up for good
            log.exception("retention: alert %s redacted whole (its stored JSON could not be read)", alert.id)
            _redact_whole(alert, now=now)
    return len(alerts)


def _redact_whole(alert: Alert, *, now: float) -> None:
    """Everything written on an alert gone, without reading it: the title (store, category,
    priority) stays as what happened."""
    alert.feedback, alert.context, alert.plan, alert.note = {}, dict(EXPIRED_CONTEXT), {}, ""
    alert.related_feedback, alert.items, alert.body = [], [], ""
    alert.customer_id, alert.customer_name, alert.redacted_at = None, None, now


async def _stores(session: AsyncSession, store_ids: set[str]) -> dict[str, Store]:
    """The stores whose names and languages redacted texts are composed in, by id."""
    return {s.id: s for s in await session.scalars(select(Store).where(Store.id.in_(store_ids)))}


def _blank_pattern_items(alert: Alert, store: Store | None, *, ids: set[str] | None) -> bool:
    """A pattern alert's listed items lose their excerpts (those of `ids`, or all), and its body,
    which quotes the newest, is composed again; whether anything changed."""
    listed = alert.items or []
    if not any((ids is None or item.get("feedback_id") in ids) and item.get("excerpt") for item in listed):
        return False
    alert.items = [
        {**item, "excerpt": ""} if ids is None or item.get("feedback_id") in ids else item for item in listed
    ]
    pattern = (alert.context or {}).get("pattern") or {}
    alert.title, alert.body = pattern_text(
        store_name=store.name if store is not None else alert.store_id,
        category=alert.category,
        priority=alert.priority,
        customers=int(pattern.get("customers") or 0),
        window_minutes=int(pattern.get("window_minutes") or 60),
        items=alert.items,
        language=store.language if store is not None else "ko",
    )
    return True
