"""Reading feedback: the filter every list and report shares, keyset pages newest first, one item
with its timeline, and the CSV export streamed page by page."""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from voc_feedback.models import Feedback, Store, TimelineEntry
from voc_platform.db import Database
from voc_platform.errors import FieldError, Invalid

QueryT = TypeVar("QueryT", bound=Select[*tuple[Any, ...]])
Scope = tuple[str, ...] | None  # the stores a reader may see; None: every store (the admin)


@dataclass(frozen=True, slots=True)
class FeedbackFilter:
    """Which items a list, export or report covers (received_at in [since, until))."""

    scope_store_ids: Scope = None
    store_id: str | None = None
    area_id: str | None = None
    channel: str | None = None
    category: str | None = None
    sentiment: str | None = None
    status: str | None = None
    since: float | None = None
    until: float | None = None
    customer_id: str | None = None  # one customer's items (a subject access request)


def apply_filter(query: QueryT, where: FeedbackFilter) -> QueryT:
    """The filter as WHERE clauses on a query over `Feedback`."""
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
        (Feedback.customer_id, where.customer_id),
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
    """The id a cursor stands for; `Invalid` for one this API did not give out."""
    try:
        value = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        value = ""
    if not (1 <= len(value) <= 36) or not all(c.isalnum() or c == "-" for c in value):
        raise Invalid(
            "The cursor is not one this API gave out.", errors=[FieldError("query.cursor", "invalid")]
        )
    return value


class Page(NamedTuple):
    rows: list[Feedback]
    next_cursor: str | None


async def list_feedback(
    session: AsyncSession, *, where: FeedbackFilter, limit: int, cursor: str | None
) -> Page:
    """Newest first (ids are uuid7, so id order is time order); keyset pagination on the id."""
    query = apply_filter(select(Feedback), where)
    if cursor:
        query = query.where(Feedback.id < decode_cursor(cursor))
    rows = list(await session.scalars(query.order_by(Feedback.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, encode_cursor(rows[-1].id) if more and rows else None)


class FeedbackCase(NamedTuple):
    row: Feedback
    timeline: list[TimelineEntry]


async def get_feedback(session: AsyncSession, *, feedback_id: str) -> FeedbackCase | None:
    """One item and its timeline in order; None when there is no such item."""
    row = await session.get(Feedback, feedback_id)
    if row is None:
        return None
    timeline = await session.scalars(
        select(TimelineEntry)
        .where(TimelineEntry.feedback_id == feedback_id)
        .order_by(TimelineEntry.at, TimelineEntry.id)
    )
    return FeedbackCase(row, list(timeline))


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
    "priority",  # the alert's plan priority: info is FYI (praise), no case
    "customer_id",
    "reopens_id",
    "text",
)


async def csv_export(database: Database, where: FeedbackFilter) -> AsyncIterator[bytes]:
    """Stream the period in keyset pages (a read session per page); the BOM makes spreadsheets
    read Korean as UTF-8."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    yield ("\ufeff" + buffer.getvalue()).encode()
    cursor: str | None = None
    while True:
        async with database.session() as session:
            rows, cursor = await list_feedback(session, where=where, limit=1000, cursor=cursor)
        buffer.seek(0)
        buffer.truncate()
        writer.writerows([_csv_cell(v) for v in _csv_values(r)] for r in rows)
        yield buffer.getvalue().encode()
        if cursor is None:
            return


def _csv_values(r: Feedback) -> tuple[Any, ...]:
    return (
        r.id,
        datetime.fromtimestamp(r.received_at, UTC).isoformat(),
        datetime.fromtimestamp(r.occurred_at, UTC).isoformat(),
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
        r.priority,
        r.customer_id,
        r.reopens_id,
        r.text,
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
