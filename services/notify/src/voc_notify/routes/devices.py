"""Staff devices (Web Push subscriptions) and the VAPID key they subscribe with."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from voc_notify import devices
from voc_notify.deps import AllowlistDep, CurrentStaff, VapidDep
from voc_notify.schemas import SubscriptionIn
from voc_platform.http import DatabaseDep

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
        subscription=body.model_dump(),
        allowlist=allowlist,
        user_agent=request.headers.get("user-agent") or "",
    )
    return {"id": device_id}


@router.delete("/devices/{device_id}", status_code=204)
async def remove_device(device_id: str, principal: CurrentStaff, database: DatabaseDep) -> Response:
    await devices.remove_device(database, staff_id=principal.staff_id, device_id=device_id)
    return Response(status_code=204)
