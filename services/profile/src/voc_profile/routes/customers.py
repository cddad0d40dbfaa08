"""Customers: the CRM upsert (customers.admin), the stored attributes and the context
(customers.read: a manager's only for the customers of their stores, audited)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncSession

from voc_platform import dbsync
from voc_platform.errors import NotFound
from voc_platform.http import DatabaseDep, SessionDep
from voc_platform.identity import Caller
from voc_profile import context, crm, lists
from voc_profile.audit import target_of
from voc_profile.deps import AuditDep, CustomerAdmin, CustomerReader, SettingsDep
from voc_profile.schemas import CustomersIn, UpsertResult

router = APIRouter(responses={401: {}, 403: {}})
#: A CRM batch of up to 1,000 customers (`voc_platform.http.BULK_BODY_BYTES`).
BULK_PATHS = frozenset({"/v1/customers"})


async def check_visible(session: AsyncSession, *, customer_id: str, caller: Caller) -> None:
    """Nothing when the caller may see the customer (following merges); a customer of none of
    a manager's stores is answered as missing (404), like one that does not exist."""
    if caller.scope is None:
        return
    customer = await crm.live_customer(session, customer_id=customer_id)
    if customer is None or not await lists.is_of_stores(
        session, customer_id=customer.id, stores=caller.scope
    ):
        raise NotFound(f"No customer '{customer_id}'.")


@router.post("/v1/customers", response_model=list[UpsertResult], responses={422: {}})
async def upsert(
    body: CustomersIn, caller: CustomerAdmin, database: DatabaseDep, settings: SettingsDep
) -> list[UpsertResult]:
    """Create or update customers by their identifiers; a refused record is reported in place."""
    return await crm.upsert_customers(
        database, customers=body.customers, region=settings.default_region, actor=caller.actor
    )


@router.get("/v1/customers/{customer_id}", responses={404: {}, 410: {}})
async def read(
    customer_id: str, caller: CustomerReader, session: SessionDep, audit: AuditDep
) -> dict[str, Any]:
    """The attributes as stored (no identifiers)."""
    await check_visible(session, customer_id=customer_id, caller=caller)
    customer = await crm.get_customer(session, customer_id=customer_id)
    audit.read(actor=caller.actor, action="read", target=target_of(customer.id))
    return crm.customer_out(customer)


@router.get("/v1/customers/{customer_id}/context", responses={404: {}, 410: {}})
async def read_context(
    customer_id: str,
    caller: CustomerReader,
    session: SessionDep,
    database: DatabaseDep,
    settings: SettingsDep,
    audit: AuditDep,
) -> dict[str, Any]:
    """What an alert would say about the customer: attributes, visits, household, signals."""
    await check_visible(session, customer_id=customer_id, caller=caller)
    ctx = await dbsync.read(database, context.customer_context, customer_id=customer_id, settings=settings)
    assert ctx.customer is not None
    audit.read(actor=caller.actor, action="read_context", target=target_of(ctx.customer.id))
    return ctx.to_dict()
