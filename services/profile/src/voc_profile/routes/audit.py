"""The audit log: who read or changed which customer."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from voc_platform.http import SessionDep, require_admin
from voc_profile import audit
from voc_profile.deps import TrailDep

router = APIRouter(dependencies=[Depends(require_admin)])


@router.get("/v1/audit")
async def audit_log(
    session: SessionDep,
    trail: TrailDep,
    customer_id: Annotated[str | None, Query(max_length=36)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """The latest entries, newest first; the buffered reads are written first."""
    await trail.flush()
    return {
        "entries": [
            {
                "at": e.at,
                "actor": e.actor,
                "action": e.action,
                "customer_id": e.customer_id,
                "detail": e.detail,
            }
            for e in await audit.entries(session, customer_id=customer_id, limit=limit)
        ]
    }
