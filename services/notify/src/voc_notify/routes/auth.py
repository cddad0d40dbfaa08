"""Staff sessions (login, refresh, logout, password change), and a manager's unlock of a
locked-out staff member's login. Login and refresh are public (the password or the refresh
token is the credential); logout takes a refresh token or a staff access token; the password
change needs the staff member's own access token (any role)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from voc_notify import auth
from voc_notify.deps import (
    AnyStaff,
    AuditDep,
    IdentityDep,
    LoginGuardDep,
    SettingsDep,
    UnlockingStaff,
    principal_from,
)
from voc_notify.schemas import LanguageIn, LoginIn, LogoutIn, PasswordIn, RefreshIn, TokenOut
from voc_platform.http import BearerDep, DatabaseDep, bearer_token

router = APIRouter(prefix="/v1/auth", tags=["auth"])
managers = APIRouter(prefix="/v1/staff", tags=["auth"])


@router.post("/login", response_model=TokenOut, responses={401: {}, 429: {}})
async def login(
    body: LoginIn, request: Request, database: DatabaseDep, settings: SettingsDep, guard: LoginGuardDep
) -> TokenOut:
    """An access token and a refresh token (bound to `install_id` when given)."""
    session = await auth.login(
        database,
        settings=settings,
        guard=guard,
        email=body.email,
        password=body.password,
        address=request.client.host if request.client else "",
        install_id=body.install_id,
    )
    return TokenOut.model_validate(session)


@router.post("/refresh", response_model=TokenOut, responses={401: {}})
async def refresh(
    body: RefreshIn, database: DatabaseDep, settings: SettingsDep, identity: IdentityDep
) -> TokenOut:
    """The next access token and a new refresh token (the one sent is used up); role and stores
    as the directory has them now. A refresh token used twice revokes its session and the staff
    member's access tokens issued so far: 401."""
    session = await auth.refresh(
        database,
        identity.revocations,
        settings=settings,
        refresh_token=body.refresh_token,
        install_id=body.install_id,
    )
    return TokenOut.model_validate(session)


# The bearer token is optional here (a refresh token alone ends its session): FastAPI adds `{}`
# to its own requirement, so the document reads "HTTPBearer or nothing".
@router.post("/logout", status_code=204, responses={401: {}}, openapi_extra={"security": [{}]})
async def logout(
    database: DatabaseDep,
    identity: IdentityDep,
    audit: AuditDep,
    credentials: BearerDep,
    body: LogoutIn | None = None,
) -> Response:
    """End a session. With `refresh_token` (the app's logout) that session ends, and no access
    token is needed (it may have expired): an unknown or ended one is fine (204). Without it, the
    staff access token sent is the credential (401 without a valid one), and the session it was
    issued in ends. Either way every access
    token of the staff member issued so far stops working on every service, within the
    revocation bound (their other devices refresh)."""
    if body is not None:
        await auth.logout(database, identity.revocations, audit, refresh_token=body.refresh_token)
    else:
        principal = principal_from(bearer_token(credentials), identity)
        await auth.logout(database, identity.revocations, audit, principal=principal)
    return Response(status_code=204)


@router.post("/password", status_code=204, responses={401: {}, 403: {}, 422: {}, 429: {}})
async def change_password(
    body: PasswordIn, principal: AnyStaff, database: DatabaseDep, settings: SettingsDep, identity: IdentityDep
) -> Response:
    """Change one's own password (any role: one's own account); every session and access token
    of the staff member ends, on every service."""
    await auth.change_password(
        database,
        identity.revocations,
        settings=settings,
        principal=principal,
        current=body.current_password,
        new=body.new_password,
    )
    return Response(status_code=204)


@router.put("/language", status_code=204, responses={401: {}, 422: {}})
async def set_language(body: LanguageIn, principal: AnyStaff, database: DatabaseDep) -> Response:
    """One's own reading language: alerts, plans and pushes come in it from now on (the staff
    app's and the console's language switch; an admin sets anyone's in the directory)."""
    await auth.set_language(database, principal=principal, language=body.language)
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
