"""`POST /v1/feedback`: a store app submits feedback (the busiest endpoint)."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Header, Response

from voc_feedback.deps import StoreIntakeDep
from voc_feedback.intake import accept_feedback
from voc_feedback.schemas import Accepted, FeedbackIn

router = APIRouter()


@router.post(
    "/v1/feedback",
    status_code=202,
    response_model=Accepted,
    responses={401: {}, 403: {}, 409: {}, 413: {}, 422: {}, 429: {}},
)
async def submit(
    body: FeedbackIn,
    store: StoreIntakeDep,
    idempotency_key: Annotated[str | None, Header(min_length=1, max_length=200)] = None,
) -> Response:
    intake = await accept_feedback(
        store.parts, api_key=store.api_key, body=body, idempotency_key=idempotency_key
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
