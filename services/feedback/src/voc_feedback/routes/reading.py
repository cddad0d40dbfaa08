"""Reading feedback: `GET /v1/feedback` (filters, cursor), `GET /v1/feedback/export.csv` and
`GET /v1/feedback/{id}`, for the admin token (every store), a staff token (feedback.read, the
export feedback.export; its role's stores) or a store key (its stores). Exports are audited."""

from __future__ import annotations

import re
import time
from dataclasses import replace
from typing import Annotated, NamedTuple

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from voc_feedback import corrections, follow_ups, listing
from voc_feedback.deps import (
    FILTER_PARAMS,
    Access,
    AuditDep,
    FilterParamsDep,
    FollowUpLinksDep,
    ReaderDep,
    feedback_filter,
)
from voc_feedback.listing import FeedbackFilter
from voc_feedback.schemas import FeedbackOut, FeedbackPage, FeedbackSummary, FollowUpOut
from voc_platform.errors import FieldError, Forbidden, Invalid, NotFound
from voc_platform.http import DatabaseDep, FromQuery, SessionDep, ToQuery
from voc_platform.identity import Permission

router = APIRouter()
MAX_EXPORT_DAYS = 366
_DATE_PART = re.compile(r"[0-9-]{0,10}")


class ListQuery(NamedTuple):
    where: FeedbackFilter
    limit: int
    cursor: str | None
    access: Access


async def list_query(
    request: Request,
    reader: ReaderDep,
    params: FilterParamsDep,
    since: FromQuery = None,
    until: ToQuery = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
    customer_id: Annotated[str | None, Query(min_length=1, max_length=36)] = None,
) -> ListQuery:
    access = await reader.query_scope(
        request, Permission.FEEDBACK_READ, allowed=FILTER_PARAMS | {"limit", "cursor", "customer_id"}
    )
    where = feedback_filter(access, params, since=since, until=until)
    if customer_id is not None:
        # One person's items, texts whole (a subject access request): a reader who sees no
        # customer records may not single anyone out.
        if not access.personal_data:
            raise Forbidden(
                "Listing one customer's feedback needs access to customer records.",
                errors=[FieldError("query.customer_id", "needs customer records")],
            )
        where = replace(where, customer_id=customer_id)
    return ListQuery(where, limit, cursor, access)


class ExportQuery(NamedTuple):
    where: FeedbackFilter
    filename: str
    access: Access


async def export_query(
    request: Request,
    reader: ReaderDep,
    since: Annotated[str, Query(alias="from", min_length=1, max_length=40)],
    until: Annotated[str, Query(alias="to", min_length=1, max_length=40)],
    params: FilterParamsDep,
) -> ExportQuery:
    """The list's filter with a bounded period (both ends required)."""
    access = await reader.query_scope(request, Permission.FEEDBACK_EXPORT, allowed=FILTER_PARAMS)
    where = feedback_filter(access, params, since=since, until=until)
    if where.since is None or where.until is None:  # unreachable past min_length; never a 500
        raise Invalid("An export needs both 'from' and 'to'.", errors=[FieldError("query.from", "required")])
    if where.until - where.since > MAX_EXPORT_DAYS * 86400:
        raise Invalid(
            f"Export at most {MAX_EXPORT_DAYS} days at a time.",
            errors=[FieldError("query.to", "period too long")],
        )
    return ExportQuery(where, f"feedback-{_day(since)}-{_day(until)}.csv", access)


def _day(value: str) -> str:
    """The date a period end starts with, for a file name: its leading digits and dashes
    (fromisoformat takes any character as the date-time separator, and a header is latin-1)."""
    found = _DATE_PART.match(value)
    return found[0] if found else ""


def _scope(where: FeedbackFilter) -> list[str] | str:
    """The stores a read covered, as the audit log says it: their ids, or "all"."""
    return list(where.scope_store_ids) if where.scope_store_ids is not None else "all"


@router.get("/v1/feedback", response_model=FeedbackPage, responses={401: {}, 403: {}, 422: {}, 429: {}})
async def list_items(
    query: Annotated[ListQuery, Depends(list_query)], session: SessionDep, audit: AuditDep
) -> FeedbackPage:
    if query.where.customer_id is not None:  # a read of one person's data: in their access log
        audit.read(
            actor=query.access.actor,
            action="feedback.list_customer",
            target=f"customer:{query.where.customer_id}",
            detail={"scope": _scope(query.where)},
        )
    rows, next_cursor = await listing.list_feedback(
        session, where=query.where, limit=query.limit, cursor=query.cursor
    )
    personal = query.access.personal_data
    return FeedbackPage(
        items=[FeedbackSummary.of(r, personal=personal) for r in rows], next_cursor=next_cursor
    )


@router.get(
    "/v1/feedback/export.csv",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}, 401: {}, 403: {}, 422: {}, 429: {}},
)
async def export_csv(
    query: Annotated[ExportQuery, Depends(export_query)], database: DatabaseDep, audit: AuditDep
) -> StreamingResponse:
    where = query.where
    audit.read(
        actor=query.access.actor,
        action="feedback.export",
        target=f"store:{where.store_id}" if where.store_id else None,
        detail={
            "scope": _scope(where),
            "area_id": where.area_id,
            "from": where.since,
            "to": where.until,
        },
    )
    return StreamingResponse(
        listing.csv_export(database, query.where),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{query.filename}"'},
    )


@router.get("/v1/feedback/{feedback_id}", response_model=FeedbackOut, responses={401: {}, 403: {}, 404: {}})
async def read(
    feedback_id: str, reader: ReaderDep, session: SessionDep, links: FollowUpLinksDep
) -> FeedbackOut:
    access = await reader.scope(Permission.FEEDBACK_READ)
    scope = access.scope
    found = await listing.get_feedback(session, feedback_id=feedback_id)
    if found is None or (scope is not None and found.row.store_id not in scope):
        # Another store's feedback is answered as if it did not exist.
        raise NotFound(f"No feedback '{feedback_id}'.")
    follow = await follow_ups.follow_up_of(session, feedback_id=feedback_id)
    follow_out = None
    if follow is not None:
        # The link answers the survey as the customer: the admin token sees it, staff and store
        # keys never do (a store could fill in its own customers' surveys).
        shown = access.is_admin and follow_ups.is_open(follow, now=time.time())
        follow_out = FollowUpOut.of(follow, url=links.url(follow.id) if shown else None)
    correction = await corrections.latest(session, feedback_id=feedback_id)
    return FeedbackOut.of(
        found.row, found.timeline, follow_up=follow_out, correction=correction, personal=access.personal_data
    )
