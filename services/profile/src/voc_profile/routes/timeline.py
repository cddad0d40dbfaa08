"""The customer's timeline across channels."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from voc_platform.http import SessionDep, require_admin
from voc_profile import timeline
from voc_profile.deps import ActorDep, TrailDep

router = APIRouter(dependencies=[Depends(require_admin)])


@router.get("/v1/customers/{customer_id}/timeline")
async def read_timeline(
    customer_id: str,
    session: SessionDep,
    actor: ActorDep,
    trail: TrailDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """Feedback from every channel, visits and alerts with their outcomes, newest first."""
    found = await timeline.timeline_of(session, customer_id=customer_id, limit=limit)
    trail.read(actor=actor, action="read_timeline", customer_id=found.customer_id)
    return {"customer_id": found.customer_id, "entries": found.entries}
