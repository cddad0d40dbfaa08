"""Merges: two customers found to be one person become one (recorded, reversible), and an admin's
undo gives the merged customer back everything that moved."""

from __future__ import annotations

import time
from typing import Any, NamedTuple

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from voc.events.v1 import events_pb2
from voc_platform.errors import Conflict, NotFound
from voc_platform.identity import SYSTEM, Actor
from voc_platform.ids import uuid7
from voc_platform.outbox import add_event
from voc_profile import audit, signals
from voc_profile.models import (
    AlertHistory,
    Customer,
    CustomerMerge,
    CustomerSignals,
    FeedbackHistory,
    Identifier,
    Visit,
    outbox_table,
)
from voc_profile.sessions import in_session
from voc_profile.settings import Settings

# Attributes an empty survivor takes from the merged customer (an undo empties them again).
MERGE_FILLABLE = ("name", "preferred_language", "home_store_id", "household_id", "household_relation")
# Consent is not filled but combined (`merged_consent`); the merge keeps the survivor's value
# before it here, for an undo: {"before": ..., "after": ...}.
CONSENT = "contact_consent"


def merged_consent(survivor: bool | None, merged: bool | None) -> bool | None:
    """One person's consent from two records of them: an opt-out on either holds (a follow-up
    must not reach someone who said no), else an agreement on either, else never said."""
    if survivor is False or merged is False:
        return False
    if survivor or merged:
        return True
    return None


class _Moved(NamedTuple):
    identifiers: list[list[str]]
    feedback_ids: list[str]
    visit_ids: list[int]


async def merge_customers(
    session: AsyncSession, *, survivor_id: str, merged_id: str, trigger: str
) -> CustomerMerge:
    """Move everything of `merged_id` to `survivor_id`, listing what moved so it can be undone."""
    survivor = await session.get(Customer, survivor_id)
    merged = await session.get(Customer, merged_id)
    if survivor is None or merged is None:
        raise NotFound("both customers must exist")
    moved = await _move(session, merged_id=merged_id, survivor_id=survivor_id)
    filled: dict[str, Any] = {}
    for key in MERGE_FILLABLE:
        if getattr(survivor, key) is None and getattr(merged, key) is not None:
            filled[key] = getattr(merged, key)
            setattr(survivor, key, filled[key])
    if (
        consent := merged_consent(survivor.contact_consent, merged.contact_consent)
    ) != survivor.contact_consent:
        filled[CONSENT] = {"before": survivor.contact_consent, "after": consent}
        survivor.contact_consent = consent
    merged.merged_into = survivor_id
    merged.updated_at = survivor.updated_at = time.time()
    await session.execute(delete(CustomerSignals).where(CustomerSignals.customer_id == merged_id))
    await _invalidate_summaries(session, [survivor_id])
    record = CustomerMerge(
        id=uuid7(),
        survivor_id=survivor_id,
        merged_id=merged_id,
        identifiers=moved.identifiers,
        feedback_ids=moved.feedback_ids,
        visit_ids=moved.visit_ids,
        filled=filled,
        trigger=trigger[:100],
        created_at=time.time(),
    )
    session.add(record)
    await _relink(session, record, customer_id=survivor_id, prefix="linked")
    await audit.record(
        session,
        actor=SYSTEM,
        action="merge",
        customer_id=survivor_id,
        detail={"merge_id": record.id, "merged_id": merged_id, "trigger": record.trigger},
    )
    await session.flush()
    return record


async def _move(session: AsyncSession, *, merged_id: str, survivor_id: str) -> _Moved:
    """Identifiers, feedback history, visits and alerts of `merged_id` go to `survivor_id`."""
    identifiers = (
        await session.execute(
            select(Identifier.kind, Identifier.value).where(Identifier.customer_id == merged_id)
        )
    ).all()
    feedback_ids = await session.scalars(
        select(FeedbackHistory.feedback_id).where(FeedbackHistory.customer_id == merged_id)
    )
    moved = _Moved(
        [[r.kind, r.value] for r in identifiers],
        list(feedback_ids),
        list(await session.scalars(select(Visit.id).where(Visit.customer_id == merged_id))),
    )
    for moving in (
        update(Identifier).where(Identifier.customer_id == merged_id),
        update(FeedbackHistory).where(FeedbackHistory.customer_id == merged_id),
        update(Visit).where(Visit.customer_id == merged_id),
        update(AlertHistory).where(AlertHistory.customer_id == merged_id),
    ):
        await session.execute(moving.values(customer_id=survivor_id))
    return moved


