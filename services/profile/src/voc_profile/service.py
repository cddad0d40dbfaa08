"""Profile domain logic: resolution and merges, history, signals, lists, timeline, erasure.

Keyword-only functions on an AsyncSession; no transport. Errors are the exceptions below, which
the REST and gRPC layers translate.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import (
    Float,
    Integer,
    Select,
    String,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from voc.events.v1 import events_pb2
from voc_platform.dbsync import Prepared, Reader, insert_ignore
from voc_platform.ids import uuid7
from voc_platform.outbox import add_event
from voc_profile import summary
from voc_profile.identity import mask_name, mask_phone, normalize
from voc_profile.models import (
    AlertHistory,
    AuditEntry,
    Base,
    Customer,
    CustomerMerge,
    CustomerSignals,
    FeedbackHistory,
    Identifier,
    Visit,
    outbox_table,
)
from voc_profile.settings import Settings

DAY = 86400.0
SIGNALS = ("repeat_issue", "score_swing", "chronic_complainer", "low_satisfaction", "churn_risk", "vip")
STORED_FLAGS = ("repeat_issue", "score_swing", "low_satisfaction", "churn_risk")
MERGE_FILLABLE = ("name", "preferred_language", "home_store_id", "household_id", "household_relation")

# The tables, for the Core statements of the hot paths.
_customers = Base.metadata.tables["customers"]
_signals = Base.metadata.tables["customer_signals"]
_identifiers = Base.metadata.tables["customer_identifiers"]
_feedback = Base.metadata.tables["feedback_history"]
_visits = Base.metadata.tables["visits"]
_alerts = Base.metadata.tables["alert_history"]


class NotFound(LookupError):
    pass


class Gone(LookupError):
    pass


class Conflict(ValueError):
    pass


# ---------------------------------------------------------------------------------------------
# Audit


async def audit(
    session: AsyncSession,
    *,
    actor: str,
    action: str,
    customer_id: str | None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Record a change in the caller's transaction (ids and counts only, never the data)."""
    session.add(
        AuditEntry(at=time.time(), actor=actor, action=action, customer_id=customer_id, detail=detail or {})
    )


# ---------------------------------------------------------------------------------------------
# Resolution and merges


@dataclass(frozen=True)
class Resolution:
    customer_id: str | None
    created: bool
    merged_ids: tuple[str, ...] = ()
    # An identifier could not be attached (a concurrent resolution took it first).
    conflicts: bool = False


async def known_customers(
    session: AsyncSession, *, identifiers: list[tuple[str, str]]
) -> dict[tuple[str, str], str]:
    """(kind, value) -> customer id for the identifiers already on file."""
    if not identifiers:
        return {}
    rows = (await session.execute(_KNOWN, _known_params(identifiers))).all()
    wanted = set(identifiers)
    return {(r.kind, r.value): r.customer_id for r in rows if (r.kind, r.value) in wanted}


def _known_params(identifiers: list[tuple[str, str]]) -> dict[str, Any]:
    return {"kinds": sorted({k for k, _ in identifiers}), "values": sorted({v for _, v in identifiers})}


