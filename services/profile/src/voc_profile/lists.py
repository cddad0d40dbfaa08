"""Lists of customers by signal, for outreach: keyset pages (REST cursor, gRPC page token), and
the whole list with contact details for the CSV export; limited in the query to the customers of
a set of stores when the reader is (a store manager's, an area manager's)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from voc_platform.db import Database
from voc_platform.errors import FieldError, Invalid
from voc_profile import signals
from voc_profile.facts import Reason
from voc_profile.models import Customer, CustomerSignals, FeedbackHistory, Identifier, Visit
from voc_profile.sessions import in_session
from voc_profile.settings import Settings
from voc_profile.signals import SIGNALS

# Where a page ends: (complaint count, customer id) of its last customer.
After = tuple[int, str]
EXPORT_PAGE = 500
# What a keyset position may hold: the count is compared with an INTEGER column, signed 32-bit
# on PostgreSQL (a count past int64 overflowed SQLite's driver, past int32 asyncpg's: 500, or a
# CSV export cut off mid-body); the id is a customer id (NUL cannot go to PostgreSQL).
_COUNT_RANGE = range(-(2**31), 2**31)
_CUSTOMER_ID_MAX = 36


def keyset_after(count: object, customer_id: object) -> After | None:
    """The keyset position a decoded REST cursor or gRPC page token names, or None when its
    values are none this service issues (each caller refuses it naming its own field)."""
    if isinstance(count, bool) or not isinstance(count, int) or count not in _COUNT_RANGE:
        return None
    if not isinstance(customer_id, str) or not 0 < len(customer_id) <= _CUSTOMER_ID_MAX:
        return None
    if "\x00" in customer_id:
        return None
    return count, customer_id


@dataclass(frozen=True, slots=True)
class ListedCustomer:
    customer: Customer
    complaint_count_90d: int
    chronic_rank: int
    reasons: list[Reason]


@dataclass(frozen=True, slots=True)
class Page:
    customers: list[ListedCustomer]
    next_after: After | None  # None on the last page


def check_signal(signal: str, *, field: str = "signal") -> None:
    """Invalid unless `signal` is one a list can be made of."""
    if signal not in SIGNALS:
        raise Invalid(
            f"Unknown signal '{signal}'.", errors=[FieldError(field, f"one of {', '.join(SIGNALS)}")]
        )


_LIVE = and_(Customer.erased_at.is_(None), Customer.merged_into.is_(None))
Stores = tuple[str, ...] | None  # the stores a reader is limited to; None: every store


def of_stores(stores: Stores) -> ColumnElement[bool]:
    """The customers of these stores: their home store is one, or they gave feedback at or
    visited one (every customer for None)."""
    if stores is None:
        return true()
    return or_(
        Customer.home_store_id.in_(stores),
        Customer.id.in_(select(FeedbackHistory.customer_id).where(FeedbackHistory.store_id.in_(stores))),
        Customer.id.in_(select(Visit.customer_id).where(Visit.store_id.in_(stores))),
    )


async def is_of_stores(session: AsyncSession, *, customer_id: str, stores: Stores) -> bool:
    """Whether a customer is one of these stores' (always, for None)."""
    if stores is None:
        return True
    found = await session.scalar(select(Customer.id).where(Customer.id == customer_id, of_stores(stores)))
    return found is not None


async def list_by_signal(
    session: AsyncSession,
    *,
    signal: str,
    settings: Settings,
    limit: int,
    after: After | None,
    stores: Stores = None,
) -> Page:
    """One page of customers with `signal` set, and the keyset cursor of the next page.

    Chronic complainers come by rank (most complaints first); the others by customer id.
    """
    check_signal(signal)
    if signal == "vip":
        listed = await _vip(session, settings=settings, limit=limit, after=after, stores=stores)
    elif signal == "chronic_complainer":
        listed = await _chronic(session, settings=settings, limit=limit, after=after, stores=stores)
    else:
        listed = await _flagged(session, signal=signal, limit=limit, after=after, stores=stores)
    if len(listed) <= limit:
        return Page(listed, None)
    listed = listed[:limit]
    return Page(listed, (listed[-1].complaint_count_90d, listed[-1].customer.id))


