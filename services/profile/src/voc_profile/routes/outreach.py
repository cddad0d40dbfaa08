"""Outreach work (#20): managers assign list customers to staff of a store (outreach.assign),
the assignee reads their assignments and records each contact (outreach.contact), and the
report compares revisits of reached and not reached customers (reports.read). Scope is in every
query: a store outside the caller's is 403 naming the field, an assignment outside it 404."""

from __future__ import annotations

import dataclasses
import time
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from voc_platform.errors import FieldError, Forbidden, Invalid
from voc_platform.http import DatabaseDep, FromQuery, SessionDep, ToQuery, query_instant, require
from voc_platform.identity import Caller, Permission
from voc_profile import lists, outreach
from voc_profile.deps import AuditDep, SettingsDep, StoreQuery
from voc_profile.schemas import AssignmentIn, ContactIn
from voc_profile.staff_directory import StaffDirectory

router = APIRouter(tags=["outreach"], responses={401: {}, 403: {}, 422: {}})
Assigner = Annotated[Caller, Depends(require(Permission.OUTREACH_ASSIGN))]
Contacter = Annotated[Caller, Depends(require(Permission.OUTREACH_CONTACT))]
Reporter = Annotated[Caller, Depends(require(Permission.REPORTS))]
AssignmentStatus = Literal["open", "in_progress", "done", "cancelled", "live"]


def _epoch(value: datetime | None, field: str) -> float | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise Invalid(
            "A time needs its offset.", errors=[FieldError(field, "e.g. 2026-12-05T18:00:00+09:00")]
        )
    return value.timestamp()


async def staff_directory(request: Request) -> StaffDirectory:
    directory: StaffDirectory = request.app.state.staff_directory
    return directory


@router.post("/v1/outreach/assignments", status_code=201, responses={409: {}, 503: {}})
async def create_assignment(
    body: AssignmentIn,
    caller: Assigner,
    database: DatabaseDep,
    directory: Annotated[StaffDirectory, Depends(staff_directory)],
) -> dict[str, Any]:
    """Give a customer of a list to a staff member of the store (who must work there, as
    notify's directory says now); one live assignment per customer and store."""
    caller.check_store(body.store_id, field="body.store_id")
    lists.check_signal(body.list_kind, field="body.list_kind")  # before asking notify anything
    new = outreach.NewAssignment(
        body.customer_id, body.list_kind, body.store_id, _epoch(body.due_at, "body.due_at")
    )
    assignee = await directory.member(body.assignee_id)
    async with database.transaction() as session:
        await outreach.check_assignable(session, new=new, assignee=assignee, assignee_id=body.assignee_id)
        assert assignee is not None
        row = await outreach.assign(session, new=new, assignee=assignee, actor=caller.actor)
        return outreach.assignment_out(row, [])


@router.get("/v1/outreach/assignments")
async def list_assignments(
    caller: Contacter,
    session: SessionDep,
    audit: AuditDep,
    assignee: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    status: AssignmentStatus | None = None,
    store_id: StoreQuery = None,
    list_kind: Annotated[str | None, Query(min_length=1, max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """`?assignee=me|<staff id>&status=open|in_progress|done|cancelled|live&store_id=&list_kind=`.
    Staff without outreach.assign read their own only (`assignee` defaults to `me` for them)."""
    principal = caller.principal
    if assignee == "me" or (assignee is None and not caller.may(Permission.OUTREACH_ASSIGN)):
        if principal is None:
            raise Invalid(
                "The admin token is no staff member.", errors=[FieldError("query.assignee", "not 'me'")]
            )
        assignee = principal.staff_id
    if (
        not caller.may(Permission.OUTREACH_ASSIGN)
        and principal is not None
        and assignee != principal.staff_id
    ):
        raise Forbidden(
            "Staff read their own assignments only.", errors=[FieldError("query.assignee", "not yours")]
        )
    caller.check_store(store_id)
    if list_kind is not None:
        lists.check_signal(list_kind, field="query.list_kind")
    query = outreach.AssignmentQuery(caller.scope, assignee, store_id, status, list_kind, limit)
    found = await outreach.list_assignments(session, query=query)
    audit.read(
        actor=caller.actor,
        action="outreach_list",
        detail={"assignee": assignee, "store_id": store_id, "count": len(found)},
    )
    return {"assignments": found}


@router.post(
    "/v1/outreach/assignments/{assignment_id}/contacts", status_code=201, responses={404: {}, 409: {}}
)
async def record_contact(
    assignment_id: str, body: ContactIn, caller: Contacter, database: DatabaseDep
) -> dict[str, Any]:
    """The assignee (or a manager of the store) records a contact: reached, declined and
    resolved close the assignment; no_answer and callback keep it in progress."""
    at = _epoch(body.contacted_at, "body.contacted_at") or time.time()
    contact = outreach.NewContact(body.channel, body.outcome, body.note, at)
    async with database.transaction() as session:
        row, _ = await outreach.record_contact(
            session,
            assignment_id=assignment_id,
            contact=contact,
            stores=caller.scope,
            staff_id=caller.principal.staff_id if caller.principal else None,
            may_manage=caller.may(Permission.OUTREACH_ASSIGN),
            actor=caller.actor,
        )
        contacts = await outreach.contacts_of(session, [row.id])
        return outreach.assignment_out(row, contacts.get(row.id, []))


@router.delete("/v1/outreach/assignments/{assignment_id}", status_code=204, responses={404: {}, 409: {}})
async def cancel_assignment(assignment_id: str, caller: Assigner, database: DatabaseDep) -> Response:
    """Cancel a live assignment (it leaves the report; a done one stays)."""
    async with database.transaction() as session:
        await outreach.cancel(session, assignment_id=assignment_id, stores=caller.scope, actor=caller.actor)
    return Response(status_code=204)


@router.get("/v1/outreach/report")
async def outreach_report(
    caller: Reporter,
    session: SessionDep,
    settings: SettingsDep,
    store_id: StoreQuery = None,
    since: FromQuery = None,
    until: ToQuery = None,
) -> dict[str, Any]:
    """Per store and list: contact rate, and revisits of reached vs not reached customers
    (docs/PROFILE.md defines each number)."""
    caller.check_store(store_id)
    # Read as feedback reads a period (a number was taken for epoch seconds: `?to=0.5` was 1970).
    start = query_instant(since, "from") if since else None
    end = query_instant(until, "to") if until else None
    for bound, name in ((start, "query.from"), (end, "query.to")):
        if bound is not None:
            outreach.check_period_bound(bound, field=name)
    if start is not None and end is not None and end <= start:
        raise Invalid("'to' must be after 'from'.", errors=[FieldError("query.to", "before 'from'")])
    found = await outreach.report(
        session,
        stores=(store_id,) if store_id else caller.scope,
        window_days=settings.churn_window_days,
        since=start,
        until=end,
    )
    return report_out(found)


def report_out(found: outreach.Report) -> dict[str, Any]:
    return {
        "from": found.since,
        "to": found.until,
        "window_days": found.window_days,
        "rows": [dataclasses.asdict(r) for r in found.rows],
    }
