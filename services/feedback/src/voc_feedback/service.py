"""Feedback domain logic: API keys, intake, and the case lifecycle. Keyword-only, no HTTP."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from voc.common.v1 import common_pb2
from voc.events.v1 import events_pb2
from voc_feedback.classification import classify
from voc_feedback.models import ApiKey, Feedback, IdempotencyKey, TimelineEntry, outbox_table
from voc_feedback.schemas import FeedbackIn
from voc_platform.http import Problem
from voc_platform.ids import uuid7
from voc_platform.outbox import add_event

SUBJECT_RECEIVED = "voc.feedback.received"

# Forward-only case lifecycle; events may arrive out of order, the status never goes back
# except through an explicit reopen.
STATUS_RANK = {
    "received": 0,
    "alerted": 1,
    "acknowledged": 2,
    "resolved": 3,
    "followed_up": 4,
}


def hash_api_key(key: str) -> str:
    # Keys are 32 random bytes: a fast hash is enough (no dictionary to guess from).
    return hashlib.sha256(key.encode()).hexdigest()


def new_api_key() -> str:
    return "vocsk_" + secrets.token_urlsafe(32)


async def create_api_key(session: AsyncSession, *, name: str, store_ids: list[str]) -> tuple[ApiKey, str]:
    key = new_api_key()
    row = ApiKey(
        id=uuid7(),
        name=name,
        key_hash=hash_api_key(key),
        prefix=key[:12],
        store_ids=sorted(set(store_ids)),
        created_at=time.time(),
        revoked_at=None,
    )
    session.add(row)
    await session.flush()
    return row, key


async def authenticate_api_key(session: AsyncSession, *, key: str) -> ApiKey:
    row = await session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_api_key(key)))
    if row is None or row.revoked_at is not None:
        raise Problem(401, "The API key is unknown or revoked.", headers={"WWW-Authenticate": "Bearer"})
    return row


def request_hash(body: FeedbackIn) -> str:
    canonical = orjson.dumps(body.model_dump(mode="json", exclude_none=True), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


@dataclass(frozen=True)
class Intake:
    feedback_id: str
    replay: bool


async def submit_feedback(
    session: AsyncSession,
    *,
    api_key: ApiKey,
    body: FeedbackIn,
    idempotency_key: str | None,
    idempotency_ttl: float,
) -> Intake:
    """Store the feedback and its event in the caller's transaction (the outbox pattern)."""
    if body.store_id not in api_key.store_ids:
        raise Problem(
            403,
            f"This API key may not submit for store '{body.store_id}'.",
            errors=[{"field": "body.store_id", "message": "outside the key's scope"}],
        )
    now = time.time()
    digest = request_hash(body) if idempotency_key else ""
    if idempotency_key:
        previous = await session.get(IdempotencyKey, (api_key.id, idempotency_key))
        if previous is not None and previous.created_at >= now - idempotency_ttl:
            if previous.request_hash != digest:
                raise Problem(409, "This Idempotency-Key was used with a different body.")
            return Intake(previous.feedback_id, replay=True)
        if previous is not None:
            await session.delete(previous)
            await session.flush()

    ratings = body.ratings
    result = classify(
        body.text,
        csat=ratings.csat if ratings else None,
        nps=ratings.nps if ratings else None,
        ces=ratings.ces if ratings else None,
        language=body.language,
    )
    feedback_id = uuid7()
    occurred = body.occurred_at.timestamp() if body.occurred_at else now
    customer = body.customer.model_dump(exclude_none=True) if body.customer else {}
    row = Feedback(
        id=feedback_id,
        store_id=body.store_id,
        channel=body.channel.value,
        text=body.text,
        language=result.language,
        sentiment=result.sentiment,
        score=result.score,
        category=result.category,
        severity=result.severity,
        explanation=list(result.explanation),
        csat=ratings.csat if ratings else None,
        nps=ratings.nps if ratings else None,
        ces=ratings.ces if ratings else None,
        revisit_intent=body.revisit_intent,
        touchpoint=body.touchpoint,
        occurred_at=occurred,
        received_at=now,
        customer=customer,
        customer_id=None,
        status="received",
        api_key_id=api_key.id,
    )
    session.add(row)
    session.add(
        TimelineEntry(
            feedback_id=feedback_id,
            at=now,
            kind="received",
            actor=f"api_key:{api_key.prefix}",
            detail={"channel": row.channel},
            event_id=None,
        )
    )
    if idempotency_key:
        session.add(
            IdempotencyKey(
                api_key_id=api_key.id,
                key=idempotency_key,
                request_hash=digest,
                feedback_id=feedback_id,
                created_at=now,
            )
        )
    await session.flush()
    await add_event(
        session,
        outbox_table,
        subject=SUBJECT_RECEIVED,
        message=feedback_received_event(row),
        event_id=feedback_id,
    )
    return Intake(feedback_id, replay=False)


