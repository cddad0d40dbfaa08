"""Staff login and logout, and a manager's unlock of a locked-out staff member's login."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from voc_notify import auth
from voc_notify.deps import AnyStaff, AuditDep, IdentityDep, LoginGuardDep, SettingsDep, UnlockingStaff
from voc_notify.schemas import LoginIn, TokenOut
from voc_platform.http import DatabaseDep
from voc_platform.identity import Caller

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


@router.post("/logout", status_code=204, responses={401: {}})
async def logout(
    principal: AnyStaff, database: DatabaseDep, identity: IdentityDep, audit: AuditDep
) -> Response:
    """End the caller's access tokens (every one issued to them so far, on every service, within
    the revocation bound): the phone that logs out takes the others with it."""
    async with database.transaction() as session:
        before = await auth.revoke_sessions(
            session, identity.revocations, staff_id=principal.staff_id, reason="logout"
        )
        await audit.record(
            session, actor=Caller(principal).actor, action="logout", target=f"staff:{principal.staff_id}"
        )
    identity.revocations.note(principal.staff_id, before)
    return Response(status_code=204)


@managers.post("/{staff_id}/unlock", status_code=204, responses={401: {}, 403: {}, 404: {}})
async def unlock_staff(
    staff_id: str, principal: UnlockingStaff, database: DatabaseDep, settings: SettingsDep, audit: AuditDep
) -> Response:
    """Lift the login lock of a staff member the caller manages (a store manager their stores'
    staff, an area manager their area's, cx_admin anyone's), so a locked-out shift lead can
    acknowledge alerts again without waiting for the lock to run out; 403 below store manager,
    404 for anyone else's staff."""
    await auth.unlock(database, staff_id=staff_id, settings=settings, by=principal, audit=audit)
    return Response(status_code=204)
