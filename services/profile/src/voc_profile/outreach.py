"""Outreach work (#20): a manager assigns a customer of an outreach list to a staff member of a
store, the assignee records each contact (channel, outcome, note), the lists show each
customer's assignment and last contact, and the report compares revisits of the customers who
were reached with those who were not. Every query is limited to the reader's stores."""

from __future__ import annotations

import dataclasses
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import exists, func, or_, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from voc_platform import ids
from voc_platform.errors import Conflict, FieldError, Forbidden, Invalid, NotFound
from voc_platform.identity import Actor
from voc_profile import audit, crm, lists
from voc_profile.lists import Stores
from voc_profile.models import (
    Customer,
    FeedbackHistory,
    OutreachAssignment,
    OutreachContact,
    Visit,
)
from voc_profile.staff_directory import StaffMember

DAY = 86400.0
Channel = Literal["phone", "sms", "email", "kakao", "in_store"]
Outcome = Literal["reached", "no_answer", "declined", "resolved", "callback"]
Status = Literal["open", "in_progress", "done", "cancelled"]
#: Outcomes that mean the customer was spoken to (the report's "reached").
REACHED = ("reached", "declined", "resolved", "callback")
#: Outcomes after which the assignment is done; after the others it stays in progress.
CLOSING = ("reached", "declined", "resolved")
LIVE_STATUSES = ("open", "in_progress")
REPORT_DEFAULT_DAYS = 90


@dataclass(frozen=True, slots=True)
class NewAssignment:
    customer_id: str
    list_kind: str
    store_id: str
    due_at: float | None


@dataclass(frozen=True, slots=True)
class NewContact:
    channel: Channel
    outcome: Outcome
    note: str
    contacted_at: float


OPTED_OUT = "the customer opted out of contact"


def _active_key(customer_id: str, store_id: str) -> str:
    return f"{customer_id}:{store_id}"


async def check_assignable(
    session: AsyncSession, *, new: NewAssignment, assignee: StaffMember | None, assignee_id: str
) -> Customer:
    """The live customer, when the customer and the assignee can be assigned (the list kind is
    checked first, `lists.check_signal`); `Invalid` naming each field that cannot (an unknown
    customer and one of no concern to the store are answered alike; one who opted out of
    contact is not to be called, so not assigned)."""
    errors = []
    customer = await crm.live_customer(session, customer_id=new.customer_id)
    if (
        customer is None
        or customer.erased_at is not None
        or not await lists.is_of_stores(session, customer_id=customer.id, stores=(new.store_id,))
    ):
        errors.append(FieldError("body.customer_id", f"no customer of store '{new.store_id}' with this id"))
    elif customer.contact_consent is False:
        errors.append(FieldError("body.customer_id", OPTED_OUT))
    if assignee is None or not assignee.active:
        errors.append(FieldError("body.assignee_id", f"no active staff member '{assignee_id}'"))
    elif not assignee.works_at(new.store_id):
        errors.append(FieldError("body.assignee_id", f"'{assignee_id}' does not work at '{new.store_id}'"))
    if errors:
        raise Invalid("The assignment names what cannot be assigned.", errors=errors)
    assert customer is not None
    return customer


async def assign(
    session: AsyncSession,
    *,
    new: NewAssignment,
    assignee: StaffMember,
    actor: Actor,
    now: float | None = None,
) -> OutreachAssignment:
    """Write the assignment and its audit entry in the caller's transaction; `Conflict` when the
    customer already has a live one at the store (checked first, and by the unique index)."""
    now = time.time() if now is None else now
    key = _active_key(new.customer_id, new.store_id)
    existing = await session.scalar(select(OutreachAssignment.id).where(OutreachAssignment.active_key == key))
    if existing is not None:
        raise Conflict(
            f"The customer already has an open assignment at '{new.store_id}' ({existing}).",
            errors=[FieldError("body.customer_id", f"assigned in {existing}")],
        )
    row = OutreachAssignment(
        id=ids.uuid7(),
        customer_id=new.customer_id,
        list_kind=new.list_kind,
        store_id=new.store_id,
        assignee_id=assignee.staff_id,
        assignee_name=assignee.name[:100],
        assigned_by=actor.name,
        assigned_at=now,
        due_at=new.due_at,
        status="open",
        active_key=key,
        updated_at=now,
    )
    session.add(row)
    try:
        await session.flush()
    except IntegrityError:  # another request assigned the same customer meanwhile
        raise Conflict(
            f"The customer already has an open assignment at '{new.store_id}'.",
            errors=[FieldError("body.customer_id", "assigned")],
        ) from None
    await audit.record(
        session,
        actor=actor,
        action="outreach_assign",
        customer_id=new.customer_id,
        detail={"assignment_id": row.id, "store_id": new.store_id, "assignee_id": assignee.staff_id},
    )
    return row


