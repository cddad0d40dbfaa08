"""The follow-up survey of a resolved case: find it by its signed token, record the customer's one
answer, and reopen the case as a new linked item when the answer is unhappy."""

from __future__ import annotations

import time
from dataclasses import asdict, replace
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from voc.events.v1 import events_pb2
from voc_feedback import messages, pages
from voc_feedback.cases import CaseEvent, record_case_event
from voc_feedback.classification import classify
from voc_feedback.follow_up_links import FollowUpLinks, verify_follow_up_token
from voc_feedback.models import Feedback, FollowUp, TimelineEntry, outbox_table
from voc_feedback.schemas import FollowUpAnswer
from voc_platform.errors import Gone, NotFound
from voc_platform.ids import uuid7
from voc_platform.outbox import add_event

SEVERITY_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}
#: How sure the classifier must be of another category for a reopened case to take it.
NEW_CATEGORY_CONFIDENCE = 0.8
# Follow-up answers: csat 1-2 is unhappy (reopens), 4-5 happy (recovered), 3 neither.
UNHAPPY_CSAT_MAX = 2
HAPPY_CSAT_MIN = 4
ALREADY_ANSWERED = "This follow-up was already answered. Thank you!"


class AlreadyAnswered(Gone):
    """410 for a link already used (not one that expired): its page says which."""


def is_open(follow: FollowUp, *, now: float) -> bool:
    """Not answered yet and not expired: the link still works."""
    return follow.answered_at is None and follow.expires_at > now


async def follow_up_of(session: AsyncSession, *, feedback_id: str) -> FollowUp | None:
    """The item's follow-up survey, if its resolution opened one."""
    follow: FollowUp | None = await session.scalar(
        select(FollowUp).where(FollowUp.feedback_id == feedback_id)
    )
    return follow


async def asked_language(session: AsyncSession, *, token: str, secret: str) -> str | None:
    """The language a link's customer was asked in, also once it is used or expired (its
    closed page speaks it); None for a link that is not ours."""
    follow_up_id = verify_follow_up_token(token, secret=secret)
    follow = await session.get(FollowUp, follow_up_id) if follow_up_id else None
    return follow.language if follow is not None else None


async def get_follow_up(session: AsyncSession, *, token: str, secret: str) -> tuple[FollowUp, Feedback]:
    """The follow-up behind a token and its case: `NotFound` for a bad signature, `Gone` once
    used or expired."""
    follow_up_id = verify_follow_up_token(token, secret=secret)
    follow = await session.get(FollowUp, follow_up_id) if follow_up_id else None
    if follow is None:
        raise NotFound("This follow-up link is not valid.")
    if follow.answered_at is not None:
        raise AlreadyAnswered(ALREADY_ANSWERED)
    if follow.expires_at <= time.time():
        raise Gone("This follow-up link has expired.")
    row = await session.get(Feedback, follow.feedback_id)
    assert row is not None  # the foreign key cascades
    return follow, row


async def answer_follow_up(
    session: AsyncSession,
    *,
    token: str,
    answer: FollowUpAnswer,
    links: FollowUpLinks,
    page_language: str | None = None,
) -> FollowUp:
    """Record the answer once; an unhappy one reopens the case as a new, linked feedback item
    (notify keeps one alert per feedback id, so the new item is what alerts again).
    `page_language`: the page's the customer answered on (a form's); it becomes the case's, so
    a second ask speaks the language they switched to."""
    follow, row = await get_follow_up(session, token=token, secret=links.secret)
    now = time.time()
    await _claim(session, follow, now=now)
    if page_language in pages.LANGUAGES:
        follow.language = str(page_language)
    follow.csat = answer.csat
    follow.satisfied = answer.csat >= HAPPY_CSAT_MIN
    follow.revisit_intent = answer.revisit_intent
    follow.comment = answer.comment
    detail: dict[str, Any] = {"follow_up_id": follow.id, "csat": answer.csat, "satisfied": follow.satisfied}
    if answer.revisit_intent is not None:
        detail["revisit_intent"] = answer.revisit_intent
    if answer.comment:  # on the case whatever the score (masked for readers without customer records)
        detail["comment"] = answer.comment
    event_id = f"follow-up-answered:{follow.id}"
    await record_case_event(session, CaseEvent(row.id, "followed_up", now, "customer", detail, event_id))
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
        subject=messages.SUBJECT_FOLLOW_UP_ANSWERED,
        message=answered,
        event_id=event_id,
    )
    return follow


