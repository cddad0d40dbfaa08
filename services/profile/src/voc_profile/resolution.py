"""Identifier resolution: one customer per person, created on first contact, merged when one
submission names two known customers.

The usual cases (one known customer, or a new one) are prepared statements in the caller's
`dbsync` hop (`resolve_one`); the rest (a merge, a raced first contact) raise `NeedsSession` there,
and the caller runs `resolve` on an ORM session, which takes the same first step.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import and_, bindparam, delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from voc_platform.dbsync import Prepared, Reader, insert_ignore
from voc_platform.ids import uuid7
from voc_profile import merges
from voc_profile.models import Customer, CustomerMerge, Identifier, customers_table, identifiers_table
from voc_profile.sessions import in_session

Identifiers = list[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class Resolution:
    customer_id: str | None
    created: bool
    merged_ids: tuple[str, ...] = ()
    # An identifier could not be attached (a concurrent resolution took it first).
    conflicts: bool = False


class NeedsSession(Exception):
    """`resolve_one` met a case that needs an ORM session: the identifiers name several known
    customers (a merge), or a new person's identifiers were taken meanwhile."""


IDENTIFIER_OWNER = select(identifiers_table.c.customer_id).where(
    identifiers_table.c.kind == bindparam("kind"), identifiers_table.c.value == bindparam("value")
)
_IDENTIFIER_OWNER = Prepared(IDENTIFIER_OWNER)
_INSERT_CUSTOMER = Prepared(insert(customers_table))
_INSERT_IDENTIFIER = Prepared(lambda dialect: insert_ignore(dialect, identifiers_table))


def owners(reader: Reader, *, identifiers: Identifiers) -> dict[tuple[str, str], str]:
    """(kind, value) -> customer id for the identifiers already on file: one primary-key probe
    per identifier (a submission has at most four)."""
    known = {}
    for kind, value in dict.fromkeys(identifiers):
        owner = reader.scalar(_IDENTIFIER_OWNER, {"kind": kind, "value": value})
        if owner is not None:
            known[(kind, value)] = owner
    return known


def lookup(reader: Reader, *, identifiers: Identifiers) -> str | None:
    """Read-only resolution: the customer when every identifier is on file for one customer."""
    found = {reader.scalar(_IDENTIFIER_OWNER, {"kind": k, "value": v}) for k, v in set(identifiers)}
    return found.pop() if len(found) == 1 and None not in found else None


def resolve_one(reader: Reader, *, identifiers: Identifiers, name: str | None) -> Resolution:
    """`resolve(create_if_missing=True)`'s usual cases in the caller's `dbsync` hop: one known
    customer, or a new one created. Raises `NeedsSession` for a merge or a raced first contact."""
    step = _first_step(reader, identifiers, name, create=True)
    if step.customer_id is None or (step.created and step.conflicts):
        raise NeedsSession
    return Resolution(step.customer_id, created=step.created)


@dataclass(frozen=True, slots=True)
class _Step:
    """What the first step found: the identifiers on file, and the one customer they name (None
    when they name several, or none and nothing may be created)."""

    known: dict[tuple[str, str], str]
    customer_id: str | None
    created: bool = False
    conflicts: bool = False


def _first_step(reader: Reader, identifiers: Identifiers, name: str | None, *, create: bool) -> _Step:
    """Find the one known customer, or create one; attach the new identifiers when `create`."""
    known = owners(reader, identifiers=identifiers)
    found = set(known.values())
    if len(found) > 1 or (not found and not create):
        return _Step(known, None)
    if found:
        customer_id, created = found.pop(), False
    else:
        customer_id, created = _create(reader, name), True
    conflicts = create and _attach(reader, customer_id, [i for i in identifiers if i not in known])
    return _Step(known, customer_id, created, conflicts)


def _create(reader: Reader, name: str | None) -> str:
    customer_id, now = uuid7(), time.time()
    reader.execute(
        _INSERT_CUSTOMER,
        {
            "id": customer_id,
            "name": name,
            "tier": "basic",
            "lifetime_value": 0.0,
            "contact_consent": None,  # not stated: the customer neither agreed nor opted out
            "attributes": {},
            "created_at": now,
            "updated_at": now,
        },
    )
    return customer_id


def _attach(reader: Reader, customer_id: str, identifiers: Identifiers) -> bool:
    """Give these identifiers to the customer; True when one of them could not be attached
    (a concurrent resolution took it first: PostgreSQL runs them in parallel)."""
    conflicts = False
    for kind, value in dict.fromkeys(identifiers):
        if not reader.execute(_INSERT_IDENTIFIER, {"kind": kind, "value": value, "customer_id": customer_id}):
            conflicts = True
    return conflicts


async def resolve(
    session: AsyncSession,
    *,
    identifiers: Identifiers,
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
    step = await in_session(session, _first_step, identifiers, name, create=create_if_missing)
    customer_id, created, conflicts = step.customer_id, step.created, step.conflicts
    merged: list[str] = []
    if customer_id is None and step.known:
        customer_id, merged = await _merge_known(session, sorted(set(step.known.values())), trigger=trigger)
        if create_if_missing:
            missing = [i for i in identifiers if i not in step.known]
            conflicts = await in_session(session, _attach, customer_id, missing)
    elif customer_id is None:
        return Resolution(None, created=False)
    if created and conflicts:
        winner = await _fold_raced_duplicate(session, customer_id, identifiers)
        if winner is not None:
            customer_id, created = winner, False
    return Resolution(customer_id, created=created, merged_ids=tuple(merged), conflicts=conflicts)


async def _merge_known(
    session: AsyncSession, customer_ids: list[str], *, trigger: str
) -> tuple[str, list[str]]:
    """Two or more known customers are the same person: the oldest survives. (survivor, merged)"""
    survivor, merged = customer_ids[0], []
    for other in customer_ids[1:]:
        if await _separated(session, survivor, other):
            continue
        await merges.merge_customers(session, survivor_id=survivor, merged_id=other, trigger=trigger)
        merged.append(other)
    return survivor, merged


async def _fold_raced_duplicate(
    session: AsyncSession, customer_id: str, identifiers: Identifiers
) -> str | None:
    """Two resolutions of a new person raced (PostgreSQL runs them in parallel): the one whose
    identifiers committed first owns the person; this fresh duplicate folds into it. The owner,
    or None when no other customer holds them."""
    known = await in_session(session, owners, identifiers=identifiers)
    others = sorted({owner for owner in known.values() if owner != customer_id})
    if not others:
        return None
    winner = others[0]
    await session.execute(
        update(Identifier).where(Identifier.customer_id == customer_id).values(customer_id=winner)
    )
    await session.execute(delete(Customer).where(Customer.id == customer_id))
    return winner


async def _separated(session: AsyncSession, a: str, b: str) -> bool:
    """An admin undid a merge of these two: they are different people."""
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
