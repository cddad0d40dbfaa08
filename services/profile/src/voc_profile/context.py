"""The customer context served over gRPC (notify's lookups) and REST: attributes, last visits,
household, recent feedback, the earlier contacts as staff see them, and live signals, counting
the feedback being handled.

A context call is one statement (customer, phone, summary) plus the last visits (plus the rank
count for 3+ complaints, the household when there is one, the recent contacts when there is
earlier feedback), in one `dbsync` hop. A customer
named only by identifiers not yet on file is created on first contact, in one write hop.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, bindparam, exists, select

from voc_platform import dbsync
from voc_platform.db import Database
from voc_platform.dbsync import Prepared, Reader
from voc_platform.errors import Gone, NotFound
from voc_profile import resolution, signals, summary
from voc_profile.facts import CustomerFacts, FeedbackItem, MemberFacts, RecentContact, VisitFacts
from voc_profile.identity import mask_name, mask_phone
from voc_profile.models import (
    alerts_table,
    customers_table,
    history_table,
    identifiers_table,
    signals_table,
)
from voc_profile.resolution import Identifiers, NeedsSession, Resolution
from voc_profile.sessions import in_session
from voc_profile.settings import Settings
from voc_profile.signals import Signals


@dataclass(frozen=True, slots=True)
class NewCustomer:
    """A customer resolution created a moment ago: nothing else is on file yet."""

    id: str
    name: str | None
    tier: str = "basic"
    lifetime_value: float = 0.0
    preferred_language: str | None = None
    home_store_id: str | None = None
    contact_consent: bool | None = None
    household_id: str | None = None
    household_relation: str | None = None


@dataclass(slots=True)
class Context:
    customer: CustomerFacts | None
    signals: Signals
    visits: Sequence[VisitFacts]
    # The last (up to 5) feedback items, in time order, and how many there are in the year.
    recent: list[FeedbackItem]
    feedback_count: int
    mean_csat: float | None
    phone: str | None
    household: Sequence[MemberFacts] = ()
    # The earlier contacts (not the feedback being handled), newest first, at most 5.
    contacts: Sequence[RecentContact] = ()

    def to_dict(self) -> dict[str, Any]:
        """The REST answer (gRPC builds its message from the same fields)."""
        c = self.customer
        return {
            "customer_id": c.id if c else None,
            "found": c is not None,
            "name": c.name if c else None,
            "masked_name": mask_name(c.name) if c else "",
            "masked_phone": mask_phone(self.phone),
            "tier": c.tier if c else None,
            "lifetime_value": c.lifetime_value if c else 0.0,
            "preferred_language": c.preferred_language if c else None,
            "home_store_id": c.home_store_id if c else None,
            "contact_consent": c.contact_consent if c else None,
            "household_relation": c.household_relation if c else None,
            "household": [
                {
                    "customer_id": m.id,
                    "masked_name": mask_name(m.name),
                    "relation": m.household_relation,
                    "tier": m.tier,
                }
                for m in self.household
            ],
            "feedback_count": self.feedback_count,
            "mean_csat": self.mean_csat,
            "recent_feedback": [
                {
                    "feedback_id": i.feedback_id,
                    "store_id": i.store_id,
                    "channel": i.channel,
                    "category": i.category,
                    "sentiment": i.sentiment,
                    "csat": i.csat,
                    "occurred_at": i.occurred_at,
                }
                for i in reversed(self.recent[-5:])
            ],
            "last_visits": [
                {"store_id": v.store_id, "visited_at": v.visited_at, "amount": v.amount} for v in self.visits
            ],
            "recent_contacts": [contact._asdict() for contact in self.contacts],
            "signals": self.signals.to_dict(),
        }


def no_context() -> Context:
    """The context of nobody (anonymous, unknown, erased): no signals but the feedback's own."""
    return Context(None, Signals(), [], [], 0, None, None)


