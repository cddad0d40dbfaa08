"""Merges of a customer (customers.read, within the reader's stores), and an admin's undo
(customers.admin)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from voc_platform.http import DatabaseDep, SessionDep
from voc_profile import crm, merges
from voc_profile.deps import CustomerAdmin, CustomerReader, SettingsDep
from voc_profile.routes.customers import check_visible

router = APIRouter(responses={401: {}, 403: {}, 404: {}})


@router.get("/v1/customers/{customer_id}/merges")
async def list_merges(customer_id: str, caller: CustomerReader, session: SessionDep) -> dict[str, Any]:
    """The merges the customer took part in, oldest first."""
    await crm.get_customer(session, customer_id=customer_id)
    await check_visible(session, customer_id=customer_id, caller=caller)
    found = await merges.merges_of(session, customer_id=customer_id)
    return {"merges": [merges.merge_out(m) for m in found]}


@router.post("/v1/merges/{merge_id}:undo")
async def undo_merge(
    merge_id: str, database: DatabaseDep, settings: SettingsDep, caller: CustomerAdmin
) -> dict[str, Any]:
    """The two customers are separated again, and never merged again."""
    async with database.transaction() as session:
        record = await merges.undo_merge(session, merge_id=merge_id, actor=caller.actor, settings=settings)
    return merges.merge_out(record)
