"""Real-time check-ins (`POST /v1/visits`, #18): a POS, kiosk, app or reservation system says a
known customer has just arrived at a store. The visit joins the customer's visits (as the batch
import's do), and when staff should be ready for this customer (a negative contact within
`VOC_PROFILE_HEADS_UP_RECENT_DAYS` or one still unresolved, churn risk, VIP) the same transaction
publishes `voc.profile.customer_arrived`, which notify turns into a heads-up alert."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import and_, bindparam, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from voc.events.v1 import events_pb2
from voc_platform.db import Database
from voc_platform.dbsync import Prepared, Reader
from voc_platform.errors import Conflict, FieldError, Gone, Invalid, NotFound
from voc_platform.identity import Actor
from voc_platform.ids import uuid7
from voc_platform.outbox import add_event
from voc_profile import audit, context, resolution, signals
from voc_profile.identity import InvalidIdentifier, mask_name, normalize
from voc_profile.models import Checkin, CustomerSignals, Visit, alerts_table, history_table, outbox_table
from voc_profile.schemas import CheckinIn
from voc_profile.sessions import in_session
from voc_profile.settings import Settings
from voc_profile.store_access import Caller


@dataclass(frozen=True, slots=True)
class CheckinResult:
    id: str
    customer_id: str
    heads_up: bool
    replay: bool = False


def request_hash(body: CheckinIn) -> str:
    """The body's identity for idempotency: canonical JSON, hashed."""
    return hashlib.sha256(orjson.dumps(body.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)).hexdigest()


def _identifiers(body: CheckinIn, settings: Settings) -> list[tuple[str, str]]:
    c = body.customer
    try:
        found = normalize(
            loyalty_id=c.loyalty_id or "",
            phone=c.phone or "",
            email=c.email or "",
            region=settings.default_region,
        )
    except InvalidIdentifier as exc:
        raise Invalid(str(exc), errors=[FieldError(f"body.customer.{exc.field}", str(exc))]) from None
    if not found:
        raise Invalid(
            "A check-in names the customer.",
            errors=[FieldError("body.customer", "give loyalty_id, phone or email")],
        )
    return found


_LAST_NEGATIVE = Prepared(
    select(
        history_table.c.feedback_id,
        history_table.c.store_id,
        history_table.c.channel,
        history_table.c.category,
        history_table.c.sentiment,
        history_table.c.occurred_at,
        alerts_table.c.status,
        alerts_table.c.outcome,
    )
    .select_from(history_table)
    .outerjoin(alerts_table, alerts_table.c.feedback_id == history_table.c.feedback_id)
    .where(
        history_table.c.customer_id == bindparam("customer_id"),
        history_table.c.sentiment == "negative",
        or_(
            history_table.c.occurred_at >= bindparam("since"),
            and_(alerts_table.c.status.is_not(None), alerts_table.c.status != "resolved"),
        ),
    )
    .order_by(history_table.c.occurred_at.desc())
    .limit(1)
)


def arrival_of(
    reader: Reader,
    *,
    customer_id: str,
    checkin_id: str,
    body: CheckinIn,
    at: float,
    settings: Settings,
    now: float,
) -> events_pb2.CustomerArrived | None:
    """The `CustomerArrived` event when staff should be ready for this customer, else None."""
    found = context.customer_context(reader, customer_id=customer_id, settings=settings)
    customer, sig = found.customer, found.signals
    assert customer is not None
    last = reader.first(
        _LAST_NEGATIVE, {"customer_id": customer.id, "since": now - settings.heads_up_recent_days * 86400}
    )
    if last is None and not sig.churn_risk and not sig.vip:
        return None
    reasons = [f"{r.signal}: {r.reason}" for r in sig.reasons][:5]
    event = events_pb2.CustomerArrived(
        visit_id=checkin_id,
        customer_id=customer.id,
        store_id=body.store_id,
        channel=body.channel,
        occurred_at_ms=int(at * 1000),
        masked_name=mask_name(customer.name),
        name=(customer.name or "")[:40],
        tier=customer.tier or "",
        vip=sig.vip,
        churn_risk=sig.churn_risk,
        repeat_issue=sig.repeat_issue,
        chronic_complainer=sig.chronic_complainer,
        reasons=reasons,
        unresolved=last is not None and last.status is not None and last.status != "resolved",
    )
    if last is not None:
        event.last_contact.CopyFrom(
            events_pb2.ArrivalContact(
                feedback_id=last.feedback_id, store_id=last.store_id, channel=last.channel,
                category=last.category, sentiment=last.sentiment, occurred_at_ms=int(last.occurred_at * 1000),
                status=last.status or "", outcome=last.outcome or "",
            )
        )  # fmt: skip
    return event