async def _vip(
    session: AsyncSession, *, settings: Settings, limit: int, after: After | None, stores: Stores
) -> list[ListedCustomer]:
    query = select(Customer).where(
        _LIVE,
        of_stores(stores),
        or_(Customer.tier.in_(settings.vip_tiers), Customer.lifetime_value >= settings.vip_lifetime_value),
    )
    if after:
        query = query.where(Customer.id > after[1])
    return [
        ListedCustomer(c, 0, 0, [signals.vip_reason(c)])
        for c in await session.scalars(query.order_by(Customer.id).limit(limit + 1))
    ]


async def _chronic(
    session: AsyncSession, *, settings: Settings, limit: int, after: After | None, stores: Stores
) -> list[ListedCustomer]:
    count = CustomerSignals.complaint_count_90d
    query = (
        select(Customer, count)
        .join(CustomerSignals, CustomerSignals.customer_id == Customer.id)
        .where(_LIVE, of_stores(stores), count >= settings.chronic_min_count)
    )
    if after:
        query = query.where(or_(count < after[0], and_(count == after[0], Customer.id > after[1])))
    rows = (await session.execute(query.order_by(count.desc(), Customer.id).limit(limit + 1))).all()
    listed: list[ListedCustomer] = []
    ranks: dict[int, int] = {}
    for c, complaints in rows:
        if complaints not in ranks:
            ranks[complaints] = await in_session(
                session, signals.chronic_rank, complaint_count=complaints, settings=settings
            )
        rank = ranks[complaints]
        if rank > settings.chronic_top_n:
            break
        reason = signals.chronic_reason(
            rank=rank, complaint_count=complaints, settings=settings, feedback_ids=[]
        )
        listed.append(ListedCustomer(c, complaints, rank, [reason]))
    return listed


async def _flagged(
    session: AsyncSession, *, signal: str, limit: int, after: After | None, stores: Stores
) -> list[ListedCustomer]:
    flag = getattr(CustomerSignals, signal)
    query = (
        select(Customer, CustomerSignals.complaint_count_90d, CustomerSignals.reasons)
        .join(CustomerSignals, CustomerSignals.customer_id == Customer.id)
        .where(_LIVE, of_stores(stores), flag.is_(True))
    )
    if after:
        query = query.where(Customer.id > after[1])
    rows = (await session.execute(query.order_by(Customer.id).limit(limit + 1))).all()
    return [
        ListedCustomer(c, complaints, 0, [Reason.of(r) for r in reasons if r["signal"] == signal])
        for c, complaints, reasons in rows
    ]


@dataclass(frozen=True, slots=True)
class Contact:
    phone: str
    email: str


async def export(
    database: Database, *, signal: str, settings: Settings, after: After | None, stores: Stores = None
) -> AsyncIterator[list[tuple[ListedCustomer, Contact]]]:
    """The whole list from `after` on, page by page (each read in a session of its own), with
    each customer's phone and e-mail."""
    while True:
        async with database.session() as session:
            page = await list_by_signal(
                session, signal=signal, settings=settings, limit=EXPORT_PAGE, after=after, stores=stores
            )
            contacts = await contact_points(session, [item.customer.id for item in page.customers])
        yield [(item, contacts.get(item.customer.id, Contact("", ""))) for item in page.customers]
        if page.next_after is None:
            return
        after = page.next_after


async def contact_points(session: AsyncSession, customer_ids: list[str]) -> dict[str, Contact]:
    """Each customer's first phone and e-mail on file (empty strings when none)."""
    if not customer_ids:
        return {}
    found: dict[tuple[str, str], str] = {}
    for row in await session.execute(
        select(Identifier.customer_id, Identifier.kind, Identifier.value).where(
            Identifier.customer_id.in_(customer_ids), Identifier.kind.in_(("phone", "email"))
        )
    ):
        found.setdefault((row.customer_id, row.kind), row.value)
    return {
        cid: Contact(found.get((cid, "phone"), ""), found.get((cid, "email"), "")) for cid in customer_ids
    }
