"""The case lifecycle: each step of a case (an alert's events, a gRPC outcome, a follow-up answer)
goes on the timeline and moves the status forward only; the first resolution opens the follow-up
survey; a reopening item's progress is mirrored on the case it reopened. Also customer links and
erasure. `_case_event` is the one writer of a step, as prepared statements."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from voc.events.v1 import events_pb2
from voc_feedback import messages
from voc_feedback.follow_up_links import FollowUpLinks
from voc_feedback.models import Feedback, FollowUp, TimelineEntry, outbox_table
from voc_feedback.pages import LANGUAGES  # the languages a survey speaks
from voc_feedback.personal import FREE_TEXT_KEYS, OWN_WORDS_KINDS, shown_explanation
from voc_platform.dbsync import Prepared, Reader
from voc_platform.ids import uuid7
from voc_platform.outbox import add_event
from voc_platform.taxonomy import FYI_PRIORITY, PRIORITIES

log = logging.getLogger(__name__)

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
OPEN_STATUSES = ("received", "alerted", "acknowledged", "reopened")
# An item whose alert carries an info plan (the praise playbooks) is FYI: told to the team, with
# nothing to put right (`taxonomy.FYI_PRIORITY`). It is listed with all feedback, but it is no
# open case, no SLA breach and no time to acknowledge; notify pages nobody to resolve it. The staff
# app shows the same alert as "참고 / FYI". Until its alert comes an item counts as open (its plan
# is not known yet).
OPEN_CASE = Feedback.status.in_(OPEN_STATUSES) & Feedback.priority.is_distinct_from(FYI_PRIORITY)


def is_fyi(priority: str | None) -> bool:
    """Whether an item is FYI (no case) by its alert's plan priority."""
    return priority == FYI_PRIORITY


def is_open_case(status: str, priority: str | None) -> bool:
    """A case still waiting for the frontline (the row form of `OPEN_CASE`)."""
    return status in OPEN_STATUSES and not is_fyi(priority)


ACTOR_CHARS = 64  # `feedback_timeline.actor`


@dataclass(frozen=True, slots=True)
class CaseEvent:
    """One step of a case: the timeline entry it becomes and the status it reaches."""

    feedback_id: str
    status: str  # the timeline kind: alerted, acknowledged, resolved, escalated, followed_up
    at: float
    actor: str | None
    detail: dict[str, Any]  # the timeline entry's JSON
    event_id: str | None  # recorded once per case (None: always recorded)

    def __post_init__(self) -> None:
        # `feedback_timeline.actor` holds 64: "staff:" and a staff id of up to 64 is cut to fit
        # (PostgreSQL refuses longer; every path to the timeline builds a CaseEvent).
        if self.actor is not None and len(self.actor) > ACTOR_CHARS:
            object.__setattr__(self, "actor", self.actor[:ACTOR_CHARS])

    def on_reopened_case(self, reopened_id: str) -> CaseEvent:
        """The same step mirrored on the case this (reopening) item reopened."""
        return replace(
            self,
            feedback_id=reopened_id,
            detail={**self.detail, "via_feedback_id": self.feedback_id},
            event_id=f"{self.event_id}:parent" if self.event_id else None,
        )