def _context_query(where: Any) -> Select[Any]:
    c, s, h, i = customers_table, signals_table, history_table, identifiers_table
    phone = select(i.c.value).where(i.c.customer_id == c.c.id, i.c.kind == "phone").limit(1).scalar_subquery()
    in_window = h.c.occurred_at >= bindparam("window_start")
    # Is the feedback being handled already in the history (then it must not count twice)?
    recorded = exists().where(
        h.c.feedback_id == bindparam("current_id"), h.c.customer_id == c.c.id, in_window
    )
    has_history = exists().where(h.c.customer_id == c.c.id, in_window)
    return (
        select(
            c.c.id,
            c.c.name,
            c.c.tier,
            c.c.lifetime_value,
            c.c.preferred_language,
            c.c.home_store_id,
            c.c.contact_consent,
            c.c.household_id,
            c.c.household_relation,
            c.c.merged_into,
            c.c.erased_at,
            phone.label("phone"),
            s.c.customer_id.label("signals_row"),
            s.c.summary,
            recorded.label("current_recorded"),
            has_history.label("has_history"),
        )
        .select_from(c.outerjoin(s, s.c.customer_id == c.c.id))
        .where(where)
    )


# One statement per context call: the customer, its phone, its summary and two index probes.
_CONTEXT_BY_ID = Prepared(_context_query(customers_table.c.id == bindparam("customer_id")))
_CONTEXT_BY_IDENTIFIER = Prepared(
    _context_query(customers_table.c.id == resolution.IDENTIFIER_OWNER.scalar_subquery())
)
_HOUSEHOLD = Prepared(
    select(
        customers_table.c.id,
        customers_table.c.name,
        customers_table.c.household_relation,
        customers_table.c.tier,
    )
    .where(
        customers_table.c.household_id == bindparam("household_id"),
        customers_table.c.id != bindparam("customer_id"),
        customers_table.c.erased_at.is_(None),
        customers_table.c.merged_into.is_(None),
    )
    .limit(10)
)


#: How many earlier contacts a context shows.
RECENT_CONTACTS = 5
# A case's status from its alert's (none yet: received; open or escalated: alerted).
_CASE_STATUS = {None: "received", "open": "alerted", "escalated": "alerted"}
# The customer's latest feedback and the alert of each, by the history's (customer, time) index.
_RECENT_CONTACTS = Prepared(
    select(
        history_table.c.feedback_id,
        history_table.c.channel,
        history_table.c.store_id,
        history_table.c.occurred_at,
        history_table.c.category,
        history_table.c.sentiment,
        alerts_table.c.status,
        alerts_table.c.outcome,
        history_table.c.excerpt,
        history_table.c.reopens_id,
    )
    .select_from(
        history_table.outerjoin(alerts_table, alerts_table.c.feedback_id == history_table.c.feedback_id)
    )
    .where(
        history_table.c.customer_id == bindparam("customer_id"),
        history_table.c.feedback_id != bindparam("current_id"),
    )
    .order_by(history_table.c.occurred_at.desc())
    .limit(RECENT_CONTACTS)
)


def recent_contacts(reader: Reader, *, customer_id: str, current_id: str) -> list[RecentContact]:
    """The customer's earlier contacts across every channel and store, newest first (at most
    `RECENT_CONTACTS`): one statement."""
    rows = reader.all(_RECENT_CONTACTS, {"customer_id": customer_id, "current_id": current_id})
    return [
        RecentContact(
            r.feedback_id,
            r.channel,
            r.store_id,
            r.occurred_at,
            r.category,
            r.sentiment,
            _CASE_STATUS.get(r.status, r.status),
            r.outcome,
            r.excerpt or "",
            r.reopens_id,
        )
        for r in rows
    ]


