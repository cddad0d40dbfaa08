"""Staff login."""

from __future__ import annotations

from fastapi import APIRouter, Request

from voc_notify import auth
from voc_notify.deps import LoginGuardDep, SettingsDep
from voc_notify.schemas import LoginIn, TokenOut
from voc_platform.http import DatabaseDep

router = APIRouter(prefix="/v1/auth", tags=["auth"])


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
