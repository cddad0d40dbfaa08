"""Intake (`POST /v1/feedback`): authenticate the store key, throttle it, check its scope, classify,
and commit the item, its first timeline entry, its idempotency record and its event together."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson
from sqlalchemy import bindparam, delete, insert, select

from voc_feedback import keys, messages, metrics
from voc_feedback.cases import TIMELINE_INSERT
from voc_feedback.classification import Classification, classify
from voc_feedback.keys import KeyIdentity
from voc_feedback.models import Base, Feedback, IdempotencyKey, outbox_table
from voc_feedback.personal import MAX_TEXT_CHARS
from voc_feedback.schemas import FeedbackIn
from voc_platform import dbsync
from voc_platform.db import Database
from voc_platform.dbsync import Prepared, Reader
from voc_platform.errors import Conflict, FieldError, Forbidden, Invalid
from voc_platform.ids import uuid7
from voc_platform.outbox import insert_outbox_rows, outbox_rows, wake_relays
from voc_platform.ratelimit import RateLimiter


class IntakeParts(NamedTuple):
    """What intake needs of the app (the route takes it with the store key as one dependency,
    `deps.StoreIntake`)."""

    database: Database
    limiter: RateLimiter
    idempotency_ttl: float
    max_text_chars: int = MAX_TEXT_CHARS


@dataclass(frozen=True, slots=True)
class Intake:
    """The answer to a submission: the item's id, and whether it replays an earlier one."""

    feedback_id: str
    replay: bool


@dataclass(frozen=True, slots=True)
class _Write:
    """What one submission writes, all prepared before the transaction (statement parameters)."""

    api_key_id: str
    idempotency_key: str | None
    digest: str  # the body's hash, when an idempotency key came with it
    not_before: float  # an idempotency record older than this has expired
    feedback: dict[str, Any]
    timeline: dict[str, Any]
    events: list[dict[str, Any]]


_IDEMPOTENCY_GET = Prepared(
    select(IdempotencyKey.request_hash, IdempotencyKey.feedback_id, IdempotencyKey.created_at).where(
        IdempotencyKey.api_key_id == bindparam("api_key_id"), IdempotencyKey.key == bindparam("key")
    )
)
_IDEMPOTENCY_DELETE = Prepared(
    delete(IdempotencyKey).where(
        IdempotencyKey.api_key_id == bindparam("api_key_id"), IdempotencyKey.key == bindparam("key")
    )
)
# The key is claimed before anything else is written: a concurrent request with the same key
# waits on PostgreSQL for the first one's commit and then inserts nothing (it used to insert
# too, and the second one's commit failed on the primary key: a 500).
_IDEMPOTENCY_CLAIM = Prepared(
    lambda dialect: dbsync.insert_ignore(dialect, Base.metadata.tables["idempotency_keys"])
)
_FEEDBACK_INSERT = Prepared(insert(Feedback))


async def authenticate_store_key(parts: IntakeParts, key: str) -> KeyIdentity:
    """The store key, checked by a read outside any transaction. The route runs this before the
    body is validated, so an unknown, revoked or expired key is told 401, not the body's rules."""
    identity: KeyIdentity = await dbsync.read(parts.database, keys.authenticate, key)
    return identity


async def accept_feedback(
    parts: IntakeParts, *, api_key: KeyIdentity, body: FeedbackIn, idempotency_key: str | None
) -> Intake:
    """For an authenticated key, throttled here (`RateLimited`) once the body is valid: an
    invalid request (422) does not spend the key's rate, as on the reading routes; one for a
    store outside its scope (403, in `_prepare`) does. The item and its event are committed
    together in one `dbsync` write hop (prepared statements, no ORM session) before the answer."""
    if body.text is not None and len(body.text) > parts.max_text_chars:  # VOC_MAX_TEXT_CHARS
        raise Invalid(
            f"text is longer than {parts.max_text_chars} characters",
            errors=[FieldError("body.text", f"at most {parts.max_text_chars} characters")],
        )
    parts.limiter.admit(api_key.id)
    write = _prepare(api_key=api_key, body=body, idempotency_key=idempotency_key, ttl=parts.idempotency_ttl)
    intake = await dbsync.write(parts.database, _store, write)
    if not intake.replay:
        wake_relays()
    metrics.count_accepted(write.feedback["channel"], replay=intake.replay)
    return intake


