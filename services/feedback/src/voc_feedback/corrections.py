"""Corrections of the classifier (#17): a person (staff on the alert, a manager on the dashboard)
sets an item's sentiment and/or category. The item's row takes the corrected labels at once (so
every list, report, export and the open cases read them with no join), the correction is kept
with who, when, what it replaced and which model was corrected (the latest wins), the case
timeline and the audit log record it, and `voc.feedback.corrected` tells the rest of the system.
The corrections are also the labelled examples training reads (`labelled_examples`).

The one home of the rule: the REST route and the gRPC call notify makes for the staff app both
call `correct`."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from voc.events.v1 import events_pb2
from voc_feedback import messages
from voc_feedback.models import ClassificationCorrection, Feedback, TimelineEntry, outbox_table
from voc_platform import taxonomy
from voc_platform.audit import Audit
from voc_platform.errors import FieldError, Invalid, NotFound
from voc_platform.identity import Caller
from voc_platform.ids import uuid7
from voc_platform.outbox import add_event
from voc_platform.records import copy_fields, fields_of

TIMELINE_KIND = "classification_corrected"


@dataclass(frozen=True, slots=True)
class Labels:
    """The labels a correction sets: None for one it leaves as the model put it."""

    sentiment: str | None
    category: str | None


@dataclass(frozen=True, slots=True)
class Correction:
    """One correction as stored: `sentiment` / `category` are None when not corrected."""

    id: str
    feedback_id: str
    store_id: str
    sentiment: str | None
    category: str | None
    previous_sentiment: str
    previous_category: str
    model_version: str | None
    corrected_by: str
    corrected_at: float

    @classmethod
    def of(cls, row: ClassificationCorrection) -> Correction:
        return copy_fields(cls, row)


@dataclass(frozen=True, slots=True)
class Corrected:
    """The answer to a correction: what was stored and the item's effective labels after it."""

    correction: Correction
    sentiment: str
    category: str


@dataclass(frozen=True, slots=True)
class LabelledExample:
    """A corrected item as training reads it (`GET /v1/classifier/corrections`)."""

    feedback_id: str
    text: str
    language: str
    sentiment: str  # effective: corrected, or the model's when only the category was
    category: str
    corrected_at: float
    corrected_by: str
    model_version: str | None

    def as_json(self) -> dict[str, str | None]:
        return {**asdict(self), "corrected_at": datetime.fromtimestamp(self.corrected_at, tz=UTC).isoformat()}


def check_labels(*, sentiment: str | None, category: str | None, where: str = "body") -> None:
    """At least one label, each from the shared taxonomy (a category of the published version, not
    retired): `Invalid` (422) naming the field."""
    errors: list[FieldError] = []
    if sentiment is None and category is None:
        raise Invalid(
            "Correct the sentiment, the category or both.",
            errors=[FieldError(where, "give 'sentiment' and/or 'category'")],
        )
    if sentiment is not None and sentiment not in taxonomy.SENTIMENTS:
        errors.append(FieldError(f"{where}.sentiment", f"one of {', '.join(taxonomy.SENTIMENTS)}"))
    published = taxonomy.current()  # live: the version actions published last (#20 §3)
    if category is not None and not published.accepts(category):
        why = "is retired" if category in published.known else "is not in the taxonomy"
        errors.append(FieldError(f"{where}.category", f"'{category}' {why}"))
    if errors:
        # The detail names them too: the staff app gets it relayed over gRPC, without `errors`.
        named = "; ".join(f"{e.field.removeprefix(where + '.')}: {e.message}" for e in errors)
        raise Invalid(f"The correction names a label outside the taxonomy ({named}).", errors=errors)


async def correct(
    session: AsyncSession,
    *,
    feedback_id: str,
    labels: Labels,
    caller: Caller,
    audit: Audit,
) -> Corrected:
    """Record `caller`'s correction (its permission checked at the edge) in the session's
    transaction. The item is looked up within the caller's stores (the admin token and cx_admin:
    every store) and locked: another store's item is `NotFound`, as if it did not exist.
    Labels are checked first, so a refused correction writes nothing. The time is read once the
    row is locked, so of two concurrent corrections the later one is the one in force."""
    sentiment, category = labels.sentiment, labels.category
    check_labels(sentiment=sentiment, category=category)
    query = select(Feedback).where(Feedback.id == feedback_id).with_for_update()
    scope = caller.scope
    if scope is not None:
        query = query.where(Feedback.store_id.in_(tuple(scope)))
    row = await session.scalar(query)
    if row is None:
        raise NotFound(f"No feedback '{feedback_id}'.")
    repeated = await in_force_repeat(session, row, caller=caller, sentiment=sentiment, category=category)
    if repeated is not None:
        return repeated
    now = time.time()
    stored = ClassificationCorrection(
        id=uuid7(),
        feedback_id=row.id,
        store_id=row.store_id,
        sentiment=sentiment,
        category=category,
        previous_sentiment=row.sentiment,
        previous_category=row.category,
        model_version=row.model_version,
        corrected_by=corrector(caller),
        corrected_at=now,
    )
    session.add(stored)
    effective_sentiment = sentiment or row.sentiment
    effective_category = category or row.category
    # The item's own labels: what every list, report and export reads.
    row.sentiment, row.category = effective_sentiment, effective_category
    detail = {
        "sentiment": effective_sentiment,
        "category": effective_category,
        "previous_sentiment": stored.previous_sentiment,
        "previous_category": stored.previous_category,
        "corrected": [name for name, value in (("sentiment", sentiment), ("category", category)) if value],
        "model_version": row.model_version,
    }
    session.add(
        TimelineEntry(
            feedback_id=row.id,
            at=now,
            kind=TIMELINE_KIND,
            actor=caller.actor.name[:64],
            detail=detail,
            event_id=None,
        )
    )
    await session.flush()
    await audit.record(
        session,
        actor=caller.actor,
        action="feedback.classification_corrected",
        target=f"feedback:{row.id}",
        detail=detail,
    )
    correction = Correction.of(stored)
    await add_event(
        session,
        outbox_table,
        subject=messages.SUBJECT_CORRECTED,
        message=corrected_event(correction, sentiment=effective_sentiment, category=effective_category),
        event_id=f"corrected:{correction.id}",
    )
    return Corrected(correction, effective_sentiment, effective_category)