async def undo_merge(
    session: AsyncSession, *, merge_id: str, actor: Actor, settings: Settings
) -> CustomerMerge:
    """Give the merged customer back what was moved; the pair is never merged again. Both
    customers' stored signals are recomputed in the same transaction."""
    record = await session.get(CustomerMerge, merge_id)
    if record is None:
        raise NotFound(f"No merge '{merge_id}'.")
    if record.undone_at is not None:
        raise Conflict(f"Merge '{merge_id}' was already undone.")
    survivor = await session.get(Customer, record.survivor_id)
    merged = await session.get(Customer, record.merged_id)
    if survivor is None or merged is None or survivor.erased_at or merged.erased_at:
        raise Conflict("A customer of this merge was erased; it cannot be undone.")
    await _move_back(session, record)
    for key, value in record.filled.items():
        if key == CONSENT:
            if survivor.contact_consent == value["after"]:  # not changed since: back as it was
                survivor.contact_consent = value["before"]
        elif getattr(survivor, key) == value:
            setattr(survivor, key, None)
    merged.merged_into = None
    merged.updated_at = survivor.updated_at = time.time()
    await _invalidate_summaries(session, [survivor.id, merged.id])
    record.undone_at = time.time()
    record.undone_by = actor.name[:100]
    await _relink(session, record, customer_id=merged.id, prefix="unlinked")
    await audit.record(
        session,
        actor=actor,
        action="merge_undo",
        customer_id=survivor.id,
        detail={"merge_id": record.id, "merged_id": merged.id},
    )
    await session.flush()
    for customer_id in (record.survivor_id, record.merged_id):
        await in_session(session, signals.refresh, customer_id=customer_id, settings=settings)
    return record


async def _move_back(session: AsyncSession, record: CustomerMerge) -> None:
    """What the merge moved (and the survivor still has) goes back to the merged customer."""
    survivor_id, merged_id = record.survivor_id, record.merged_id
    for kind, value in record.identifiers:
        await session.execute(
            update(Identifier)
            .where(Identifier.kind == kind, Identifier.value == value, Identifier.customer_id == survivor_id)
            .values(customer_id=merged_id)
        )
    if record.feedback_ids:
        await session.execute(
            update(FeedbackHistory)
            .where(
                FeedbackHistory.feedback_id.in_(record.feedback_ids),
                FeedbackHistory.customer_id == survivor_id,
            )
            .values(customer_id=merged_id)
        )
        await session.execute(
            update(AlertHistory)
            .where(AlertHistory.feedback_id.in_(record.feedback_ids))
            .values(customer_id=merged_id)
        )
    if record.visit_ids:
        await session.execute(
            update(Visit)
            .where(Visit.id.in_(record.visit_ids), Visit.customer_id == survivor_id)
            .values(customer_id=merged_id)
        )


async def _relink(session: AsyncSession, record: CustomerMerge, *, customer_id: str, prefix: str) -> None:
    """The feedback service keeps the customer id of each item the merge moved: tell it who it
    is now (one event per item, per merge or undo)."""
    for feedback_id in record.feedback_ids:
        await add_event(
            session,
            outbox_table,
            subject="voc.profile.feedback_linked",
            message=events_pb2.FeedbackLinked(feedback_id=feedback_id, customer_id=customer_id),
            event_id=f"{prefix}:{feedback_id}:{record.id}",
        )


async def _invalidate_summaries(session: AsyncSession, customer_ids: list[str]) -> None:
    """History moved between customers: their summaries no longer describe it. Readers use the
    history until the next event or the refresh pass (due now) rebuilds them."""
    await session.execute(
        update(CustomerSignals)
        .where(CustomerSignals.customer_id.in_(customer_ids))
        .values(summary=None, refresh_at=time.time())
    )


async def merges_of(session: AsyncSession, *, customer_id: str) -> list[CustomerMerge]:
    """The merges this customer took part in, oldest first."""
    return list(
        await session.scalars(
            select(CustomerMerge)
            .where(or_(CustomerMerge.survivor_id == customer_id, CustomerMerge.merged_id == customer_id))
            .order_by(CustomerMerge.created_at)
        )
    )


def merge_out(record: CustomerMerge) -> dict[str, Any]:
    """A merge as the API answers it (which kinds of identifier moved, never their values)."""
    return {
        "id": record.id,
        "survivor_id": record.survivor_id,
        "merged_id": record.merged_id,
        "identifier_kinds": sorted({kind for kind, _ in record.identifiers}),
        "feedback_ids": record.feedback_ids,
        "visit_count": len(record.visit_ids),
        "trigger": record.trigger,
        "created_at": record.created_at,
        "undone_at": record.undone_at,
        "undone_by": record.undone_by,
    }
