"""The write rules of alerts: a new alert, and a repeat complaint folded into its open alert.

Each has one implementation, by prepared statements (`voc_platform.dbsync`) in the caller's
transaction: a new alert is the hot path, and a repeat complaint is one event in eight. When
the open alert a repeat folds into vanished or changed meanwhile (PostgreSQL, READ COMMITTED),
nothing is written and `write_alert` runs the same hop again in a fresh transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import ColumnElement, Select, bindparam, func, insert, or_, select, update

from voc.events.v1 import events_pb2
from voc_notify.facts import AlertInput, CustomerContext, Plan
from voc_notify.masking import compose, more
from voc_notify.models import (
    Alert,
    AlertRecipient,
    Base,
    Delivery,
    Device,
    EscalationTimer,
    Staff,
    Store,
)
from voc_notify.publishing import Event, publish_sync
from voc_notify.redaction import ERASED_CONTEXT, redact_alert
from voc_notify.routing import STAFF_COLUMNS, Candidate, hold_until, route_sync, with_department
from voc_platform import dbsync
from voc_platform.db import Database
from voc_platform.dbsync import Prepared, Reader, insert_ignore
from voc_platform.ids import uuid7
from voc_platform.masking import mask_inserted_names
from voc_platform.taxonomy import FYI_PRIORITY

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")

PRIORITY_RANK = {"info": 0, "normal": 1, "urgent": 2}
DEFAULT_DEDUPE_WINDOW_SECONDS = 1800.0
#: Hops tried when the open alert keeps changing under a repeat complaint (then the event is
#: redelivered).
WRITE_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class NewAlert:
    """What one hop made: the alert (transient: the columns written or read here), the staff
    paged and how many pushes were queued."""

    alert: Alert
    recipients: list[Candidate]
    deliveries: int
    # True when the feedback was merged into an open alert instead of creating one.
    merged: bool = False


class OpenAlertChanged(Exception):
    """The open alert a repeat complaint folds into vanished or changed after it was read: the
    hop wrote nothing and is run again in a fresh transaction. `args[0]`: the alert id."""


async def write_alert(
    database: Database, hop: Callable[Concatenate[Reader, P], T], *args: P.args, **kwargs: P.kwargs
) -> T:
    """`hop` (which makes or folds an alert with `new_alert_sync`) in one `dbsync.write`; again in
    a fresh transaction, which reads the open alert afresh, when it raised `OpenAlertChanged`."""
    for attempt in range(1, WRITE_ATTEMPTS + 1):
        try:
            return await dbsync.write(database, hop, *args, **kwargs)
        except OpenAlertChanged as changed:
            if attempt == WRITE_ATTEMPTS:
                raise
            log.info("open alert %s changed under a repeat complaint; trying again", changed.args[0])
    raise AssertionError("unreachable")


_ALERT_OF_FEEDBACK = Prepared(select(Alert.id).where(Alert.feedback_id == bindparam("feedback_id")))


def newest_open_in_window(query: Select[Any], *where: ColumnElement[bool]) -> Select[Any]:
    """`query` narrowed to the newest alert of the store and category (bind parameters
    `store_id`, `category`) matching `where`, not resolved, and created or updated since `since`:
    the one a repeat complaint or a pattern's next item folds into."""
    return (
        query.where(
            *where,
            Alert.store_id == bindparam("store_id"),
            Alert.category == bindparam("category"),
            Alert.status != "resolved",
            or_(Alert.created_at >= bindparam("since"), Alert.updated_at >= bindparam("since")),
        )
        .order_by(Alert.created_at.desc())
        .limit(1)
    )


_OPEN_ALERT = Prepared(newest_open_in_window(select(Alert.id), Alert.customer_id == bindparam("customer_id")))
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