def read_context(
    reader: Reader,
    *,
    customer_id: str,
    settings: Settings,
    current: FeedbackItem | None = None,
    now: float | None = None,
) -> Context:
    """Attributes, last visits, household and signals of the customer (or the one it was merged
    into); `current` (a feedback not yet recorded) counts too. Nobody's for an unknown id."""
    now = now or time.time()
    params = _params(current, now)
    row = reader.first(_CONTEXT_BY_ID, {**params, "customer_id": customer_id})
    return _assemble(reader, _follow_merges(reader, row, params), settings=settings, current=current, now=now)


def customer_context(reader: Reader, *, customer_id: str, settings: Settings) -> Context:
    """The context an admin reads: NotFound for an unknown customer, Gone for an erased one."""
    now = time.time()
    params = _params(None, now)
    row = reader.first(_CONTEXT_BY_ID, {**params, "customer_id": customer_id})
    if row is None:
        raise NotFound(f"No customer '{customer_id}'.")
    if row.erased_at is not None:
        raise Gone(f"Customer '{customer_id}' was erased.")
    context = _assemble(reader, _follow_merges(reader, row, params), settings=settings, current=None, now=now)
    if context.customer is None:  # merged into a customer since erased
        raise NotFound(f"No customer '{customer_id}'.")
    return context


def known_context(
    reader: Reader,
    *,
    identifiers: Identifiers,
    settings: Settings,
    current: FeedbackItem | None = None,
    now: float | None = None,
) -> Context | None:
    """The context of the customer these identifiers resolve to without writing (every one on
    file, all for one customer); None when they do not (the caller resolves, which may create
    or merge). One identifier, the usual case: a single statement finds and reads the customer.
    """
    now = now or time.time()
    params = _params(current, now)
    if len(identifiers) == 1:
        [(kind, value)] = identifiers
        row = reader.first(_CONTEXT_BY_IDENTIFIER, {**params, "kind": kind, "value": value})
        if row is None:
            return None
    else:
        customer_id = resolution.lookup(reader, identifiers=identifiers)
        if customer_id is None:
            return None
        row = reader.first(_CONTEXT_BY_ID, {**params, "customer_id": customer_id})
    return _assemble(reader, _follow_merges(reader, row, params), settings=settings, current=current, now=now)


async def context_for(
    database: Database,
    *,
    identifiers: Identifiers,
    name: str | None,
    settings: Settings,
    current: FeedbackItem | None,
    trigger: str,
) -> Context:
    """The context of the person these identifiers name, created on first contact (or merged
    when they name several customers), so their history starts here.

    A returning customer: one read hop, no write. A first contact: one `dbsync` write hop. A
    merge or a raced first contact: `NeedsSession` rolled that back, and resolution runs on an
    ORM session, the context read in its transaction."""
    found = await dbsync.read(
        database, known_context, identifiers=identifiers, settings=settings, current=current
    )
    if found is not None:
        return found
    try:
        return await dbsync.write(database, _first_contact, identifiers, name, settings, current)
    except NeedsSession:
        pass
    async with database.transaction() as session:
        res = await resolution.resolve(
            session, identifiers=identifiers, name=name, create_if_missing=True, trigger=trigger
        )
        return await in_session(
            session,
            after_resolution,
            resolved=res,
            name=name,
            identifiers=identifiers,
            settings=settings,
            current=current,
        )


def _first_contact(
    reader: Reader,
    identifiers: Identifiers,
    name: str | None,
    settings: Settings,
    current: FeedbackItem | None,
) -> Context:
    res = resolution.resolve_one(reader, identifiers=identifiers, name=name)
    return after_resolution(
        reader, resolved=res, name=name, identifiers=identifiers, settings=settings, current=current
    )