def _known_sync(reader: Reader, identifiers: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """`known_customers` for the few identifiers of one submission."""
    known = {}
    for kind, value in dict.fromkeys(identifiers):
        owner = reader.scalar(_IDENTIFIER_OWNER, {"kind": kind, "value": value})
        if owner is not None:
            known[(kind, value)] = owner
    return known


def _lookup_sync(reader: Reader, identifiers: list[tuple[str, str]]) -> str | None:
    """`lookup` with a reader: one primary-key probe per identifier (there are at most four)."""
    owners = {reader.scalar(_IDENTIFIER_OWNER, {"kind": k, "value": v}) for k, v in set(identifiers)}
    return owners.pop() if len(owners) == 1 and None not in owners else None


async def lookup(session: AsyncSession, *, identifiers: list[tuple[str, str]]) -> str | None:
    """Read-only resolution: the customer when every identifier is on file for one customer."""
    known = await known_customers(session, identifiers=identifiers)
    owners = set(known.values())
    if len(known) == len(set(identifiers)) and len(owners) == 1:
        return owners.pop()
    return None


async def resolve(
    session: AsyncSession,
    *,
    identifiers: list[tuple[str, str]],
    name: str | None = None,
    create_if_missing: bool,
    trigger: str = "resolve",
) -> Resolution:
    """One customer for these identifiers; anonymous (None) when there are none.

    When the identifiers belong to two or more known customers they are the same person: the
    oldest customer (uuid7 ids sort by creation time) survives and the others merge into it,
    recorded in `customer_merges` so an admin can undo. A pair an admin separated is never
    merged again; the oldest is used without moving anything.
    """
    if not identifiers:
        return Resolution(None, created=False)
    # The usual cases, one known customer or a new one, in one hop.
    known, customer_id, created, conflicts = await session.run_sync(
        lambda s: _resolve_sync(Reader.of(s.connection()), identifiers, name, create_if_missing)
    )
    merged: list[str] = []
    if customer_id is None and known:
        # Two or more known customers: the same person.
        customer_ids = sorted(set(known.values()))
        customer_id = customer_ids[0]
        for other in customer_ids[1:]:
            if await _separated(session, customer_id, other):
                continue
            await merge_customers(session, survivor_id=customer_id, merged_id=other, trigger=trigger)
            merged.append(other)
        if create_if_missing:
            survivor, missing = customer_id, [i for i in identifiers if i not in known]
            conflicts = await session.run_sync(
                lambda s: _attach_sync(Reader.of(s.connection()), survivor, missing)
            )
    elif customer_id is None:
        return Resolution(None, created=False)
    if created and conflicts:
        # Two resolutions of a new person raced (PostgreSQL runs them in parallel): the one
        # whose identifiers committed first owns the person; this fresh duplicate folds into it.
        owners = await known_customers(session, identifiers=identifiers)
        others = sorted({owner for owner in owners.values() if owner != customer_id})
        if others:
            winner = others[0]
            await session.execute(
                update(Identifier).where(Identifier.customer_id == customer_id).values(customer_id=winner)
            )
            await session.execute(delete(Customer).where(Customer.id == customer_id))
            customer_id, created = winner, False
    return Resolution(customer_id, created=created, merged_ids=tuple(merged), conflicts=conflicts)


class NeedsSession(Exception):
    """`resolve_and_record_sync` met a case that needs an ORM session: the identifiers name
    several known customers (a merge), or a new person's identifiers were taken meanwhile."""


def resolve_and_record_sync(
    reader: Reader,
    *,
    identifiers: list[tuple[str, str]],
    name: str | None,
    facts: dict[str, Any],
    settings: Settings,
    now: float,
) -> str:
    """The history consumer's usual case in the caller's `dbsync` hop: one known customer, or a
    new one created, and the feedback added to their history with the signals; their id.
    Raises `NeedsSession` for the rest (the caller runs `resolve` and `record_feedback`)."""
    customer_id = resolve_sync(reader, identifiers=identifiers, name=name).customer_id
    assert customer_id is not None
    _record_feedback_sync(reader, customer_id, facts, settings, now)
    return customer_id


def resolve_sync(reader: Reader, *, identifiers: list[tuple[str, str]], name: str | None) -> Resolution:
    """`resolve(create_if_missing=True)`'s usual cases in the caller's `dbsync` hop: one known
    customer, or a new one created. Raises `NeedsSession` for a merge or a raced first contact."""
    _, customer_id, created, conflicts = _resolve_sync(reader, identifiers, name, True)
    if customer_id is None or (created and conflicts):
        raise NeedsSession
    return Resolution(customer_id, created=created)


def _resolve_sync(
    reader: Reader, identifiers: list[tuple[str, str]], name: str | None, create_if_missing: bool
) -> tuple[dict[tuple[str, str], str], str | None, bool, bool]:
    """(known identifiers, customer id, created, conflicts) when the identifiers name at most one
    known customer; the customer id is None when they name several (the caller merges) or none
    and nothing may be created."""
    known = _known_sync(reader, identifiers)
    owners = set(known.values())
    if len(owners) > 1:
        return known, None, False, False
    if owners:
        customer_id, created = owners.pop(), False
    elif create_if_missing:
        now = time.time()
        customer_id, created = uuid7(), True
        reader.execute(
            _INSERT_CUSTOMER,
            {
                "id": customer_id,
                "name": name,
                "tier": "basic",
                "lifetime_value": 0.0,
                "contact_consent": False,
                "attributes": {},
                "created_at": now,
                "updated_at": now,
            },
        )
    else:
        return known, None, False, False
    conflicts = False
    if create_if_missing:
        conflicts = _attach_sync(reader, customer_id, [i for i in identifiers if i not in known])
    return known, customer_id, created, conflicts


def _attach_sync(reader: Reader, customer_id: str, identifiers: list[tuple[str, str]]) -> bool:
    """Give these identifiers to the customer; True when one of them could not be attached
    (a concurrent resolution took it first: PostgreSQL runs them in parallel)."""
    conflicts = False
    for kind, value in dict.fromkeys(identifiers):
        if not reader.execute(_INSERT_IDENTIFIER, {"kind": kind, "value": value, "customer_id": customer_id}):
            conflicts = True
    return conflicts


async def _separated(session: AsyncSession, a: str, b: str) -> bool:
    found = await session.scalar(
        select(CustomerMerge.id)
        .where(
            CustomerMerge.undone_at.is_not(None),
            or_(
                and_(CustomerMerge.survivor_id == a, CustomerMerge.merged_id == b),
                and_(CustomerMerge.survivor_id == b, CustomerMerge.merged_id == a),
            ),
        )
        .limit(1)
    )
    return found is not None


async def merge_customers(
    session: AsyncSession, *, survivor_id: str, merged_id: str, trigger: str
) -> CustomerMerge:
    """Move everything of `merged_id` to `survivor_id`, listing what moved so it can be undone."""
    survivor = await session.get(Customer, survivor_id)
    merged = await session.get(Customer, merged_id)
    if survivor is None or merged is None:
        raise NotFound("both customers must exist")
    identifiers = [
        [r.kind, r.value]
        for r in (
            await session.execute(
                select(Identifier.kind, Identifier.value).where(Identifier.customer_id == merged_id)
            )
        ).all()
    ]
    feedback_ids = list(
        await session.scalars(
            select(FeedbackHistory.feedback_id).where(FeedbackHistory.customer_id == merged_id)
        )
    )
    visit_ids = list(await session.scalars(select(Visit.id).where(Visit.customer_id == merged_id)))
    await session.execute(
        update(Identifier).where(Identifier.customer_id == merged_id).values(customer_id=survivor_id)
    )
    await session.execute(
        update(FeedbackHistory)
        .where(FeedbackHistory.customer_id == merged_id)
        .values(customer_id=survivor_id)
    )
    await session.execute(update(Visit).where(Visit.customer_id == merged_id).values(customer_id=survivor_id))
    await session.execute(
        update(AlertHistory).where(AlertHistory.customer_id == merged_id).values(customer_id=survivor_id)
    )
    filled: dict[str, Any] = {}
    for key in MERGE_FILLABLE:
        if getattr(survivor, key) is None and getattr(merged, key) is not None:
            filled[key] = getattr(merged, key)
            setattr(survivor, key, filled[key])
    merged.merged_into = survivor_id
    merged.updated_at = survivor.updated_at = time.time()
    await session.execute(delete(CustomerSignals).where(CustomerSignals.customer_id == merged_id))
    await _invalidate_summaries(session, [survivor_id])
    record = CustomerMerge(
        id=uuid7(),
        survivor_id=survivor_id,
        merged_id=merged_id,
        identifiers=identifiers,
        feedback_ids=feedback_ids,
        visit_ids=visit_ids,
        filled=filled,
        trigger=trigger[:100],
        created_at=time.time(),
    )
    session.add(record)
    for feedback_id in feedback_ids:
        # The feedback service keeps the customer id of each item: tell it who it is now.
        await add_event(
            session,
            outbox_table,
            subject="voc.profile.feedback_linked",
            message=events_pb2.FeedbackLinked(feedback_id=feedback_id, customer_id=survivor_id),
            event_id=f"linked:{feedback_id}:{record.id}",
        )
    await audit(
        session,
        actor="system",
        action="merge",
        customer_id=survivor_id,
        detail={"merge_id": record.id, "merged_id": merged_id, "trigger": record.trigger},
    )
    await session.flush()
    return record


async def undo_merge(session: AsyncSession, *, merge_id: str, actor: str) -> CustomerMerge:
    """Give the merged customer back what was moved; the pair is never merged again."""
    record = await session.get(CustomerMerge, merge_id)
    if record is None:
        raise NotFound(f"No merge '{merge_id}'.")
    if record.undone_at is not None:
        raise Conflict(f"Merge '{merge_id}' was already undone.")
    survivor = await session.get(Customer, record.survivor_id)
    merged = await session.get(Customer, record.merged_id)
    if survivor is None or merged is None or survivor.erased_at or merged.erased_at:
        raise Conflict("A customer of this merge was erased; it cannot be undone.")
    for kind, value in record.identifiers:
        await session.execute(
            update(Identifier)
            .where(Identifier.kind == kind, Identifier.value == value, Identifier.customer_id == survivor.id)
            .values(customer_id=merged.id)
        )
    if record.feedback_ids:
        await session.execute(
            update(FeedbackHistory)
            .where(
                FeedbackHistory.feedback_id.in_(record.feedback_ids),
                FeedbackHistory.customer_id == survivor.id,
            )
            .values(customer_id=merged.id)
        )
        await session.execute(
            update(AlertHistory)
            .where(AlertHistory.feedback_id.in_(record.feedback_ids))
            .values(customer_id=merged.id)
        )
    if record.visit_ids:
        await session.execute(
            update(Visit)
            .where(Visit.id.in_(record.visit_ids), Visit.customer_id == survivor.id)
            .values(customer_id=merged.id)
        )
    for key, value in record.filled.items():
        if getattr(survivor, key) == value:
            setattr(survivor, key, None)
    merged.merged_into = None
    merged.updated_at = survivor.updated_at = time.time()
    await _invalidate_summaries(session, [survivor.id, merged.id])
    record.undone_at = time.time()
    record.undone_by = actor[:100]
    for feedback_id in record.feedback_ids:
        await add_event(
            session,
            outbox_table,
            subject="voc.profile.feedback_linked",
            message=events_pb2.FeedbackLinked(feedback_id=feedback_id, customer_id=merged.id),
            event_id=f"unlinked:{feedback_id}:{record.id}",
        )
    await audit(
        session,
        actor=actor,
        action="merge_undo",
        customer_id=survivor.id,
        detail={"merge_id": record.id, "merged_id": merged.id},
    )
    await session.flush()
    return record


async def _invalidate_summaries(session: AsyncSession, customer_ids: list[str]) -> None:
    """History moved between customers: their summaries no longer describe it. Readers use the
    history until the next event or the refresh pass (due now) rebuilds them."""
    await session.execute(
        update(CustomerSignals)
        .where(CustomerSignals.customer_id.in_(customer_ids))
        .values(summary=None, refresh_at=time.time())
    )


def merge_out(record: CustomerMerge) -> dict[str, Any]:
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


async def merges_of(session: AsyncSession, *, customer_id: str) -> list[CustomerMerge]:
    return list(
        await session.scalars(
            select(CustomerMerge)
            .where(or_(CustomerMerge.survivor_id == customer_id, CustomerMerge.merged_id == customer_id))
            .order_by(CustomerMerge.created_at)
        )
    )


async def live_customer(session: AsyncSession, *, customer_id: str) -> Customer | None:
    """The customer, following merges to the survivor (a few hops at most)."""
    customer = await session.get(Customer, customer_id)
    for _ in range(5):
        if customer is None or customer.merged_into is None:
            break
        customer = await session.get(Customer, customer.merged_into)
    return customer


# ---------------------------------------------------------------------------------------------
# Feedback history and signals
#
# The hot paths (each event, each context call) are plain Core statements on one connection,
# run synchronously inside one greenlet (`dbsync`, `session.run_sync`): only the columns they
# use, no ORM objects. Signals read the customer's summary (voc_profile.summary), which each
# event updates in place, never the whole history; the history is read only when the summary is
# missing or no longer describes it (a merge moved items, the oldest item left the year).


class CustomerFacts(Protocol):
    """What the context reads of a customer (a Core row, or a customer created just now)."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str | None: ...
    @property
    def tier(self) -> str: ...
    @property
    def lifetime_value(self) -> float: ...
    @property
    def preferred_language(self) -> str | None: ...
    @property
    def home_store_id(self) -> str | None: ...
    @property
    def contact_consent(self) -> bool: ...
    @property
    def household_id(self) -> str | None: ...
    @property
    def household_relation(self) -> str | None: ...


class VisitFacts(Protocol):
    @property
    def store_id(self) -> str: ...
    @property
    def visited_at(self) -> float: ...
    @property
    def amount(self) -> float: ...


class MemberFacts(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str | None: ...
    @property
    def household_relation(self) -> str | None: ...
    @property
    def tier(self) -> str: ...


@dataclass(frozen=True)
class NewCustomer:
    """A customer resolution created a moment ago: nothing else is on file yet."""

    id: str
    name: str | None
    tier: str = "basic"
    lifetime_value: float = 0.0
    preferred_language: str | None = None
    home_store_id: str | None = None
    contact_consent: bool = False
    household_id: str | None = None
    household_relation: str | None = None


def _context_query(where: Any) -> Select[Any]:
    c, s = _customers, _signals
    phone = (
        select(_identifiers.c.value)
        .where(_identifiers.c.customer_id == c.c.id, _identifiers.c.kind == "phone")
        .limit(1)
        .scalar_subquery()
    )
    in_window = _feedback.c.occurred_at >= bindparam("window_start")
    # Is the feedback being handled already in the history (then it must not count twice)?
    recorded = exists().where(
        _feedback.c.feedback_id == bindparam("current_id"), _feedback.c.customer_id == c.c.id, in_window
    )
    has_history = exists().where(_feedback.c.customer_id == c.c.id, in_window)
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
_CONTEXT_BY_ID = Prepared(_context_query(_customers.c.id == bindparam("customer_id")))
_IDENTIFIER_OWNER_QUERY = select(_identifiers.c.customer_id).where(
    _identifiers.c.kind == bindparam("kind"), _identifiers.c.value == bindparam("value")
)
_IDENTIFIER_OWNER = Prepared(_IDENTIFIER_OWNER_QUERY)
_CONTEXT_BY_IDENTIFIER = Prepared(
    _context_query(_customers.c.id == _IDENTIFIER_OWNER_QUERY.scalar_subquery())
)
_HISTORY = Prepared(
    select(*(_feedback.c[name] for name in summary.FIELDS))
    .where(
        _feedback.c.customer_id == bindparam("customer_id"),
        _feedback.c.occurred_at >= bindparam("window_start"),
    )
    .order_by(_feedback.c.occurred_at)
)
_LAST_VISITS = Prepared(
    select(_visits.c.store_id, _visits.c.visited_at, _visits.c.amount)
    .where(_visits.c.customer_id == bindparam("customer_id"))
    .order_by(_visits.c.visited_at.desc())
    .limit(5)
)
_RANK_QUERY = (
    select(func.count()).select_from(_signals).where(_signals.c.complaint_count_90d > bindparam("count"))
)
_RANK = Prepared(_RANK_QUERY)
_HOUSEHOLD = Prepared(
    select(_customers.c.id, _customers.c.name, _customers.c.household_relation, _customers.c.tier)
    .where(
        _customers.c.household_id == bindparam("household_id"),
        _customers.c.id != bindparam("customer_id"),
        _customers.c.erased_at.is_(None),
        _customers.c.merged_into.is_(None),
    )
    .limit(10)
)
_KNOWN = select(_identifiers.c.kind, _identifiers.c.value, _identifiers.c.customer_id).where(
    _identifiers.c.kind.in_(bindparam("kinds", expanding=True)),
    _identifiers.c.value.in_(bindparam("values", expanding=True)),
)
# Stored signal columns with an index: an UPDATE that sets one rewrites its index entry even to
# the same value, so only those that changed are set.
_INDEXED_SIGNALS = (
    "repeat_issue",
    "score_swing",
    "complaint_count_90d",
    "low_satisfaction",
    "churn_risk",
    "refresh_at",
)
# The stored signals of one customer, for an update. PostgreSQL: the customer row is locked first
# (concurrent events of one customer update its summary one after the other), then the state is
# read by a statement of its own, which sees what the previous holder of the lock committed.
_SIGNAL_STATE = Prepared(
    select(
        _customers.c.erased_at,
        _customers.c.merged_into,
        _signals.c.customer_id.label("signals_row"),
        _signals.c.summary,
        *(_signals.c[name] for name in _INDEXED_SIGNALS),
        # Any history besides the item just added (a first feedback needs no history read).
        exists()
        .where(
            _feedback.c.customer_id == _customers.c.id,
            _feedback.c.feedback_id != bindparam("added_id"),
            _feedback.c.occurred_at >= bindparam("window_start"),
        )
        .label("other_history"),
    )
    .select_from(_customers.outerjoin(_signals, _signals.c.customer_id == _customers.c.id))
    .where(_customers.c.id == bindparam("customer_id"))
)
_LOCK_CUSTOMER = Prepared(
    select(_customers.c.id)
    .where(_customers.c.id == bindparam("customer_id"))
    # FOR NO KEY UPDATE: the history insert before it holds the customer row FOR KEY SHARE
    # (foreign key), which FOR UPDATE would wait on; two such events would deadlock.
    .with_for_update(key_share=True)
)
_UPDATE_SIGNALS = Prepared(update(_signals).where(_signals.c.customer_id == bindparam("b_customer_id")))
_INSERT_SIGNALS = Prepared(insert(_signals))
_DELETE_SIGNALS = Prepared(delete(_signals).where(_signals.c.customer_id == bindparam("customer_id")))
_INSERT_FEEDBACK = Prepared(lambda dialect: insert_ignore(dialect, _feedback))
_INSERT_CUSTOMER = Prepared(insert(_customers))
_INSERT_IDENTIFIER = Prepared(lambda dialect: insert_ignore(dialect, _identifiers))


async def record_feedback(
    session: AsyncSession,
    *,
    customer_id: str,
    facts: dict[str, Any],
    settings: Settings,
    now: float | None = None,
) -> bool:
    """Add one feedback item to the history and update the customer's stored signals.

    The signals follow from the customer's summary plus this item: no history read, however
    long the history. False (and nothing written) when the item is already on file.
    """
    return await session.run_sync(
        lambda s: _record_feedback_sync(
            Reader.of(s.connection()), customer_id, facts, settings, now or time.time()
        )
    )


def _record_feedback_sync(
    reader: Reader, customer_id: str, facts: dict[str, Any], settings: Settings, now: float
) -> bool:
    if not reader.execute(_INSERT_FEEDBACK, {**facts, "customer_id": customer_id}):
        return False
    _store_signals(reader, customer_id, settings=settings, now=now, added=facts)
    return True


@dataclass
class Signals:
    repeat_issue: bool = False
    repeat_counts: dict[str, int] = field(default_factory=dict)
    score_swing: bool = False
    score_swing_delta: float = 0.0
    complaint_count_90d: int = 0
    chronic_complainer: bool = False
    chronic_rank: int = 0
    low_satisfaction: bool = False
    churn_risk: bool = False
    vip: bool = False
    reasons: list[dict[str, Any]] = field(default_factory=list)
    satisfaction_mean: float | None = None
    pending_intent_at: float | None = None
    refresh_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "repeat_issue": self.repeat_issue,
            "repeat_counts": self.repeat_counts,
            "score_swing": self.score_swing,
            "score_swing_delta": self.score_swing_delta,
            "complaint_count_90d": self.complaint_count_90d,
            "chronic_complainer": self.chronic_complainer,
            "chronic_rank": self.chronic_rank,
            "low_satisfaction": self.low_satisfaction,
            "churn_risk": self.churn_risk,
            "vip": self.vip,
            "reasons": self.reasons,
        }


@dataclass
class Context:
    customer: CustomerFacts | None
    signals: Signals
    visits: Sequence[VisitFacts]
    # The last (up to 5) feedback items, in time order, and how many there are in the year.
    recent: list[dict[str, Any]]
    feedback_count: int
    mean_csat: float | None
    phone: str | None
    household: Sequence[MemberFacts] = ()

    def to_dict(self) -> dict[str, Any]:
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
            "contact_consent": c.contact_consent if c else False,
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
                    "feedback_id": i["feedback_id"],
                    "store_id": i.get("store_id", ""),
                    "channel": i.get("channel", ""),
                    "category": i["category"],
                    "sentiment": i["sentiment"],
                    "csat": i.get("csat"),
                    "occurred_at": i["occurred_at"],
                }
                for i in reversed(self.recent[-5:])
            ],
            "last_visits": [
                {"store_id": v.store_id, "visited_at": v.visited_at, "amount": v.amount} for v in self.visits
            ],
            "signals": self.signals.to_dict(),
        }


def _no_context() -> Context:
    return Context(None, Signals(), [], [], 0, None, None)


def _history_item(h: FeedbackHistory) -> dict[str, Any]:
    return {
        "feedback_id": h.feedback_id,
        "store_id": h.store_id,
        "channel": h.channel,
        "category": h.category,
        "sentiment": h.sentiment,
        "csat": h.csat,
        "nps": h.nps,
        "occurred_at": h.occurred_at,
        "revisit_intent": h.revisit_intent,
    }


def _history_sync(reader: Reader, customer_id: str, now: float) -> list[dict[str, Any]]:
    """The customer's feedback facts of the last 365 days, in time order."""
    rows = reader.all(_HISTORY, {"customer_id": customer_id, "window_start": now - summary.HISTORY_SECONDS})
    return [row._asdict() for row in rows]


def _last_visits_sync(reader: Reader, customer_id: str) -> list[Any]:
    return reader.all(_LAST_VISITS, {"customer_id": customer_id})


async def chronic_rank(session: AsyncSession, *, complaint_count: int, settings: Settings) -> int:
    """1 + the customers with strictly more complaints in the window; 0 below the minimum."""
    if complaint_count < settings.chronic_min_count:
        return 0
    above = await session.scalar(_RANK_QUERY, {"count": complaint_count})
    return 1 + int(above or 0)


def _chronic_rank_sync(reader: Reader, complaint_count: int, settings: Settings) -> int:
    if complaint_count < settings.chronic_min_count:
        return 0
    return 1 + int(reader.scalar(_RANK, {"count": complaint_count}) or 0)


def apply_chronic(signals: Signals, *, rank: int, settings: Settings, feedback_ids: list[str]) -> None:
    signals.chronic_rank = rank
    if rank and rank <= settings.chronic_top_n:
        signals.chronic_complainer = True
        signals.reasons.append(
            {
                "signal": "chronic_complainer",
                "reason": (
                    f"rank {rank}: {signals.complaint_count_90d} complaints in "
                    f"{settings.chronic_window_days} days"
                ),
                "feedback_ids": feedback_ids,
            }
        )


async def customer_context(
    session: AsyncSession,
    *,
    customer_id: str,
    settings: Settings,
    current: dict[str, Any] | None = None,
    now: float | None = None,
) -> Context:
    """Attributes, last visits, household and signals; `current` (a feedback not yet recorded)
    counts too."""
    moment = now or time.time()
    return await session.run_sync(
        lambda s: context_sync(
            Reader.of(s.connection()), customer_id=customer_id, settings=settings, current=current, now=moment
        )
    )


def context_sync(
    reader: Reader,
    *,
    customer_id: str,
    settings: Settings,
    current: dict[str, Any] | None = None,
    now: float | None = None,
) -> Context:
    """`customer_context` with a reader (callers batch it with their other statements)."""
    now = now or time.time()
    params = _context_params(current, now)
    row = reader.first(_CONTEXT_BY_ID, {**params, "customer_id": customer_id})
    return _assemble(reader, _follow_merges(reader, row, params), settings=settings, current=current, now=now)


def context_by_identifiers_sync(
    reader: Reader,
    *,
    identifiers: list[tuple[str, str]],
    settings: Settings,
    current: dict[str, Any] | None = None,
    now: float | None = None,
) -> Context | None:
    """The context of the customer these identifiers resolve to without writing (every one on
    file, all for one customer); None when they do not (the caller resolves, which may create
    or merge). One identifier, the usual case: a single statement finds and reads the customer.
    """
    now = now or time.time()
    params = _context_params(current, now)
    if len(identifiers) == 1:
        [(kind, value)] = identifiers
        row = reader.first(_CONTEXT_BY_IDENTIFIER, {**params, "kind": kind, "value": value})
        if row is None:
            return None
    else:
        customer_id = _lookup_sync(reader, identifiers)
        if customer_id is None:
            return None
        row = reader.first(_CONTEXT_BY_ID, {**params, "customer_id": customer_id})
    return _assemble(reader, _follow_merges(reader, row, params), settings=settings, current=current, now=now)


def new_customer_context(
    reader: Reader,
    *,
    customer: NewCustomer,
    phone: str | None,
    settings: Settings,
    current: dict[str, Any] | None = None,
    now: float | None = None,
) -> Context:
    """The context of a customer created in this transaction: no history, visits or household
    yet, so only the feedback being handled counts (no statement unless it needs a rank)."""
    now = now or time.time()
    items = [current] if current else []
    return _context_of(
        reader, customer, phone, items, len(items), settings=settings, current=current, now=now
    )


def context_after_resolution(
    reader: Reader,
    resolution: Resolution,
    *,
    name: str | None,
    identifiers: list[tuple[str, str]],
    settings: Settings,
    current: dict[str, Any] | None = None,
    now: float | None = None,
) -> Context:
    """The context of the customer `resolve` just gave, in its transaction."""
    if resolution.customer_id is None:
        return _no_context()
    if resolution.created and not resolution.conflicts:
        phone = next((value for kind, value in identifiers if kind == "phone"), None)
        return new_customer_context(
            reader,
            customer=NewCustomer(resolution.customer_id, name),
            phone=phone,
            settings=settings,
            current=current,
            now=now,
        )
    return context_sync(
        reader, customer_id=resolution.customer_id, settings=settings, current=current, now=now
    )


def _context_params(current: dict[str, Any] | None, now: float) -> dict[str, Any]:
    return {
        "current_id": current["feedback_id"] if current else "",
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
    reader: Reader, row: Any, *, settings: Settings, current: dict[str, Any] | None, now: float
) -> Context:
    if row is None or row.erased_at is not None:
        return _no_context()
    shape = summary.Shape.of(settings)
    if summary.usable(row.summary, shape=shape, now=now):
        items = summary.items(row.summary)
        count, csat_sum, csat_n = row.summary["n"], row.summary["csat_sum"], row.summary["csat_n"]
    else:
        items = _history_sync(reader, row.id, now) if row.signals_row is not None or row.has_history else []
        csats = [i["csat"] for i in items if i["csat"] is not None]
        count, csat_sum, csat_n = len(items), sum(csats), len(csats)
    if current and not row.current_recorded:
        items.append(current)
        count += 1
        if current.get("csat") is not None:
            csat_sum += current["csat"]
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
        read=True,
    )