async def visible_assignment(
    session: AsyncSession, *, assignment_id: str, stores: Stores
) -> OutreachAssignment:
    """The assignment, when it is of one of `stores` (NotFound otherwise, like a missing one)."""
    row = await session.get(OutreachAssignment, assignment_id)
    if row is None or (stores is not None and row.store_id not in stores):
        raise NotFound(f"No assignment '{assignment_id}'.")
    return row


async def record_contact(
    session: AsyncSession,
    *,
    assignment_id: str,
    contact: NewContact,
    stores: Stores,
    staff_id: str | None,
    may_manage: bool,
    actor: Actor,
    now: float | None = None,
) -> tuple[OutreachAssignment, OutreachContact]:
    """Record a contact on an assignment of `stores`: by its assignee (`staff_id`) or by one
    who may manage the store's outreach. Moves the assignment to in progress or done."""
    now = time.time() if now is None else now
    row = await visible_assignment(session, assignment_id=assignment_id, stores=stores)
    if not may_manage and row.assignee_id != staff_id:
        raise Forbidden(
            "This assignment is another staff member's; only they or a manager record its contacts."
        )
    if row.status not in LIVE_STATUSES:
        raise Conflict(f"The assignment is {row.status}; no more contacts are recorded on it.")
    if contact.contacted_at > now + 300:
        raise Invalid(
            "A contact cannot be in the future.", errors=[FieldError("body.contacted_at", "in the future")]
        )
    if contact.channel != "in_store":
        # Opted out after the assignment: spoken to when they come in, not called.
        customer = await crm.live_customer(session, customer_id=row.customer_id)
        if customer is not None and customer.contact_consent is False:
            raise Invalid(
                "The customer opted out of contact: record only a conversation in the store.",
                errors=[FieldError("body.channel", f"{OPTED_OUT}; in_store only")],
            )
    if contact.contacted_at < row.assigned_at - 300:
        raise Invalid(
            "A contact cannot be before the assignment.",
            errors=[FieldError("body.contacted_at", "before the assignment")],
        )
    done = contact.outcome in CLOSING
    recorded = OutreachContact(assignment_id=row.id, contacted_by=actor.name, **dataclasses.asdict(contact))
    session.add(recorded)
    row.status = "done" if done else "in_progress"
    row.active_key = None if done else row.active_key
    row.updated_at = now
    await session.flush()
    await audit.record(
        session,
        actor=actor,
        action="outreach_contact",
        customer_id=row.customer_id,
        # The note is what staff wrote about a person: its length, never its text.
        detail={
            "assignment_id": row.id,
            "channel": contact.channel,
            "outcome": contact.outcome,
            "note_chars": len(contact.note),
        },
    )
    return row, recorded


async def cancel(
    session: AsyncSession, *, assignment_id: str, stores: Stores, actor: Actor, now: float | None = None
) -> None:
    """Cancel a live assignment of `stores` (a done one stays as it is: 409)."""
    row = await visible_assignment(session, assignment_id=assignment_id, stores=stores)
    if row.status not in LIVE_STATUSES:
        raise Conflict(f"The assignment is {row.status} already.")
    row.status, row.active_key, row.updated_at = "cancelled", None, time.time() if now is None else now
    await audit.record(
        session,
        actor=actor,
        action="outreach_cancel",
        customer_id=row.customer_id,
        detail={"assignment_id": row.id},
    )


# --- reading ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AssignmentQuery:
    stores: Stores
    assignee_id: str | None = None
    store_id: str | None = None
    status: str | None = None  # one of Status, or "live" (open and in progress)
    list_kind: str | None = None
    limit: int = 100


