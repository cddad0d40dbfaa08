"""REST API of the feedback service (DESIGN §5), the follow-up page and the manager dashboard."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from fastapi import Depends, FastAPI, Header, Query, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, StreamingResponse
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from voc_feedback import analytics, pages, service
from voc_feedback.models import ApiKey, Feedback, FollowUp, Store, TimelineEntry
from voc_feedback.ratelimit import RateLimiter
from voc_feedback.schemas import (
    Accepted,
    ApiKeyCreated,
    ApiKeyIn,
    ApiKeyOut,
    ApiKeyRotate,
    Channel,
    Classification,
    FeedbackIn,
    FeedbackOut,
    FeedbackPage,
    FeedbackSummary,
    FollowUpAnswer,
    FollowUpOut,
    Ratings,
    StoreIn,
    StoreOut,
    TimelineOut,
)
from voc_feedback.settings import Settings
from voc_platform import taxonomy
from voc_platform.db import Database
from voc_platform.http import (
    BearerDep,
    Problem,
    SessionDep,
    admin_guard,
    bearer_token,
    create_app,
    install_health_routes,
)

DASHBOARD_DIR = Path(__file__).parent / "dashboard"
DASHBOARD_ASSETS = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
}
MAX_EXPORT_DAYS = 366
Sentiment = Literal["positive", "neutral", "negative"]
Status = Literal["received", "alerted", "acknowledged", "resolved", "followed_up", "reopened"]
Category = Literal[taxonomy.CATEGORIES]  # type: ignore[valid-type]
IdParam = Annotated[str | None, Query(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-.]+$")]
FILTER_PARAMS = {"store_id", "area_id", "channel", "category", "sentiment", "status", "from", "to"}


def _ts(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def classification_of(row: Feedback) -> Classification:
    return Classification(
        language=row.language,
        sentiment=row.sentiment,
        score=row.score,
        category=row.category,
        severity=row.severity,
        explanation=row.explanation,
    )


def feedback_summary(row: Feedback) -> FeedbackSummary:
    return FeedbackSummary(
        id=row.id,
        store_id=row.store_id,
        channel=row.channel,
        text=row.text,
        ratings=Ratings(csat=row.csat, nps=row.nps, ces=row.ces),
        customer_id=row.customer_id,
        revisit_intent=row.revisit_intent,
        touchpoint=row.touchpoint,
        occurred_at=_ts(row.occurred_at),
        received_at=_ts(row.received_at),
        status=row.status,
        classification=classification_of(row),
        reopens_id=row.reopens_id,
    )


def feedback_out(
    row: Feedback, timeline: list[TimelineEntry], follow_up: FollowUpOut | None = None
) -> FeedbackOut:
    return FeedbackOut(
        **feedback_summary(row).model_dump(),
        timeline=[TimelineOut(at=_ts(t.at), kind=t.kind, actor=t.actor, detail=t.detail) for t in timeline],
        follow_up=follow_up,
    )


def api_key_out(row: ApiKey) -> ApiKeyOut:
    return ApiKeyOut(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        store_ids=row.store_ids,
        created_at=_ts(row.created_at),
        revoked_at=_ts(row.revoked_at) if row.revoked_at else None,
        expires_at=_ts(row.expires_at) if row.expires_at else None,
        replaced_by=row.replaced_by,
    )


def _reject_unknown_params(request: Request, allowed: set[str]) -> None:
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise Problem(
            422,
            f"Unknown query parameter(s): {', '.join(unknown)}.",
            errors=[{"field": f"query.{name}", "message": "unknown parameter"} for name in unknown],
        )


def _timezone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise Problem(
            422,
            f"Unknown time zone '{name}'.",
            errors=[{"field": "query.tz", "message": "unknown time zone"}],
        ) from None


def build_app(settings: Settings, database: Database) -> FastAPI:
    app = create_app(title="Frontline VoC — feedback", service="voc-feedback")
    install_health_routes(app)
    require_admin = admin_guard(lambda: settings.admin_token)
    limiter = RateLimiter(rate_per_second=settings.rate_limit_per_second, burst=settings.rate_limit_burst)
    links = service.FollowUpLinks(
        secret=settings.follow_up_secret,
        public_url=settings.resolved_public_url,
        ttl_seconds=settings.follow_up_ttl_seconds,
    )
    sla = analytics.Sla(ack_seconds=settings.sla_ack_seconds, resolve_seconds=settings.sla_resolve_seconds)

    app.state.database = database
    app.state.rate_limiter = limiter

    def throttle(api_key: service.KeyIdentity) -> None:
        wait = limiter.take(api_key.id)
        if wait > 0:
            raise Problem(
                429,
                f"Rate limit of {settings.rate_limit_per_second:g}/s (burst {settings.rate_limit_burst}) "
                "exceeded for this API key.",
                headers={"Retry-After": RateLimiter.retry_after_header(wait)},
            )

    async def reader_scope(session: AsyncSession, credentials: Any) -> list[str] | None:
        """None for the admin (every store); an API key's stores otherwise."""
        token = bearer_token(credentials)
        if token == settings.admin_token:
            return None
        api_key = await service.authenticate_api_key(session, key=token)
        throttle(api_key)
        return list(api_key.store_ids)

    def make_filter(
        scope: list[str] | None,
        *,
        store_id: str | None,
        area_id: str | None,
        channel: Channel | None = None,
        category: str | None = None,
        sentiment: str | None = None,
        status: str | None = None,
        since: str | None,
        until: str | None,
    ) -> service.FeedbackFilter:
        start = service.parse_period(since, "from")
        end = service.parse_period(until, "to")
        if start is not None and end is not None and end <= start:
            raise Problem(
                422, "'to' must be after 'from'.", errors=[{"field": "query.to", "message": "before 'from'"}]
            )
        return service.FeedbackFilter(
            scope_store_ids=scope,
            store_id=store_id,
            area_id=area_id,
            channel=channel.value if channel else None,
            category=category,
            sentiment=sentiment,
            status=status,
            since=start,
            until=end,
        )

    # --- intake ------------------------------------------------------------------------------

    @app.post(
        "/v1/feedback",
        status_code=202,
        response_model=Accepted,
        responses={401: {}, 403: {}, 409: {}, 413: {}, 422: {}, 429: {}},
    )
    async def submit(
        body: FeedbackIn,
        credentials: BearerDep,
        idempotency_key: Annotated[str | None, Header(min_length=1, max_length=200)] = None,
    ) -> Response:
        intake = await service.accept_feedback(
            database,
            key=bearer_token(credentials),
            body=body,
            idempotency_key=idempotency_key,
            idempotency_ttl=settings.idempotency_ttl_seconds,
            throttle=throttle,
        )
        headers = {"Location": f"/v1/feedback/{intake.feedback_id}"}
        if intake.replay:
            headers["Idempotent-Replayed"] = "true"
        # The `Accepted` body written directly: the busiest endpoint skips the response model's
        # validation and serialization (the OpenAPI schema still documents `Accepted`).
        return Response(
            orjson.dumps({"id": intake.feedback_id, "status": "received"}),
            status_code=202,
            media_type="application/json",
            headers=headers,
        )

    # --- reading -----------------------------------------------------------------------------

    @app.get("/v1/feedback", response_model=FeedbackPage, responses={401: {}, 422: {}, 429: {}})
    async def list_items(
        request: Request,
        credentials: BearerDep,
        session: SessionDep,
        store_id: IdParam = None,
        area_id: IdParam = None,
        channel: Channel | None = None,
        category: Category | None = None,
        sentiment: Sentiment | None = None,
        status: Status | None = None,
        since: Annotated[str | None, Query(alias="from", max_length=40)] = None,
        until: Annotated[str | None, Query(alias="to", max_length=40)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        cursor: Annotated[str | None, Query(max_length=100)] = None,
    ) -> FeedbackPage:
        _reject_unknown_params(request, FILTER_PARAMS | {"limit", "cursor"})
        scope = await reader_scope(session, credentials)
        where = make_filter(
            scope,
            store_id=store_id,
            area_id=area_id,
            channel=channel,
            category=category,
            sentiment=sentiment,
            status=status,
            since=since,
            until=until,
        )
        rows, next_cursor = await service.list_feedback(session, where=where, limit=limit, cursor=cursor)
        return FeedbackPage(items=[feedback_summary(r) for r in rows], next_cursor=next_cursor)

    @app.get("/v1/feedback/export.csv", responses={401: {}, 422: {}, 429: {}})
    async def export_csv(
        request: Request,
        credentials: BearerDep,
        session: SessionDep,
        since: Annotated[str, Query(alias="from", max_length=40)],
        until: Annotated[str, Query(alias="to", max_length=40)],
        store_id: IdParam = None,
        area_id: IdParam = None,
        channel: Channel | None = None,
        category: Category | None = None,
        sentiment: Sentiment | None = None,
        status: Status | None = None,
    ) -> StreamingResponse:
        _reject_unknown_params(request, FILTER_PARAMS)
        scope = await reader_scope(session, credentials)
        where = make_filter(
            scope,
            store_id=store_id,
            area_id=area_id,
            channel=channel,
            category=category,
            sentiment=sentiment,
            status=status,
            since=since,
            until=until,
        )
        assert where.since is not None and where.until is not None
        if where.until - where.since > MAX_EXPORT_DAYS * 86400:
            raise Problem(
                422,
                f"Export at most {MAX_EXPORT_DAYS} days at a time.",
                errors=[{"field": "query.to", "message": "period too long"}],
            )
        filename = f"feedback-{since[:10]}-{until[:10]}.csv"
        return StreamingResponse(
            _csv_rows(database, where),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )

    @app.get("/v1/feedback/{feedback_id}", response_model=FeedbackOut, responses={401: {}, 404: {}})
    async def read(feedback_id: str, credentials: BearerDep, session: SessionDep) -> FeedbackOut:
        scope = await reader_scope(session, credentials)
        found = await service.get_feedback(session, feedback_id=feedback_id)
        if found is not None and scope is not None and found[0].store_id not in scope:
            found = None  # another store's feedback: answer as if it did not exist
        if found is None:
            raise Problem(404, f"No feedback '{feedback_id}'.")
        follow = await session.scalar(select(FollowUp).where(FollowUp.feedback_id == feedback_id))
        follow_out = None
        if follow is not None:
            usable = follow.answered_at is None and follow.expires_at > time.time()
            follow_out = FollowUpOut(
                url=service.follow_up_url(follow, links=links) if usable else None,
                created_at=_ts(follow.created_at),
                expires_at=_ts(follow.expires_at),
                answered_at=_ts(follow.answered_at) if follow.answered_at else None,
                csat=follow.csat,
                satisfied=follow.satisfied,
                reopened_feedback_id=follow.reopened_feedback_id,
            )
        return feedback_out(*found, follow_up=follow_out)

    # --- analytics ---------------------------------------------------------------------------

    @app.get("/v1/analytics", responses={401: {}, 422: {}, 429: {}})
    async def read_analytics(
        request: Request,
        credentials: BearerDep,
        session: SessionDep,
        store_id: IdParam = None,
        area_id: IdParam = None,
        since: Annotated[str | None, Query(alias="from", max_length=40)] = None,
        until: Annotated[str | None, Query(alias="to", max_length=40)] = None,
        tz: Annotated[str, Query(max_length=64)] = "Asia/Seoul",
    ) -> Response:
        _reject_unknown_params(request, {"store_id", "area_id", "from", "to", "tz"})
        scope = await reader_scope(session, credentials)
        zone = _timezone(tz)
        where = make_filter(scope, store_id=store_id, area_id=area_id, since=since, until=until)
        if where.since is None:  # default: the last 30 days
            where = service.FeedbackFilter(**{**where.__dict__, "since": time.time() - 30 * 86400})
        body = await analytics.analytics(session, where=where, sla=sla, timezone=zone)
        body["labels"] = taxonomy.categories()
        return Response(orjson.dumps(body), media_type="application/json")

    @app.get("/v1/analytics/open-cases", responses={401: {}, 422: {}, 429: {}})
    async def read_open_cases(
        request: Request,
        credentials: BearerDep,
        session: SessionDep,
        store_id: IdParam = None,
        area_id: IdParam = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> Response:
        _reject_unknown_params(request, {"store_id", "area_id", "limit"})
        scope = await reader_scope(session, credentials)
        where = make_filter(scope, store_id=store_id, area_id=area_id, since=None, until=None)
        cases = await analytics.open_cases(session, where=where, limit=limit)
        return Response(orjson.dumps({"cases": cases}), media_type="application/json")

    # --- admin: API keys and stores ------------------------------------------------------------

    @app.post(
        "/v1/admin/api-keys",
        status_code=201,
        response_model=ApiKeyCreated,
        dependencies=[Depends(require_admin)],
    )
    async def create_key(body: ApiKeyIn) -> ApiKeyCreated:
        async with database.transaction() as session:
            row, key = await service.create_api_key(session, name=body.name, store_ids=body.store_ids)
        return ApiKeyCreated(**api_key_out(row).model_dump(), api_key=key)

    @app.get("/v1/admin/api-keys", response_model=list[ApiKeyOut], dependencies=[Depends(require_admin)])
    async def list_keys(session: SessionDep) -> list[ApiKeyOut]:
        rows = await session.scalars(select(ApiKey).order_by(ApiKey.created_at))
        return [api_key_out(r) for r in rows]

    @app.post(
        "/v1/admin/api-keys/{key_id}/rotate",
        status_code=201,
        response_model=ApiKeyCreated,
        dependencies=[Depends(require_admin)],
        responses={404: {}, 409: {}, 422: {}},
    )
    async def rotate_key(key_id: str, body: ApiKeyRotate | None = None) -> ApiKeyCreated:
        grace = (body or ApiKeyRotate()).grace_seconds
        async with database.transaction() as session:
            row, key = await service.rotate_api_key(session, key_id=key_id, grace_seconds=grace)
        return ApiKeyCreated(**api_key_out(row).model_dump(), api_key=key)

    @app.delete("/v1/admin/api-keys/{key_id}", status_code=204, dependencies=[Depends(require_admin)])
    async def revoke_key(key_id: str) -> Response:
        async with database.transaction() as session:
            await service.revoke_api_key(session, key_id=key_id)
        return Response(status_code=204)

    @app.put("/v1/admin/stores", response_model=list[StoreOut], dependencies=[Depends(require_admin)])
    async def put_store_directory(stores: list[StoreIn]) -> list[StoreOut]:
        if len(stores) > 5000:
            raise Problem(
                422, "At most 5,000 stores per call.", errors=[{"field": "body", "message": "too long"}]
            )
        async with database.transaction() as session:
            rows = await service.put_stores(session, stores=stores)
        return [StoreOut(id=r.id, name=r.name, area_id=r.area_id) for r in rows]

    @app.get("/v1/admin/stores", response_model=list[StoreOut], dependencies=[Depends(require_admin)])
    async def list_stores(session: SessionDep) -> list[StoreOut]:
        rows = await session.scalars(select(Store).order_by(Store.id))
        return [StoreOut(id=r.id, name=r.name, area_id=r.area_id) for r in rows]

    # --- follow-up survey (public, no login: the signed one-time token is the credential) -----

    @app.get("/f/{token}", response_class=HTMLResponse, include_in_schema=False)
    async def follow_up_page(token: str, session: SessionDep, lang: str | None = None) -> HTMLResponse:
        try:
            follow, row = await service.get_follow_up(session, token=token, secret=links.secret)
        except Problem as problem:
            language = lang if lang in ("ko", "en") else "ko"
            return HTMLResponse(pages.follow_up_closed(problem.status, language), status_code=problem.status)
        language = lang if lang in ("ko", "en") else follow.language
        names = await analytics.store_names(session)
        return HTMLResponse(
            pages.follow_up_form(
                token=token, language=language, store_name=names.get(row.store_id, ""), category=row.category
            )
        )

    @app.post("/f/{token}", include_in_schema=False, responses={404: {}, 410: {}, 422: {}})
    async def follow_up_answer(token: str, request: Request) -> Response:
        content_type = request.headers.get("content-type", "")
        as_form = content_type.startswith("application/x-www-form-urlencoded")
        raw = await request.body()
        language = "ko"
        try:
            if as_form:
                fields = {k: v[-1] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
                language = fields.pop("lang", "ko")
                data: Any = {
                    "csat": int(fields["csat"]) if fields.get("csat", "").isdigit() else fields.get("csat"),
                    "comment": fields.get("comment") or None,
                    "revisit_intent": {"yes": True, "no": False}.get(fields.get("revisit_intent", "")),
                }
                answer = FollowUpAnswer.model_validate(data)
            elif content_type.startswith("application/json"):
                answer = FollowUpAnswer.model_validate_json(raw)
            else:
                raise Problem(415, "Send the answer as a form or as JSON.")
        except ValidationError as exc:
            errors = [
                {"field": ".".join(["body", *(str(p) for p in e["loc"])]), "message": e["msg"]}
                for e in exc.errors()
            ]
            if as_form:
                return HTMLResponse(pages.follow_up_invalid(token, language), status_code=422)
            raise Problem(422, f"{len(errors)} field(s) are invalid.", errors=errors) from None
        try:
            async with database.transaction() as session:
                follow = await service.answer_follow_up(session, token=token, answer=answer, links=links)
        except Problem as problem:
            if as_form:
                return HTMLResponse(
                    pages.follow_up_closed(problem.status, language), status_code=problem.status
                )
            raise
        if as_form:
            return HTMLResponse(pages.follow_up_thanks(language, satisfied=bool(follow.satisfied)))
        return Response(
            orjson.dumps(
                {
                    "feedback_id": follow.feedback_id,
                    "satisfied": follow.satisfied,
                    "reopened_feedback_id": follow.reopened_feedback_id,
                }
            ),
            media_type="application/json",
        )

    # --- dashboard (assets served here: no CDN) ---------------------------------------------------

    @app.get("/dashboard", include_in_schema=False)
    async def dashboard() -> FileResponse:
        return FileResponse(DASHBOARD_DIR / "index.html", media_type="text/html; charset=utf-8")

    @app.get("/dashboard/assets/{name}", include_in_schema=False)
    async def dashboard_asset(name: str) -> FileResponse:
        if name not in DASHBOARD_ASSETS:
            raise Problem(404, f"No dashboard asset '{name}'.")
        return FileResponse(DASHBOARD_DIR / name, media_type=DASHBOARD_ASSETS[name])

    return app


CSV_COLUMNS = (
    "id",
    "received_at",
    "occurred_at",
    "store_id",
    "channel",
    "language",
    "sentiment",
    "score",
    "category",
    "severity",
    "csat",
    "nps",
    "ces",
    "revisit_intent",
    "touchpoint",
    "status",
    "customer_id",
    "reopens_id",
    "text",
)


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    text = str(value)
    # A spreadsheet would run a cell starting with these as a formula (CSV injection).
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _is_number(text) else text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


async def _csv_rows(database: Database, where: service.FeedbackFilter) -> AsyncIterator[bytes]:
    """Stream the period in keyset pages; the BOM makes spreadsheets read Korean as UTF-8."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    yield ("\ufeff" + buffer.getvalue()).encode()
    cursor: str | None = None
    while True:
        async with database.session() as session:
            rows, cursor = await service.list_feedback(session, where=where, limit=1000, cursor=cursor)
        buffer.seek(0)
        buffer.truncate()
        for r in rows:
            writer.writerow(
                [
                    _csv_cell(v)
                    for v in (
                        r.id,
                        _ts(r.received_at).isoformat(),
                        _ts(r.occurred_at).isoformat(),
                        r.store_id,
                        r.channel,
                        r.language,
                        r.sentiment,
                        round(r.score, 3),
                        r.category,
                        r.severity,
                        r.csat,
                        r.nps,
                        r.ces,
                        r.revisit_intent,
                        r.touchpoint,
                        r.status,
                        r.customer_id,
                        r.reopens_id,
                        r.text,
                    )
                ]
            )
        yield buffer.getvalue().encode()
        if cursor is None:
            return