async def in_force_repeat(
    session: AsyncSession, row: Feedback, *, caller: Caller, sentiment: str | None, category: str | None
) -> Corrected | None:
    """The correction in force when this one repeats it (the same person, the same labels, and
    the item still carries them): the staff app replaying a correction it queued offline whose
    first attempt reached the server after all (#23, #17). Answered as it was, at its own time;
    nothing is recorded or published again. None when this is a new correction."""
    latest = await session.scalar(
        select(ClassificationCorrection)
        .where(ClassificationCorrection.feedback_id == row.id)
        .order_by(ClassificationCorrection.corrected_at.desc(), ClassificationCorrection.id.desc())
        .limit(1)
    )
    if latest is None or latest.corrected_by != corrector(caller):
        return None
    if (latest.sentiment, latest.category) != (sentiment, category):
        return None
    if (sentiment is not None and row.sentiment != sentiment) or (
        category is not None and row.category != category
    ):
        return None
    return Corrected(Correction.of(latest), row.sentiment, row.category)


def corrector(caller: Caller) -> str:
    """Who a correction names: the staff id, or `admin` for the admin token."""
    return "admin" if caller.principal is None else caller.principal.staff_id[:64]


#: The correction's fields its messages carry as they are (the rest are renamed or converted).
_MESSAGE_FIELDS = ("feedback_id", "previous_sentiment", "previous_category", "corrected_by")


def message_fields(correction: Correction) -> dict[str, Any]:
    """What the event and the gRPC answer (`CorrectClassificationResponse`) both carry of the
    correction, as protobuf has it: milliseconds, '' for no model version."""
    return {
        **fields_of(correction, _MESSAGE_FIELDS),
        "model_version": correction.model_version or "",
        "corrected_at_ms": int(correction.corrected_at * 1000),
    }


def corrected_event(
    correction: Correction, *, sentiment: str, category: str
) -> events_pb2.ClassificationCorrected:
    return events_pb2.ClassificationCorrected(
        **message_fields(correction),
        store_id=correction.store_id,
        correction_id=correction.id,
        sentiment=sentiment,
        category=category,
        sentiment_corrected=correction.sentiment is not None,
        category_corrected=correction.category is not None,
    )


async def latest(session: AsyncSession, *, feedback_id: str) -> Correction | None:
    """The item's latest correction (the one in force); None when it was never corrected."""
    row = await session.scalar(
        select(ClassificationCorrection)
        .where(ClassificationCorrection.feedback_id == feedback_id)
        .order_by(ClassificationCorrection.corrected_at.desc(), ClassificationCorrection.id.desc())
        .limit(1)
    )
    return Correction.of(row) if row is not None else None


async def labelled_examples(session: AsyncSession, *, since: float | None) -> list[LabelledExample]:
    """Every corrected item whose latest correction is at or after `since`, oldest first, with
    the item's effective labels. Left out: items with no text (nothing to learn from) and items
    of an erased customer (their identifiers were dropped, `cases.redact_customer`: a linked
    item with none left), whose words are not ours to train on."""
    # uuid7 ids sort by time: each item's greatest id is its latest correction.
    newest = select(func.max(ClassificationCorrection.id)).group_by(ClassificationCorrection.feedback_id)
    query = (
        select(
            ClassificationCorrection,
            Feedback.text,
            Feedback.language,
            Feedback.sentiment,
            Feedback.category,
            Feedback.customer_id,
            Feedback.customer,
        )
        .join(Feedback, Feedback.id == ClassificationCorrection.feedback_id)
        .where(ClassificationCorrection.id.in_(newest))
        .where(Feedback.text.is_not(None))
        .order_by(ClassificationCorrection.corrected_at, ClassificationCorrection.id)
    )
    if since is not None:
        query = query.where(ClassificationCorrection.corrected_at >= since)
    examples = []
    rows = (await session.execute(query)).tuples()
    for correction, text, language, sentiment, category, customer_id, customer in rows:
        if not (text or "").strip() or (customer_id is not None and not customer):
            continue
        # The item's text and effective labels; when and by whom from its correction.
        examples.append(
            copy_fields(
                LabelledExample,
                correction,
                text=text,
                language=language,
                sentiment=sentiment,
                category=category,
            )
        )
    return examples
