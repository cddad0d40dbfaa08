"""`POST /v1/visits`: a real-time check-in from a POS, kiosk, app or reservation system (#18).
A store-app API key (scoped to its stores, as at feedback intake) or the admin token."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Header, Response

from voc_platform.http import DatabaseDep, RequiredBearerDep, app_state, bearer_token
from voc_platform.ratelimit import RateLimiter
from voc_profile import checkins
from voc_profile.deps import SettingsDep
from voc_profile.schemas import CheckinAccepted, CheckinIn
from voc_profile.store_access import StoreAccess

router = APIRouter(tags=["visits"])
StoreAccessDep = Annotated[StoreAccess, Depends(app_state("store_access"))]
CheckinLimiterDep = Annotated[RateLimiter, Depends(app_state("checkin_limiter"))]


@router.post(
    "/v1/visits",
    status_code=202,
    response_model=CheckinAccepted,
    responses={401: {}, 403: {}, 409: {}, 413: {}, 422: {}, 429: {}, 503: {}},
)
async def check_in(
    body: CheckinIn,
    credentials: RequiredBearerDep,
    database: DatabaseDep,
    settings: SettingsDep,
    access: StoreAccessDep,
    limiter: CheckinLimiterDep,
    idempotency_key: Annotated[str | None, Header(min_length=1, max_length=200)] = None,
) -> Response:
    """The visit joins the customer's visits; a heads-up goes to the store's staff when the
    customer had recent trouble, is a churn risk or a VIP (`heads_up` in the answer). A store
    key is held to `VOC_PROFILE_CHECKIN_RATE_LIMIT_*` (429): the answer tells whether an
    identifier is a customer."""
    caller = await access.authorize(token=bearer_token(credentials), store_id=body.store_id)
    if caller.name != "admin":
        limiter.admit(caller.name)
    result = await checkins.check_in(
        database, body=body, caller=caller, idempotency_key=idempotency_key, settings=settings
    )
    headers = {"Idempotent-Replayed": "true"} if result.replay else {}
    return Response(
        orjson.dumps({"id": result.id, "customer_id": result.customer_id, "heads_up": result.heads_up}),
        status_code=202,
        media_type="application/json",
        headers=headers,
    )