def feedback_facts(row: Feedback) -> common_pb2.FeedbackFacts:
    facts = common_pb2.FeedbackFacts(
        feedback_id=row.id,
        store_id=row.store_id,
        channel=row.channel,
        touchpoint=row.touchpoint or "",
        language=row.language,
        category=row.category,
        severity=row.severity,
        sentiment=row.sentiment,
        score=row.score,
        ratings=common_pb2.Ratings(csat=row.csat, nps=row.nps, ces=row.ces),
        occurred_at_ms=int(row.occurred_at * 1000),
    )
    if row.revisit_intent is not None:
        facts.revisit_intent = row.revisit_intent
    return facts


def feedback_received_event(row: Feedback) -> events_pb2.FeedbackReceived:
    customer = row.customer or {}
    return events_pb2.FeedbackReceived(
        facts=feedback_facts(row),
        text=row.text or "",
        customer=common_pb2.CustomerIdentifiers(
            loyalty_id=customer.get("loyalty_id", ""),
            phone=customer.get("phone", ""),
            email=customer.get("email", ""),
            name=customer.get("name", ""),
            channel_user_id=customer.get("channel_user_id", ""),
            channel=row.channel,
        ),
        received_at_ms=int(row.received_at * 1000),
        explanation=list(row.explanation),
    )


async def get_feedback(
    session: AsyncSession, *, feedback_id: str
) -> tuple[Feedback, list[TimelineEntry]] | None:
    row = await session.get(Feedback, feedback_id)
    if row is None:
        return None
    timeline = list(
        await session.scalars(
            select(TimelineEntry)
            .where(TimelineEntry.feedback_id == feedback_id)
            .order_by(TimelineEntry.at, TimelineEntry.id)
        )
    )
    return row, timeline


async def record_case_event(
    session: AsyncSession,
    *,
    feedback_id: str,
    status: str,
    at: float,
    actor: str | None,
    detail: dict[str, Any],
    event_id: str | None,
) -> str | None:
    """Append to the timeline and move the status forward; returns the new status.

    None when the feedback is unknown. Idempotent per event id (callers dedupe on it too).
    """
    row = await session.get(Feedback, feedback_id)
    if row is None:
        return None
    if event_id is not None:
        seen = await session.scalar(
            select(TimelineEntry.id).where(
                TimelineEntry.feedback_id == feedback_id, TimelineEntry.event_id == event_id
            )
        )
        if seen is not None:
            return row.status
    session.add(
        TimelineEntry(
            feedback_id=feedback_id, at=at, kind=status, actor=actor, detail=detail, event_id=event_id
        )
    )
    if STATUS_RANK.get(status, -1) > STATUS_RANK.get(row.status, -1):
        row.status = status
    await session.flush()
    return row.status


async def link_customer(session: AsyncSession, *, feedback_id: str, customer_id: str) -> bool:
    result = await session.execute(
        update(Feedback).where(Feedback.id == feedback_id).values(customer_id=customer_id)
    )
    return bool(getattr(result, "rowcount", 0))


async def redact_customer(session: AsyncSession, *, customer_id: str) -> int:
    """Erasure: drop the identifiers we copied from submissions of this customer."""
    result = await session.execute(
        update(Feedback).where(Feedback.customer_id == customer_id).values(customer={})
    )
    return int(getattr(result, "rowcount", 0) or 0)
