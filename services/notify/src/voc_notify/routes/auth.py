"""Staff login, and a manager's unlock of a locked-out staff member's login."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from voc_notify import auth
from voc_notify.deps import CurrentStaff, LoginGuardDep, SettingsDep
from voc_notify.schemas import LoginIn, TokenOut
from voc_platform.http import DatabaseDep

router = APIRouter(prefix="/v1/auth", tags=["auth"])
managers = APIRouter(prefix="/v1/staff", tags=["auth"])


@router.post("/login", response_model=TokenOut, responses={401: {}, 429: {}})
async def login(
    body: LoginIn, request: Request, database: DatabaseDep, settings: SettingsDep, guard: LoginGuardDep
) -> TokenOut:
    done = await auth.login(
        database,
        settings=settings,
        guard=guard,
        email=body.email,
        password=body.password,
        address=request.client.host if request.client else "",
    )
    return TokenOut(access_token=done.token, expires_in=settings.token_ttl_seconds, staff=done.staff)


@managers.post("/{staff_id}/unlock", status_code=204, responses={401: {}, 403: {}, 404: {}})
async def unlock_staff(
    staff_id: str, principal: CurrentStaff, database: DatabaseDep, settings: SettingsDep
) -> Response:
    """Lift the login lock of a staff member the caller manages (a store manager their stores'
    staff, an area manager their area's, cx_admin anyone's), so a locked-out shift lead can
    acknowledge alerts again without waiting for the lock to run out; 403 below store manager,
    404 for anyone else's staff."""
    await auth.unlock(database, staff_id=staff_id, settings=settings, by=principal)
    return Response(status_code=204)
