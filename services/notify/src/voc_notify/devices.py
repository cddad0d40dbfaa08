"""Staff devices: a browser's Web Push subscription, bound to the staff member who registered it,
and removed by them."""

from __future__ import annotations

import hashlib
import time

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from voc_notify.models import Device
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
        return await _bind(database, staff_id=staff_id, sub=sub, user_agent=user_agent)
    except IntegrityError:
        # A concurrent request stored the same endpoint first (PostgreSQL): its row decides.
        return await _bind(database, staff_id=staff_id, sub=sub, user_agent=user_agent)


async def _bind(database: Database, *, staff_id: str, sub: PushSubscription, user_agent: str) -> str:
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
    return device.id


async def remove_device(database: Database, *, staff_id: str, device_id: str) -> None:
    """Forget one of the staff member's own devices."""
    async with database.transaction() as session:
        device = await session.get(Device, device_id)
        if device is None or device.staff_id != staff_id:
            raise NotFound(f"No device '{device_id}'.")
        await session.delete(device)