def _context_of(
    reader: Reader,
    customer: CustomerFacts,
    phone: str | None,
    items: list[dict[str, Any]],
    count: int,
    *,
    settings: Settings,
    current: dict[str, Any] | None,
    now: float,
    csat: tuple[int, int] | None = None,
    read: bool = False,
) -> Context:
    """`items`: the history the signals read (the whole of it, or the summary's part of it)."""
    visits = _last_visits_sync(reader, customer.id) if read else []
    signals = compute_signals(
        items,
        customer=customer,
        visits=visits,
        settings=settings,
        now=now,
        current_id=current["feedback_id"] if current else None,
    )
    rank = _chronic_rank_sync(reader, signals.complaint_count_90d, settings)
    apply_chronic(
        signals, rank=rank, settings=settings, feedback_ids=_window_complaints(items, settings, now)
    )
    household: list[Any] = []
    if customer.household_id:
        household = reader.all(
            _HOUSEHOLD, {"household_id": customer.household_id, "customer_id": customer.id}
        )
    if csat is None:
        scores = [i["csat"] for i in items if i.get("csat") is not None]
        csat = (sum(scores), len(scores))
    return Context(
        customer,
        signals,
        visits,
        items[-5:],
        count,
        round(csat[0] / csat[1], 2) if csat[1] else None,
        phone,
        household,
    )