async def _claim(session: AsyncSession, follow: FollowUp, *, now: float) -> None:
    """Claim the one-time link atomically: a concurrent second answer updates no row (`Gone`)."""
    claimed = await session.execute(
        update(FollowUp)
        .where(FollowUp.id == follow.id, FollowUp.answered_at.is_(None))
        .values(answered_at=now)
        .execution_options(synchronize_session=False)
    )
    if not getattr(claimed, "rowcount", 0):
        raise AlreadyAnswered(ALREADY_ANSWERED)
    await session.refresh(follow)


#: How far up a chain of reopenings a new one is told (a customer unhappy again and again).
MAX_REOPEN_DEPTH = 10


async def _reopen_ancestors(
    session: AsyncSession, *, original: Feedback, child: Feedback, now: float
) -> None:
    """An answer to a reopening item's survey reopens the cases above it too: their status was
    the mirrored "followed up" and would read closed while the new item is open."""
    above, depth = original.reopens_id, 0
    while above and depth < MAX_REOPEN_DEPTH:
        case = await session.get(Feedback, above, with_for_update=True)
        if case is None:
            return
        case.status = "reopened"
        detail = {"feedback_id": child.id, "via_feedback_id": original.id}
        session.add(
            TimelineEntry(
                feedback_id=case.id, at=now, kind="reopened", actor="customer", detail=detail, event_id=None
            )
        )
        above, depth = case.reopens_id, depth + 1


async def _reopen(session: AsyncSession, *, original: Feedback, follow: FollowUp, now: float) -> Feedback:
    """The unhappy answer as a new item linked to the case it reopens, published as received."""
    text = follow.comment
    result = classify(
        text, csat=follow.csat, nps=None, ces=None, language=None if text else original.language
    )
    # The answer's classification, but negative; the complaint is the original one unless the
    # customer plainly names another (a comment about the remedy, "refund received but still
    # uneasy", read as billing at 0.51 and paged the billing plan on a food-safety case); an
    # unhappy answer after a "resolution" is at least high severity.
    names_another = result.category != "other" and result.category_confidence >= NEW_CATEGORY_CONFIDENCE
    labels = replace(
        result,
        language=result.language if text else original.language,
        sentiment="negative",
        score=min(result.score, -0.5),
        category=result.category if names_another else original.category,
        severity=max(result.severity, original.severity, "high", key=lambda s: SEVERITY_RANK.get(s, 0)),
        explanation=[*result.explanation, f"reopens {original.id}: follow-up csat {follow.csat}"],
    )
    child = Feedback(
        id=uuid7(),
        store_id=original.store_id,
        channel="survey",
        text=text,
        **asdict(labels),  # a classification's fields are the row's classification columns
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
    # The customer's answer is one moment on both cases: the new item received, the original reopened.
    session.add_all(
        TimelineEntry(feedback_id=case_id, at=now, kind=kind, actor="customer", detail=detail, event_id=None)
        for case_id, kind, detail in (
            (child.id, "received", {"channel": "survey", "reopens_id": original.id}),
            (original.id, "reopened", {"feedback_id": child.id, "csat": follow.csat}),
        )
    )
    original.status = "reopened"
    await _reopen_ancestors(session, original=original, child=child, now=now)
    await session.flush()
    await add_event(
        session,
        outbox_table,
        subject=messages.SUBJECT_RECEIVED,
        message=messages.feedback_received(child),
        event_id=child.id,
    )
    return child
