"""What notify's routes take from the request: settings, the staff member behind the bearer
token, and the parts `build_app` put on `app.state` (the admin guard is the platform's
`require_admin`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from voc_notify.auth import LoginGuard, Principal, TokenError, read_token
from voc_notify.settings import Settings
from voc_notify.stream import AlertBroker
from voc_notify.webhooks.sender import WebhookSender
from voc_notify.webhooks.signing import SecretBox
from voc_notify.webpush import PushAllowlist, VapidKeys
from voc_platform.errors import Unauthenticated
from voc_platform.http import BearerDep, app_state, bearer_token

SettingsDep = Annotated[Settings, Depends(app_state("settings"))]


def principal_from(token: str, settings: Settings) -> Principal:
    """The staff member a token names; 401 when it is expired or not ours."""
    try:
        return read_token(token, secret=settings.jwt_secret)
    except TokenError as exc:
        raise Unauthenticated(str(exc)) from exc


async def current_staff(settings: SettingsDep, credentials: BearerDep) -> Principal:
    return principal_from(bearer_token(credentials), settings)


CurrentStaff = Annotated[Principal, Depends(current_staff)]
BrokerDep = Annotated[AlertBroker, Depends(app_state("broker"))]
AllowlistDep = Annotated[PushAllowlist, Depends(app_state("allowlist"))]
VapidDep = Annotated[VapidKeys, Depends(app_state("vapid"))]
LoginGuardDep = Annotated[LoginGuard, Depends(app_state("login_guard"))]
WebhookSenderDep = Annotated[WebhookSender, Depends(app_state("webhook_sender"))]
SecretBoxDep = Annotated[SecretBox, Depends(app_state("secret_box"))]