def _window_complaints(items: list[dict[str, Any]], settings: Settings, now: float) -> list[str]:
    since = now - settings.chronic_window_days * DAY
    return [i["feedback_id"] for i in items if i["sentiment"] == "negative" and i["occurred_at"] >= since]


def compute_signals(
    items: list[dict[str, Any]],
    *,
    customer: CustomerFacts | None,
    visits: Sequence[VisitFacts],
    settings: Settings,
    now: float,
    current_id: str | None,
) -> Signals:
    """Every signal but the chronic rank (which needs the other customers), each with its reason.

    `items` are this customer's feedback facts in time order (the whole history of the year, or
    the part of it its summary keeps: the result is the same). Without a customer, no `vip`.
    """
    s = Signals()
    upcoming: list[float] = []  # when a window next moves: the stored signals need a refresh then
    complaints = [i for i in items if i["sentiment"] == "negative"]
    recent = [i for i in complaints if i["occurred_at"] >= now - settings.repeat_window_days * DAY]
    upcoming += [i["occurred_at"] + settings.repeat_window_days * DAY for i in recent[:1]]
    counts = Counter(i["category"] for i in recent)
    s.repeat_counts = dict(counts)
    for category, count in sorted(counts.items()):
        if count >= settings.repeat_min_count:
            s.repeat_issue = True
            s.reasons.append(
                {
                    "signal": "repeat_issue",
                    "reason": f"{count} complaints about {category} in {settings.repeat_window_days} days",
                    "feedback_ids": [i["feedback_id"] for i in recent if i["category"] == category],
                }
            )
    # Score swing: the latest score against the rolling mean of the ones just before it.
    for scale, threshold in (("csat", settings.swing_csat_points), ("nps", settings.swing_nps_points)):
        scored = [i for i in items if i.get(scale) is not None]
        if s.score_swing or len(scored) < 2:
            continue
        last, before = scored[-1], scored[-1 - settings.swing_window : -1]
        mean = sum(i[scale] for i in before) / len(before)
        delta = last[scale] - mean
        if -delta >= threshold:
            s.score_swing, s.score_swing_delta = True, round(delta, 2)
            s.reasons.append(
                {
                    "signal": "score_swing",
                    "reason": f"{scale.upper()} {last[scale]} vs rolling mean {mean:.1f} of {len(before)}",
                    "feedback_ids": [last["feedback_id"]] + [i["feedback_id"] for i in before],
                }
            )
    window = [i for i in complaints if i["occurred_at"] >= now - settings.chronic_window_days * DAY]
    s.complaint_count_90d = len(window)
    upcoming += [i["occurred_at"] + settings.chronic_window_days * DAY for i in window[:1]]
    rated = [i for i in items if i.get("csat") is not None]
    if rated:
        latest = rated[-settings.low_satisfaction_window :]
        s.satisfaction_mean = round(sum(i["csat"] for i in latest) / len(latest), 2)
        if s.satisfaction_mean < settings.low_satisfaction_csat:
            s.low_satisfaction = True
            s.reasons.append(
                {
                    "signal": "low_satisfaction",
                    "reason": f"mean CSAT {s.satisfaction_mean:.1f} over the last {len(latest)}",
                    "feedback_ids": [i["feedback_id"] for i in latest],
                }
            )
    intents = [i for i in items if i.get("revisit_intent") and i["feedback_id"] != current_id]
    if intents:
        said = intents[-1]
        came_back = any(v.visited_at > said["occurred_at"] for v in visits)
        if not came_back:
            s.pending_intent_at = said["occurred_at"]
            due = said["occurred_at"] + settings.churn_window_days * DAY
            if now >= due:
                s.churn_risk = True
                s.reasons.append(
                    {
                        "signal": "churn_risk",
                        "reason": f"said they would return, no visit in {settings.churn_window_days} days",
                        "feedback_ids": [said["feedback_id"]],
                    }
                )
            else:
                upcoming.append(due)
    if customer is not None and is_vip(customer, settings):
        s.vip = True
        s.reasons.append(
            {
                "signal": "vip",
                "reason": f"tier {customer.tier}, lifetime value {customer.lifetime_value:,.0f}",
                "feedback_ids": [],
            }
        )
    s.refresh_at = min(upcoming) if upcoming else None
    return s