def new_alert_sync(
    reader: Reader,
    *,
    facts: AlertInput,
    now: float,
    dedupe_window: float = DEFAULT_DEDUPE_WINDOW_SECONDS,
    erased: bool = False,
) -> NewAlert | None:
    """A new alert, its recipients, deliveries, escalation timers and `voc.alert.created`, in the
    caller's transaction. A second complaint from the same customer about the same category at
    the same store within `dedupe_window` seconds is folded into that open alert instead
    (`merge_feedback_sync`, under the repeat lock on PostgreSQL). None when this feedback already
    has its alert (a redelivered event). `erased`: the customer was erased before this event
    arrived; the alert is made as their erasure leaves one (`redaction`), and folds into none."""
    store, customer, plan, feedback = facts.store, facts.customer, facts.plan, facts.feedback
    existing, open_alert_id = _existing_and_open(
        reader,
        feedback_id=feedback.id,
        dedupe_key=(customer.customer_id, store.id, feedback.category, now - dedupe_window)
        if customer.customer_id and dedupe_window > 0 and not erased
        else None,
    )
    if existing:
        return None
    if open_alert_id is not None:
        return merge_feedback_sync(reader, alert_id=open_alert_id, facts=facts, now=now)
    recipients = route_sync(reader, store=store, wanted=list(plan.notify_roles) or ["shift_lead"], now=now)
    recipients = with_department(reader, recipients, category=feedback.category)
    title, body = _text(facts, customer)
    # A transient object: the rows below are written by prepared statements, and the caller
    # reads the alert from this object.
    alert = Alert(
        id=uuid7(),
        kind="feedback",
        feedback_id=feedback.id,
        store_id=store.id,
        area_id=store.area_id,
        customer_id=customer.customer_id,
        category=feedback.category,
        priority=plan.priority,
        status="open",
        title=title,
        body=body,
        feedback=feedback.as_stored(),
        classification=feedback.classification(),
        context=customer.as_stored(),
        plan=plan.as_stored(),
        customer_name=customer.name[:100] or None,
        degraded=list(facts.degraded),
        escalation_level=0,
        created_at=now,
        traceparent=facts.traceparent,
        related_feedback=[],
        updates=0,
        items=None,
        dedupe_key=None,
        pushed_at=now,
    )
    if erased:
        # The plan was rendered before: its title in `voc.alert.created` loses the name too.
        plan = replace(plan, title=mask_inserted_names(plan.title, alert.customer_name))
        redact_alert(alert, store, context=ERASED_CONTEXT, now=now)
    deliveries = create_alert_sync(
        reader, alert=alert, plan=plan, store=store, recipients=recipients, now=now
    )
    return NewAlert(alert, recipients, deliveries)


def create_alert_sync(
    reader: Reader,
    *,
    alert: Alert,
    plan: Plan,
    store: Store,
    recipients: list[Candidate],
    now: float,
    escalate: bool = True,
) -> int:
    """Write a new alert of any kind (feedback, pattern, heads-up) with its recipients,
    deliveries, escalation timers (unless `escalate` is off) and `voc.alert.created`, in the
    caller's transaction; returns the number of deliveries."""
    # Escalation counts from when the first page can go out: quiet hours shift the whole chain.
    held = hold_until(store, priority=alert.priority, now=now)
    return insert_alert_rows(
        reader,
        alert=alert,
        staff_ids=[r.id for r in recipients],
        timers=timer_rows(alert.id, plan, start=held or now) if escalate else [],
        held=held,
        now=now,
        event=_alert_created(
            alert,
            plan,
            kind=alert.kind,
            feedback_id=alert.feedback_id or "",
            recipients=recipients,
            customer_name=alert.customer_name,
            now=now,
        ),
    )


def _text(facts: AlertInput, customer: CustomerContext) -> tuple[str, str]:
    """The alert's (title, body) in the store's language, quoting this feedback."""
    feedback = facts.feedback
    return compose(
        store_name=facts.store.name,
        category=feedback.category,
        priority=facts.plan.priority,
        customer=customer,
        text=feedback.quoted(),
        ratings=feedback.ratings,
        language=facts.language,
        reopened=bool(feedback.reopens_id),
    )


_ALERT_INSERT = Prepared(insert(Alert))
_RECIPIENT_INSERT = Prepared(insert(AlertRecipient))
_DELIVERY_INSERT = Prepared(insert(Delivery))
_TIMER_INSERT = Prepared(insert(EscalationTimer))
# The devices of an alert's recipients: a join instead of an IN list.
_RECIPIENT_DEVICES = Prepared(
    select(Device.id, Device.staff_id)
    .join(AlertRecipient, AlertRecipient.staff_id == Device.staff_id)
    .where(AlertRecipient.alert_id == bindparam("alert_id"))
    .order_by(Device.staff_id, Device.id)
)


