"""`GET /v1/analytics` (volume, sentiment, NPS, CSAT, mixes, trend, loop KPIs, top issues) and
`GET /v1/analytics/open-cases`, scoped like the feedback list."""

from __future__ import annotations

import dataclasses
import time
from typing import Annotated, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response

from voc_feedback import adherence, analytics
from voc_feedback.deps import FilterParams, FromQuery, IdQuery, ReaderDep, SlaDep, ToQuery, feedback_filter
from voc_feedback.listing import FeedbackFilter
from voc_platform import taxonomy
from voc_platform.errors import FieldError, Invalid
from voc_platform.http import SessionDep
from voc_platform.identity import Permission

router = APIRouter()
DEFAULT_DAYS = 30


class AnalyticsQuery(NamedTuple):
    where: FeedbackFilter
    timezone: ZoneInfo


async def analytics_query(
    request: Request,
    reader: ReaderDep,
    store_id: IdQuery = None,
    area_id: IdQuery = None,
    since: FromQuery = None,
    until: ToQuery = None,
    tz: Annotated[str, Query(max_length=64)] = "Asia/Seoul",
) -> AnalyticsQuery:
    """A place and a period (the last 30 days by default), and the time zone of the days."""
    access = await reader.query_scope(
        request, Permission.ANALYTICS, allowed={"store_id", "area_id", "from", "to", "tz"}
    )
    zone = _timezone(tz)
    where = feedback_filter(access, FilterParams(store_id, area_id), since=since, until=until)
    if where.since is None:
        where = dataclasses.replace(where, since=time.time() - DEFAULT_DAYS * 86400)
    return AnalyticsQuery(where, zone)


def _timezone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid(
            f"Unknown time zone '{name}'.", errors=[FieldError("query.tz", "unknown time zone")]
        ) from None


class OpenCasesQuery(NamedTuple):
    where: FeedbackFilter
    limit: int


async def open_cases_query(
    request: Request,
    reader: ReaderDep,
    store_id: IdQuery = None,
    area_id: IdQuery = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> OpenCasesQuery:
    access = await reader.query_scope(request, Permission.ANALYTICS, allowed={"store_id", "area_id", "limit"})
    where = feedback_filter(access, FilterParams(store_id, area_id), since=None, until=None)
    return OpenCasesQuery(where, limit)


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
    cases = await analytics.open_cases(session, where=query.where, limit=query.limit)
    return Response(orjson.dumps({"cases": cases}), media_type="application/json")