def is_vip(customer: CustomerFacts, settings: Settings) -> bool:
    return customer.tier in settings.vip_tiers or customer.lifetime_value >= settings.vip_lifetime_value


async def refresh_signals(
    session: AsyncSession, *, customer_id: str, settings: Settings, now: float | None = None
) -> Signals | None:
    """Recompute one customer's stored signals and summary from the history (the lists read
    these rows); None (and the row removed) for an erased or merged customer."""
    moment = now or time.time()
    return await session.run_sync(
        lambda s: _store_signals(
            Reader.of(s.connection()), customer_id, settings=settings, now=moment, added=None
        )
    )


def _store_signals(
    reader: Reader, customer_id: str, *, settings: Settings, now: float, added: dict[str, Any] | None
) -> Signals | None:
    """Write the customer's stored signals: from the summary plus `added` (an item just put in
    the history) when the summary is usable, else rebuilt from the history."""
    params = {"customer_id": customer_id}
    if reader.dialect.name == "postgresql" and reader.first(_LOCK_CUSTOMER, params) is None:
        return None  # no such customer (nothing to lock)
    stored = reader.first(
        _SIGNAL_STATE,
        {
            **params,
            "added_id": added["feedback_id"] if added else "",
            "window_start": now - summary.HISTORY_SECONDS,
        },
    )
    if stored is None or stored.erased_at is not None or stored.merged_into is not None:
        reader.execute(_DELETE_SIGNALS, params)
        return None
    row_exists = stored.signals_row is not None
    current_summary = stored.summary if row_exists else None
    shape = summary.Shape.of(settings)
    if (
        added is not None
        and current_summary is not None
        and summary.usable(current_summary, shape=shape, now=now)
    ):
        kept = summary.add(current_summary, added, shape=shape, now=now)
    elif added is not None and not row_exists and not stored.other_history:
        kept = summary.build([added], shape=shape, now=now)  # the customer's first feedback
    else:
        kept = summary.build(_history_sync(reader, customer_id, now), shape=shape, now=now)
    items = summary.items(kept)
    # Visits matter only to a stated revisit intent (churn risk).
    visits = _last_visits_sync(reader, customer_id) if any(i["revisit_intent"] for i in items) else []
    s = compute_signals(items, customer=None, visits=visits, settings=settings, now=now, current_id=None)
    expiry = summary.expires_at(kept)
    refresh_at = min((t for t in (s.refresh_at, expiry) if t is not None), default=None)
    values = {
        "repeat_issue": s.repeat_issue,
        "score_swing": s.score_swing,
        "complaint_count_90d": s.complaint_count_90d,
        "low_satisfaction": s.low_satisfaction,
        "churn_risk": s.churn_risk,
        "satisfaction_mean": s.satisfaction_mean,
        "pending_intent_at": s.pending_intent_at,
        "reasons": s.reasons,  # never `vip`: that one follows the CRM attributes, read live
        "refresh_at": refresh_at,
        "updated_at": now,
        "summary": kept,
    }
    if row_exists:
        for name in _INDEXED_SIGNALS:
            if values[name] == getattr(stored, name):
                del values[name]
        reader.execute(_UPDATE_SIGNALS, {**values, "b_customer_id": customer_id})
    else:
        reader.execute(_INSERT_SIGNALS, {**values, "customer_id": customer_id})
    return s


