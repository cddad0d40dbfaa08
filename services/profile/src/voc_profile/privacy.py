"""Privacy: erasure of a person's data (and telling the holders of copies), and the subject
access export of everything held about them."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from voc.events.v1 import events_pb2
from voc_platform.db import Database
from voc_platform.errors import Gone, NotFound
from voc_platform.identity import Actor
from voc_platform.outbox import add_event
from voc_platform.records import fields_of
from voc_profile import audit, crm, merges, outreach, timeline
from voc_profile.models import (
    AlertHistory,
    Customer,
    CustomerMerge,
    CustomerSignals,
    FeedbackHistory,
    Identifier,
    OutreachAssignment,
    OutreachContact,
    Visit,
    audit_table,
    outbox_table,
)

# The feedback ids one `CustomerErased` names (newest first): ~0.4 MB of the event's 1 MB limit.
# Copies of older items are found by the customer id they carry.
MAX_ERASED_FEEDBACK_IDS = 10_000

# What erasure leaves of a customer row: no attribute that could lead to the person.
_ERASED: dict[str, object] = {
    "name": None,
    "tier": "basic",
    "lifetime_value": 0.0,
    "preferred_language": None,
    "home_store_id": None,
    "contact_consent": False,
    "attributes": {},
    "household_id": None,
    "household_relation": None,
    "import_id": None,
}


async def erase_customer(session: AsyncSession, *, customer_id: str, actor: Actor) -> list[str]:
    """Remove the personal data of this person (and of every record merged into it).

    Identifiers are deleted, attributes and feedback excerpts cleared; the feedback facts and visits stay as
    anonymous statistics under an id that no longer leads to anyone. One `CustomerErased` event
    per id tells the holders of copies to redact theirs, with the ids of its feedback (copies
    made before profile tied an item to the customer carry no customer id). The ids erased,
    the person's first.
    """
    if await session.get(Customer, customer_id) is None:
        raise NotFound(f"No customer '{customer_id}'.")
    person = await crm.live_customer(session, customer_id=customer_id)
    assert person is not None
    if person.erased_at is not None:
        raise Gone(f"Customer '{customer_id}' was erased.")
    targets = [person.id]
    frontier = [person.id]
    while frontier:
        children = list(await session.scalars(select(Customer.id).where(Customer.merged_into.in_(frontier))))
        targets += children
        frontier = children
    now = time.time()
    await session.execute(delete(Identifier).where(Identifier.customer_id.in_(targets)))
    await session.execute(delete(CustomerSignals).where(CustomerSignals.customer_id.in_(targets)))
    # The facts stay as statistics; what the person wrote (the masked excerpt) does not.
    await session.execute(
        update(FeedbackHistory).where(FeedbackHistory.customer_id.in_(targets)).values(excerpt=None)
    )
    await session.execute(
        update(Customer).where(Customer.id.in_(targets)).values(**_ERASED, erased_at=now, updated_at=now)
    )
    # Outreach notes are what staff wrote about the person; the contacts stay as statistics.
    await session.execute(
        update(OutreachContact)
        .where(
            OutreachContact.assignment_id.in_(
                select(OutreachAssignment.id).where(OutreachAssignment.customer_id.in_(targets))
            )
        )
        .values(note="")
    )
    # Merge records listed the identifiers that moved: those are personal data too.
    await session.execute(
        update(CustomerMerge)
        .where(or_(CustomerMerge.survivor_id.in_(targets), CustomerMerge.merged_id.in_(targets)))
        .values(identifiers=[], filled={})
    )
    for target in targets:
        feedback_ids = await session.scalars(
            select(FeedbackHistory.feedback_id)
            .where(FeedbackHistory.customer_id == target)
            .order_by(FeedbackHistory.occurred_at.desc())
            .limit(MAX_ERASED_FEEDBACK_IDS)
        )
        await add_event(
            session,
            outbox_table,
            subject="voc.profile.customer_erased",
            message=events_pb2.CustomerErased(
                customer_id=target, erased_at_ms=int(now * 1000), feedback_ids=list(feedback_ids)
            ),
            event_id=f"erased:{target}",
        )
    await audit.record(
        session, actor=actor, action="erase", customer_id=person.id, detail={"customer_ids": targets}
    )
    await session.flush()
    return targets


async def subject_access(database: Database, *, customer_id: str, actor: Actor) -> dict[str, Any]:
    """The export, recorded first in the audit log (so the export's access log lists it)."""
    async with database.transaction() as session:
        await crm.get_customer(session, customer_id=customer_id)
        await audit.record(session, actor=actor, action="subject_export", customer_id=customer_id)
    async with database.session() as session:
        return await subject_export(session, customer_id=customer_id)


# The stored signals a subject access export shows.
_SIGNALS_OUT_FIELDS = (
    "repeat_issue",
    "score_swing",
    "complaint_count_90d",
    "low_satisfaction",
    "churn_risk",
    "reasons",
)


async def subject_export(session: AsyncSession, *, customer_id: str) -> dict[str, Any]:
    """Everything held about this person (GDPR / PIPA subject access), as one JSON document."""
    customer = await crm.get_customer(session, customer_id=customer_id)
    merged = await session.scalars(select(Customer.id).where(Customer.merged_into == customer.id))
    ids = [customer.id, *merged]
    identifiers = (
        await session.execute(
            select(Identifier.kind, Identifier.value)
            .where(Identifier.customer_id.in_(ids))
            .order_by(Identifier.kind)
        )
    ).all()
    history = await session.scalars(
        select(FeedbackHistory)
        .where(FeedbackHistory.customer_id.in_(ids))
        .order_by(FeedbackHistory.occurred_at)
    )
    visits = await session.scalars(select(Visit).where(Visit.customer_id.in_(ids)).order_by(Visit.visited_at))
    alerts = await session.scalars(
        select(AlertHistory).where(AlertHistory.customer_id.in_(ids)).order_by(AlertHistory.created_at)
    )
    signals = await session.get(CustomerSignals, customer.id)
    assignments = list(
        await session.scalars(
            select(OutreachAssignment)
            .where(OutreachAssignment.customer_id.in_(ids))
            .order_by(OutreachAssignment.assigned_at)
        )
    )
    contacts = await outreach.contacts_of(session, [a.id for a in assignments])
    audit_rows = (
        await session.execute(
            select(audit_table)
            .where(audit_table.c.target.in_([audit.target_of(i) for i in ids]))
            .order_by(audit_table.c.at)
        )
    ).all()
    return {
        "customer": crm.customer_out(customer),
        "identifiers": [{"kind": k, "value": v} for k, v in identifiers],
        "feedback": [timeline.history_out(h) for h in history],
        "visits": [{"store_id": v.store_id, "visited_at": v.visited_at, "amount": v.amount} for v in visits],
        "alerts": [
            {"alert_id": a.alert_id, "feedback_id": a.feedback_id, "status": a.status, "outcome": a.outcome}
            for a in alerts
        ],
        "signals": fields_of(signals, _SIGNALS_OUT_FIELDS) if signals else None,
        # Outreach work about the person (#20): who was to contact them, and what staff noted.
        "outreach": [outreach.assignment_out(a, contacts.get(a.id, [])) for a in assignments],
        "merges": [merges.merge_out(m) for m in await merges.merges_of(session, customer_id=customer.id)],
        "access_log": [
            {
                "at": a.at,
                "actor": a.actor,
                "on_behalf_of": a.on_behalf_of,
                "action": a.action,
                "detail": a.detail,
            }
            for a in audit_rows
        ],
    }