def after_resolution(
    reader: Reader,
    *,
    resolved: Resolution,
    name: str | None,
    identifiers: Identifiers,
    settings: Settings,
    current: FeedbackItem | None = None,
    now: float | None = None,
) -> Context:
    """The context of the customer a resolution just gave, in its transaction. A customer it
    created has no history, visits or household yet: only the feedback being handled counts
    (no statement unless it needs a rank)."""
    if resolved.customer_id is None:
        return no_context()
    if not resolved.created or resolved.conflicts:
        return read_context(
            reader, customer_id=resolved.customer_id, settings=settings, current=current, now=now
        )
    now = now or time.time()
    phone = next((value for kind, value in identifiers if kind == "phone"), None)
    items = [current] if current else []
    customer = NewCustomer(resolved.customer_id, name)
    return _context_of(
        reader, customer, phone, items, len(items), settings=settings, current=current, now=now
    )


def _params(current: FeedbackItem | None, now: float) -> dict[str, Any]:
    return {
        "current_id": current.feedback_id if current else "",
        "window_start": now - summary.HISTORY_SECONDS,
    }


def _follow_merges(reader: Reader, row: Any, params: dict[str, Any]) -> Any:
    """The customer, following merges to the survivor (a few hops at most)."""
    for _ in range(5):
        if row is None or row.merged_into is None:
            break
        row = reader.first(_CONTEXT_BY_ID, {**params, "customer_id": row.merged_into})
    return row


def _assemble(
    reader: Reader, row: Any, *, settings: Settings, current: FeedbackItem | None, now: float
) -> Context:
    """The context of a customer row: the history the signals read from its summary when that
    is usable, else from the history table; the feedback being handled added once."""
    if row is None or row.erased_at is not None:
        return no_context()
    if summary.usable(row.summary, shape=summary.Shape.of(settings), now=now):
        items = summary.items(row.summary)
        count, csat_sum, csat_n = row.summary["n"], row.summary["csat_sum"], row.summary["csat_n"]
    else:
        read = row.signals_row is not None or row.has_history
        items = signals.history(reader, customer_id=row.id, now=now) if read else []
        csats = [i.csat for i in items if i.csat is not None]
        count, csat_sum, csat_n = len(items), sum(csats), len(csats)
    if current and not row.current_recorded:
        items.append(current)
        count += 1
        if current.csat is not None:
            csat_sum += current.csat
            csat_n += 1
    return _context_of(
        reader,
        row,
        row.phone,
        items,
        count,
        settings=settings,
        current=current,
        now=now,
        csat=(csat_sum, csat_n),
    )


def _context_of(
    reader: Reader,
    customer: CustomerFacts,
    phone: str | None,
    items: list[FeedbackItem],
    count: int,
    *,
    settings: Settings,
    current: FeedbackItem | None,
    now: float,
    csat: tuple[int, int] | None = None,
) -> Context:
    """`items`: the history the signals read (the whole of it, or the summary's part of it).
    `csat` (sum, count) comes with a customer on file; a new one has only `items`, no visits."""
    visits = signals.last_visits(reader, customer_id=customer.id) if csat is not None else []
    sig = signals.compute_signals(
        items,
        customer=customer,
        visits=visits,
        settings=settings,
        now=now,
        current_id=current.feedback_id if current else None,
    )
    rank = signals.chronic_rank(reader, complaint_count=sig.complaint_count_90d, settings=settings)
    signals.apply_chronic(
        sig,
        rank=rank,
        settings=settings,
        feedback_ids=signals.window_complaints(items, settings=settings, now=now),
    )
    household: list[Any] = []
    if customer.household_id:
        household = reader.all(
            _HOUSEHOLD, {"household_id": customer.household_id, "customer_id": customer.id}
        )
    contacts: list[RecentContact] = []
    current_id = current.feedback_id if current else ""
    if csat is not None and any(i.feedback_id != current_id for i in items):
        # A customer on file with earlier feedback (the summary's year of it) has a story.
        contacts = recent_contacts(reader, customer_id=customer.id, current_id=current_id)
    if csat is None:
        scores = [i.csat for i in items if i.csat is not None]
        csat = (sum(scores), len(scores))
    mean = round(csat[0] / csat[1], 2) if csat[1] else None
    return Context(customer, sig, visits, items[-5:], count, mean, phone, household, contacts)