async def due_for_refresh(session: AsyncSession, *, now: float, limit: int = 500) -> list[str]:
    return list(
        await session.scalars(
            select(CustomerSignals.customer_id)
            .where(CustomerSignals.refresh_at.is_not(None), CustomerSignals.refresh_at <= now)
            .limit(limit)
        )
    )


# ---------------------------------------------------------------------------------------------
# Lists by signal


@dataclass
class ListedCustomer:
    customer: Customer
    complaint_count_90d: int
    chronic_rank: int
    reasons: list[dict[str, Any]]


async def list_by_signal(
    session: AsyncSession,
    *,
    signal: str,
    settings: Settings,
    limit: int,
    after: tuple[int, str] | None,
) -> tuple[list[ListedCustomer], tuple[int, str] | None]:
    """One page of customers with `signal` set, and the keyset cursor of the next page.

    Chronic complainers come by rank (most complaints first); the others by customer id.
    """
    if signal not in SIGNALS:
        raise ValueError(f"unknown signal '{signal}'")
    live = and_(Customer.erased_at.is_(None), Customer.merged_into.is_(None))
    listed: list[ListedCustomer] = []
    if signal == "vip":
        vip_query = select(Customer).where(
            live,
            or_(
                Customer.tier.in_(settings.vip_tiers), Customer.lifetime_value >= settings.vip_lifetime_value
            ),
        )
        if after:
            vip_query = vip_query.where(Customer.id > after[1])
        for c in await session.scalars(vip_query.order_by(Customer.id).limit(limit + 1)):
            reason = {
                "signal": "vip",
                "reason": f"tier {c.tier}, lifetime value {c.lifetime_value:,.0f}",
                "feedback_ids": [],
            }
            listed.append(ListedCustomer(c, 0, 0, [reason]))
    elif signal == "chronic_complainer":
        count_col = CustomerSignals.complaint_count_90d
        ranked_query = (
            select(Customer, CustomerSignals)
            .join(CustomerSignals, CustomerSignals.customer_id == Customer.id)
            .where(live, count_col >= settings.chronic_min_count)
        )
        if after:
            ranked_query = ranked_query.where(
                or_(count_col < after[0], and_(count_col == after[0], Customer.id > after[1]))
            )
        ordered = ranked_query.order_by(count_col.desc(), Customer.id).limit(limit + 1)
        rows = (await session.execute(ordered)).all()
        ranks: dict[int, int] = {}
        for c, sig in rows:
            if sig.complaint_count_90d not in ranks:
                ranks[sig.complaint_count_90d] = await chronic_rank(
                    session, complaint_count=sig.complaint_count_90d, settings=settings
                )
            rank = ranks[sig.complaint_count_90d]
            if rank > settings.chronic_top_n:
                break
            reason = {
                "signal": "chronic_complainer",
                "reason": (
                    f"rank {rank}: {sig.complaint_count_90d} complaints in "
                    f"{settings.chronic_window_days} days"
                ),
                "feedback_ids": [],
            }
            listed.append(ListedCustomer(c, sig.complaint_count_90d, rank, [reason]))
    else:
        flag = getattr(CustomerSignals, signal)
        flag_query = (
            select(Customer, CustomerSignals)
            .join(CustomerSignals, CustomerSignals.customer_id == Customer.id)
            .where(live, flag.is_(True))
        )
        if after:
            flag_query = flag_query.where(Customer.id > after[1])
        for c, sig in (await session.execute(flag_query.order_by(Customer.id).limit(limit + 1))).all():
            reasons = [r for r in sig.reasons if r["signal"] == signal]
            listed.append(ListedCustomer(c, sig.complaint_count_90d, 0, reasons))
    next_after = None
    if len(listed) > limit:
        listed = listed[:limit]
        last = listed[-1]
        next_after = (last.complaint_count_90d, last.customer.id)
    return listed, next_after


