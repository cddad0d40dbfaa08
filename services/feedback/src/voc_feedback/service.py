"""Feedback domain logic: API keys, stores, intake, listing, the case lifecycle and follow-ups.

Keyword-only functions, no HTTP (they raise `Problem` for the caller to answer).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
from sqlalchemy import Select, bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from voc.common.v1 import common_pb2
from voc.events.v1 import events_pb2
from voc_feedback.classification import classify
from voc_feedback.models import (
    ApiKey,
    Feedback,
    FollowUp,
    IdempotencyKey,
    Store,
    TimelineEntry,
    outbox_table,
)
from voc_feedback.schemas import FeedbackIn, FollowUpAnswer, StoreIn
from voc_platform import dbsync
from voc_platform.db import Database
from voc_platform.dbsync import Prepared, Reader
from voc_platform.http import Problem
from voc_platform.ids import uuid7
from voc_platform.outbox import add_event, insert_outbox_rows, outbox_rows, wake_relays

SUBJECT_RECEIVED = "voc.feedback.received"
SUBJECT_FOLLOW_UP_REQUESTED = "voc.feedback.follow_up_requested"
SUBJECT_FOLLOW_UP_ANSWERED = "voc.feedback.follow_up_answered"

# Forward-only case lifecycle; events may arrive out of order, the status never goes back
# except through an explicit reopen. "reopened" ranks with "alerted": the linked new item's
# resolution (and follow-up) moves the reopened case forward again.
STATUS_RANK = {
    "received": 0,
    "alerted": 1,
    "reopened": 1,
    "acknowledged": 2,
    "resolved": 3,
    "followed_up": 4,
}
STATUSES = ("received", "alerted", "acknowledged", "resolved", "followed_up", "reopened")
OPEN_STATUSES = ("received", "alerted", "acknowledged", "reopened")
SEVERITY_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}
# Follow-up answers: csat 1-2 is unhappy (reopens), 4-5 happy (recovered), 3 neither.
UNHAPPY_CSAT_MAX = 2
HAPPY_CSAT_MIN = 4


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


@dataclass(frozen=True)
class KeyIdentity:
    """An authenticated store-app key: what intake and scoping need of it."""

    id: str
    prefix: str
    store_ids: tuple[str, ...]


_KEY_BY_HASH = Prepared(
    select(ApiKey.id, ApiKey.prefix, ApiKey.store_ids, ApiKey.revoked_at, ApiKey.expires_at).where(
        ApiKey.key_hash == bindparam("key_hash")
    )
)


def _authenticate(reader: Reader, key: str) -> KeyIdentity:
    row = reader.first(_KEY_BY_HASH, {"key_hash": hash_api_key(key)})
    if (
        row is None
        or row.revoked_at is not None
        or (row.expires_at is not None and row.expires_at <= time.time())
    ):
        raise Problem(
            401, "The API key is unknown, revoked or expired.", headers={"WWW-Authenticate": "Bearer"}
        )
    return KeyIdentity(row.id, row.prefix, tuple(row.store_ids))


async def authenticate_api_key(session: AsyncSession, *, key: str) -> KeyIdentity:
    identity: KeyIdentity = await session.run_sync(lambda s: _authenticate(Reader.of(s.connection()), key))
    return identity


async def rotate_api_key(session: AsyncSession, *, key_id: str, grace_seconds: int) -> tuple[ApiKey, str]:
    """A new key for the same stores; the old one keeps working for the grace period."""
    old = await session.get(ApiKey, key_id, with_for_update=True)
    if old is None:
        raise Problem(404, f"No API key '{key_id}'.")
    now = time.time()
    if old.revoked_at is not None or old.replaced_by is not None:
        raise Problem(409, f"API key '{key_id}' is revoked or was already rotated; rotate its successor.")
    new, key = await create_api_key(session, name=old.name, store_ids=list(old.store_ids))
    old.replaced_by = new.id
    old.expires_at = now + grace_seconds
    await session.flush()
    return new, key


async def revoke_api_key(session: AsyncSession, *, key_id: str) -> ApiKey:
    row = await session.get(ApiKey, key_id)
    if row is None:
        raise Problem(404, f"No API key '{key_id}'.")
    row.revoked_at = row.revoked_at or time.time()
    await session.flush()
    return row


async def put_stores(session: AsyncSession, *, stores: Sequence[StoreIn]) -> list[Store]:
    """Upsert the store -> area directory (the admin's list is the truth for these ids)."""
    now = time.time()
    ids = [s.id for s in stores]
    if len(set(ids)) != len(ids):
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        raise Problem(
            422,
            "Store ids repeat in the list.",
            errors=[
                {"field": f"body.{ids.index(d)}.id", "message": f"duplicate id '{d}'"} for d in duplicates
            ],
        )
    existing = {row.id: row for row in await session.scalars(select(Store).where(Store.id.in_(ids)))}
    out = []
    for store in stores:
        row = existing.get(store.id)
        if row is None:
            row = Store(id=store.id, name=store.name, area_id=store.area_id, updated_at=now)
            session.add(row)
        else:
            row.name, row.area_id, row.updated_at = store.name, store.area_id, now
        out.append(row)
    await session.flush()
    return out


def request_hash(body: FeedbackIn) -> str:
    canonical = orjson.dumps(body.model_dump(mode="json", exclude_none=True), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


@dataclass(frozen=True)
class Intake:
    feedback_id: str
    replay: bool


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
_IDEMPOTENCY_INSERT = Prepared(insert(IdempotencyKey))
_FEEDBACK_INSERT = Prepared(insert(Feedback))
_TIMELINE_INSERT = Prepared(insert(TimelineEntry))


async def accept_feedback(
    database: Database,
    *,
    key: str,
    body: FeedbackIn,
    idempotency_key: str | None,
    idempotency_ttl: float,
    throttle: Callable[[KeyIdentity], None],
) -> Intake:
    """The intake endpoint: the key is checked by a read outside any transaction, `throttle`
    may refuse it, then the feedback and its event are committed together in one `dbsync`
    write hop (no ORM session around prepared statements) before the answer."""
    api_key: KeyIdentity = await dbsync.read(database, _authenticate, key)
    throttle(api_key)
    store = _intake(
        api_key=api_key, body=body, idempotency_key=idempotency_key, idempotency_ttl=idempotency_ttl
    )
    intake = await dbsync.write(database, store)
    if not intake.replay:
        wake_relays()
    return intake


def _intake(
    *, api_key: KeyIdentity, body: FeedbackIn, idempotency_key: str | None, idempotency_ttl: float
) -> Callable[[Reader], Intake]:
    """Check the scope and classify; the statements that store the item, as a function of a
    `Reader` in the transaction that runs them (prepared Core statements, one hop)."""
    if body.store_id not in api_key.store_ids:
        raise Problem(
            403,
            f"This API key may not submit for store '{body.store_id}'.",
            errors=[{"field": "body.store_id", "message": "outside the key's scope"}],
        )
    now = time.time()
    digest = request_hash(body) if idempotency_key else ""
    ratings = body.ratings
    result = classify(
        body.text,
        csat=ratings.csat if ratings else None,
        nps=ratings.nps if ratings else None,
        ces=ratings.ces if ratings else None,
        language=body.language,
    )
    feedback_id = uuid7()
    values: dict[str, Any] = {
        "id": feedback_id,
        "store_id": body.store_id,
        "channel": body.channel.value,
        "text": body.text,
        "language": result.language,
        "sentiment": result.sentiment,
        "score": result.score,
        "category": result.category,
        "severity": result.severity,
        "explanation": list(result.explanation),
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
        "api_key_id": api_key.id,
        "alerted_at": None,
        "acknowledged_at": None,
        "resolved_at": None,
        "escalated": False,
        "reopens_id": None,
    }
    event = outbox_rows([(SUBJECT_RECEIVED, feedback_received_event(Feedback(**values)), feedback_id)])
    timeline = {
        "feedback_id": feedback_id,
        "at": now,
        "kind": "received",
        "actor": f"api_key:{api_key.prefix}",
        "detail": {"channel": values["channel"]},
        "event_id": None,
    }

    def store(reader: Reader) -> Intake:
        if idempotency_key:
            where = {"api_key_id": api_key.id, "key": idempotency_key}
            previous = reader.first(_IDEMPOTENCY_GET, where)
            if previous is not None and previous.created_at >= now - idempotency_ttl:
                if previous.request_hash != digest:
                    raise Problem(409, "This Idempotency-Key was used with a different body.")
                return Intake(previous.feedback_id, replay=True)
            if previous is not None:
                reader.execute(_IDEMPOTENCY_DELETE, where)
        reader.execute(_FEEDBACK_INSERT, values)
        reader.execute(_TIMELINE_INSERT, timeline)
        if idempotency_key:
            reader.execute(
                _IDEMPOTENCY_INSERT,
                {**where, "request_hash": digest, "feedback_id": feedback_id, "created_at": now},
            )
        insert_outbox_rows(reader, outbox_table, event)
        return Intake(feedback_id, replay=False)

    return store


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


def _earliest(current: float | None, at: float) -> float:
    return at if current is None else min(current, at)


# The case lifecycle's statements: prepared Core statements, run in one greenlet hop by the
# consumer's `dbsync` write or inside a session's transaction (`_case_event_hop`).
_CASE_ROW = Prepared(
    select(
        Feedback.status,
        Feedback.alerted_at,
        Feedback.acknowledged_at,
        Feedback.resolved_at,
        Feedback.escalated,
        Feedback.reopens_id,
    )
    .where(Feedback.id == bindparam("feedback_id"))
    .with_for_update()  # PostgreSQL row lock; SQLite writers are serialized by Database.write_lock
)
_TIMELINE_SEEN = Prepared(
    select(TimelineEntry.id).where(
        TimelineEntry.feedback_id == bindparam("feedback_id"), TimelineEntry.event_id == bindparam("event_id")
    )
)
_FOLLOW_UP_OF = Prepared(select(FollowUp.id).where(FollowUp.feedback_id == bindparam("feedback_id")))
# The columns set are the other keys of the parameters (compiled once per set of keys).
_FEEDBACK_SET = Prepared(update(Feedback).where(Feedback.id == bindparam("where_id")))
_FEEDBACK_REDACT = Prepared(update(Feedback).where(Feedback.customer_id == bindparam("where_customer_id")))


@dataclass(frozen=True)
class _CaseStep:
    status: str  # after the event
    reopens_id: str | None
    recorded: bool  # False: the event id was already on the timeline
    open_follow_up: bool  # a first resolution: the case has no follow-up yet


def _case_event(
    reader: Reader,
    *,
    feedback_id: str,
    status: str,
    at: float,
    actor: str | None,
    detail: dict[str, Any],
    event_id: str | None,
    customer_id: str | None = None,
    check_follow_up: bool = False,
) -> _CaseStep | None:
    """`record_case_event`'s statements (plus `link_customer`'s when `customer_id` is given),
    run inside the caller's transaction. None when the feedback is unknown."""
    row = reader.first(_CASE_ROW, {"feedback_id": feedback_id})
    if row is None:
        if customer_id is not None:
            reader.execute(_FEEDBACK_SET, {"customer_id": customer_id, "where_id": feedback_id})
        return None
    if (
        event_id is not None
        and reader.first(_TIMELINE_SEEN, {"feedback_id": feedback_id, "event_id": event_id}) is not None
    ):
        if customer_id is not None:
            reader.execute(_FEEDBACK_SET, {"customer_id": customer_id, "where_id": feedback_id})
        return _CaseStep(row.status, row.reopens_id, recorded=False, open_follow_up=False)
    reader.execute(
        _TIMELINE_INSERT,
        {
            "feedback_id": feedback_id,
            "at": at,
            "kind": status,
            "actor": actor,
            "detail": detail,
            "event_id": event_id,
        },
    )
    # As the ORM flush would: only the columns whose value changes.
    changes: dict[str, Any] = {}
    # Events arrive in any order: each loop timestamp keeps the earliest time seen.
    if status == "alerted":
        if row.alerted_at != (alerted_at := _earliest(row.alerted_at, at)):
            changes["alerted_at"] = alerted_at
    elif status in ("acknowledged", "resolved"):  # resolving implies acknowledging
        if row.acknowledged_at != (acknowledged_at := _earliest(row.acknowledged_at, at)):
            changes["acknowledged_at"] = acknowledged_at
        if status == "resolved" and row.resolved_at != (resolved_at := _earliest(row.resolved_at, at)):
            changes["resolved_at"] = resolved_at
    elif status == "escalated" and not row.escalated:
        changes["escalated"] = True
    if STATUS_RANK.get(status, -1) > STATUS_RANK.get(row.status, -1):
        changes["status"] = status
    if customer_id is not None:
        changes["customer_id"] = customer_id
    if changes:
        changes["where_id"] = feedback_id
        reader.execute(_FEEDBACK_SET, changes)
    return _CaseStep(
        changes.get("status", row.status),
        row.reopens_id,
        recorded=True,
        open_follow_up=check_follow_up and reader.first(_FOLLOW_UP_OF, {"feedback_id": feedback_id}) is None,
    )


def _case_event_in(session: Session, **step: Any) -> _CaseStep | None:
    """`_case_event` in the session's transaction. The statements bypass the ORM, so the ORM
    state a session may hold (`answer_follow_up` has the case loaded and changed) is kept
    coherent around them: pending changes are flushed first (no-op on a clean session) and
    the feedback rows it holds are refreshed after. A consumer's fresh session holds none."""
    session.flush()
    step_result = _case_event(Reader.of(session.connection()), **step)
    for held in [o for o in session.identity_map.values() if isinstance(o, Feedback)]:
        session.refresh(held)
    return step_result


async def _case_event_hop(session: AsyncSession, **step: Any) -> _CaseStep | None:
    """`_case_event` in the session's transaction, in one greenlet hop."""
    result: _CaseStep | None = await session.run_sync(lambda s: _case_event_in(s, **step))
    return result


async def record_case_event(
    session: AsyncSession,
    *,
    feedback_id: str,
    status: str,
    at: float,
    actor: str | None,
    detail: dict[str, Any],
    event_id: str | None,
    follow_up: FollowUpLinks | None = None,
) -> str | None:
    """Append to the timeline and move the status forward; returns the new status.

    None when the feedback is unknown. Idempotent per event id (callers dedupe on it too).
    The first resolution of a case opens its follow-up survey (when `follow_up` is given);
    a reopening item's progress is mirrored on the case it reopened.
    """
    check_follow_up = status == "resolved" and follow_up is not None
    step = await _case_event_hop(
        session,
        feedback_id=feedback_id,
        status=status,
        at=at,
        actor=actor,
        detail=detail,
        event_id=event_id,
        check_follow_up=check_follow_up,
    )
    if step is None:
        return None
    if step.recorded:
        await _after_case_event(session, step, feedback_id, status, at, actor, detail, event_id, follow_up)
    return step.status


async def _after_case_event(
    session: AsyncSession,
    step: _CaseStep,
    feedback_id: str,
    status: str,
    at: float,
    actor: str | None,
    detail: dict[str, Any],
    event_id: str | None,
    follow_up: FollowUpLinks | None,
) -> None:
    """The rare tails of a recorded event: the follow-up a first resolution opens (on the ORM)
    and the mirroring on the case a reopening item reopened."""
    if step.open_follow_up and follow_up is not None:
        row = await session.get(Feedback, feedback_id)
        assert row is not None  # locked above
        await open_follow_up(session, row=row, links=follow_up, at=at)
    if status in ("resolved", "followed_up") and step.reopens_id:
        await record_case_event(
            session,
            feedback_id=step.reopens_id,
            status=status,
            at=at,
            actor=actor,
            detail={**detail, "via_feedback_id": feedback_id},
            event_id=f"{event_id}:parent" if event_id else None,
        )


def record_alert_sync(
    reader: Reader,
    *,
    feedback_id: str,
    at: float,
    actor: str | None,
    detail: dict[str, Any],
    event_id: str | None,
    customer_id: str | None,
) -> str | None:
    """`voc.alert.created`: the "alerted" step and the customer link, in the caller's `dbsync`
    hop: an alert has no follow-up or mirroring tail, so everything is in the hop."""
    step = _case_event(
        reader,
        feedback_id=feedback_id,
        status="alerted",
        at=at,
        actor=actor,
        detail=detail,
        event_id=event_id,
        customer_id=customer_id or None,
    )
    return None if step is None else step.status


def link_customer_sync(reader: Reader, *, feedback_id: str, customer_id: str) -> bool:
    """`voc.profile.feedback_linked`: the customer profile resolved for a feedback item."""
    return bool(reader.execute(_FEEDBACK_SET, {"customer_id": customer_id, "where_id": feedback_id}))


def redact_customer_sync(reader: Reader, *, customer_id: str) -> int:
    """Erasure: drop the identifiers we copied from submissions of this customer."""
    return reader.execute(_FEEDBACK_REDACT, {"customer": {}, "where_customer_id": customer_id})


# --- listing ---------------------------------------------------------------------------------


QueryT = TypeVar("QueryT", bound=Select[*tuple[Any, ...]])


@dataclass(frozen=True)
class FeedbackFilter:
    scope_store_ids: list[str] | None = None  # an API key's stores; None for the admin
    store_id: str | None = None
    area_id: str | None = None
    channel: str | None = None
    category: str | None = None
    sentiment: str | None = None
    status: str | None = None
    since: float | None = None
    until: float | None = None


def apply_filter(query: QueryT, where: FeedbackFilter) -> QueryT:
    if where.scope_store_ids is not None:
        query = query.where(Feedback.store_id.in_(where.scope_store_ids))
    if where.store_id:
        query = query.where(Feedback.store_id == where.store_id)
    if where.area_id:
        query = query.where(Feedback.store_id.in_(select(Store.id).where(Store.area_id == where.area_id)))
    for column, value in (
        (Feedback.channel, where.channel),
        (Feedback.category, where.category),
        (Feedback.sentiment, where.sentiment),
        (Feedback.status, where.status),
    ):
        if value:
            query = query.where(column == value)
    if where.since is not None:
        query = query.where(Feedback.received_at >= where.since)
    if where.until is not None:
        query = query.where(Feedback.received_at < where.until)
    return query


def encode_cursor(feedback_id: str) -> str:
    return base64.urlsafe_b64encode(feedback_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        value = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        value = ""
    if not (1 <= len(value) <= 36) or not all(c.isalnum() or c == "-" for c in value):
        raise Problem(
            422,
            "The cursor is not one this API gave out.",
            errors=[{"field": "query.cursor", "message": "invalid"}],
        )
    return value


async def list_feedback(
    session: AsyncSession, *, where: FeedbackFilter, limit: int, cursor: str | None
) -> tuple[list[Feedback], str | None]:
    """Newest first (ids are uuid7, so id order is time order); keyset pagination on the id."""
    query = apply_filter(select(Feedback), where)
    if cursor:
        query = query.where(Feedback.id < decode_cursor(cursor))
    rows = list(await session.scalars(query.order_by(Feedback.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1].id) if more and rows else None


# --- follow-up -------------------------------------------------------------------------------


@dataclass(frozen=True)
class FollowUpLinks:
    """How to sign and address follow-up links (from the service settings)."""

    secret: str
    public_url: str
    ttl_seconds: float


def sign_follow_up(follow_up_id: str, *, secret: str) -> str:
    mac = hmac.new(secret.encode(), f"follow-up:{follow_up_id}".encode(), hashlib.sha256).digest()[:16]
    return f"{follow_up_id}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


def verify_follow_up_token(token: str, *, secret: str) -> str | None:
    """The follow-up id when the signature holds, else None (constant-time compare)."""
    follow_up_id, _, _ = token.partition(".")
    if not follow_up_id or len(token) > 100:
        return None
    expected = sign_follow_up(follow_up_id, secret=secret)
    return follow_up_id if hmac.compare_digest(expected.encode(), token.encode()) else None


def follow_up_url(row: FollowUp, *, links: FollowUpLinks) -> str:
    return f"{links.public_url}/f/{sign_follow_up(row.id, secret=links.secret)}"


async def open_follow_up(
    session: AsyncSession, *, row: Feedback, links: FollowUpLinks, at: float
) -> FollowUp | None:
    """Once per case: the first resolution opens the survey; reopening items get their own."""
    if await session.scalar(select(FollowUp.id).where(FollowUp.feedback_id == row.id)) is not None:
        return None
    now = time.time()
    follow = FollowUp(
        id=uuid7(),
        feedback_id=row.id,
        language="ko" if row.language == "ko" else "en",
        created_at=now,
        expires_at=now + links.ttl_seconds,
    )
    session.add(follow)
    url = follow_up_url(follow, links=links)
    session.add(
        TimelineEntry(
            feedback_id=row.id,
            at=at,  # listed with the resolution it follows
            kind="follow_up_sent",
            actor="feedback",
            detail={"follow_up_id": follow.id, "expires_at": follow.expires_at},
            event_id=None,
        )
    )
    await session.flush()
    await add_event(
        session,
        outbox_table,
        subject=SUBJECT_FOLLOW_UP_REQUESTED,
        message=events_pb2.FollowUpRequested(
            feedback_id=row.id,
            store_id=row.store_id,
            customer_id=row.customer_id or "",
            url=url,
            language=follow.language,
            expires_at_ms=int(follow.expires_at * 1000),
        ),
        event_id=f"follow-up-requested:{follow.id}",
    )
    return follow


async def get_follow_up(session: AsyncSession, *, token: str, secret: str) -> tuple[FollowUp, Feedback]:
    """The follow-up behind a token: 404 for a bad signature, 410 once used or expired."""
    follow_up_id = verify_follow_up_token(token, secret=secret)
    follow = await session.get(FollowUp, follow_up_id) if follow_up_id else None
    if follow is None:
        raise Problem(404, "This follow-up link is not valid.")
    if follow.answered_at is not None:
        raise Problem(410, "This follow-up was already answered. Thank you!", title="Gone")
    if follow.expires_at <= time.time():
        raise Problem(410, "This follow-up link has expired.", title="Gone")
    row = await session.get(Feedback, follow.feedback_id)
    assert row is not None  # the foreign key cascades
    return follow, row


async def answer_follow_up(
    session: AsyncSession, *, token: str, answer: FollowUpAnswer, links: FollowUpLinks
) -> FollowUp:
    """Record the answer once; an unhappy one reopens the case as a new, linked feedback item
    (notify keeps one alert per feedback id, so the new item is what alerts again)."""
    follow, row = await get_follow_up(session, token=token, secret=links.secret)
    # Claim the one-time link atomically: a concurrent second answer updates no row.
    now = time.time()
    claimed = await session.execute(
        update(FollowUp)
        .where(FollowUp.id == follow.id, FollowUp.answered_at.is_(None))
        .values(answered_at=now)
        .execution_options(synchronize_session=False)
    )
    if not getattr(claimed, "rowcount", 0):
        raise Problem(410, "This follow-up was already answered. Thank you!", title="Gone")
    await session.refresh(follow)
    follow.csat = answer.csat
    follow.satisfied = answer.csat >= HAPPY_CSAT_MIN
    follow.revisit_intent = answer.revisit_intent
    follow.comment = answer.comment
    detail: dict[str, Any] = {"follow_up_id": follow.id, "csat": answer.csat, "satisfied": follow.satisfied}
    if answer.revisit_intent is not None:
        detail["revisit_intent"] = answer.revisit_intent
    await record_case_event(
        session,
        feedback_id=row.id,
        status="followed_up",
        at=now,
        actor="customer",
        detail=detail,
        event_id=f"follow-up-answered:{follow.id}",
    )
    if answer.csat <= UNHAPPY_CSAT_MAX:
        reopened = await _reopen(session, original=row, follow=follow, now=now)
        follow.reopened_feedback_id = reopened.id
    await session.flush()
    answered = events_pb2.FollowUpAnswered(
        feedback_id=row.id,
        store_id=row.store_id,
        customer_id=row.customer_id or "",
        csat=answer.csat,
        satisfied=bool(follow.satisfied),
        reopened_feedback_id=follow.reopened_feedback_id or "",
        answered_at_ms=int(now * 1000),
    )
    if answer.revisit_intent is not None:
        answered.revisit_intent = answer.revisit_intent
    await add_event(
        session,
        outbox_table,
        subject=SUBJECT_FOLLOW_UP_ANSWERED,
        message=answered,
        event_id=f"follow-up-answered:{follow.id}",
    )
    return follow


async def _reopen(session: AsyncSession, *, original: Feedback, follow: FollowUp, now: float) -> Feedback:
    text = follow.comment
    result = classify(
        text, csat=follow.csat, nps=None, ces=None, language=None if text else original.language
    )
    # The complaint is the original one unless the customer names another; an unhappy answer
    # after a "resolution" is at least high severity.
    category = result.category if result.category != "other" else original.category
    severity = max(result.severity, original.severity, "high", key=lambda s: SEVERITY_RANK.get(s, 0))
    child = Feedback(
        id=uuid7(),
        store_id=original.store_id,
        channel="survey",
        text=text,
        language=result.language if text else original.language,
        sentiment="negative",
        score=min(result.score, -0.5),
        category=category,
        severity=severity,
        explanation=[*result.explanation, f"reopens {original.id}: follow-up csat {follow.csat}"],
        csat=follow.csat,
        nps=None,
        ces=None,
        revisit_intent=follow.revisit_intent,
        touchpoint="follow_up",
        occurred_at=now,
        received_at=now,
        customer=dict(original.customer or {}),
        customer_id=original.customer_id,
        status="received",
        api_key_id=original.api_key_id,
        reopens_id=original.id,
    )
    session.add(child)
    session.add(
        TimelineEntry(
            feedback_id=child.id,
            at=now,
            kind="received",
            actor="customer",
            detail={"channel": "survey", "reopens_id": original.id},
            event_id=None,
        )
    )
    session.add(
        TimelineEntry(
            feedback_id=original.id,
            at=now,
            kind="reopened",
            actor="customer",
            detail={"feedback_id": child.id, "csat": follow.csat},
            event_id=None,
        )
    )
    original.status = "reopened"
    await session.flush()
    await add_event(
        session,
        outbox_table,
        subject=SUBJECT_RECEIVED,
        message=feedback_received_event(child),
        event_id=child.id,
    )
    return child


def parse_period(value: str | None, field: str) -> float | None:
    """ISO 8601 with an offset, or a date (midnight UTC)."""
    if value is None or value == "":
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is None or (parsed.tzinfo is None and "T" in value):
        raise Problem(
            422,
            f"'{field}' must be an ISO 8601 date or a date-time with an offset.",
            errors=[
                {
                    "field": f"query.{field}",
                    "message": "expected e.g. 2026-11-01 or 2026-11-01T09:00:00+09:00",
                }
            ],
        )
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()
