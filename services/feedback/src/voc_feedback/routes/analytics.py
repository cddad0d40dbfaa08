"""`GET /v1/analytics` (volume, sentiment, NPS, CSAT, mixes, trend, loop KPIs, top issues),
`GET /v1/analytics/open-cases`, `GET /v1/analytics/targets` (each metric against its target, with
the weekly trend) and `GET /v1/analytics/outreach` (profile's outreach report, for the dashboard),
scoped like the feedback list."""

from __future__ import annotations

import dataclasses
import time
from typing import Annotated, NamedTuple
from zoneinfo import ZoneInfo

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response

from voc_feedback import adherence, analytics, targets
from voc_feedback.deps import FilterParams, IdQuery, ReaderDep, SlaDep, feedback_filter
from voc_feedback.listing import FeedbackFilter
from voc_feedback.outreach_reports import OutreachReports
from voc_feedback.stores import store_names
from voc_platform import taxonomy
from voc_platform.errors import FieldError, Invalid
from voc_platform.http import FromQuery, SessionDep, ToQuery, app_state
from voc_platform.identity import Permission
from voc_platform.timezones import known_zone

router = APIRouter()
DEFAULT_DAYS = 30


class AnalyticsQuery(NamedTuple):
    where: FeedbackFilter
    timezone: ZoneInfo


async def place_params(store_id: IdQuery = None, area_id: IdQuery = None) -> FilterParams:
    """The place of a report: a store or an area (none: every store the reader may see)."""
    return FilterParams(store_id, area_id)


PlaceDep = Annotated[FilterParams, Depends(place_params)]


class PlaceAndPeriod(NamedTuple):
    place: FilterParams
    since: str | None
    until: str | None


async def place_and_period(
    store_id: IdQuery = None, area_id: IdQuery = None, since: FromQuery = None, until: ToQuery = None
) -> PlaceAndPeriod:
    """The query parameters of a report over a place and a period."""
    return PlaceAndPeriod(FilterParams(store_id, area_id), since, until)


PlaceAndPeriodDep = Annotated[PlaceAndPeriod, Depends(place_and_period)]


async def analytics_query(
    request: Request,
    reader: ReaderDep,
    asked: PlaceAndPeriodDep,
    tz: Annotated[str, Query(max_length=64)] = "Asia/Seoul",
) -> AnalyticsQuery:
    """A place and a period (the last 30 days by default), and the time zone of the days."""
    access = await reader.query_scope(
        request, Permission.ANALYTICS, allowed={"store_id", "area_id", "from", "to", "tz"}
    )
    zone = _timezone(tz)
    where = feedback_filter(access, asked.place, since=asked.since, until=asked.until)
    if where.since is None:
        where = dataclasses.replace(where, since=time.time() - DEFAULT_DAYS * 86400)
    return AnalyticsQuery(where, zone)


def _timezone(name: str) -> ZoneInfo:
    zone = known_zone(name)
    if zone is None:
        # Cut: the name is echoed back, and the query may be as long as the server lets it.
        raise Invalid(
            f"Unknown time zone '{name[:100]}'.", errors=[FieldError("query.tz", "unknown time zone")]
        )
    return zone


class OpenCasesQuery(NamedTuple):
    where: FeedbackFilter
    limit: int
    personal: bool