# ---------------------------------------------------------------------------------------------
# Reports and timeline


async def revisit_report(
    session: AsyncSession, *, settings: Settings, lookback_days: int, now: float | None = None
) -> list[dict[str, Any]]:
    """Per store: how many said they would come back, and how many did within the window.

    Only statements older than the window count (each had its full chance to come true).
    """
    now = now or time.time()
    window = settings.churn_window_days * DAY
    h = FeedbackHistory
    same_store = exists().where(
        Visit.customer_id == h.customer_id,
        Visit.store_id == h.store_id,
        Visit.visited_at > h.occurred_at,
        Visit.visited_at <= h.occurred_at + window,
    )
    any_store = exists().where(
        Visit.customer_id == h.customer_id,
        Visit.visited_at > h.occurred_at,
        Visit.visited_at <= h.occurred_at + window,
    )
    rows = (
        await session.execute(
            select(
                h.store_id,
                func.count(),
                func.sum(case((same_store, 1), else_=0)),
                func.sum(case((any_store, 1), else_=0)),
            )
            .where(
                h.revisit_intent.is_(True),
                h.occurred_at >= now - lookback_days * DAY,
                h.occurred_at <= now - window,
            )
            .group_by(h.store_id)
            .order_by(h.store_id)
        )
    ).all()
    report = []
    for store_id, stated, returned, returned_any in rows:
        returned, returned_any = int(returned or 0), int(returned_any or 0)
        report.append(
            {
                "store_id": store_id,
                "stated_intent": int(stated),
                "returned": returned,
                "returned_any_store": returned_any,
                "revisit_rate": round(returned / stated, 3) if stated else None,
                "window_days": settings.churn_window_days,
            }
        )
    return report


async def timeline(session: AsyncSession, *, customer_id: str, limit: int) -> list[dict[str, Any]]:
    """Feedback from every channel, visits and alerts with their outcomes, newest first."""
    entries: list[dict[str, Any]] = []
    for h in await session.scalars(
        select(FeedbackHistory)
        .where(FeedbackHistory.customer_id == customer_id)
        .order_by(FeedbackHistory.occurred_at.desc())
        .limit(limit)
    ):
        entries.append({"kind": "feedback", "at": h.occurred_at, **_history_item(h), "severity": h.severity})
    for v in await session.scalars(
        select(Visit).where(Visit.customer_id == customer_id).order_by(Visit.visited_at.desc()).limit(limit)
    ):
        entries.append({"kind": "visit", "at": v.visited_at, "store_id": v.store_id, "amount": v.amount})
    for a in await session.scalars(
        select(AlertHistory)
        .where(AlertHistory.customer_id == customer_id)
        .order_by(AlertHistory.created_at.desc())
        .limit(limit)
    ):
        entries.append(
            {
                "kind": "alert",
                "at": a.created_at,
                "alert_id": a.alert_id,
                "feedback_id": a.feedback_id,
                "store_id": a.store_id,
                "priority": a.priority,
                "status": a.status,
                "outcome": a.outcome,
                "updated_at": a.updated_at,
            }
        )
    entries.sort(key=lambda e: e["at"], reverse=True)
    return entries[:limit]


# The customer of a feedback item, for an alert that does not name one.
_FEEDBACK_OWNER = (
    select(_feedback.c.customer_id).where(_feedback.c.feedback_id == bindparam("owner_of")).scalar_subquery()
)
# The rank of each alert status: an event never moves an alert back (they may arrive out of order).
_STATUS_RANK = {"open": 0, "escalated": 0, "acknowledged": 1, "resolved": 2}
_FORWARD = bindparam("rank", type_=Integer) >= case(
    *((_alerts.c.status == name, rank) for name, rank in _STATUS_RANK.items() if rank), else_=0
)
_PROGRESS = update(_alerts).where(_alerts.c.alert_id == bindparam("progressed_id"))
_PROGRESS_VALUES = {
    "status": case((_FORWARD, bindparam("new_status", type_=String)), else_=_alerts.c.status),
    "updated_at": case((_FORWARD, bindparam("new_at", type_=Float)), else_=_alerts.c.updated_at),
}
_PROGRESS_KEEP_OUTCOME = Prepared(_PROGRESS.values(_PROGRESS_VALUES))
_PROGRESS_WITH_OUTCOME = Prepared(
    _PROGRESS.values({**_PROGRESS_VALUES, "outcome": bindparam("new_outcome", type_=String)})
)
_INSERT_ALERT = Prepared(lambda dialect: insert_ignore(dialect, _alerts))
_INSERT_ALERT_OF_FEEDBACK = Prepared(
    lambda dialect: insert_ignore(dialect, _alerts).values(customer_id=_FEEDBACK_OWNER)
)


def record_alert_sync(
    reader: Reader,
    *,
    alert_id: str,
    feedback_id: str,
    customer_id: str | None,
    store_id: str,
    priority: str,
    at: float,
) -> None:
    """Add an alert to its customer's timeline (the feedback's customer when the alert names
    none); nothing when it is already there. One statement, in the caller's `dbsync` hop."""
    values: dict[str, Any] = {
        "alert_id": alert_id,
        "feedback_id": feedback_id,
        "store_id": store_id,
        "priority": priority,
        "status": "open",
        "created_at": at,
        "updated_at": at,
    }
    if customer_id:
        reader.execute(_INSERT_ALERT, {**values, "customer_id": customer_id})
    else:
        reader.execute(_INSERT_ALERT_OF_FEEDBACK, {**values, "owner_of": feedback_id})


