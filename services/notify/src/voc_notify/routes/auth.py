"""Staff login."""

from __future__ import annotations

from fastapi import APIRouter

from voc_notify import auth
from voc_notify.deps import SettingsDep
from voc_notify.schemas import LoginIn, TokenOut
from voc_platform.http import DatabaseDep

router = APIRouter(prefix="/v1/auth", tags=["auth"])


@router.post("/login", response_model=TokenOut)
async def login(body: LoginIn, database: DatabaseDep, settings: SettingsDep) -> TokenOut:
    done = await auth.login(database, settings=settings, email=body.email, password=body.password)
    return TokenOut(access_token=done.token, expires_in=settings.token_ttl_seconds, staff=done.staff)