async def check_in(
    database: Database, *, body: CheckinIn, caller: Caller, idempotency_key: str | None, settings: Settings
) -> CheckinResult:
    """The visit, the check-in record, the audit entry and (when it is due) the arrival event, in
    one transaction; a replayed Idempotency-Key answers the first check-in, another body under
    the same key is 409. An unknown customer is 422 naming `body.customer`."""
    digest = request_hash(body)
    try:
        return await _check_in(
            database,
            body=body,
            caller=caller,
            idempotency_key=idempotency_key,
            digest=digest,
            settings=settings,
        )
    except IntegrityError:
        # A concurrent request with the same key committed first (PostgreSQL: both read the key
        # as free, the second commit hit the unique index): answer as its replay, or 409.
        if not idempotency_key:
            raise
        async with database.session() as session:
            seen = await _replay(session, caller=caller, idempotency_key=idempotency_key, digest=digest)
        if seen is None:
            raise
        return seen


async def _replay(
    session: AsyncSession, *, caller: Caller, idempotency_key: str, digest: str
) -> CheckinResult | None:
    """The first check-in under this key (409 when its body differs), or None."""
    seen = await session.scalar(
        select(Checkin).where(Checkin.caller == caller.name, Checkin.idempotency_key == idempotency_key)
    )
    if seen is None:
        return None
    if seen.request_hash != digest:
        raise Conflict("This Idempotency-Key was used with another body.")
    return CheckinResult(seen.id, seen.customer_id, seen.heads_up, replay=True)


async def _check_in(
    database: Database,
    *,
    body: CheckinIn,
    caller: Caller,
    idempotency_key: str | None,
    digest: str,
    settings: Settings,
) -> CheckinResult:
    identifiers = _identifiers(body, settings)
    now = time.time()
    at = body.occurred_at.timestamp() if body.occurred_at is not None else now
    async with database.transaction() as session:
        if idempotency_key:
            seen = await _replay(session, caller=caller, idempotency_key=idempotency_key, digest=digest)
            if seen is not None:
                return seen
        customer_id = await in_session(session, resolution.lookup, identifiers=identifiers)
        if customer_id is None:
            raise Invalid(
                "No customer with these identifiers.",
                errors=[FieldError("body.customer", "no customer with these identifiers")],
            )
        checkin_id = uuid7()
        try:
            arrival = await in_session(
                session, arrival_of, customer_id=customer_id, checkin_id=checkin_id, body=body, at=at,
                settings=settings, now=now,
            )  # fmt: skip
        except (NotFound, Gone):
            raise Invalid(
                "No customer with these identifiers.",
                errors=[FieldError("body.customer", "the customer was erased or merged away")],
            ) from None
        owner = arrival.customer_id if arrival is not None else customer_id
        await _add_visit(session, customer_id=owner, store_id=body.store_id, at=at, amount=body.amount or 0.0)
        session.add(
            Checkin(
                id=checkin_id, caller=caller.name, idempotency_key=idempotency_key, request_hash=digest,
                customer_id=owner, store_id=body.store_id, visited_at=at, heads_up=arrival is not None,
                created_at=now,
            )
        )  # fmt: skip
        if arrival is not None:
            await add_event(
                session, outbox_table, subject="voc.profile.customer_arrived", message=arrival,
                event_id=f"arrived:{checkin_id}",
            )  # fmt: skip
        await _refresh_intent(session, customer_id=owner, settings=settings)
        await audit.record(
            session, actor=Actor(caller.name), action="check_in", customer_id=owner,
            detail={"checkin_id": checkin_id, "store_id": body.store_id, "heads_up": arrival is not None},
        )  # fmt: skip
    return CheckinResult(checkin_id, owner, arrival is not None)


async def _add_visit(
    session: AsyncSession, *, customer_id: str, store_id: str, at: float, amount: float
) -> None:
    """The visit, unless the same one (customer, store, time) is on file already."""
    dialect = (await session.connection()).dialect.name
    builder: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    await session.execute(
        builder(Visit)
        .values(customer_id=customer_id, store_id=store_id, visited_at=at, amount=amount)
        .on_conflict_do_nothing(index_elements=["customer_id", "store_id", "visited_at"])
    )


async def _refresh_intent(session: AsyncSession, *, customer_id: str, settings: Settings) -> None:
    """A visit after a stated revisit intent clears churn risk (as an imported visit does)."""
    pending = await session.scalar(
        select(CustomerSignals.pending_intent_at).where(CustomerSignals.customer_id == customer_id)
    )
    if pending is not None:
        await session.flush()
        await in_session(session, signals.refresh, customer_id=customer_id, settings=settings)
