"""Notify domain logic: routing, alerts, acknowledgement, resolution. Keyword-only."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import bindparam, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from voc.events.v1 import events_pb2
from voc_notify import duty
from voc_notify.auth import Principal
from voc_notify.models import (
    Alert,
    AlertRecipient,
    Base,
    Delivery,
    Device,
    EscalationTimer,
    Shift,
    ShiftOverride,
    Staff,
    StaffStore,
    Store,
    outbox_table,
)
from voc_platform.db import on_commit
from voc_platform.dbsync import Prepared, Reader, insert_ignore
from voc_platform.http import Problem
from voc_platform.ids import uuid7
from voc_platform.outbox import add_event, insert_outbox_rows, outbox_rows, wake_relays
from voc_platform.taxonomy import label, roles

ROLE_LEVEL: dict[str, int] = {name: int(meta["level"]) for name, meta in roles().items()}
OUTCOMES = ("resolved", "compensated", "referred", "no_action_needed", "customer_unreachable")
PRIORITY_LABEL = {
    "ko": {"urgent": "긴급", "normal": "알림", "info": "공유"},
    "en": {"urgent": "URGENT", "normal": "Alert", "info": "FYI"},
}


def visible_to(principal: Principal, *, store_id: str, area_id: str | None) -> bool:
    if principal.role == "cx_admin":
        return True
    if principal.role == "area_manager" and area_id is not None and area_id == principal.area_id:
        return True
    return store_id in principal.store_ids


#: The columns of a `Candidate`, in its order.
_STAFF_COLUMNS = (Staff.id, Staff.name, Staff.role, Staff.area_id, Staff.language)


class Candidate(NamedTuple):
    """A staff member routing may page, as routing reads it: routing runs for every alert, and
    a transient ORM `Staff` per candidate cost ~7 µs each (a store's whole staff list)."""

    id: str
    name: str
    role: str
    area_id: str | None
    language: str


def _climb(candidates: list[Candidate], wanted: list[str], eligible: set[str] | None) -> list[Candidate]:
    """The wanted roles among `candidates`, else each next level up the role ladder."""
    wanted_levels = sorted({ROLE_LEVEL.get(r, 1) for r in wanted}) or [2]
    level = wanted_levels[0]
    while level <= ROLE_LEVEL["area_manager"]:
        roles_now = {r for r in wanted if ROLE_LEVEL.get(r, 1) >= level} or {
            r for r, lv in ROLE_LEVEL.items() if lv == level
        }
        chosen = [s for s in candidates if s.role in roles_now and (eligible is None or s.id in eligible)]
        if chosen:
            return chosen
        level += 1
        wanted = [r for r, lv in ROLE_LEVEL.items() if lv == level]
    return []


async def on_duty_ids(
    session: AsyncSession, *, staff: list[Staff], timezone: str | None, now: float
) -> set[str]:
    ids = [s.id for s in staff]
    if not ids:
        return set()
    shifts: dict[str, list[Shift]] = {}
    for shift in await session.scalars(select(Shift).where(Shift.staff_id.in_(ids))):
        shifts.setdefault(shift.staff_id, []).append(shift)
    overrides: dict[str, list[ShiftOverride]] = {}
    for override in await session.scalars(select(ShiftOverride).where(ShiftOverride.staff_id.in_(ids))):
        overrides.setdefault(override.staff_id, []).append(override)
    return {
        sid
        for sid in ids
        if duty.on_duty(
            shifts=shifts.get(sid, []), overrides=overrides.get(sid, []), timezone=timezone, now=now
        )
    }


async def store_staff(session: AsyncSession, *, store: Store) -> list[Staff]:
    """Active staff who work at the store, plus the area managers of its area (by index)."""
    works_here = Staff.id.in_(select(StaffStore.staff_id).where(StaffStore.store_id == store.id))
    area_manager = (Staff.role == "area_manager") & (Staff.area_id == store.area_id)
    scope = or_(works_here, area_manager) if store.area_id else works_here
    return list(await session.scalars(select(Staff).where(Staff.active.is_(True), scope).order_by(Staff.id)))


async def staff_for_roles(
    session: AsyncSession, *, store: Store, wanted: list[str], now: float | None = None
) -> list[Candidate]:
    """Staff on duty now with one of `wanted` roles at the store (area managers: in its area).

    When nobody with those roles is on duty, the next level up is asked, up to area managers.
    When nobody at any level is on duty, the same ladder ignoring shifts, so that an alert is
    never left without an owner.
    """
    now = now or time.time()
    candidates, shifts, overrides = await session.run_sync(
        lambda s: _routing_rows(Reader.of(s.connection()), store_id=store.id, area_id=store.area_id)
    )
    present = {
        c.id
        for c in candidates
        if duty.on_duty(
            shifts=shifts.get(c.id, []), overrides=overrides.get(c.id, []), timezone=store.timezone, now=now
        )
    }
    return _climb(candidates, list(wanted), present) or _climb(candidates, list(wanted), None)


# Routing runs for every alert: the same reads as `store_staff` and `on_duty_ids`, as prepared
# statements in one hop. The staff come back as `Candidate` tuples, the shifts and overrides as
# transient (never added) objects; an area_id of NULL matches no area manager, as in
# `store_staff`.
_CANDIDATE_IDS = select(Staff.id).where(
    Staff.active.is_(True),
    or_(
        Staff.id.in_(select(StaffStore.staff_id).where(StaffStore.store_id == bindparam("store_id"))),
        (Staff.role == "area_manager") & (Staff.area_id == bindparam("area_id")),
    ),
)
_CANDIDATES = Prepared(select(*_STAFF_COLUMNS).where(Staff.id.in_(_CANDIDATE_IDS)).order_by(Staff.id))
_CANDIDATE_SHIFTS = Prepared(
    select(Shift.id, Shift.staff_id, Shift.weekday, Shift.starts, Shift.ends).where(
        Shift.staff_id.in_(_CANDIDATE_IDS)
    )
)
_CANDIDATE_OVERRIDES = Prepared(
    select(
        ShiftOverride.id,
        ShiftOverride.staff_id,
        ShiftOverride.starts_on,
        ShiftOverride.ends_on,
        ShiftOverride.on_duty,
        ShiftOverride.created_at,
    ).where(ShiftOverride.staff_id.in_(_CANDIDATE_IDS))
)


def _routing_rows(
    reader: Reader, *, store_id: str, area_id: str | None
) -> tuple[list[Candidate], dict[str, list[Shift]], dict[str, list[ShiftOverride]]]:
    where = {"store_id": store_id, "area_id": area_id}
    candidates = [Candidate(*row) for row in reader.all(_CANDIDATES, where)]
    shifts: dict[str, list[Shift]] = {}
    for row in reader.all(_CANDIDATE_SHIFTS, where):
        shifts.setdefault(row.staff_id, []).append(Shift(**row._asdict()))
    overrides: dict[str, list[ShiftOverride]] = {}
    for row in reader.all(_CANDIDATE_OVERRIDES, where):
        overrides.setdefault(row.staff_id, []).append(ShiftOverride(**row._asdict()))
    return candidates, shifts, overrides


def mask_text(text: str, limit: int = 120) -> str:
    """A lock-screen-safe excerpt: digits runs (phone numbers, cards) and e-mails masked."""
    import re

    text = re.sub(r"[\w.+-]+@[\w-]+\.[\w.]+", "***@***", text)
    text = re.sub(r"\d[\d\- ]{6,}\d", lambda m: "***" + m.group(0)[-4:], text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def compose(
    *,
    store: Store,
    feedback: dict[str, Any],
    context: dict[str, Any],
    plan: dict[str, Any],
    language: str,
) -> tuple[str, str]:
    """(title, body) for the push: masked PII only."""
    lang = language if language in ("ko", "en") else "en"
    tag = PRIORITY_LABEL[lang].get(plan.get("priority", "normal"), "")
    title = f"[{tag}] {label(feedback['category'], lang)} · {store.name}"
    who = []
    if context.get("known"):
        who.append(context.get("masked_name") or ("고객" if lang == "ko" else "Customer"))
        if context.get("tier"):
            who.append(str(context["tier"]).upper())
        repeat = (context.get("signals") or {}).get("repeat_counts", {}).get(feedback["category"], 0)
        if repeat >= 2:
            who.append(f"반복 {repeat}회" if lang == "ko" else f"repeat x{repeat}")
    else:
        who.append("비회원" if lang == "ko" else "Anonymous")
    excerpt = mask_text(feedback.get("text") or "")
    ratings = feedback.get("ratings") or {}
    score = f" CSAT {ratings['csat']}" if ratings.get("csat") is not None else ""
    body = f"{' · '.join(who)}{score} — {excerpt}" if excerpt else f"{' · '.join(who)}{score}"
    return title, body


def _more(updates: int, language: str) -> str:
    return f"추가 {updates}건" if language == "ko" else f"+{updates} more"


def push_text(alert: Alert, *, store: Store | None, language: str) -> tuple[str, str]:
    """The push's (title, body) in one recipient's language. The alert row keeps the store's
    language for the inbox; each phone's lock screen speaks its owner's (ko or en)."""
    lang = language if language in ("ko", "en") else "en"
    latest = dict(alert.feedback or {})
    if alert.updates and alert.related_feedback:
        latest.update(alert.related_feedback[-1])  # the body quotes the newest complaint
    title, body = compose(
        store=store or Store(id=alert.store_id, name=alert.store_id),
        feedback=latest,
        context=alert.context or {},
        plan={**(alert.plan or {}), "priority": alert.priority},
        language=lang,
    )
    if alert.updates:
        title = f"{title} ({_more(alert.updates, lang)})"
    return title, body


@dataclass(frozen=True)
class NewAlert:
    alert: Alert
    recipients: list[Candidate]
    deliveries: int
    # True when the feedback was merged into an open alert instead of creating one.
    merged: bool = False


PRIORITY_RANK = {"info": 0, "normal": 1, "urgent": 2}
DEFAULT_DEDUPE_WINDOW_SECONDS = 1800.0


def hold_until(store: Store, *, priority: str, now: float) -> float | None:
    """Non-urgent pushes wait for the end of the store's quiet hours; urgent ones never wait."""
    if priority == "urgent":
        return None
    return duty.quiet_until(
        quiet_start=store.quiet_start, quiet_end=store.quiet_end, timezone=store.timezone, now=now
    )


_ALERT_OF_FEEDBACK = Prepared(select(Alert.id).where(Alert.feedback_id == bindparam("feedback_id")))
_OPEN_ALERT = Prepared(
    select(Alert.id)
    .where(
        Alert.customer_id == bindparam("customer_id"),
        Alert.store_id == bindparam("store_id"),
        Alert.category == bindparam("category"),
        Alert.status != "resolved",
        or_(Alert.created_at >= bindparam("since"), Alert.updated_at >= bindparam("since")),
    )
    .order_by(Alert.created_at.desc())
    .limit(1)
)
_REPEAT_LOCK = Prepared(
    lambda dialect: select(func.pg_advisory_xact_lock(func.hashtextextended(bindparam("key"), 0)))
)


def _existing_and_open(
    reader: Reader, *, feedback_id: str, dedupe_key: tuple[str, str, str, float] | None
) -> tuple[bool, str | None]:
    """(this feedback already has its alert, the newest unresolved alert for this customer,
    store and category active since `since`, which a repeat complaint folds into) in one hop."""
    if reader.scalar(_ALERT_OF_FEEDBACK, {"feedback_id": feedback_id}) is not None:
        return True, None
    if dedupe_key is None:
        return False, None
    customer_id, store_id, category, since = dedupe_key
    if reader.dialect.name == "postgresql":
        # Two complaints of one customer about one category at one store, consumed at the same
        # instant by two tasks or replicas, must make one alert: the second waits here until
        # the first commits, then finds its alert. (SQLite writers are serialized.)
        reader.all(_REPEAT_LOCK, {"key": f"alert:{customer_id}:{store_id}:{category}"})
    found = reader.scalar(
        _OPEN_ALERT, {"customer_id": customer_id, "store_id": store_id, "category": category, "since": since}
    )
    return False, found


class OpenAlertFound(Exception):
    """`new_alert_sync` found the open alert a repeat complaint folds into (the caller passes
    `merge` to fold it in the same hop, or runs `create_alert` on an ORM session), or
    `merge_feedback_sync` could not fold it (its alert vanished or changed meanwhile: the caller
    runs `create_alert`, which reads it afresh). `args[0]`: the alert id."""


def _routing_sync(reader: Reader, *, store: Store, wanted: list[str], now: float) -> list[Candidate]:
    """`staff_for_roles` on a `Reader`."""
    candidates, shifts, overrides = _routing_rows(reader, store_id=store.id, area_id=store.area_id)
    present = {
        c.id
        for c in candidates
        if duty.on_duty(
            shifts=shifts.get(c.id, []), overrides=overrides.get(c.id, []), timezone=store.timezone, now=now
        )
    }
    return _climb(candidates, wanted, present) or _climb(candidates, wanted, None)


def new_alert_sync(
    reader: Reader,
    *,
    feedback: dict[str, Any],
    store: Store,
    context: dict[str, Any],
    plan: dict[str, Any],
    degraded: list[str],
    language: str,
    now: float,
    dedupe_window: float = DEFAULT_DEDUPE_WINDOW_SECONDS,
    traceparent: str | None = None,
    merge: bool = False,
) -> NewAlert | None:
    """A new alert, its recipients, deliveries, escalation timers and event, by prepared
    statements in the caller's transaction. None when this feedback already has an alert. A
    repeat complaint to fold into an open alert raises `OpenAlertFound`, or with `merge` is
    folded in here by `merge_feedback_sync` (under the repeat lock on PostgreSQL), which raises
    `OpenAlertFound` only when that needs the ORM path (`create_alert`)."""
    customer_id = context.get("customer_id")
    existing, open_alert_id = _existing_and_open(
        reader,
        feedback_id=feedback["id"],
        dedupe_key=(customer_id, store.id, feedback["category"], now - dedupe_window)
        if customer_id and dedupe_window > 0
        else None,
    )
    if existing:
        return None
    if open_alert_id is not None:
        if not merge:
            raise OpenAlertFound(open_alert_id)
        return merge_feedback_sync(
            reader,
            alert_id=open_alert_id,
            feedback=feedback,
            store=store,
            context=context,
            plan=plan,
            language=language,
            now=now,
        )
    recipients = _routing_sync(
        reader, store=store, wanted=list(plan.get("notify_roles") or ["shift_lead"]), now=now
    )
    title, body = compose(store=store, feedback=feedback, context=context, plan=plan, language=language)
    # A transient object: the rows below are written by prepared statements (a new alert is
    # the hot path), and the caller reads the alert from this object.
    alert = Alert(
        id=uuid7(),
        feedback_id=feedback["id"],
        store_id=store.id,
        area_id=store.area_id,
        customer_id=customer_id,
        category=feedback["category"],
        priority=plan.get("priority", "normal"),
        status="open",
        title=title,
        body=body,
        feedback=feedback,
        context=context,
        plan=plan,
        degraded=degraded,
        escalation_level=0,
        created_at=now,
        traceparent=traceparent,
        related_feedback=[],
        updates=0,
    )
    # Escalation counts from when the first page can go out: quiet hours shift the whole chain.
    held = hold_until(store, priority=alert.priority, now=now)
    start = held or now
    sla = plan.get("sla") or {}
    timers = [
        _timer_row(
            alert.id,
            "ack",
            level,
            list(step.get("roles") or []),
            start + float(step.get("after_seconds") or 0),
        )
        for level, step in enumerate(plan.get("escalation") or [], start=1)
    ]
    if sla.get("resolve_seconds"):
        timers.append(
            _timer_row(alert.id, "resolve", 0, ["store_manager"], start + float(sla["resolve_seconds"]))
        )
    event = outbox_rows(
        [_alert_created(alert=alert, feedback_id=alert.feedback_id, recipients=recipients, now=now)]
    )
    deliveries = _insert_new_alert(
        reader,
        alert=alert,
        staff_ids=[r.id for r in recipients],
        timers=timers,
        held=held,
        now=now,
        event=event,
    )
    return NewAlert(alert, recipients, deliveries)


async def create_alert(
    session: AsyncSession,
    *,
    feedback: dict[str, Any],
    store: Store,
    context: dict[str, Any],
    plan: dict[str, Any],
    degraded: list[str],
    language: str,
    now: float | None = None,
    dedupe_window: float = DEFAULT_DEDUPE_WINDOW_SECONDS,
    traceparent: str | None = None,
) -> NewAlert | None:
    """Alert + recipients + deliveries + escalation timers + event, in one transaction.

    A second complaint from the same customer about the same category at the same store
    within `dedupe_window` seconds updates that open alert instead (see `merge_feedback`).
    None when this feedback already has an alert (redelivered event).
    """
    now = now or time.time()

    async def new_alert(window: float) -> NewAlert | None:
        found: NewAlert | None = await session.run_sync(
            lambda s: new_alert_sync(
                Reader.of(s.connection()),
                feedback=feedback,
                store=store,
                context=context,
                plan=plan,
                degraded=degraded,
                language=language,
                now=now,
                dedupe_window=window,
                traceparent=traceparent,
            )
        )
        return found

    try:
        created = await new_alert(dedupe_window)
    except OpenAlertFound as found:
        open_alert = await session.get(Alert, found.args[0])
        if open_alert is None:
            created = await new_alert(0)  # gone meanwhile: a new alert after all
        else:
            return await merge_feedback(
                session,
                alert=open_alert,
                feedback=feedback,
                store=store,
                context=context,
                plan=plan,
                language=language,
                now=now,
            )
    if created is not None:
        on_commit(session, wake_relays)
    return created


_ALERT_INSERT = Prepared(insert(Alert))
_RECIPIENT_INSERT = Prepared(insert(AlertRecipient))
_DELIVERY_INSERT = Prepared(insert(Delivery))
_TIMER_INSERT = Prepared(insert(EscalationTimer))
# The devices of a new alert's recipients (just inserted): a join instead of an IN list.
_RECIPIENT_DEVICES = Prepared(
    select(Device.id, Device.staff_id)
    .join(AlertRecipient, AlertRecipient.staff_id == Device.staff_id)
    .where(AlertRecipient.alert_id == bindparam("alert_id"))
    .order_by(Device.staff_id, Device.id)
)


def _timer_row(alert_id: str, kind: str, level: int, roles: list[str], fire_at: float) -> dict[str, Any]:
    return {
        "id": uuid7(),
        "alert_id": alert_id,
        "kind": kind,
        "level": level,
        "roles": roles,
        "fire_at": fire_at,
        "status": "pending",
    }


def _delivery_rows(
    alert_id: str, devices: list[Any], *, level: int, held: float | None, now: float
) -> list[dict[str, Any]]:
    """One pending push per device (rows with `id` and `staff_id`), as `_add_recipients` adds."""
    return [
        {
            "id": uuid7(),
            "alert_id": alert_id,
            "device_id": device.id,
            "staff_id": device.staff_id,
            "level": level,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": held or now,
            "created_at": now,
            "accepted_at": None,
            "shown_at": None,
            "opened_at": None,
            "last_error": None,
            "held_until": held,
        }
        for device in devices
    ]


def _insert_new_alert(
    reader: Reader,
    *,
    alert: Alert,
    staff_ids: list[str],
    timers: list[dict[str, Any]],
    held: float | None,
    now: float,
    event: list[dict[str, Any]],
) -> int:
    """The alert, its recipients, one delivery per recipient device, its timers and its event;
    returns the number of deliveries."""
    _ALERT_INSERT.execute(reader, {c.key: getattr(alert, c.key) for c in Alert.__table__.columns})
    devices = []
    if staff_ids:
        _RECIPIENT_INSERT.execute_many(
            reader,
            [
                {"alert_id": alert.id, "staff_id": sid, "level": 0, "added_at": now}
                for sid in dict.fromkeys(staff_ids)
            ],
        )
        devices = reader.all(_RECIPIENT_DEVICES, {"alert_id": alert.id})
    if devices:
        _DELIVERY_INSERT.execute_many(reader, _delivery_rows(alert.id, devices, level=0, held=held, now=now))
    if timers:
        _TIMER_INSERT.execute_many(reader, timers)
    insert_outbox_rows(reader, outbox_table, event)
    return len(devices)


def _alert_created(
    *, alert: Alert, feedback_id: str, recipients: list[Candidate], now: float, event_id: str | None = None
) -> tuple[str, events_pb2.AlertCreated, str | None]:
    return (
        "voc.alert.created",
        events_pb2.AlertCreated(
            alert_id=alert.id,
            feedback_id=feedback_id,
            store_id=alert.store_id,
            customer_id=alert.customer_id or "",
            priority=alert.priority,
            playbook_id=str(alert.plan.get("playbook_id", "")),
            playbook_version=int(alert.plan.get("version") or 0),
            recipient_staff_ids=[s.id for s in recipients],
            created_at_ms=int(now * 1000),
            degraded=list(alert.degraded or []),
        ),
        event_id,
    )


async def _alert_created_event(
    session: AsyncSession,
    *,
    alert: Alert,
    feedback_id: str,
    recipients: list[Candidate],
    now: float,
    event_id: str | None = None,
) -> None:
    subject, message, event_id = _alert_created(
        alert=alert, feedback_id=feedback_id, recipients=recipients, now=now, event_id=event_id
    )
    await add_event(session, outbox_table, subject=subject, message=message, event_id=event_id)


async def merge_feedback(
    session: AsyncSession,
    *,
    alert: Alert,
    feedback: dict[str, Any],
    store: Store,
    context: dict[str, Any],
    plan: dict[str, Any],
    language: str,
    now: float,
) -> NewAlert | None:
    """Fold a repeat complaint into its open alert and re-push it under the same Topic.

    The people already working the alert are told again (only the acknowledger once it is
    acknowledged), their unsent pushes are superseded, and `voc.alert.created` is published for
    the new feedback with the existing alert id, so its case moves to `alerted` too.
    """
    related = list(alert.related_feedback or [])
    if any(item.get("id") == feedback["id"] for item in related):
        return None
    related.append(
        {
            "id": feedback["id"],
            "text": feedback.get("text") or "",
            "channel": feedback.get("channel"),
            "severity": feedback.get("severity"),
            "ratings": feedback.get("ratings") or {},
            "received_at_ms": feedback.get("received_at_ms"),
        }
    )
    alert.related_feedback = related  # a new list, so the JSON column is seen as changed
    alert.updates = (alert.updates or 0) + 1
    alert.updated_at = now
    if PRIORITY_RANK.get(plan.get("priority", "normal"), 1) > PRIORITY_RANK.get(alert.priority, 1):
        alert.priority = plan.get("priority", alert.priority)
    if context.get("known"):
        alert.context = context  # fresher signals: the repeat now counts
    # The repeat usually changes the plan (repeat-issue playbooks); staff follow the latest one.
    alert.plan = plan
    title, body = compose(store=store, feedback=feedback, context=alert.context, plan=plan, language=language)
    alert.title, alert.body = f"{title} ({_more(alert.updates, language)})", body
    if alert.status == "open":
        staff_ids = list(
            await session.scalars(select(AlertRecipient.staff_id).where(AlertRecipient.alert_id == alert.id))
        )
    else:
        staff_ids = [alert.acknowledged_by] if alert.acknowledged_by else []
    staff = (
        [
            Candidate(*row)
            for row in await session.execute(select(*_STAFF_COLUMNS).where(Staff.id.in_(staff_ids)))
        ]
        if staff_ids
        else []
    )
    await session.execute(
        update(Delivery)
        .where(Delivery.alert_id == alert.id, Delivery.status == "pending", Delivery.attempts == 0)
        .values(status="cancelled", last_error="superseded by an update")
    )
    deliveries = await _add_recipients(
        session, alert=alert, staff=staff, level=alert.escalation_level, now=now, store=store
    )
    await _alert_created_event(
        session,
        alert=alert,
        feedback_id=feedback["id"],
        recipients=staff,
        now=now,
        event_id=f"merged:{feedback['id']}",  # ≤ 64 chars: processed_events.event_id
    )
    return NewAlert(alert, staff, deliveries, merged=True)


# `merge_feedback` by prepared statements: a repeat complaint is 13 % of events in the benchmark,
# and its ORM session cost 2.5 times a new alert's CPU.
_MERGE_ALERT = Prepared(
    select(
        Alert.id,
        Alert.feedback_id,
        Alert.store_id,
        Alert.area_id,
        Alert.customer_id,
        Alert.category,
        Alert.priority,
        Alert.status,
        Alert.context,
        Alert.degraded,
        Alert.escalation_level,
        Alert.created_at,
        Alert.acknowledged_at,
        Alert.acknowledged_by,
        Alert.resolved_at,
        Alert.related_feedback,
        Alert.updates,
    ).where(Alert.id == bindparam("alert_id"))
)
# Guarded by the values the merge was computed from: an acknowledgement, escalation or merge
# committed after the read (PostgreSQL, READ COMMITTED) makes it match no row.
_MERGE_UPDATE = Prepared(
    update(Alert).where(
        Alert.id == bindparam("alert_id"),
        Alert.updates == bindparam("seen_updates"),
        Alert.status == bindparam("seen_status"),
        Alert.escalation_level == bindparam("seen_level"),
    )
)
_ALERT_STAFF = Prepared(
    select(*_STAFF_COLUMNS)
    .join(AlertRecipient, AlertRecipient.staff_id == Staff.id)
    .where(AlertRecipient.alert_id == bindparam("alert_id"))
    .order_by(Staff.id)
)
_ONE_STAFF = Prepared(select(*_STAFF_COLUMNS).where(Staff.id == bindparam("staff_id")))
_STAFF_DEVICES = Prepared(
    select(Device.id, Device.staff_id).where(Device.staff_id == bindparam("staff_id")).order_by(Device.id)
)
_SUPERSEDE = Prepared(
    update(Delivery).where(
        Delivery.alert_id == bindparam("of_alert"), Delivery.status == "pending", Delivery.attempts == 0
    )
)
# Already a recipient: nothing (`_add_recipients` adds only those not on the alert).
_RECIPIENT_ADD = Prepared(lambda dialect: insert_ignore(dialect, Base.metadata.tables["alert_recipients"]))


def merge_feedback_sync(
    reader: Reader,
    *,
    alert_id: str,
    feedback: dict[str, Any],
    store: Store,
    context: dict[str, Any],
    plan: dict[str, Any],
    language: str,
    now: float,
) -> NewAlert | None:
    """`merge_feedback` into the alert `alert_id` by prepared statements, in the caller's
    transaction, writing in the same order (the alert row, then the superseded deliveries, then
    the new rows: the same locks on PostgreSQL). None when the feedback is already merged. Raises
    `OpenAlertFound` when the alert vanished or changed since it was read: nothing is written
    then, and the caller rolls back and runs `create_alert`. The alert returned is transient:
    the columns read or written here (not `feedback`, `traceparent`, the resolution)."""
    row = reader.first(_MERGE_ALERT, {"alert_id": alert_id})
    if row is None:
        raise OpenAlertFound(alert_id)
    related = list(row.related_feedback or [])
    if any(item.get("id") == feedback["id"] for item in related):
        return None
    related.append(
        {
            "id": feedback["id"],
            "text": feedback.get("text") or "",
            "channel": feedback.get("channel"),
            "severity": feedback.get("severity"),
            "ratings": feedback.get("ratings") or {},
            "received_at_ms": feedback.get("received_at_ms"),
        }
    )
    updates = (row.updates or 0) + 1
    priority = row.priority
    if PRIORITY_RANK.get(plan.get("priority", "normal"), 1) > PRIORITY_RANK.get(priority, 1):
        priority = plan.get("priority", priority)
    change: dict[str, Any] = {
        "related_feedback": related,
        "updates": updates,
        "updated_at": now,
        "priority": priority,
        "plan": plan,
    }
    if context.get("known"):
        change["context"] = context
    title, body = compose(
        store=store,
        feedback=feedback,
        context=change.get("context", row.context),
        plan=plan,
        language=language,
    )
    change["title"], change["body"] = f"{title} ({_more(updates, language)})", body
    seen = {
        "alert_id": alert_id,
        "seen_updates": row.updates,
        "seen_status": row.status,
        "seen_level": row.escalation_level,
    }
    if not _MERGE_UPDATE.execute(reader, {**change, **seen}):
        raise OpenAlertFound(alert_id)
    alert = Alert(**{**row._asdict(), **change})
    level = row.escalation_level
    if row.status == "open":
        staff = [Candidate(*r) for r in reader.all(_ALERT_STAFF, {"alert_id": alert_id})]
    elif row.acknowledged_by:
        staff = [Candidate(*r) for r in reader.all(_ONE_STAFF, {"staff_id": row.acknowledged_by})]
    else:
        staff = []
    _SUPERSEDE.execute(
        reader, {"status": "cancelled", "last_error": "superseded by an update", "of_alert": alert_id}
    )
    devices: list[Any] = []
    if staff and row.status == "open":
        # The devices of `staff`: a device's staff row exists (foreign key), a recipient's may not.
        devices = reader.all(_RECIPIENT_DEVICES, {"alert_id": alert_id})
    elif staff:
        _RECIPIENT_ADD.execute(
            reader, {"alert_id": alert_id, "staff_id": staff[0].id, "level": level, "added_at": now}
        )
        devices = reader.all(_STAFF_DEVICES, {"staff_id": staff[0].id})
    if devices:
        held = hold_until(store, priority=priority, now=now)
        _DELIVERY_INSERT.execute_many(
            reader, _delivery_rows(alert_id, devices, level=level, held=held, now=now)
        )
    event = _alert_created(
        alert=alert,
        feedback_id=feedback["id"],
        recipients=staff,
        now=now,
        event_id=f"merged:{feedback['id']}",  # ≤ 64 chars: processed_events.event_id
    )
    insert_outbox_rows(reader, outbox_table, outbox_rows([event]))
    return NewAlert(alert, staff, len(devices), merged=True)


async def _add_recipients(
    session: AsyncSession,
    *,
    alert: Alert,
    staff: list[Candidate],
    level: int,
    now: float,
    store: Store | None,
) -> int:
    if not staff:
        return 0
    already = set(
        await session.scalars(select(AlertRecipient.staff_id).where(AlertRecipient.alert_id == alert.id))
    )
    fresh = [s for s in staff if s.id not in already]
    for s in fresh:
        session.add(AlertRecipient(alert_id=alert.id, staff_id=s.id, level=level, added_at=now))
    held = hold_until(store, priority=alert.priority, now=now) if store is not None else None
    devices = list(await session.scalars(select(Device).where(Device.staff_id.in_([s.id for s in staff]))))
    for device in devices:
        session.add(
            Delivery(
                id=uuid7(),
                alert_id=alert.id,
                device_id=device.id,
                staff_id=device.staff_id,
                level=level,
                status="pending",
                attempts=0,
                next_attempt_at=held or now,
                held_until=held,
                created_at=now,
            )
        )
    await session.flush()
    return len(devices)


async def escalate(
    session: AsyncSession, *, timer: EscalationTimer, now: float
) -> tuple[Alert, list[Candidate]] | None:
    """Fire one due timer: page the next roles, or tell the manager the resolve SLA passed."""
    alert = await session.get(Alert, timer.alert_id)
    timer.status = "fired"
    if alert is None:
        return None
    if timer.kind == "ack" and alert.status != "open":
        timer.status = "cancelled"
        return None
    if timer.kind == "resolve" and alert.status == "resolved":
        timer.status = "cancelled"
        return None
    store = await session.get(Store, alert.store_id)
    if store is None:
        return None
    staff = await staff_for_roles(session, store=store, wanted=list(timer.roles), now=now)
    if timer.kind == "ack":
        alert.escalation_level = max(alert.escalation_level, timer.level)
    await _add_recipients(session, alert=alert, staff=staff, level=timer.level, now=now, store=store)
    await add_event(
        session,
        outbox_table,
        subject="voc.alert.escalated",
        message=events_pb2.AlertEscalated(
            alert_id=alert.id,
            feedback_id=alert.feedback_id,
            level=timer.level if timer.kind == "ack" else -1,
            roles=list(timer.roles),
            recipient_staff_ids=[s.id for s in staff],
            escalated_at_ms=int(now * 1000),
        ),
        event_id=f"escalated:{timer.id}",
    )
    return alert, staff


async def acknowledge(
    session: AsyncSession, *, alert: Alert, principal: Principal, now: float | None = None
) -> Alert:
    now = now or time.time()
    if alert.status != "open":
        raise Problem(409, f"The alert is already {alert.status}.", acknowledged_by=alert.acknowledged_by)
    alert.status = "acknowledged"
    alert.acknowledged_at = now
    alert.acknowledged_by = principal.staff_id
    # Stop paging at once: pending ack timers and unsent pushes are cancelled.
    await session.execute(
        update(EscalationTimer)
        .where(
            EscalationTimer.alert_id == alert.id,
            EscalationTimer.kind == "ack",
            EscalationTimer.status == "pending",
        )
        .values(status="cancelled")
    )
    await session.execute(
        update(Delivery)
        .where(Delivery.alert_id == alert.id, Delivery.status == "pending", Delivery.attempts == 0)
        .values(status="cancelled")
    )
    for feedback_id in feedback_ids(alert):
        await add_event(
            session,
            outbox_table,
            subject="voc.alert.acknowledged",
            message=events_pb2.AlertAcknowledged(
                alert_id=alert.id,
                feedback_id=feedback_id,
                staff_id=principal.staff_id,
                acknowledged_at_ms=int(now * 1000),
            ),
        )
    return alert


async def resolve(
    session: AsyncSession,
    *,
    alert: Alert,
    principal: Principal,
    outcome: str,
    note: str,
    now: float | None = None,
) -> Alert:
    now = now or time.time()
    if alert.status == "resolved":
        raise Problem(409, "The alert is already resolved.")
    if alert.status == "open":
        # Resolving implies acknowledging; record both so the loop KPIs stay honest.
        await acknowledge(session, alert=alert, principal=principal, now=now)
    alert.status = "resolved"
    alert.resolved_at = now
    alert.resolved_by = principal.staff_id
    alert.outcome = outcome
    alert.note = note
    await session.execute(
        update(EscalationTimer)
        .where(EscalationTimer.alert_id == alert.id, EscalationTimer.status == "pending")
        .values(status="cancelled")
    )
    for feedback_id in feedback_ids(alert):
        await add_event(
            session,
            outbox_table,
            subject="voc.alert.resolved",
            message=events_pb2.AlertResolved(
                alert_id=alert.id,
                feedback_id=feedback_id,
                staff_id=principal.staff_id,
                outcome=outcome,
                note=note,
                resolved_at_ms=int(now * 1000),
            ),
        )
    return alert


def feedback_ids(alert: Alert) -> list[str]:
    """Every feedback item this alert answers: its own and the merged repeats (each has a case)."""
    return [alert.feedback_id, *(str(item["id"]) for item in alert.related_feedback or [])]


def delivery_receipt(delivery: Delivery, alert: Alert) -> dict[str, Any]:
    acknowledged = alert.acknowledged_at if alert.acknowledged_by == delivery.staff_id else None
    return {
        "id": delivery.id,
        "staff_id": delivery.staff_id,
        "device_id": delivery.device_id,
        "level": delivery.level,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "created_at": delivery.created_at,
        "held_until": delivery.held_until,
        "accepted_at": delivery.accepted_at,
        "shown_at": delivery.shown_at,
        "opened_at": delivery.opened_at,
        "acknowledged_at": acknowledged,
        "last_error": delivery.last_error,
    }


def endpoint_hash(endpoint: str) -> str:
    return hashlib.sha256(endpoint.encode()).hexdigest()


def alert_summary(alert: Alert) -> dict[str, Any]:
    return {
        "id": alert.id,
        "feedback_id": alert.feedback_id,
        "store_id": alert.store_id,
        "category": alert.category,
        "priority": alert.priority,
        "status": alert.status,
        "title": alert.title,
        "body": alert.body,
        "created_at": alert.created_at,
        "acknowledged_at": alert.acknowledged_at,
        "resolved_at": alert.resolved_at,
        "escalation_level": alert.escalation_level,
        "updates": alert.updates or 0,
        "updated_at": alert.updated_at,
    }


def alert_detail(alert: Alert) -> dict[str, Any]:
    return {
        **alert_summary(alert),
        "feedback": alert.feedback,
        "customer": alert.context,
        "plan": alert.plan,
        "degraded": alert.degraded,
        "acknowledged_by": alert.acknowledged_by,
        "resolved_by": alert.resolved_by,
        "outcome": alert.outcome,
        "note": alert.note,
        "related_feedback": alert.related_feedback or [],
    }