def contact_out(c: OutreachContact) -> dict[str, Any]:
    return {
        "channel": c.channel,
        "outcome": c.outcome,
        "note": c.note,
        "by": c.contacted_by,
        "at": c.contacted_at,
    }


def assignment_out(a: OutreachAssignment, contacts: list[OutreachContact]) -> dict[str, Any]:
    return {
        "id": a.id,
        "customer_id": a.customer_id,
        "list_kind": a.list_kind,
        "store_id": a.store_id,
        "assignee_id": a.assignee_id,
        "assignee_name": a.assignee_name,
        "assigned_by": a.assigned_by,
        "assigned_at": a.assigned_at,
        "due_at": a.due_at,
        "status": a.status,
        "contacts": [contact_out(c) for c in contacts],
        "last_contact": contact_out(contacts[-1]) if contacts else None,
    }


async def contacts_of(session: AsyncSession, assignment_ids: list[str]) -> dict[str, list[OutreachContact]]:
    """Each assignment's contacts, oldest first."""
    found: dict[str, list[OutreachContact]] = defaultdict(list)
    if assignment_ids:
        for c in await session.scalars(
            select(OutreachContact)
            .where(OutreachContact.assignment_id.in_(assignment_ids))
            .order_by(OutreachContact.contacted_at, OutreachContact.id)
        ):
            found[c.assignment_id].append(c)
    return found