TIMELINE_INSERT = Prepared(insert(TimelineEntry))
_CASE_ROW = Prepared(
    select(
        Feedback.status,
        Feedback.alerted_at,
        Feedback.acknowledged_at,
        Feedback.resolved_at,
        Feedback.escalated,
        Feedback.reopens_id,
        Feedback.priority,
        Feedback.redacted_at,
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
_CUSTOMER_ITEMS = Prepared(
    select(Feedback.id, Feedback.explanation).where(Feedback.customer_id == bindparam("customer_id"))
)
_ITEM = Prepared(select(Feedback.id, Feedback.explanation).where(Feedback.id == bindparam("feedback_id")))
_TIMELINE_OF = Prepared(
    select(TimelineEntry.id, TimelineEntry.kind, TimelineEntry.detail).where(
        TimelineEntry.feedback_id == bindparam("feedback_id")
    )
)
_TIMELINE_SET = Prepared(update(TimelineEntry).where(TimelineEntry.id == bindparam("where_id")))
_FOLLOW_UP_COMMENT = Prepared(update(FollowUp).where(FollowUp.feedback_id == bindparam("where_feedback_id")))


class _CaseStep(NamedTuple):
    status: str  # after the event
    reopens_id: str | None
    recorded: bool  # False: the event id was already on the timeline
    open_follow_up: bool  # a first resolution: the case has no follow-up yet


def _earliest(current: float | None, at: float) -> float:
    return at if current is None else min(current, at)


def _higher(current: str | None, given: object) -> str | None:
    """The higher of two plan priorities (an item merged into an alert whose priority rose, or
    its events out of order); a priority the taxonomy does not name changes nothing."""
    if not isinstance(given, str) or given not in PRIORITIES:
        return current
    if current in PRIORITIES and PRIORITIES.index(current) >= PRIORITIES.index(given):
        return current
    return given


def _changes(row: Any, event: CaseEvent) -> dict[str, Any]:
    """The columns the step changes (only those, as an ORM flush would)."""
    status, at = event.status, event.at
    changes: dict[str, Any] = {}
    # Events arrive in any order: each loop timestamp keeps the earliest time seen.
    if status == "alerted":
        if row.alerted_at != (alerted_at := _earliest(row.alerted_at, at)):
            changes["alerted_at"] = alerted_at
        if (priority := _higher(row.priority, event.detail.get("priority"))) != row.priority:
            changes["priority"] = priority
    elif status in ("acknowledged", "resolved"):  # resolving implies acknowledging
        if row.acknowledged_at != (acknowledged_at := _earliest(row.acknowledged_at, at)):
            changes["acknowledged_at"] = acknowledged_at
        if status == "resolved" and row.resolved_at != (resolved_at := _earliest(row.resolved_at, at)):
            changes["resolved_at"] = resolved_at
    elif status == "escalated" and not row.escalated:
        changes["escalated"] = True
    if STATUS_RANK.get(status, -1) > STATUS_RANK.get(row.status, -1):
        changes["status"] = status
    return changes


def _case_event(
    reader: Reader, event: CaseEvent, *, customer_id: str | None = None, check_follow_up: bool = False
) -> _CaseStep | None:
    """Record one step inside the caller's transaction (and link the customer when
    `customer_id` is given). None when the feedback is unknown."""
    feedback_id = event.feedback_id
    row = reader.first(_CASE_ROW, {"feedback_id": feedback_id})
    if row is None:
        if customer_id is not None:
            link_customer(reader, feedback_id=feedback_id, customer_id=customer_id)
        return None
    if (
        event.event_id is not None
        and reader.first(_TIMELINE_SEEN, {"feedback_id": feedback_id, "event_id": event.event_id}) is not None
    ):
        if customer_id is not None:
            link_customer(reader, feedback_id=feedback_id, customer_id=customer_id)
        return _CaseStep(row.status, row.reopens_id, recorded=False, open_follow_up=False)
    detail = event.detail
    if row.redacted_at is not None and FREE_TEXT_KEYS & detail.keys() and event.status not in OWN_WORDS_KINDS:
        # A step that comes after an erasure or the retention (a late delivery report, say)
        # keeps no free text either.
        detail = {**detail, **{key: "" for key in FREE_TEXT_KEYS & detail.keys()}}
    reader.execute(
        TIMELINE_INSERT,
        {
            "feedback_id": feedback_id,
            "at": event.at,
            "kind": event.status,
            "actor": event.actor,
            "detail": detail,
            "event_id": event.event_id,
        },
    )
    changes = _changes(row, event)
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


def record_alert(reader: Reader, event: CaseEvent, *, customer_id: str | None) -> str | None:
    """`voc.alert.created`: the "alerted" step and the customer link in the caller's `dbsync`
    hop (an alert has no follow-up or mirroring tail). The status after it; None when unknown."""
    step = _case_event(reader, event, customer_id=customer_id or None)
    return None if step is None else step.status


def record_step(reader: Reader, event: CaseEvent) -> str | None:
    """A step with no follow-up or mirroring tail (notify's follow-up messages) in the caller's
    `dbsync` hop. The status after it; None when the feedback is unknown."""
    step = _case_event(reader, event)
    return None if step is None else step.status


def link_customer(reader: Reader, *, feedback_id: str, customer_id: str) -> bool:
    """`voc.profile.feedback_linked`: the customer profile resolved for a feedback item."""
    return bool(reader.execute(_FEEDBACK_SET, {"customer_id": customer_id, "where_id": feedback_id}))


def redact_customer(reader: Reader, *, customer_id: str, feedback_ids: Sequence[str] = ()) -> int:
    """Erasure: the customer's items keep what happened and the numbers (store, channel, ratings,
    labels, times, the case's steps) and lose what the customer and staff wrote or typed: the
    identifiers copied from the submission, the text, the explanation's quoted words, the
    notes and comments on the timeline, the survey's comment. The items are those linked to the
    customer and those profile names (`feedback_ids`: a link not yet read here). Returns how
    many items."""
    items = reader.all(_CUSTOMER_ITEMS, {"customer_id": customer_id}) if customer_id else []
    linked = {item.id for item in items}
    for feedback_id in dict.fromkeys(feedback_ids):  # erasure is rare: one primary-key read each
        if feedback_id not in linked and (item := reader.first(_ITEM, {"feedback_id": feedback_id})):
            items.append(item)
    now = time.time()
    for item in items:
        _redact_item(reader, item, now=now)
    return len(items)


def _redact_item(reader: Reader, item: Any, *, now: float) -> None:
    """What the customer and staff wrote or typed on one item goes (`redact_customer`); the
    numbers and steps stay."""
    reader.execute(
        _FEEDBACK_SET,
        {
            "customer": {},
            "text": None,
            "explanation": shown_explanation(list(item.explanation or []), ""),
            "redacted_at": now,
            "where_id": item.id,
        },
    )
    for entry in reader.all(_TIMELINE_OF, {"feedback_id": item.id}):
        detail = dict(entry.detail or {})
        if FREE_TEXT_KEYS & detail.keys() and entry.kind not in OWN_WORDS_KINDS:
            detail.update({key: "" for key in FREE_TEXT_KEYS & detail.keys()})
            reader.execute(_TIMELINE_SET, {"detail": detail, "where_id": entry.id})
    reader.execute(_FOLLOW_UP_COMMENT, {"comment": None, "where_feedback_id": item.id})


#: Items a retention pass redacts per transaction (a hop holds SQLite's one writer).
RETENTION_BATCH = 200
_PAST_RETENTION = Prepared(
    select(Feedback.id, Feedback.explanation)
    .where(Feedback.redacted_at.is_(None), Feedback.received_at < bindparam("before"))
    .order_by(Feedback.received_at)
    .limit(RETENTION_BATCH)
)


def redact_past_retention(reader: Reader, *, before: float, now: float) -> int:
    """Retention (`VOC_RETENTION_DAYS`): items that arrived before `before` lose what was written
    on them, as an erased customer's do, the oldest first, at most `RETENTION_BATCH` a call;
    returns how many (fewer: none is left)."""
    items = reader.all(_PAST_RETENTION, {"before": before})
    for item in items:
        try:
            _redact_item(reader, item, now=now)
        except (TypeError, ValueError, AttributeError):  # a row whose JSON our code cannot read
            log.exception(
                "retention: feedback %s redacted whole (its stored JSON could not be read)", item.id
            )
            reader.execute(
                _FEEDBACK_SET,
                {"customer": {}, "text": None, "explanation": [], "redacted_at": now, "where_id": item.id},
            )
    return len(items)


async def record_case_event(
    session: AsyncSession, event: CaseEvent, *, follow_up: FollowUpLinks | None = None
) -> str | None:
    """Append to the timeline and move the status forward; returns the new status.

    None when the feedback is unknown. Idempotent per event id (callers dedupe on it too).
    The first resolution of a case opens its follow-up survey (when `follow_up` is given);
    a reopening item's progress is mirrored on the case it reopened.
    """
    check_follow_up = event.status == "resolved" and follow_up is not None
    step: _CaseStep | None = await session.run_sync(_case_event_in, event, check_follow_up)
    if step is None:
        return None
    if step.recorded and step.open_follow_up and follow_up is not None:
        row = await session.get(Feedback, event.feedback_id)
        assert row is not None  # locked above
        if (unasked := no_follow_up_reason(row, event)) is not None:
            session.add(
                TimelineEntry(
                    feedback_id=row.id,
                    at=event.at,
                    kind="follow_up_not_requested",
                    actor="feedback",
                    detail={
                        "outcome": "not_requested",
                        "reason": unasked,
                        "note": f"follow-up not asked: {unasked}",
                    },
                    event_id=None,
                )
            )
        else:
            await open_follow_up(session, row=row, links=follow_up, at=event.at)
    if step.recorded and event.status in ("resolved", "followed_up") and step.reopens_id:
        await record_case_event(session, event.on_reopened_case(step.reopens_id))
    return step.status


def _case_event_in(session: Session, event: CaseEvent, check_follow_up: bool) -> _CaseStep | None:
    """`_case_event` in a session's transaction (one greenlet hop). The statements bypass the
    ORM, so the ORM state a session may hold (`answer_follow_up` has the case loaded and
    changed) is kept coherent around them: pending changes are flushed first (a no-op on a
    clean session) and the feedback rows it holds are refreshed after. A consumer's fresh
    session holds none."""
    session.flush()
    step = _case_event(Reader.of(session.connection()), event, check_follow_up=check_follow_up)
    for held in [o for o in session.identity_map.values() if isinstance(o, Feedback)]:
        session.refresh(held)
    return step


#: Why a resolved case asks its customer nothing (the timeline says it in these words).
NO_FOLLOW_UP_FYI = "praise is shared with the team, there was nothing to put right"
NO_FOLLOW_UP_NO_ACTION = "resolved as no action needed"


def no_follow_up_reason(row: Feedback, resolution: CaseEvent) -> str | None:
    """A follow-up asks "was it put right?": not of praise (an FYI plan) nor of a case resolved
    as needing no action (a test entry, a duplicate). None: ask. The resolution's own priority
    first: the alert's creation, which sets the case's, may be read after it."""
    if is_fyi(str(resolution.detail.get("priority") or row.priority or "")):
        return NO_FOLLOW_UP_FYI
    if resolution.detail.get("outcome") == "no_action_needed":
        return NO_FOLLOW_UP_NO_ACTION
    return None


async def open_follow_up(
    session: AsyncSession, *, row: Feedback, links: FollowUpLinks, at: float
) -> FollowUp | None:
    """Once per case: the first resolution opens the survey; reopening items get their own (did
    we put it right this time?), in the language the customer was asked in before: the reopening
    item's own is its comment's, often a few words in another language. A feedback item in no
    language of ours (a rating without words) is asked in "" (unknown): notify speaks the
    store's language and puts it in the link (`?lang=`)."""
    if await session.scalar(select(FollowUp.id).where(FollowUp.feedback_id == row.id)) is not None:
        return None
    language = row.language
    if row.reopens_id:
        asked = select(FollowUp.language).where(FollowUp.feedback_id == row.reopens_id)
        if (before := await session.scalar(asked)) is not None:
            language = before  # "" too: asked in the store's language, so again
    now = time.time()
    follow = FollowUp(
        id=uuid7(),
        feedback_id=row.id,
        language=language if language in LANGUAGES else "",
        created_at=now,
        expires_at=now + links.ttl_seconds,
    )
    session.add(follow)
    session.add(
        TimelineEntry(
            feedback_id=row.id,
            at=at,  # listed with the resolution it follows
            kind="follow_up_requested",
            actor="feedback",
            detail={"follow_up_id": follow.id, "expires_at": follow.expires_at},
            event_id=None,
        )
    )
    await session.flush()
    given = row.customer or {}
    await add_event(
        session,
        outbox_table,
        subject=messages.SUBJECT_FOLLOW_UP_REQUESTED,
        message=events_pb2.FollowUpRequested(
            feedback_id=row.id,
            store_id=row.store_id,
            customer_id=row.customer_id or "",
            url=links.url(follow.id),
            language=follow.language,
            expires_at_ms=int(follow.expires_at * 1000),
            # Notify sends the link this long after the resolution (and not in quiet hours).
            send_after_ms=int((at + links.send_delay_seconds) * 1000),
            email=str(given.get("email") or ""),
            phone=str(given.get("phone") or ""),
            again=row.reopens_id is not None,
        ),
        event_id=f"follow-up-requested:{follow.id}",
    )
    return follow