async def record_alert(
    session: AsyncSession,
    *,
    alert_id: str,
    feedback_id: str,
    customer_id: str | None,
    store_id: str,
    priority: str,
    at: float,
) -> None:
    """`record_alert_sync` in the session's transaction."""
    await session.run_sync(
        lambda s: record_alert_sync(
            Reader.of(s.connection()),
            alert_id=alert_id,
            feedback_id=feedback_id,
            customer_id=customer_id,
            store_id=store_id,
            priority=priority,
            at=at,
        )
    )


def alert_progress_sync(
    reader: Reader, *, alert_id: str, status: str, outcome: str | None, at: float
) -> bool:
    """Move an alert forward (open -> acknowledged -> resolved); False when not yet known.
    One statement: the status only moves forward, an outcome is kept once given."""
    params: dict[str, Any] = {
        "rank": _STATUS_RANK.get(status, 0),
        "new_status": status,
        "new_at": at,
        "progressed_id": alert_id,
    }
    stmt = _PROGRESS_KEEP_OUTCOME
    if outcome:
        stmt, params = _PROGRESS_WITH_OUTCOME, {**params, "new_outcome": outcome[:64]}
    return bool(reader.execute(stmt, params))


async def alert_progress(
    session: AsyncSession, *, alert_id: str, status: str, outcome: str | None, at: float
) -> bool:
    """`alert_progress_sync` in the session's transaction."""
    progressed: bool = await session.run_sync(
        lambda s: alert_progress_sync(
            Reader.of(s.connection()), alert_id=alert_id, status=status, outcome=outcome, at=at
        )
    )
    return progressed


# ---------------------------------------------------------------------------------------------
# CRM upsert


async def upsert_customer(
    session: AsyncSession, *, data: dict[str, Any], region: str, actor: str = "system"
) -> tuple[str, bool]:
    """Create or update a CRM customer by its identifiers (used by the JSON API and seeding)."""
    identifiers = normalize(
        loyalty_id=data.get("loyalty_id") or "",
        phone=data.get("phone") or "",
        email=data.get("email") or "",
        channel_user_id=data.get("app_user_id") or "",
        channel="app" if data.get("app_user_id") else "",
        region=region,
    )
    if not identifiers:
        raise ValueError("a customer needs at least one identifier")
    resolution = await resolve(
        session, identifiers=identifiers, name=data.get("name"), create_if_missing=True, trigger="crm upsert"
    )
    assert resolution.customer_id is not None
    customer = await session.get(Customer, resolution.customer_id)
    assert customer is not None
    for key in CRM_FIELDS:
        if data.get(key) is not None:
            setattr(customer, key, data[key])
    customer.updated_at = time.time()
    await audit(
        session,
        actor=actor,
        action="create" if resolution.created else "update",
        customer_id=customer.id,
        detail={"fields": sorted(k for k in CRM_FIELDS if data.get(k) is not None)},
    )
    await session.flush()
    return customer.id, resolution.created


CRM_FIELDS = (
    "name",
    "tier",
    "lifetime_value",
    "preferred_language",
    "home_store_id",
    "contact_consent",
    "household_id",
    "household_relation",
)


def customer_out(customer: Customer) -> dict[str, Any]:
    return {
        "id": customer.id,
        "name": customer.name,
        "tier": customer.tier,
        "lifetime_value": customer.lifetime_value,
        "preferred_language": customer.preferred_language,
        "home_store_id": customer.home_store_id,
        "contact_consent": customer.contact_consent,
        "household_id": customer.household_id,
        "household_relation": customer.household_relation,
        "merged_into": customer.merged_into,
        "created_at": customer.created_at,
        "updated_at": customer.updated_at,
    }


# ---------------------------------------------------------------------------------------------
# Privacy: erasure and subject access


async def erase_customer(session: AsyncSession, *, customer_id: str, actor: str) -> list[str]:
    """Remove the personal data of this person (and of every record merged into it).

    Identifiers are deleted and attributes cleared; the feedback facts and visits stay as
    anonymous statistics under an id that no longer leads to anyone. One `CustomerErased` event
    per id tells the holders of copies to redact theirs.
    """
    start = await session.get(Customer, customer_id)
    if start is None:
        raise NotFound(f"No customer '{customer_id}'.")
    person = await live_customer(session, customer_id=customer_id)
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
    await session.execute(
        update(Customer)
        .where(Customer.id.in_(targets))
        .values(
            name=None,
            tier="basic",
            lifetime_value=0.0,
            preferred_language=None,
            home_store_id=None,
            contact_consent=False,
            attributes={},
            household_id=None,
            household_relation=None,
            import_id=None,
            erased_at=now,
            updated_at=now,
        )
    )
    # Merge records listed the identifiers that moved: those are personal data too.
    await session.execute(
        update(CustomerMerge)
        .where(or_(CustomerMerge.survivor_id.in_(targets), CustomerMerge.merged_id.in_(targets)))
        .values(identifiers=[], filled={})
    )
    for target in targets:
        await add_event(
            session,
            outbox_table,
            subject="voc.profile.customer_erased",
            message=events_pb2.CustomerErased(customer_id=target, erased_at_ms=int(now * 1000)),
            event_id=f"erased:{target}",
        )
    await audit(session, actor=actor, action="erase", customer_id=person.id, detail={"customer_ids": targets})
    await session.flush()
    return targets


async def subject_export(session: AsyncSession, *, customer_id: str) -> dict[str, Any]:
    """Everything held about this person (GDPR / PIPA subject access)."""
    customer = await session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"No customer '{customer_id}'.")
    if customer.erased_at is not None:
        raise Gone(f"Customer '{customer_id}' was erased.")
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
    audit_rows = await session.scalars(
        select(AuditEntry).where(AuditEntry.customer_id.in_(ids)).order_by(AuditEntry.at)
    )
    return {
        "customer": customer_out(customer),
        "identifiers": [{"kind": k, "value": v} for k, v in identifiers],
        "feedback": [{**_history_item(h), "severity": h.severity} for h in history],
        "visits": [{"store_id": v.store_id, "visited_at": v.visited_at, "amount": v.amount} for v in visits],
        "alerts": [
            {"alert_id": a.alert_id, "feedback_id": a.feedback_id, "status": a.status, "outcome": a.outcome}
            for a in alerts
        ],
        "signals": (
            {
                "repeat_issue": signals.repeat_issue,
                "score_swing": signals.score_swing,
                "complaint_count_90d": signals.complaint_count_90d,
                "low_satisfaction": signals.low_satisfaction,
                "churn_risk": signals.churn_risk,
                "reasons": signals.reasons,
            }
            if signals
            else None
        ),
        "merges": [merge_out(m) for m in await merges_of(session, customer_id=customer.id)],
        "access_log": [
            {"at": a.at, "actor": a.actor, "action": a.action, "detail": a.detail} for a in audit_rows
        ],
    }
