"""Staff devices: a browser's Web Push subscription, bound to the staff member who registered it,
and removed by them."""

from __future__ import annotations

import hashlib
import time

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from voc_notify.models import AppInstall, Device
from voc_notify.schemas import InstallReportIn
from voc_notify.webpush import InvalidSubscription, PushAllowlist, PushSubscription
from voc_platform.db import Database
from voc_platform.errors import Conflict, Invalid, NotFound
from voc_platform.ids import uuid7


def endpoint_hash(endpoint: str) -> str:
    return hashlib.sha256(endpoint.encode()).hexdigest()


async def register_device(
    database: Database,
    *,
    staff_id: str,
    subscription: dict[str, object],
    allowlist: PushAllowlist,
    user_agent: str,
    install_id: str | None = None,
) -> str:
    """The device id of this browser's subscription (`PushSubscription` JSON) for the staff member
    who registers it first, the same id again when they re-register it; `Conflict` (409) for
    anyone else. A push endpoint outside the allowlist is refused before it is stored."""
    try:
        sub = PushSubscription.from_json(subscription)
        allowlist.check(sub.endpoint)
    except InvalidSubscription as exc:
        raise Invalid(str(exc), field=f"body.{exc.field}") from exc
    try:
        return await _bind(database, staff_id=staff_id, sub=sub, user_agent=user_agent, install_id=install_id)
    except IntegrityError:
        # A concurrent request stored the same endpoint first (PostgreSQL): its row decides.
        return await _bind(database, staff_id=staff_id, sub=sub, user_agent=user_agent, install_id=install_id)


async def _bind(
    database: Database, *, staff_id: str, sub: PushSubscription, user_agent: str, install_id: str | None
) -> str:
    digest = endpoint_hash(sub.endpoint)
    async with database.transaction() as session:
        device = await session.scalar(select(Device).where(Device.endpoint_hash == digest))
        if device is None:
            device = Device(
                id=uuid7(),
                staff_id=staff_id,
                endpoint=sub.endpoint,
                endpoint_hash=digest,
                p256dh=sub.p256dh,
                auth=sub.auth,
                user_agent=user_agent[:300],
                created_at=time.time(),
                install_id=install_id,
            )
            session.add(device)
        elif device.staff_id != staff_id:
            # An endpoint belongs to whoever registered it first: moving it would silence their
            # phone. A shared browser subscribes anew for its next user.
            raise Conflict(
                "This push subscription is registered to another staff member; "
                "unsubscribe and subscribe again to register this browser."
            )
        else:  # the same browser re-subscribing: its keys may have changed
            device.p256dh, device.auth = sub.p256dh, sub.auth
            device.install_id = install_id or device.install_id
    return device.id


async def report_install(
    database: Database, *, staff_id: str, report: InstallReportIn, user_agent: str, now: float | None = None
) -> None:
    """Keep what the app on one browser says of itself (#23): notification permission, push
    subscription state, app version, Home Screen or not, its device. A browser another staff
    member used before is theirs now (a shared phone reports for whoever is signed in)."""
    now = time.time() if now is None else now
    async with database.transaction() as session:
        device_id = report.device_id
        if device_id is not None:
            device = await session.get(Device, device_id)
            if device is None or device.staff_id != staff_id:
                device_id = None  # not theirs (or gone): reported without it
        install = await session.get(AppInstall, report.install_id)
        if install is None:
            install = AppInstall(install_id=report.install_id)
            session.add(install)
        install.staff_id = staff_id
        install.permission = report.permission
        install.push = report.push
        install.app_version = report.app_version
        install.standalone = report.standalone
        install.device_id = device_id
        install.user_agent = user_agent[:300]
        install.reported_at = now


async def remove_device(database: Database, *, staff_id: str, device_id: str) -> None:
    """Forget one of the staff member's own devices."""
    async with database.transaction() as session:
        device = await session.get(Device, device_id)
        if device is None or device.staff_id != staff_id:
            raise NotFound(f"No device '{device_id}'.")
        await session.delete(device)
