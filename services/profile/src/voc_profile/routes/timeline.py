"""The customer's timeline across channels (customers.read, within the reader's stores)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from voc_platform.http import SessionDep
from voc_profile import timeline
from voc_profile.audit import target_of
from voc_profile.deps import AuditDep, CustomerReader
from voc_profile.routes.customers import check_visible

router = APIRouter(responses={401: {}, 403: {}, 404: {}})


@router.get("/v1/customers/{customer_id}/timeline")
async def read_timeline(
    customer_id: str,
    caller: CustomerReader,
    session: SessionDep,
    audit: AuditDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """Feedback from every channel, visits and alerts with their outcomes, newest first."""
    await check_visible(session, customer_id=customer_id, caller=caller)
    found = await timeline.timeline_of(session, customer_id=customer_id, limit=limit)
    audit.read(actor=caller.actor, action="read_timeline", target=target_of(found.customer_id))
    return {"customer_id": found.customer_id, "entries": found.entries}