def request_hash(body: FeedbackIn) -> str:
    """The body's identity for idempotency: canonical JSON, hashed."""
    canonical = orjson.dumps(body.model_dump(mode="json", exclude_none=True), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


def _prepare(*, api_key: KeyIdentity, body: FeedbackIn, idempotency_key: str | None, ttl: float) -> _Write:
    """Check the key's scope, classify, and build the rows (outside the transaction)."""
    if body.store_id not in api_key.store_ids:
        raise Forbidden(
            f"This API key may not submit for store '{body.store_id}'.",
            errors=[FieldError("body.store_id", "outside the key's scope")],
        )
    now = time.time()
    ratings = body.ratings
    started = time.perf_counter()
    result = classify(
        body.text,
        csat=ratings.csat if ratings else None,
        nps=ratings.nps if ratings else None,
        ces=ratings.ces if ratings else None,
        language=body.language,
    )
    metrics.observe_classification(time.perf_counter() - started, result)
    feedback = _feedback_row(body, result, api_key_id=api_key.id, now=now)
    feedback_id = feedback["id"]
    return _Write(
        api_key_id=api_key.id,
        idempotency_key=idempotency_key,
        digest=request_hash(body) if idempotency_key else "",
        not_before=now - ttl,
        feedback=feedback,
        timeline={
            "feedback_id": feedback_id,
            "at": now,
            "kind": "received",
            "actor": f"api_key:{api_key.prefix}",
            "detail": {"channel": feedback["channel"]},
            "event_id": None,
        },
        events=outbox_rows(
            [(messages.SUBJECT_RECEIVED, messages.feedback_received(Feedback(**feedback)), feedback_id)]
        ),
    )


def _feedback_row(body: FeedbackIn, result: Classification, *, api_key_id: str, now: float) -> dict[str, Any]:
    """Every column of the new item (the prepared insert is compiled for exactly these keys)."""
    ratings = body.ratings
    return {
        "id": uuid7(),
        "store_id": body.store_id,
        "channel": body.channel.value,
        "text": body.text,
        "language": result.language,
        "sentiment": result.sentiment,
        "score": result.score,
        "category": result.category,
        "severity": result.severity,
        "explanation": list(result.explanation),
        "confidence": result.confidence,
        "category_confidence": result.category_confidence,
        "model_version": result.model_version,
        "csat": ratings.csat if ratings else None,
        "nps": ratings.nps if ratings else None,
        "ces": ratings.ces if ratings else None,
        "revisit_intent": body.revisit_intent,
        "touchpoint": body.touchpoint,
        "occurred_at": body.occurred_at.timestamp() if body.occurred_at else now,
        "received_at": now,
        "customer": body.customer.model_dump(exclude_none=True) if body.customer else {},
        "customer_id": None,
        "status": "received",
        "api_key_id": api_key_id,
        "alerted_at": None,
        "acknowledged_at": None,
        "resolved_at": None,
        "escalated": False,
        "reopens_id": None,
        "priority": None,
    }


def _store(reader: Reader, write: _Write) -> Intake:
    """The transaction: replay or refuse a known idempotency key, else insert everything."""
    feedback_id: str = write.feedback["id"]
    where = {"api_key_id": write.api_key_id, "key": write.idempotency_key}
    if write.idempotency_key:
        previous = reader.first(_IDEMPOTENCY_GET, where)
        if previous is not None and previous.created_at < write.not_before:
            reader.execute(_IDEMPOTENCY_DELETE, where)  # expired: the key is free again
            previous = None
        claim = {
            **where,
            "request_hash": write.digest,
            "feedback_id": feedback_id,
            "created_at": write.timeline["at"],
        }
        if previous is None and not reader.execute(_IDEMPOTENCY_CLAIM, claim):
            previous = reader.first(_IDEMPOTENCY_GET, where)  # a concurrent request's, committed first
        if previous is not None:
            if previous.request_hash != write.digest:
                raise Conflict("This Idempotency-Key was used with a different body.")
            return Intake(previous.feedback_id, replay=True)
    reader.execute(_FEEDBACK_INSERT, write.feedback)
    reader.execute(TIMELINE_INSERT, write.timeline)
    insert_outbox_rows(reader, outbox_table, write.events)
    return Intake(feedback_id, replay=False)
