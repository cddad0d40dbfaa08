"""Store reports."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from voc_platform.http import SessionDep, require_admin
from voc_profile import reports
from voc_profile.deps import SettingsDep

router = APIRouter(dependencies=[Depends(require_admin)])


@router.get("/v1/reports/revisit")
async def revisit_report(
    session: SessionDep, settings: SettingsDep, lookback_days: Annotated[int, Query(ge=1, le=730)] = 180
) -> dict[str, Any]:
    """Per store: stated revisit intent vs actual revisit within the churn window."""
    stores = await reports.revisit_report(session, settings=settings, lookback_days=lookback_days)
    return {"lookback_days": lookback_days, "window_days": settings.churn_window_days, "stores": stores}
