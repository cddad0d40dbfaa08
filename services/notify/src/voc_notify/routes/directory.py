"""Directory administration: stores, staff, CSV import, deactivation, login unlock
(directory.write: cx_admin, the admin token); the shifts and overrides of staff one manages
(directory.shifts: a store manager their stores' staff, an area manager their area's, cx_admin
anyone's; 403 outside); and reading stores, schedules and who is on duty (directory.read:
managers too, within their stores). Every change is audited."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import Field

from voc_notify import auth, directory
from voc_notify.deps import AuditDep, IdentityDep, SettingsDep
from voc_notify.directory import Editor
from voc_notify.schemas import OverrideIn, ShiftIn, StaffIn, StoreIn
from voc_platform.errors import BadRequest, Unsupported
from voc_platform.http import DatabaseDep, SessionDep, require, upload_body
from voc_platform.identity import Caller, Permission

router = APIRouter(prefix="/v1/admin", tags=["directory"])
#: A chain's whole store list or staff list in one call (`voc_platform.http.BULK_BODY_BYTES`).
BULK_PATHS = frozenset({"/v1/admin/stores", "/v1/admin/staff", "/v1/admin/staff:import"})
Reader = Annotated[Caller, Depends(require(Permission.DIRECTORY_READ))]
Writer = Annotated[Caller, Depends(require(Permission.DIRECTORY_WRITE))]
ShiftKeeper = Annotated[Caller, Depends(require(Permission.SHIFTS))]


async def editor_of(caller: Writer, audit: AuditDep, identity: IdentityDep) -> Editor:
    return Editor(caller.actor, audit, identity.revocations)


EditorDep = Annotated[Editor, Depends(editor_of)]


async def shift_editor_of(caller: ShiftKeeper, audit: AuditDep, identity: IdentityDep) -> Editor:
    return Editor(caller.actor, audit, identity.revocations, manager=caller.principal)


ShiftEditorDep = Annotated[Editor, Depends(shift_editor_of)]


@router.put("/stores", responses={401: {}, 403: {}})
async def upsert_stores(
    body: Annotated[list[StoreIn], Field(max_length=5000)], database: DatabaseDep, editor: EditorDep
) -> dict[str, int]:
    return {"stores": await directory.upsert_stores(database, stores=body, editor=editor)}


@router.get("/stores", responses={401: {}, 403: {}})
async def list_stores(caller: Reader, session: SessionDep) -> list[dict[str, Any]]:
    """The stores the caller may see (a manager's own, an area manager's area's, all for cx_admin)."""
    return await directory.list_stores(session, scope=caller.scope)


@router.get("/staff", responses={401: {}, 403: {}})
async def list_staff(caller: Reader, session: SessionDep) -> dict[str, Any]:
    """Staff with role, stores, area and whether active: everyone for cx_admin, a manager's
    stores' staff (an area manager's area's) otherwise. Never a password."""
    return {"staff": await directory.list_staff(session, scope=caller.scope)}


@router.put("/staff", responses={401: {}, 403: {}, 409: {}})
async def upsert_staff(
    body: Annotated[list[StaffIn], Field(max_length=500)], database: DatabaseDep, editor: EditorDep
) -> dict[str, int]:
    """Create or update staff by id; 409 when an e-mail belongs to someone else. An existing
    member's tokens are revoked when their password, role, stores or area change (`active:
    false` deactivates)."""
    return {"staff": await directory.upsert_staff(database, staff=body, editor=editor)}


@router.post("/staff/{staff_id}/deactivate", status_code=204, responses={401: {}, 403: {}, 404: {}})
async def deactivate_staff(staff_id: str, database: DatabaseDep, editor: EditorDep) -> Response:
    """No more login, refresh or alerts; every session and access token of theirs stops working
    on every service."""
    await directory.set_active(database, staff_id=staff_id, active=False, editor=editor)
    return Response(status_code=204)


@router.post("/staff/{staff_id}/activate", status_code=204, responses={401: {}, 403: {}, 404: {}})
async def activate_staff(staff_id: str, database: DatabaseDep, editor: EditorDep) -> Response:
    """Let a deactivated staff member sign in again."""
    await directory.set_active(database, staff_id=staff_id, active=True, editor=editor)
    return Response(status_code=204)


@router.post("/staff/{staff_id}/unlock", status_code=204, responses={401: {}, 403: {}, 404: {}})
async def unlock_staff(
    staff_id: str, database: DatabaseDep, settings: SettingsDep, editor: EditorDep
) -> Response:
    """Lift a staff member's login lock and forget their failed logins."""
    await auth.unlock(database, staff_id=staff_id, settings=settings, audit=editor.audit, actor=editor.actor)
    return Response(status_code=204)


@router.get("/staff/{staff_id}/shifts", responses={401: {}, 403: {}, 404: {}})
async def get_shifts(staff_id: str, caller: Reader, session: SessionDep) -> dict[str, Any]:
    """A staff member's schedule: anyone's for cx_admin, a manager's own staff's (404 otherwise)."""
    return await directory.schedule(session, staff_id=staff_id, scope=caller.scope)


@router.put("/staff/{staff_id}/shifts", responses={401: {}, 403: {}, 404: {}})
async def put_shifts(
    staff_id: str,
    body: Annotated[list[ShiftIn], Field(max_length=100)],
    database: DatabaseDep,
    editor: ShiftEditorDep,
) -> dict[str, Any]:
    """Replace the weekly pattern; an empty list means "always on duty" again. A manager's call
    for staff they do not manage (another store's, another area's, a higher role) is 403."""
    return await directory.replace_shifts(database, staff_id=staff_id, shifts=body, editor=editor)


@router.post("/staff/{staff_id}/overrides", status_code=201, responses={401: {}, 403: {}, 404: {}})
async def add_override(
    staff_id: str, body: OverrideIn, database: DatabaseDep, editor: ShiftEditorDep
) -> dict[str, Any]:
    return await directory.add_override(database, staff_id=staff_id, override=body, editor=editor)


@router.delete(
    "/staff/{staff_id}/overrides/{override_id}", status_code=204, responses={401: {}, 403: {}, 404: {}}
)
async def remove_override(
    staff_id: str, override_id: str, database: DatabaseDep, editor: ShiftEditorDep
) -> Response:
    await directory.remove_override(database, staff_id=staff_id, override_id=override_id, editor=editor)
    return Response(status_code=204)


@router.get("/stores/{store_id}/on-duty", responses={401: {}, 403: {}, 404: {}})
async def on_duty_now(
    store_id: str,
    caller: Reader,
    session: SessionDep,
    at: Annotated[float | None, Query(ge=0, le=4102444800, description="epoch seconds")] = None,
) -> dict[str, Any]:
    """Who routing would consider on duty at the store (now, or at `at`), and its quiet hours;
    403 for a store outside the caller's."""
    caller.check_store(store_id, field="path.store_id")
    return await directory.on_duty_report(
        session, store_id=store_id, now=at if at is not None else time.time()
    )


@router.post(
    "/staff:import",
    responses={401: {}, 403: {}, 415: {}, 422: {}},
    openapi_extra=upload_body("text/csv", description="UTF-8 CSV with a header row (see the route)"),
)
async def import_staff(request: Request, database: DatabaseDep, editor: EditorDep) -> dict[str, Any]:
    """CSV (UTF-8) with a header row; store_ids separated by ";". All rows or none."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "text/csv":
        raise Unsupported("Send the staff list as text/csv.")
    try:
        text = (await request.body()).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest("The CSV is not UTF-8.") from exc
    return await directory.import_staff_csv(database, text=text, editor=editor)
