"""REST API of the feedback service (DESIGN §5)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, FastAPI, Header, Response
from sqlalchemy import select

from voc_feedback import service
from voc_feedback.models import ApiKey, Feedback, TimelineEntry
from voc_feedback.schemas import (
    Accepted,
    ApiKeyCreated,
    ApiKeyIn,
    ApiKeyOut,
    Classification,
    FeedbackIn,
    FeedbackOut,
    Ratings,
    TimelineOut,
)
from voc_feedback.settings import Settings
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


def _ts(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def feedback_out(row: Feedback, timeline: list[TimelineEntry]) -> FeedbackOut:
    return FeedbackOut(
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
        classification=Classification(
            language=row.language,
            sentiment=row.sentiment,
            score=row.score,
            category=row.category,
            severity=row.severity,
            explanation=row.explanation,
        ),
        timeline=[TimelineOut(at=_ts(t.at), kind=t.kind, actor=t.actor, detail=t.detail) for t in timeline],
    )


def api_key_out(row: ApiKey) -> ApiKeyOut:
    return ApiKeyOut(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        store_ids=row.store_ids,
        created_at=_ts(row.created_at),
        revoked_at=_ts(row.revoked_at) if row.revoked_at else None,
    )


def build_app(settings: Settings, database: Database) -> FastAPI:
    app = create_app(title="Frontline VoC — feedback", service="voc-feedback")
    install_health_routes(app)
    require_admin = admin_guard(lambda: settings.admin_token)

    app.state.database = database

    @app.post(
        "/v1/feedback",
        status_code=202,
        response_model=Accepted,
        responses={401: {}, 403: {}, 409: {}, 413: {}, 422: {}},
    )
    async def submit(
        body: FeedbackIn,
        credentials: BearerDep,
        response: Response,
        idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
    ) -> Accepted:
        key = bearer_token(credentials)
        async with database.transaction() as session:
            api_key = await service.authenticate_api_key(session, key=key)
            intake = await service.submit_feedback(
                session,
                api_key=api_key,
                body=body,
                idempotency_key=idempotency_key,
                idempotency_ttl=settings.idempotency_ttl_seconds,
            )
        response.headers["Location"] = f"/v1/feedback/{intake.feedback_id}"
        if intake.replay:
            response.headers["Idempotent-Replayed"] = "true"
        return Accepted(id=intake.feedback_id)

    @app.get("/v1/feedback/{feedback_id}", response_model=FeedbackOut)
    async def read(feedback_id: str, credentials: BearerDep, session: SessionDep) -> FeedbackOut:
        token = bearer_token(credentials)
        found = await service.get_feedback(session, feedback_id=feedback_id)
        if token != settings.admin_token:
            api_key = await service.authenticate_api_key(session, key=token)
            if found is not None and found[0].store_id not in api_key.store_ids:
                found = None  # another store's feedback: answer as if it did not exist
        if found is None:
            raise Problem(404, f"No feedback '{feedback_id}'.")
        return feedback_out(*found)

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

    @app.delete("/v1/admin/api-keys/{key_id}", status_code=204, dependencies=[Depends(require_admin)])
    async def revoke_key(key_id: str) -> Response:
        async with database.transaction() as session:
            row = await session.get(ApiKey, key_id)
            if row is None:
                raise Problem(404, f"No API key '{key_id}'.")
            row.revoked_at = row.revoked_at or time.time()
        return Response(status_code=204)

    return app
