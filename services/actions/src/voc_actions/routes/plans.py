"""Plan lookup over REST: the response plan for one feedback item's facts (DESIGN §5)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from voc_actions import plans
from voc_actions.deps import LiveDep
from voc_actions.schemas import LookupIn

router = APIRouter(tags=["plans"])


@router.post("/v1/plans:lookup")
async def lookup(body: LookupIn, live: LiveDep) -> dict[str, Any]:
    return plans.lookup(live.library, body.query()).to_dict()