def timer_rows(alert_id: str, plan: Plan, *, start: float) -> list[dict[str, Any]]:
    """An ack timer per escalation step, and the resolve SLA's timer (the store manager), except
    for an FYI plan (praise): nothing to put right, so no manager is paged to resolve it."""
    rows = [
        _timer_row(alert_id, "ack", level, list(step.roles), start + float(step.after_seconds or 0))
        for level, step in enumerate(plan.escalation, start=1)
    ]
    if plan.sla is not None and plan.sla.resolve_seconds and plan.priority != FYI_PRIORITY:
        rows.append(
            _timer_row(alert_id, "resolve", 0, ["store_manager"], start + float(plan.sla.resolve_seconds))
        )
    return rows


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


def delivery_rows(
    alert_id: str, devices: list[Any], *, level: int, held: float | None, now: float
) -> list[dict[str, Any]]:
    """One pending push per device (rows with `id` and `staff_id`)."""
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


def insert_alert_rows(
    reader: Reader,
    *,
    alert: Alert,
    staff_ids: list[str],
    timers: list[dict[str, Any]],
    held: float | None,
    now: float,
    event: Event,
) -> int:
    """The alert, its recipients, one delivery per recipient device, its timers and its event
    (with the webhook deliveries it makes); returns the number of deliveries."""
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
        _DELIVERY_INSERT.execute_many(reader, delivery_rows(alert.id, devices, level=0, held=held, now=now))
    if timers:
        _TIMER_INSERT.execute_many(reader, timers)
    publish_sync(reader, [event], now=now)
    return len(devices)


def _alert_created(
    alert: Alert,
    plan: Plan,
    *,
    kind: str,
    feedback_id: str,
    recipients: list[Candidate],
    customer_name: str | None,
    now: float,
    event_id: str | None = None,
) -> tuple[str, events_pb2.AlertCreated, str | None]:
    """`voc.alert.created`; `customer_name` is the name the plan was rendered with, masked in
    the title the event carries (a playbook's title may say `{customer.name}`)."""
    return (
        "voc.alert.created",
        events_pb2.AlertCreated(
            alert_id=alert.id,
            feedback_id=feedback_id,
            store_id=alert.store_id,
            customer_id=alert.customer_id or "",
            priority=alert.priority,
            playbook_id=plan.playbook_id,
            playbook_version=plan.version,
            recipient_staff_ids=[s.id for s in recipients],
            created_at_ms=int(now * 1000),
            degraded=list(alert.degraded or []),
            kind=kind,
            category=alert.category,
            playbook_title=mask_inserted_names(plan.title, customer_name),
            updates=alert.updates or 0,
        ),
        event_id,
    )


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
        Alert.classification,
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
    select(*STAFF_COLUMNS)
    .join(AlertRecipient, AlertRecipient.staff_id == Staff.id)
    .where(AlertRecipient.alert_id == bindparam("alert_id"))
    .order_by(Staff.id)
)
_ONE_STAFF = Prepared(select(*STAFF_COLUMNS).where(Staff.id == bindparam("staff_id")))
_STAFF_DEVICES = Prepared(
    select(Device.id, Device.staff_id).where(Device.staff_id == bindparam("staff_id")).order_by(Device.id)
)
_SUPERSEDE = Prepared(
    update(Delivery).where(
        Delivery.alert_id == bindparam("of_alert"), Delivery.status == "pending", Delivery.attempts == 0
    )
)
# Already a recipient: nothing (the level at which they were first paged stays).
_RECIPIENT_ADD = Prepared(lambda dialect: insert_ignore(dialect, Base.metadata.tables["alert_recipients"]))