async def open_cases_query(
    request: Request,
    reader: ReaderDep,
    place: PlaceDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> OpenCasesQuery:
    access = await reader.query_scope(request, Permission.ANALYTICS, allowed={"store_id", "area_id", "limit"})
    where = feedback_filter(access, place, since=None, until=None)
    return OpenCasesQuery(where, limit, access.personal_data)


@router.get("/v1/analytics", responses={401: {}, 403: {}, 422: {}, 429: {}})
async def read_analytics(
    query: Annotated[AnalyticsQuery, Depends(analytics_query)], session: SessionDep, sla: SlaDep
) -> Response:
    body = await analytics.analytics(session, where=query.where, sla=sla, timezone=query.timezone)
    body["plan_adherence"] = await adherence.summary(session, where=query.where)
    body["labels"] = taxonomy.categories()
    return Response(orjson.dumps(body), media_type="application/json")


@router.get("/v1/analytics/open-cases", responses={401: {}, 403: {}, 422: {}, 429: {}})
async def read_open_cases(
    query: Annotated[OpenCasesQuery, Depends(open_cases_query)], session: SessionDep
) -> Response:
    cases = await analytics.open_cases(session, where=query.where, limit=query.limit, personal=query.personal)
    return Response(orjson.dumps({"cases": cases}), media_type="application/json")


class TargetsQuery(NamedTuple):
    where: FeedbackFilter
    area_readable: bool
    weeks: int
    since: float | None  # the period's start when asked `from`; None: the whole `weeks`
    timezone: ZoneInfo


async def targets_query(
    request: Request,
    reader: ReaderDep,
    place: PlaceDep,
    weeks: Annotated[int, Query(ge=1, le=targets.MAX_WEEKS)] = 8,
    since: FromQuery = None,
    tz: Annotated[str, Query(max_length=64)] = "Asia/Seoul",
) -> TargetsQuery:
    """A place (the reader's stores by default) and how far back: `weeks`, or the period from
    `from` (the dashboard's), by the weeks it touches; not both."""
    access = await reader.query_scope(
        request, Permission.ANALYTICS, allowed={"store_id", "area_id", "weeks", "from", "tz"}
    )
    zone = _timezone(tz)
    if "weeks" in request.query_params and since:
        raise Invalid(
            "Give either 'weeks' or 'from', not both.", errors=[FieldError("query.from", "with 'weeks'")]
        )
    where = feedback_filter(access, place, since=since, until=None)
    start = where.since
    if start is not None:
        now = time.time()
        if start >= now:
            raise Invalid("'from' must be in the past.", errors=[FieldError("query.from", "in the future")])
        # Far past dates are refused before any calendar arithmetic (year 1 overflows west of UTC).
        too_far = start < now - (targets.MAX_WEEKS + 1) * 7 * 86400
        weeks = targets.MAX_WEEKS + 1 if too_far else targets.weeks_since(start, timezone=zone, now=now)
        if weeks > targets.MAX_WEEKS:
            raise Invalid(
                f"'from' reaches back more than {targets.MAX_WEEKS} weeks.",
                errors=[FieldError("query.from", f"more than {targets.MAX_WEEKS} weeks back")],
            )
    principal = access.caller.principal if access.caller else None
    # Whole areas are shown to those who read every store, and to an area manager (theirs).
    area_readable = access.caller is not None and (
        access.scope is None or (principal is not None and principal.role == "area_manager")
    )
    return TargetsQuery(where, area_readable, weeks, start, zone)


@router.get("/v1/analytics/targets", responses={401: {}, 403: {}, 422: {}, 429: {}})
async def read_against_targets(
    query: Annotated[TargetsQuery, Depends(targets_query)], session: SessionDep
) -> Response:
    """Each store (and area) of the reader: NPS, CSAT, minutes to acknowledge and to resolve
    (p50), recovery rate over the last `weeks` weeks or the period `from`, the target each is
    held to (the store's own, else its area's), whether it is met, and the value of each week."""
    body = await targets.against_targets(
        session,
        where=query.where,
        area_readable=query.area_readable,
        weeks=query.weeks,
        since=query.since,
        timezone=query.timezone,
    )
    return Response(orjson.dumps(body), media_type="application/json")


OutreachReportsDep = Annotated[OutreachReports, Depends(app_state("outreach_reports"))]


class OutreachQuery(NamedTuple):
    where: FeedbackFilter


async def outreach_query(request: Request, reader: ReaderDep, asked: PlaceAndPeriodDep) -> OutreachQuery:
    access = await reader.query_scope(
        request, Permission.REPORTS, allowed={"store_id", "area_id", "from", "to"}
    )
    return OutreachQuery(feedback_filter(access, asked.place, since=asked.since, until=asked.until))


@router.get("/v1/analytics/outreach", responses={401: {}, 403: {}, 422: {}, 429: {}, 503: {}})
async def read_outreach_report(
    query: Annotated[OutreachQuery, Depends(outreach_query)], session: SessionDep, reports: OutreachReportsDep
) -> Response:
    """Profile's outreach report (contact rate, revisits of reached vs not reached customers)
    for the reader's stores, with their names: the dashboard's window on outreach work."""
    where = query.where
    stores: tuple[str, ...] | None = where.scope_store_ids
    if where.store_id:
        stores = (where.store_id,)
    elif where.area_id:
        places = await targets.places_of(session, where=where, area_readable=False)
        stores = tuple(p.id for p in places)
    body = await reports.report(stores=stores, since=where.since, until=where.until)
    names = await store_names(session)
    for row in body["rows"]:
        row["store_name"] = names.get(row["store_id"], row["store_id"])
    return Response(orjson.dumps(body), media_type="application/json")
