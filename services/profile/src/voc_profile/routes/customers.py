"""Customers: the CRM upsert, the stored attributes, the context."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from voc_platform import dbsync
from voc_platform.http import DatabaseDep, SessionDep, require_admin
from voc_profile import context, crm
from voc_profile.deps import ActorDep, SettingsDep, TrailDep
from voc_profile.schemas import CustomersIn, UpsertResult

router = APIRouter(dependencies=[Depends(require_admin)])


@router.post("/v1/customers", response_model=list[UpsertResult])
async def upsert(
    body: CustomersIn, database: DatabaseDep, settings: SettingsDep, actor: ActorDep
) -> list[UpsertResult]:
    """Create or update customers by their identifiers; a refused record is reported in place."""
    return await crm.upsert_customers(
        database, customers=body.customers, region=settings.default_region, actor=actor
    )


@router.get("/v1/customers/{customer_id}")
async def read(customer_id: str, session: SessionDep, actor: ActorDep, trail: TrailDep) -> dict[str, Any]:
    """The attributes as stored (no identifiers)."""
    customer = await crm.get_customer(session, customer_id=customer_id)
    trail.read(actor=actor, action="read", customer_id=customer.id)
    return crm.customer_out(customer)


@router.get("/v1/customers/{customer_id}/context")
async def read_context(
    customer_id: str, database: DatabaseDep, settings: SettingsDep, actor: ActorDep, trail: TrailDep
) -> dict[str, Any]:
    """What an alert would say about the customer: attributes, visits, household, signals."""
    ctx = await dbsync.read(database, context.customer_context, customer_id=customer_id, settings=settings)
    assert ctx.customer is not None
    trail.read(actor=actor, action="read_context", customer_id=ctx.customer.id)
    return ctx.to_dict()
