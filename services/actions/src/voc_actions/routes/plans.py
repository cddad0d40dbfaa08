"""Plan lookup over REST: the response plan for one feedback item's facts (DESIGN §5). It answers
the library's contents (steps, scripts, compensation limits), so it takes what reading the library
takes: `playbooks.read` (every staff role) or the admin token; services use gRPC `GetActionPlan`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from voc_actions import plans
from voc_actions.deps import LiveDep
from voc_actions.schemas import LookupIn
from voc_platform.http import require
from voc_platform.identity import Caller, Permission

router = APIRouter(tags=["plans"])


@router.post("/v1/plans:lookup", responses={401: {}})
async def lookup(
    body: LookupIn, caller: Annotated[Caller, Depends(require(Permission.PLAYBOOKS_READ))], live: LiveDep
) -> dict[str, Any]:
    return plans.lookup(live.library, body.query()).to_dict()
