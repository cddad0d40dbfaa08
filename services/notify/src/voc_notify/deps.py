"""What notify's routes take from the request: settings, the staff member behind the bearer
token (verified by `voc_platform.identity`, like every service), and the parts `build_app` put on
`app.state` (routes other than a staff member's own declare `voc_platform.http.require`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request

from voc_notify.auth import LoginGuard
from voc_notify.corrections import FeedbackCorrections
from voc_notify.settings import Settings
from voc_notify.stream import AlertBroker
from voc_notify.webhooks.sender import WebhookSender
from voc_notify.webhooks.signing import SecretBox
from voc_notify.webpush import PushAllowlist, VapidKeys
from voc_platform.audit import Audit
from voc_platform.errors import Unauthenticated
from voc_platform.http import BearerDep, app_state, bearer_token
from voc_platform.identity import Caller, Identity, Permission, Principal, looks_like_token

SettingsDep = Annotated[Settings, Depends(app_state("settings"))]
IdentityDep = Annotated[Identity, Depends(app_state("identity"))]
AuditDep = Annotated[Audit, Depends(app_state("audit"))]


def principal_from(token: str, identity: Identity) -> Principal:
    """The staff member a token names; 401 when it is expired, not ours, revoked or not a
    staff token at all (the admin token has no alerts of its own)."""
    if not looks_like_token(token):
        raise Unauthenticated("This call needs a staff access token (POST /v1/auth/login).")
    return identity.verify(token)


def staff_with(permission: Permission) -> Callable[..., Awaitable[Principal]]:
    """The staff member behind the token, whose role has `permission` (403 otherwise)."""

    async def current_staff(request: Request, credentials: BearerDep) -> Principal:
        principal = principal_from(bearer_token(credentials), request.app.state.identity)
        Caller(principal).require(permission)
        return principal

    current_staff.__name__ = f"staff_with_{permission.value.replace('.', '_')}"
    return current_staff


async def any_staff(request: Request, credentials: BearerDep) -> Principal:
    """The staff member behind the token, whatever their role."""
    return principal_from(bearer_token(credentials), request.app.state.identity)


AnyStaff = Annotated[Principal, Depends(any_staff)]
CurrentStaff = Annotated[Principal, Depends(staff_with(Permission.ALERTS))]
UnlockingStaff = Annotated[Principal, Depends(staff_with(Permission.STAFF_UNLOCK))]
BrokerDep = Annotated[AlertBroker, Depends(app_state("broker"))]
AllowlistDep = Annotated[PushAllowlist, Depends(app_state("allowlist"))]
VapidDep = Annotated[VapidKeys, Depends(app_state("vapid"))]
LoginGuardDep = Annotated[LoginGuard, Depends(app_state("login_guard"))]
CorrectionsDep = Annotated[FeedbackCorrections, Depends(app_state("corrections"))]
WebhookSenderDep = Annotated[WebhookSender, Depends(app_state("webhook_sender"))]
SecretBoxDep = Annotated[SecretBox, Depends(app_state("secret_box"))]
