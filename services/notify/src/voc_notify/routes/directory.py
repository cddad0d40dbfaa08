"""Directory administration (admin token): stores, staff, CSV import, login unlock, shifts,
overrides, and who is on duty now."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import Field

from voc_notify import auth, directory
from voc_notify.deps import SettingsDep
from voc_notify.schemas import OverrideIn, ShiftIn, StaffIn, StoreIn
from voc_platform.errors import BadRequest, Unsupported
from voc_platform.http import DatabaseDep, SessionDep, require_admin

router = APIRouter(prefix="/v1/admin", tags=["directory"], dependencies=[Depends(require_admin)])


@router.put("/stores")
async def upsert_stores(
    body: Annotated[list[StoreIn], Field(max_length=5000)], database: DatabaseDep
) -> dict[str, int]:
    return {"stores": await directory.upsert_stores(database, stores=body)}


@router.get("/stores")
async def list_stores(session: SessionDep) -> list[dict[str, Any]]:
    return await directory.list_stores(session)


@router.put("/staff", responses={409: {}})
async def upsert_staff(
    body: Annotated[list[StaffIn], Field(max_length=500)], database: DatabaseDep
) -> dict[str, int]:
    """Create or update staff by id; 409 when an e-mail belongs to someone else."""
    return {"staff": await directory.upsert_staff(database, staff=body)}


@router.post("/staff/{staff_id}/unlock", status_code=204, responses={404: {}})
async def unlock_staff(staff_id: str, database: DatabaseDep, settings: SettingsDep) -> Response:
    """Lift a staff member's login lock and forget their failed logins."""
    await auth.unlock(database, staff_id=staff_id, settings=settings)
    return Response(status_code=204)


@router.post("/staff/{staff_id}/deactivate", status_code=204, responses={404: {}})
async def deactivate_staff(staff_id: str, database: DatabaseDep) -> Response:
    """No more login, refresh or pages for this staff member; their sessions end at once."""
    await directory.set_active(database, staff_id=staff_id, active=False)
    return Response(status_code=204)


@router.post("/staff/{staff_id}/activate", status_code=204, responses={404: {}})
async def activate_staff(staff_id: str, database: DatabaseDep) -> Response:
    """Let a deactivated staff member sign in again."""
    await directory.set_active(database, staff_id=staff_id, active=True)
    return Response(status_code=204)


@router.get("/staff/{staff_id}/shifts")
async def get_shifts(staff_id: str, session: SessionDep) -> dict[str, Any]:
    return await directory.schedule(session, staff_id=staff_id)


@router.put("/staff/{staff_id}/shifts")
async def put_shifts(
    staff_id: str, body: Annotated[list[ShiftIn], Field(max_length=100)], database: DatabaseDep
) -> dict[str, Any]:
    """Replace the weekly pattern; an empty list means "always on duty" again."""
    return await directory.replace_shifts(database, staff_id=staff_id, shifts=body)


@router.post("/staff/{staff_id}/overrides", status_code=201)
async def add_override(staff_id: str, body: OverrideIn, database: DatabaseDep) -> dict[str, Any]:
    return await directory.add_override(database, staff_id=staff_id, override=body)


@router.delete("/staff/{staff_id}/overrides/{override_id}", status_code=204)
async def remove_override(staff_id: str, override_id: str, database: DatabaseDep) -> Response:
    await directory.remove_override(database, staff_id=staff_id, override_id=override_id)
    return Response(status_code=204)


@router.get("/stores/{store_id}/on-duty")
async def on_duty_now(
    store_id: str,
    session: SessionDep,
    at: Annotated[float | None, Query(ge=0, le=4102444800, description="epoch seconds")] = None,
) -> dict[str, Any]:
    """Who routing would consider on duty at the store (now, or at `at`), and its quiet hours."""
    return await directory.on_duty_report(
        session, store_id=store_id, now=at if at is not None else time.time()
    )


@router.post("/staff:import")
async def import_staff(request: Request, database: DatabaseDep) -> dict[str, Any]:
    """CSV (UTF-8) with a header row; store_ids separated by ";". All rows or none."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "text/csv":
        raise Unsupported("Send the staff list as text/csv.")
    try:
        text = (await request.body()).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest("The CSV is not UTF-8.") from exc
    return await directory.import_staff_csv(database, text=text)
