"""Store reports (reports.read: within the reader's stores, or one `store_id`, 403 outside them)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from voc_platform.http import SessionDep, require
from voc_platform.identity import Caller, Permission
from voc_profile import reports
from voc_profile.deps import SettingsDep, StoreQuery

router = APIRouter(responses={401: {}, 403: {}, 422: {}})


@router.get("/v1/reports/revisit")
async def revisit_report(
    caller: Annotated[Caller, Depends(require(Permission.REPORTS))],
    session: SessionDep,
    settings: SettingsDep,
    lookback_days: Annotated[int, Query(ge=1, le=730)] = 180,
    store_id: StoreQuery = None,
) -> dict[str, Any]:
    """Per store: stated revisit intent vs actual revisit within the churn window."""
    caller.check_store(store_id)
    stores = (store_id,) if store_id else caller.scope
    found = await reports.revisit_report(
        session, settings=settings, lookback_days=lookback_days, stores=stores
    )
    return {"lookback_days": lookback_days, "window_days": settings.churn_window_days, "stores": found}
