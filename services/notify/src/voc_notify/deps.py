"""What notify's routes take from the request: settings, the staff member behind the bearer
token, and the parts `build_app` put on `app.state` (the admin guard is the platform's
`require_admin`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from voc_notify.auth import LoginGuard, Principal, TokenError, read_token
from voc_notify.settings import Settings
from voc_notify.stream import AlertBroker
from voc_notify.webpush import PushAllowlist, VapidKeys
from voc_platform.errors import Unauthenticated
from voc_platform.http import BearerDep, bearer_token


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


def principal_from(token: str, settings: Settings) -> Principal:
    """The staff member a token names; 401 when it is expired or not ours."""
    try:
        return read_token(token, secret=settings.jwt_secret)
    except TokenError as exc:
        raise Unauthenticated(str(exc)) from exc


async def current_staff(settings: SettingsDep, credentials: BearerDep) -> Principal:
    return principal_from(bearer_token(credentials), settings)


CurrentStaff = Annotated[Principal, Depends(current_staff)]


def get_broker(request: Request) -> AlertBroker:
    broker: AlertBroker = request.app.state.broker
    return broker


def get_allowlist(request: Request) -> PushAllowlist:
    allowlist: PushAllowlist = request.app.state.allowlist
    return allowlist


def get_login_guard(request: Request) -> LoginGuard:
    guard: LoginGuard = request.app.state.login_guard
    return guard


def get_vapid(request: Request) -> VapidKeys:
    vapid: VapidKeys = request.app.state.vapid
    return vapid


BrokerDep = Annotated[AlertBroker, Depends(get_broker)]
AllowlistDep = Annotated[PushAllowlist, Depends(get_allowlist)]
VapidDep = Annotated[VapidKeys, Depends(get_vapid)]
LoginGuardDep = Annotated[LoginGuard, Depends(get_login_guard)]
