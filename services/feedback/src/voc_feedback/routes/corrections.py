"""Corrections of the classifier (#17): `POST /v1/feedback/{id}/corrections` (staff and managers
of the item's store, `classification.correct`) and the labelled examples for training,
`GET /v1/classifier/corrections` as NDJSON (cx_admin or the admin token,
`classifier.training`). The rule lives in `corrections`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from voc_feedback import corrections
from voc_feedback.corrections import LabelledExample
from voc_feedback.deps import AuditDep, parse_period
from voc_feedback.schemas import CorrectedOut, CorrectionIn, CorrectionOut
from voc_platform.http import DatabaseDep, SessionDep, reject_unknown_params, require
from voc_platform.identity import Caller, Permission
from voc_platform.records import copy_fields

router = APIRouter()
CorrectorDep = Annotated[Caller, Depends(require(Permission.CLASSIFICATION_CORRECT))]
TrainerDep = Annotated[Caller, Depends(require(Permission.CLASSIFIER_TRAINING))]
NDJSON = "application/x-ndjson"


@router.post(
    "/v1/feedback/{feedback_id}/corrections",
    response_model=CorrectedOut,
    responses={401: {}, 403: {}, 404: {}, 422: {}},
)
async def correct(
    feedback_id: str, body: CorrectionIn, caller: CorrectorDep, database: DatabaseDep, audit: AuditDep
) -> CorrectedOut:
    """Correct the item's sentiment and/or category; the item's own store(s) only (another
    store's item is 404, as if it did not exist)."""
    labels = corrections.Labels(body.sentiment, body.category)
    async with database.transaction() as session:
        done = await corrections.correct(
            session, feedback_id=feedback_id, labels=labels, caller=caller, audit=audit
        )
    return copy_fields(
        CorrectedOut, done, feedback_id=feedback_id, correction=CorrectionOut.of(done.correction)
    )


@router.get(
    "/v1/classifier/corrections",
    response_class=StreamingResponse,
    responses={200: {"content": {NDJSON: {}}}, 401: {}, 403: {}, 422: {}},
)
async def labelled_examples(
    request: Request,
    caller: TrainerDep,
    session: SessionDep,
    audit: AuditDep,
    since: Annotated[str | None, Query(max_length=40)] = None,
) -> StreamingResponse:
    """One JSON line per corrected item (its latest correction), oldest first: `feedback_id`,
    `text`, `language`, `sentiment`, `category`, `corrected_at`, `corrected_by`,
    `model_version`. Items whose text is gone are left out. Audited (it carries texts)."""
    reject_unknown_params(request, {"since"})
    examples = await corrections.labelled_examples(session, since=parse_period(since, "since"))
    audit.read(
        actor=caller.actor,
        action="classifier.corrections_export",
        detail={"since": since, "count": len(examples)},
    )
    return StreamingResponse(_lines(examples), media_type=NDJSON)


async def _lines(examples: list[LabelledExample]) -> AsyncIterator[bytes]:
    for example in examples:
        yield orjson.dumps(example.as_json()) + b"\n"