def merge_feedback_sync(reader: Reader, *, alert_id: str, facts: AlertInput, now: float) -> NewAlert | None:
    """Fold a repeat complaint into its open alert `alert_id` and re-push it under the same Topic.

    The people already working the alert are told again (only the acknowledger once it is
    acknowledged), their unsent pushes are superseded, and `voc.alert.created` is published for
    the new feedback with the existing alert id, so its case moves to `alerted` too. None when
    the feedback is already merged. Raises `OpenAlertChanged`, having written nothing, when the
    alert vanished or changed since it was read. The alert returned is transient: the columns
    read or written here (not `feedback`, `traceparent`, the resolution)."""
    feedback, plan, store = facts.feedback, facts.plan, facts.store
    row = reader.first(_MERGE_ALERT, {"alert_id": alert_id})
    if row is None:
        raise OpenAlertChanged(alert_id)
    related = list(row.related_feedback or [])
    if any(item.get("id") == feedback.id for item in related):
        return None
    related.append(feedback.as_related())
    updates = (row.updates or 0) + 1
    priority = row.priority
    if PRIORITY_RANK.get(plan.priority, 1) > PRIORITY_RANK.get(priority, 1):
        priority = plan.priority
    # The repeat usually changes the plan (repeat-issue playbooks); staff follow the latest one.
    change: dict[str, Any] = {
        "related_feedback": related,
        "updates": updates,
        "updated_at": now,
        "priority": priority,
        "plan": plan.as_stored(),
    }
    customer = facts.customer
    if customer.name:
        # The new plan was rendered with this name: erasure and the resolved event mask it.
        change["customer_name"] = customer.name[:100]
    if customer.known:
        change["context"] = customer.as_stored()  # fresher signals: the repeat now counts
    else:
        customer = CustomerContext.from_stored(row.context)
    title, body = _text(facts, customer)
    change["title"], change["body"] = f"{title} ({more(updates, facts.language)})", body
    seen = {
        "alert_id": alert_id,
        "seen_updates": row.updates,
        "seen_status": row.status,
        "seen_level": row.escalation_level,
    }
    if not _MERGE_UPDATE.execute(reader, {**change, **seen}):
        raise OpenAlertChanged(alert_id)
    alert = Alert(**{**row._asdict(), **change})
    staff, deliveries = page_again(reader, alert=alert, store=store, now=now)
    event = _alert_created(
        alert,
        plan,
        kind="feedback",  # only a feedback alert takes repeats
        feedback_id=feedback.id,
        recipients=staff,
        customer_name=alert.customer_name,
        now=now,
        event_id=f"merged:{feedback.id}",  # ≤ 64 chars: processed_events.event_id
    )
    publish_sync(reader, [event], now=now)
    return NewAlert(alert, staff, deliveries, merged=True)


def page_again(reader: Reader, *, alert: Alert, store: Store, now: float) -> tuple[list[Candidate], int]:
    """Supersede the alert's unsent pushes and push it again to whoever works it: its recipients
    while open, else its acknowledger (added as a recipient). A retry in flight stays."""
    if alert.status == "open":
        staff = [Candidate(*r) for r in reader.all(_ALERT_STAFF, {"alert_id": alert.id})]
    elif alert.acknowledged_by:
        staff = [Candidate(*r) for r in reader.all(_ONE_STAFF, {"staff_id": alert.acknowledged_by})]
    else:
        staff = []
    _SUPERSEDE.execute(
        reader, {"status": "cancelled", "last_error": "superseded by an update", "of_alert": alert.id}
    )
    if not staff:
        return staff, 0
    if alert.status == "open":
        # The devices of `staff`: a device's staff row exists (foreign key), a recipient's may not.
        devices = reader.all(_RECIPIENT_DEVICES, {"alert_id": alert.id})
        return staff, _add_deliveries(
            reader, alert=alert, devices=devices, level=alert.escalation_level, store=store, now=now
        )
    deliveries = add_recipients_sync(
        reader, alert=alert, staff_ids=[staff[0].id], level=alert.escalation_level, store=store, now=now
    )
    return staff, deliveries


def add_recipients_sync(
    reader: Reader, *, alert: Alert, staff_ids: list[str], level: int, store: Store, now: float
) -> int:
    """Page `staff_ids` on the alert at `level`: each becomes a recipient (one already on it
    stays as it is) and each of their devices gets a pending push; returns how many."""
    if not staff_ids:
        return 0
    _RECIPIENT_ADD.execute_many(
        reader,
        [{"alert_id": alert.id, "staff_id": sid, "level": level, "added_at": now} for sid in staff_ids],
    )
    devices = [d for sid in staff_ids for d in reader.all(_STAFF_DEVICES, {"staff_id": sid})]
    return _add_deliveries(reader, alert=alert, devices=devices, level=level, store=store, now=now)


def _add_deliveries(
    reader: Reader, *, alert: Alert, devices: list[Any], level: int, store: Store, now: float
) -> int:
    if devices:
        held = hold_until(store, priority=alert.priority, now=now)
        _DELIVERY_INSERT.execute_many(
            reader, delivery_rows(alert.id, devices, level=level, held=held, now=now)
        )
    return len(devices)
