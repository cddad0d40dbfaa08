"""CRM customers: created or updated by their identifiers (the JSON API, seeding, an import's
fallback), read by id."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from voc_platform.db import Database
from voc_platform.errors import Gone, Invalid, NotFound
from voc_platform.identity import SYSTEM, Actor
from voc_platform.records import fields_of
from voc_profile import audit
from voc_profile.identity import normalize
from voc_profile.models import Customer
from voc_profile.resolution import Identifiers, resolve
from voc_profile.schemas import CustomerIn, UpsertResult

# The attributes a CRM record sets (a field it leaves out keeps its stored value).
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
# A customer as the API answers it: attributes only, never an identifier.
CUSTOMER_OUT_FIELDS = ("id", *CRM_FIELDS, "merged_into", "created_at", "updated_at")


def identifiers_of(customer: CustomerIn, *, region: str) -> Identifiers:
    """The record's identifiers, normalised; InvalidIdentifier names a malformed one."""
    return normalize(
        loyalty_id=customer.loyalty_id or "",
        phone=customer.phone or "",
        email=customer.email or "",
        channel_user_id=customer.app_user_id or "",
        channel="app" if customer.app_user_id else "",
        region=region,
    )


async def upsert_customer(
    session: AsyncSession, *, customer: CustomerIn, region: str, actor: Actor = SYSTEM
) -> tuple[str, bool]:
    """Create or update a customer by its identifiers (merging the customers they name);
    (customer id, created)."""
    identifiers = identifiers_of(customer, region=region)
    if not identifiers:
        raise Invalid("a customer needs at least one identifier")
    resolution = await resolve(
        session, identifiers=identifiers, name=customer.name, create_if_missing=True, trigger="crm upsert"
    )
    assert resolution.customer_id is not None
    row = await session.get(Customer, resolution.customer_id)
    assert row is not None
    given = {key: value for key in CRM_FIELDS if (value := getattr(customer, key)) is not None}
    for key, value in given.items():
        setattr(row, key, value)
    row.updated_at = time.time()
    await audit.record(
        session,
        actor=actor,
        action="create" if resolution.created else "update",
        customer_id=row.id,
        detail={"fields": sorted(given)},
    )
    await session.flush()
    return row.id, resolution.created


async def upsert_customers(
    database: Database, *, customers: list[CustomerIn], region: str, actor: Actor
) -> list[UpsertResult]:
    """Each record in its own transaction; a refused one is reported in its result, the others
    are kept."""
    results: list[UpsertResult] = []
    for index, customer in enumerate(customers):
        try:
            async with database.transaction() as session:
                customer_id, created = await upsert_customer(
                    session, customer=customer, region=region, actor=actor
                )
            results.append(UpsertResult(index=index, customer_id=customer_id, created=created))
        except (ValueError, Invalid) as exc:  # InvalidIdentifier is a ValueError
            results.append(UpsertResult(index=index, customer_id=None, created=False, error=str(exc)))
    return results


async def get_customer(session: AsyncSession, *, customer_id: str) -> Customer:
    """The customer as stored: NotFound for an unknown id, Gone for an erased customer."""
    customer = await session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"No customer '{customer_id}'.")
    if customer.erased_at is not None:
        raise Gone(f"Customer '{customer_id}' was erased.")
    return customer


async def live_customer(session: AsyncSession, *, customer_id: str) -> Customer | None:
    """The customer, following merges to the survivor (a few hops at most)."""
    customer = await session.get(Customer, customer_id)
    for _ in range(5):
        if customer is None or customer.merged_into is None:
            break
        customer = await session.get(Customer, customer.merged_into)
    return customer


def customer_out(customer: Customer) -> dict[str, Any]:
    """A customer as the API answers it (`CUSTOMER_OUT_FIELDS`)."""
    return fields_of(customer, CUSTOMER_OUT_FIELDS)
