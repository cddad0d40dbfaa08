"""REST API of the feedback service (DESIGN §5), the follow-up page and the manager dashboard."""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from fastapi import Depends, FastAPI, Header, Query, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, StreamingResponse
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from voc_feedback import analytics, follow_ups, keys, listing, pages
from voc_feedback import stores as directory
from voc_feedback.follow_up_links import FollowUpLinks
from voc_feedback.intake import accept_feedback
from voc_feedback.listing import FeedbackFilter, Scope
from voc_feedback.models import ApiKey, Feedback, TimelineEntry
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
from voc_platform.errors import DomainError, FieldError, Invalid
from voc_platform.http import (
    BearerDep,
    Problem,
    SessionDep,
    admin_guard,
    bearer_token,
    create_app,
    install_health_routes,
    reject_unknown_params,
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


def _timezone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise Problem(
            422,
            f"Unknown time zone '{name}'.",
            errors=[{"field": "query.tz", "message": "unknown time zone"}],
        ) from None


def parse_period(value: str | None, field: str) -> float | None:
    """ISO 8601 with an offset, or a date (midnight UTC)."""
    if value is None or value == "":
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is None or (parsed.tzinfo is None and "T" in value):
        raise Invalid(
            f"'{field}' must be an ISO 8601 date or a date-time with an offset.",
            errors=[FieldError(f"query.{field}", "expected e.g. 2026-11-01 or 2026-11-01T09:00:00+09:00")],
        )
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def build_app(settings: Settings, database: Database) -> FastAPI:
    app = create_app(title="Frontline VoC — feedback", service="voc-feedback")
    install_health_routes(app)
    require_admin = admin_guard(lambda: settings.admin_token)
    limiter = RateLimiter(rate_per_second=settings.rate_limit_per_second, burst=settings.rate_limit_burst)
    links = FollowUpLinks.of(settings)
    sla = analytics.Sla.of(settings)

    app.state.database = database
    app.state.rate_limiter = limiter

    async def reader_scope(session: AsyncSession, credentials: Any) -> Scope:
        """None for the admin (every store); an API key's stores otherwise."""
        token = bearer_token(credentials)
        if token == settings.admin_token:
            return None
        api_key = await keys.authenticate_in(session, key=token)
        limiter.admit(api_key.id)
        return api_key.store_ids

    def make_filter(
        scope: Scope,
        *,
        store_id: str | None,
        area_id: str | None,
        channel: Channel | None = None,
        category: str | None = None,
        sentiment: str | None = None,
        status: str | None = None,
        since: str | None,
        until: str | None,
    ) -> FeedbackFilter:
        start = parse_period(since, "from")
        end = parse_period(until, "to")
        if start is not None and end is not None and end <= start:
            raise Invalid("'to' must be after 'from'.", errors=[FieldError("query.to", "before 'from'")])
        return FeedbackFilter(
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
        intake = await accept_feedback(
            database,
            key=bearer_token(credentials),
            body=body,
            idempotency_key=idempotency_key,
            idempotency_ttl=settings.idempotency_ttl_seconds,
            limiter=limiter,
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
        reject_unknown_params(request, FILTER_PARAMS | {"limit", "cursor"})
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
        rows, next_cursor = await listing.list_feedback(session, where=where, limit=limit, cursor=cursor)
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
        reject_unknown_params(request, FILTER_PARAMS)
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
            listing.csv_export(database, where),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )

    @app.get("/v1/feedback/{feedback_id}", response_model=FeedbackOut, responses={401: {}, 404: {}})
    async def read(feedback_id: str, credentials: BearerDep, session: SessionDep) -> FeedbackOut:
        scope = await reader_scope(session, credentials)
        found = await listing.get_feedback(session, feedback_id=feedback_id)
        if found is not None and scope is not None and found[0].store_id not in scope:
            found = None  # another store's feedback: answer as if it did not exist
        if found is None:
            raise Problem(404, f"No feedback '{feedback_id}'.")
        follow = await follow_ups.follow_up_of(session, feedback_id=feedback_id)
        follow_out = None
        if follow is not None:
            usable = follow_ups.is_open(follow, now=time.time())
            follow_out = FollowUpOut(
                url=links.url(follow.id) if usable else None,
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
        reject_unknown_params(request, {"store_id", "area_id", "from", "to", "tz"})
        scope = await reader_scope(session, credentials)
        zone = _timezone(tz)
        where = make_filter(scope, store_id=store_id, area_id=area_id, since=since, until=until)
        if where.since is None:  # default: the last 30 days
            where = dataclasses.replace(where, since=time.time() - 30 * 86400)
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
        reject_unknown_params(request, {"store_id", "area_id", "limit"})
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
            row, key = await keys.create_api_key(session, name=body.name, store_ids=body.store_ids)
        return ApiKeyCreated(**api_key_out(row).model_dump(), api_key=key)

    @app.get("/v1/admin/api-keys", response_model=list[ApiKeyOut], dependencies=[Depends(require_admin)])
    async def list_keys(session: SessionDep) -> list[ApiKeyOut]:
        return [api_key_out(r) for r in await keys.list_api_keys(session)]

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
            row, key = await keys.rotate_api_key(session, key_id=key_id, grace_seconds=grace)
        return ApiKeyCreated(**api_key_out(row).model_dump(), api_key=key)

    @app.delete("/v1/admin/api-keys/{key_id}", status_code=204, dependencies=[Depends(require_admin)])
    async def revoke_key(key_id: str) -> Response:
        async with database.transaction() as session:
            await keys.revoke_api_key(session, key_id=key_id)
        return Response(status_code=204)

    @app.put("/v1/admin/stores", response_model=list[StoreOut], dependencies=[Depends(require_admin)])
    async def put_store_directory(stores: list[StoreIn]) -> list[StoreOut]:
        async with database.transaction() as session:
            rows = await directory.put_stores(session, stores=stores)
        return [StoreOut(id=r.id, name=r.name, area_id=r.area_id) for r in rows]

    @app.get("/v1/admin/stores", response_model=list[StoreOut], dependencies=[Depends(require_admin)])
    async def list_stores(session: SessionDep) -> list[StoreOut]:
        return [
            StoreOut(id=r.id, name=r.name, area_id=r.area_id) for r in await directory.list_stores(session)
        ]

    # --- follow-up survey (public, no login: the signed one-time token is the credential) -----

    @app.get("/f/{token}", response_class=HTMLResponse, include_in_schema=False)
    async def follow_up_page(token: str, session: SessionDep, lang: str | None = None) -> HTMLResponse:
        try:
            follow, row = await follow_ups.get_follow_up(session, token=token, secret=links.secret)
        except DomainError as problem:
            language = lang if lang in ("ko", "en") else "ko"
            return HTMLResponse(pages.follow_up_closed(problem.status, language), status_code=problem.status)
        language = lang if lang in ("ko", "en") else follow.language
        names = await directory.store_names(session)
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
                follow = await follow_ups.answer_follow_up(session, token=token, answer=answer, links=links)
        except DomainError as problem:
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
