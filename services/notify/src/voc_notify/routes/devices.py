"""Staff devices (Web Push subscriptions) and the VAPID key they subscribe with; what each app
install reports of itself, and the fleet's health for managers (#23)."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from voc_notify import devices, fleet
from voc_notify.deps import AllowlistDep, CurrentStaff, VapidDep, staff_with
from voc_notify.schemas import InstallReportIn, SubscriptionIn
from voc_platform.http import DatabaseDep, SessionDep
from voc_platform.identity import Permission, Principal

router = APIRouter(prefix="/v1", tags=["devices"])


@router.get("/push/vapid-public-key")
async def vapid_public_key(vapid: VapidDep) -> dict[str, str]:
    return {"public_key": vapid.public_key_b64url}


@router.post("/devices", status_code=201, responses={409: {}, 422: {}})
async def register_device(
    body: SubscriptionIn,
    principal: CurrentStaff,
    request: Request,
    database: DatabaseDep,
    allowlist: AllowlistDep,
) -> dict[str, str]:
    device_id = await devices.register_device(
        database,
        staff_id=principal.staff_id,
        subscription=body.model_dump(exclude={"install_id"}),
        allowlist=allowlist,
        user_agent=request.headers.get("user-agent") or "",
        install_id=body.install_id,
    )
    return {"id": device_id}


@router.delete("/devices/{device_id}", status_code=204)
async def remove_device(device_id: str, principal: CurrentStaff, database: DatabaseDep) -> Response:
    await devices.remove_device(database, staff_id=principal.staff_id, device_id=device_id)
    return Response(status_code=204)


@router.post("/installs", status_code=204, responses={422: {}})
async def report_install(
    body: InstallReportIn, principal: CurrentStaff, request: Request, database: DatabaseDep
) -> Response:
    """The app reports its notification permission, push subscription state and version (on
    start and whenever one changes), so managers see whose phone cannot be paged."""
    await devices.report_install(
        database, staff_id=principal.staff_id, report=body, user_agent=request.headers.get("user-agent") or ""
    )
    return Response(status_code=204)


@router.get("/fleet", responses={401: {}, 403: {}})
async def fleet_health(
    principal: Annotated[Principal, Depends(staff_with(Permission.DIRECTORY_READ))],
    session: SessionDep,
    store_id: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    """Per staff member of the caller's stores: devices (last accepted and shown push, suspect,
    silent for a day), app installs (permission, push, version) and whether they can receive
    pages. Store managers and above (directory.read); a store outside their scope is 403."""
    return await fleet.fleet_health(session, principal=principal, store_id=store_id, now=time.time())
