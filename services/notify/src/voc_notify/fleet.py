"""Health of the fleet of staff phones (#23), for managers: per staff member, each device's last
push accepted and shown and whether the watchdog suspects it, and what each app install
reports (notification permission, push subscription, version); who cannot receive pages now."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from voc_notify.models import AppInstall, Device, Staff, StaffStore, Store
from voc_notify.routing import ROLE_LEVEL
from voc_platform.errors import Forbidden
from voc_platform.identity import Principal

SILENT_SECONDS = 86400  # a device that got pushes but showed none for a day is "silent"


def silent(device: Device, *, now: float) -> bool:
    """Pushes were accepted for the device since it last showed one, and that is a day ago or
    more (or it never showed one, registered a day ago or more)."""
    shown = device.last_shown_at
    if device.last_success_at is None or (shown is not None and shown >= device.last_success_at):
        return False
    return (shown if shown is not None else device.created_at) <= now - SILENT_SECONDS


async def _stores_in_scope(
    session: AsyncSession, principal: Principal, store_id: str | None
) -> list[str] | None:
    """The stores whose staff the principal may look at (None: all), narrowed to `store_id`;
    403 below store manager or for a store outside their scope."""
    if ROLE_LEVEL.get(principal.role, 0) < ROLE_LEVEL["store_manager"]:
        raise Forbidden("The health of the staff's phones is for store managers and above.")
    if principal.role == "cx_admin":
        return [store_id] if store_id else None
    stores = set(principal.store_ids)
    if principal.role == "area_manager" and principal.area_id:
        stores |= set(await session.scalars(select(Store.id).where(Store.area_id == principal.area_id)))
    if store_id is not None:
        if store_id not in stores:
            raise Forbidden(f"The store '{store_id}' is outside your scope.")
        return [store_id]
    return sorted(stores)


async def fleet_health(
    session: AsyncSession, *, principal: Principal, store_id: str | None, now: float
) -> dict[str, Any]:
    """Every active staff member of the stores in scope with their devices and app installs, who
    can receive pages, and a headline ("3 of 9 staff can't receive pages")."""
    stores = await _stores_in_scope(session, principal, store_id)
    query = select(Staff).where(Staff.active.is_(True)).order_by(Staff.id)
    if stores is not None:
        query = query.where(Staff.id.in_(select(StaffStore.staff_id).where(StaffStore.store_id.in_(stores))))
    staff = list(await session.scalars(query))
    ids = [s.id for s in staff]
    devices: dict[str, list[Device]] = defaultdict(list)
    installs: dict[str, list[AppInstall]] = defaultdict(list)
    for device in await session.scalars(select(Device).where(Device.staff_id.in_(ids)).order_by(Device.id)):
        devices[device.staff_id].append(device)
    for install in await session.scalars(
        select(AppInstall).where(AppInstall.staff_id.in_(ids)).order_by(AppInstall.reported_at.desc())
    ):
        installs[install.staff_id].append(install)
    people = [_person(s, devices[s.id], installs[s.id], now=now) for s in staff]
    cannot = sum(1 for p in people if not p["can_receive"])
    return {
        "store_id": store_id,
        "staff_count": len(people),
        "cannot_receive": cannot,
        "silent_devices": sum(1 for p in people for d in p["devices"] if d["silent"]),
        "staff": people,
    }


def _person(staff: Staff, devices: list[Device], installs: list[AppInstall], *, now: float) -> dict[str, Any]:
    by_device = {i.device_id: i for i in installs if i.device_id}
    shown = [_device(d, by_device.get(d.id), now=now) for d in devices]
    healthy = [d for d in shown if d["healthy"]]
    problems: list[str] = []
    if not devices:
        problems.append("no_device")
    latest = installs[0] if installs else None  # newest report first: what the phone says now
    if latest is not None and latest.permission == "denied":
        problems.append("permission_denied")
    if latest is not None and latest.push == "expired":
        problems.append("subscription_expired")
    if any(d["suspect_since"] is not None for d in shown):
        problems.append("suspect_device")
    if any(d["silent"] for d in shown):
        problems.append("silent_device")
    return {
        "staff_id": staff.id,
        "name": staff.name,
        "role": staff.role,
        "store_ids": staff.store_ids,
        "can_receive": bool(healthy),
        "problems": problems,
        "last_shown_at": max((d.last_shown_at or 0 for d in devices), default=0) or None,
        "devices": shown,
        "installs": [
            {
                "install_id": i.install_id,
                "permission": i.permission,
                "push": i.push,
                "app_version": i.app_version,
                "standalone": i.standalone,
                "device_id": i.device_id,
                "reported_at": i.reported_at,
            }
            for i in installs
        ],
    }


def _device(device: Device, install: AppInstall | None, *, now: float) -> dict[str, Any]:
    is_silent = silent(device, now=now)
    reports_trouble = install is not None and (
        install.permission != "granted" or install.push != "subscribed"
    )
    return {
        "id": device.id,
        "created_at": device.created_at,
        "last_accepted_at": device.last_success_at,
        "last_shown_at": device.last_shown_at,
        "suspect_since": device.suspect_since,
        "silent": is_silent,
        "healthy": device.suspect_since is None and not is_silent and not reports_trouble,
        "app_version": install.app_version if install else None,
        "permission": install.permission if install else None,
    }