async def list_assignments(session: AsyncSession, *, query: AssignmentQuery) -> list[dict[str, Any]]:
    """Assignments in the query's stores, newest first, each with its customer (name, tier,
    consent, phone and e-mail: the assignee calls them) and its contacts."""
    a = OutreachAssignment
    stmt = select(a, Customer).join(Customer, Customer.id == a.customer_id)
    if query.stores is not None:
        stmt = stmt.where(a.store_id.in_(query.stores))
    for column, value in (
        (a.assignee_id, query.assignee_id),
        (a.store_id, query.store_id),
        (a.list_kind, query.list_kind),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    if query.status == "live":
        stmt = stmt.where(a.status.in_(LIVE_STATUSES))
    elif query.status is not None:
        stmt = stmt.where(a.status == query.status)
    rows = (await session.execute(stmt.order_by(a.assigned_at.desc(), a.id.desc()).limit(query.limit))).all()
    contacts = await contacts_of(session, [row.id for row, _ in rows])
    points = await lists.contact_points(session, [c.id for _, c in rows])
    out = []
    for row, customer in rows:
        point = points.get(customer.id, lists.Contact("", ""))
        out.append(
            {
                **assignment_out(row, contacts.get(row.id, [])),
                "customer": {
                    "id": customer.id,
                    "name": customer.name,
                    "tier": customer.tier,
                    "preferred_language": customer.preferred_language,
                    "contact_consent": customer.contact_consent,
                    "phone": point.phone,
                    "email": point.email,
                },
            }
        )
    return out


async def latest_of_customers(
    session: AsyncSession, *, customer_ids: list[str], stores: Stores
) -> dict[str, dict[str, Any]]:
    """Each customer's latest assignment in `stores` with its last contact: what an outreach list
    shows beside each customer."""
    if not customer_ids:
        return {}
    a = OutreachAssignment
    stmt = select(a).where(a.customer_id.in_(customer_ids), a.status != "cancelled")
    if stores is not None:
        stmt = stmt.where(a.store_id.in_(stores))
    latest: dict[str, OutreachAssignment] = {}
    for row in await session.scalars(stmt.order_by(a.assigned_at)):
        latest[row.customer_id] = row
    contacts = await contacts_of(session, [row.id for row in latest.values()])
    out = {}
    for customer_id, row in latest.items():
        body = assignment_out(row, contacts.get(row.id, []))
        del body["contacts"]
        out[customer_id] = body
    return out


# --- the report -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReportRow:
    store_id: str
    list_kind: str
    assigned: int
    attempted: int
    reached: int
    contact_rate: float | None
    came_back_reached: int
    not_reached: int
    came_back_not_reached: int
    revisit_rate_reached: float | None
    revisit_rate_not_reached: float | None
    still_open: int


@dataclass(frozen=True, slots=True)
class Report:
    rows: list[ReportRow]
    window_days: int
    since: float
    until: float


#: The instants a report's period may start or end at (epoch seconds): those a date-time names,
#: years 0001 to 9999 in UTC. REST's `from`/`to` and gRPC's `from_ms`/`to_ms` alike; a gRPC
#: bound of 2**63-1 ms was echoed back rounded past int64 and failed the call.
PERIOD_EARLIEST = datetime.min.replace(tzinfo=UTC).timestamp()
PERIOD_LATEST = datetime.max.replace(tzinfo=UTC).timestamp()


def check_period_bound(epoch: float, *, field: str) -> None:
    """Invalid, naming `field`, for a report period bound outside the years 0001 to 9999 (UTC)."""
    if not PERIOD_EARLIEST <= epoch <= PERIOD_LATEST:
        raise Invalid(
            f"{field} must fall within the years 0001 to 9999 (UTC).",
            errors=[FieldError(field, "between 0001-01-01 and 9999-12-31 (UTC)")],
        )


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


async def report(
    session: AsyncSession,
    *,
    stores: Stores,
    window_days: int,
    since: float | None = None,
    until: float | None = None,
    now: float | None = None,
) -> Report:
    """Per store and list, of the assignments made in [since, until) (cancelled ones left out):
    how many were attempted and reached, and of the reached and the not reached, how many came
    back within `window_days` — a visit or feedback at the assignment's store after the first
    contact that reached them (reached) or after the assignment (not reached). `still_open`
    counts those who have not come back and whose window has not ended yet."""
    now = time.time() if now is None else now
    until = now if until is None else until
    since = until - REPORT_DEFAULT_DAYS * DAY if since is None else since
    window = window_days * DAY
    a, c = OutreachAssignment, OutreachContact
    first_reached = (
        select(c.assignment_id, func.min(c.contacted_at).label("at"))
        .where(c.outcome.in_(REACHED))
        .group_by(c.assignment_id)
        .subquery()
    )
    ref = func.coalesce(first_reached.c.at, a.assigned_at)
    visit_back = exists().where(
        Visit.customer_id == a.customer_id,
        Visit.store_id == a.store_id,
        Visit.visited_at > ref,
        Visit.visited_at <= ref + window,
    )
    feedback_back = exists().where(
        FeedbackHistory.customer_id == a.customer_id,
        FeedbackHistory.store_id == a.store_id,
        FeedbackHistory.occurred_at > ref,
        FeedbackHistory.occurred_at <= ref + window,
    )
    attempted = exists().where(c.assignment_id == a.id)
    stmt = (
        select(a.store_id, a.list_kind, first_reached.c.at, ref, attempted, or_(visit_back, feedback_back))
        .outerjoin(first_reached, first_reached.c.assignment_id == a.id)
        .where(
            a.status != "cancelled",
            a.assigned_at >= since,
            a.assigned_at < until,
            a.store_id.in_(stores) if stores is not None else true(),
        )
    )
    groups: dict[tuple[str, str], list[tuple[bool, bool, bool, float]]] = defaultdict(list)
    for store_id, list_kind, reached_at, ref_at, was_attempted, came_back in await session.execute(stmt):
        groups[(store_id, list_kind)].append(
            (reached_at is not None, bool(was_attempted), bool(came_back), ref_at)
        )
    rows = []
    for (store_id, list_kind), items in sorted(groups.items()):
        reached = [i for i in items if i[0]]
        others = [i for i in items if not i[0]]
        back_reached = sum(1 for i in reached if i[2])
        back_others = sum(1 for i in others if i[2])
        rows.append(
            ReportRow(
                store_id=store_id,
                list_kind=list_kind,
                assigned=len(items),
                attempted=sum(1 for i in items if i[1]),
                reached=len(reached),
                contact_rate=_ratio(len(reached), len(items)),
                came_back_reached=back_reached,
                not_reached=len(others),
                came_back_not_reached=back_others,
                revisit_rate_reached=_ratio(back_reached, len(reached)),
                revisit_rate_not_reached=_ratio(back_others, len(others)),
                still_open=sum(1 for i in items if not i[2] and i[3] + window > now),
            )
        )
    return Report(rows, window_days, since, until)
