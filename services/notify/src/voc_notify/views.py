"""Alerts as staff see them: which alerts a principal may see, the inbox page, an alert's
summary and detail, and its delivery receipts (the JSON the REST API and the live stream serve)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from sqlalchemy import ColumnElement, and_, false, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from voc_notify import checklists, patterns
from voc_notify.masking import push_text
from voc_notify.models import Alert, AlertRecipient, AlertStepMark, Delivery, Staff, Store
from voc_notify.routing import ROLE_LEVEL
from voc_notify.words import LANGUAGES
from voc_platform import taxonomy
from voc_platform.dbsync import Reader
from voc_platform.errors import Forbidden, NotFound
from voc_platform.identity import Principal
from voc_platform.records import fields_of

# What a receipt shows of a delivery (before `acknowledged_at` and `last_error`), and what the
# detail adds to the summary of an alert besides its feedback, customer and related feedback.
RECEIPT_FIELDS = (
    "id",
    "staff_id",
    "device_id",
    "level",
    "status",
    "attempts",
    "created_at",
    "held_until",
    "accepted_at",
    "shown_at",
    "opened_at",
    "notification_ack_at",
    "watched_at",
)
DETAIL_FIELDS = ("plan", "degraded", "acknowledged_by", "resolved_by", "outcome", "note")


def visible_to(principal: Principal, *, store_id: str, area_id: str | None) -> bool:
    """Admins see every store, area managers their area, everyone else their stores."""
    if principal.role == "cx_admin":
        return True
    if principal.role == "area_manager" and area_id is not None and area_id == principal.area_id:
        return True
    return store_id in principal.store_ids


def _scope(principal: Principal, department_copies: ColumnElement[bool]) -> ColumnElement[bool]:
    """`visible_to` as a filter on alerts, or `department_copies`."""
    if principal.role == "cx_admin":
        return true()
    clauses: list[ColumnElement[bool]] = (
        [Alert.store_id.in_(principal.store_ids)] if principal.store_ids else []
    )
    clauses.append(department_copies)
    if principal.role == "area_manager" and principal.area_id:
        clauses.append(Alert.area_id == principal.area_id)
    return or_(*clauses)


def _department_copies(principal: Principal, staff: Staff | None) -> ColumnElement[bool]:
    """The alerts the principal was sent as a copy for their department (#20 §3) in a category
    that department owns, while they are in it: a copy once sent is no key for good (a member
    who moved to another store, or left the department, kept reading and acting on the old
    store's alerts)."""
    if staff is None or not staff.active or not staff.department_id:
        return false()
    categories = taxonomy.current().owned_by(staff.department_id)
    if not categories:
        return false()
    sent = select(AlertRecipient.alert_id).where(AlertRecipient.staff_id == principal.staff_id)
    return and_(Alert.id.in_(sent), Alert.category.in_(categories))


async def visible_alert(
    session: AsyncSession,
    *,
    alert_id: str,
    principal: Principal,
    for_update: bool = False,
    acting: bool = False,
) -> Alert:
    """The alert, if the principal may see it (their scope, or their department's copy); another
    store's is answered like a missing one. `acting` (acknowledge, resolve, tick a step): their
    scope only, as a department's copy is for reading (403). `for_update`: locked until the
    transaction ends (PostgreSQL), for a change decided on its state: two staff acknowledging at
    once both read it open and both answered 200, and concurrent resolves each published their
    events. FOR NO KEY UPDATE, so rows that reference the alert (recipients, deliveries) can
    still be added; the escalation worker skips an alert locked so (`lifecycle.escalate`)."""
    lock = {"key_share": True} if for_update else None
    alert = await session.get(Alert, alert_id, with_for_update=lock, populate_existing=for_update)
    if alert is None:
        raise NotFound(f"No alert '{alert_id}'.")
    if not visible_to(principal, store_id=alert.store_id, area_id=alert.area_id):
        staff = await session.get(Staff, principal.staff_id)
        copy = _department_copies(principal, staff)
        if await session.scalar(select(Alert.id).where(Alert.id == alert.id, copy)) is None:
            raise NotFound(f"No alert '{alert_id}'.")
        if acting:
            raise Forbidden("A department's copy is for reading; the store's staff act on the alert.")
    return alert


async def inbox(
    session: AsyncSession,
    *,
    principal: Principal,
    status: str | None,
    limit: int,
    before: str | None,
    kind: str | None = None,
) -> dict[str, Any]:
    """A page of the alerts the principal may see, newest first; `next_before` continues it."""
    staff = await session.get(Staff, principal.staff_id)
    query = select(Alert).where(_scope(principal, _department_copies(principal, staff)))
    if status:
        query = query.where(Alert.status == status)
    if kind:
        query = query.where(Alert.kind == kind)
    if before:
        query = query.where(Alert.id < before)  # uuid7 ids sort by time
    rows = list(await session.scalars(query.order_by(Alert.id.desc()).limit(limit + 1)))
    page = rows[:limit]
    language = staff.language if staff is not None and staff.language in LANGUAGES else ""
    stores = await stores_by_id(session, (a.store_id for a in page))
    return {
        "alerts": [_in_language(alert_summary(a), a, language, stores) for a in page],
        "next_before": page[-1].id if len(rows) > limit else None,
    }


async def read_alert(session: AsyncSession, *, alert_id: str, principal: Principal) -> dict[str, Any]:
    """One alert as the staff member sees it (`alert_detail`), in their own language: its
    title and body, the plan (title, steps, script) and the signals' reasons; the recent
    contacts with their stores' names; the checklist with who ticked what; a pattern alert's
    items read live."""
    alert = await visible_alert(session, alert_id=alert_id, principal=principal)
    marks = await checklists.marks_of(session, alert_id=alert.id)
    window = await pattern_window(session, alert=alert)
    language = await staff_language(session, principal=principal)
    contacts = (alert.context or {}).get("recent_contacts") or []
    stores = await stores_by_id(session, [alert.store_id, *(c["store_id"] for c in contacts)])
    detail = alert_detail(alert, marks=marks, principal=principal, window=window)
    # A department's copy: the app shows it without the actions it would be refused (403).
    detail["read_only"] = not visible_to(principal, store_id=alert.store_id, area_id=alert.area_id)
    # Who acknowledged, resolved, ticked or corrected, by name (the app showed "staff-gn-lead").
    corrected = ((alert.classification or {}).get("corrected") or {}).get("by")
    acted = {alert.acknowledged_by, alert.resolved_by, corrected, *(m.staff_id for m in marks)}
    detail["staff_names"] = await staff_names(session, (i for i in acted if i))
    return localized(detail, alert, language=language, stores=stores)


async def staff_names(session: AsyncSession, staff_ids: Iterable[str]) -> dict[str, str]:
    """The directory's names of these staff members (ids not in it, the admin's, are left out)."""
    wanted = set(staff_ids)
    if not wanted:
        return {}
    rows = await session.execute(select(Staff.id, Staff.name).where(Staff.id.in_(wanted)))
    return {staff_id: name for staff_id, name in rows.tuples()}


async def staff_language(session: AsyncSession, *, principal: Principal) -> str:
    """The staff member's language from the directory ("" for a caller not in it: the admin)."""
    staff = await session.get(Staff, principal.staff_id)
    return staff.language if staff is not None and staff.language in LANGUAGES else ""


async def stores_by_id(session: AsyncSession, store_ids: Iterable[str]) -> dict[str, Store]:
    wanted = set(store_ids)
    if not wanted:
        return {}
    return {s.id: s for s in await session.scalars(select(Store).where(Store.id.in_(wanted)))}


#: The languages an alert can be read in.


def localized(
    detail: dict[str, Any], alert: Alert, *, language: str, stores: Mapping[str, Store]
) -> dict[str, Any]:
    """`detail` in `language`: the title and body composed again in it, the plan's texts from
    its translations, each signal reason's `text`, each recent contact's and visit's `store_name`."""
    detail = _in_language(detail, alert, language, stores)
    plan = detail.get("plan") or {}
    translated = next((t for t in plan.get("translations") or () if t.get("language") == language), None)
    if language and plan.get("language") != language and translated:
        steps = plan.get("steps") or []
        texts = translated.get("steps") or []
        detail["plan"] = {
            **plan,
            "title": translated["title"],
            "script": translated["script"],
            "steps": [
                {**step, "text": texts[i] if i < len(texts) else step["text"]} for i, step in enumerate(steps)
            ],
            "language": language,
        }
    customer = detail.get("customer")
    if customer and customer.get("known"):
        customer = detail["customer"] = dict(customer)
        signals = customer.get("signals")
        if signals:
            customer["signals"] = {
                **signals,
                "reasons": [
                    {**r, "text": (r.get("reason_ko") or r["reason"]) if language == "ko" else r["reason"]}
                    for r in signals.get("reasons") or []
                ],
            }
        for part in ("recent_contacts", "last_visits"):
            customer[part] = [
                {**c, "store_name": stores[c["store_id"]].name if c["store_id"] in stores else c["store_id"]}
                for c in customer.get(part) or []
            ]
    detail["context"] = detail["customer"]  # DESIGN §5 names it `context`; `customer` stays
    # The published taxonomy as of now (#20 §3), in the reader's language: the label of the
    # alert's category (a retired one keeps it) and the categories a correction may pick.
    published, lang = taxonomy.current(), language if language in LANGUAGES else "ko"
    detail["category_label"] = published.label(alert.category, lang)
    detail["categories"] = [{"id": c, "label": published.label(c, lang)} for c in published.active]
    return detail


def _in_language(
    summary: dict[str, Any], alert: Alert, language: str, stores: Mapping[str, Store]
) -> dict[str, Any]:
    """The summary's title and body in `language` (the row keeps the store's): a feedback
    alert's, a pattern alert's and a heads-up's alike (#18)."""
    store = stores.get(alert.store_id)
    composable = bool(alert.feedback) or alert.kind in ("pattern", "heads_up")
    if language and composable and store is not None and store.language != language:
        summary["title"], summary["body"] = push_text(alert, store=store, language=language)
    return summary


class StreamLanguage:
    """One live stream's events in its staff member's language (#18): an alert event's title and
    body come composed in the store's language (one event for every listener, through NATS to
    every replica); for a listener reading another language they are composed again from the
    alert row. The stores' languages are remembered per stream, so a listener reading the
    store's language costs no read."""

    def __init__(self, language: str) -> None:
        self.language = language
        self._stores: dict[str, Store | None] = {}

    async def event(
        self, session_factory: Callable[[], AbstractAsyncContextManager[AsyncSession]], event: dict[str, Any]
    ) -> dict[str, Any]:
        summary = event.get("alert")
        if not self.language or not isinstance(summary, dict) or "title" not in summary:
            return event
        store_id = str(summary.get("store_id") or "")
        if store_id not in self._stores:
            async with session_factory() as session:
                self._stores[store_id] = await session.get(Store, store_id)
        store = self._stores[store_id]
        if store is None or store.language == self.language:
            return event
        async with session_factory() as session:
            alert = await session.get(Alert, str(summary.get("id")))
            if alert is None:
                return event
            localized = _in_language(
                {"title": summary["title"], "body": summary.get("body")},
                alert,
                self.language,
                {store.id: store},
            )
        return {**event, "alert": {**summary, **localized}}


async def receipts(session: AsyncSession, *, alert_id: str, principal: Principal) -> dict[str, Any]:
    """Delivery receipts per device: accepted by the push service, shown, opened, acknowledged."""
    alert = await visible_alert(session, alert_id=alert_id, principal=principal)
    if ROLE_LEVEL.get(principal.role, 0) < ROLE_LEVEL["store_manager"]:
        raise Forbidden("Delivery receipts are for store managers and above.")
    rows = await session.scalars(
        select(Delivery).where(Delivery.alert_id == alert.id).order_by(Delivery.created_at, Delivery.id)
    )
    return {"alert_id": alert.id, "deliveries": [delivery_receipt(d, alert) for d in rows]}


def delivery_receipt(delivery: Delivery, alert: Alert) -> dict[str, Any]:
    """The delivery's own columns (`RECEIPT_FIELDS`), then whether its staff member acknowledged."""
    acknowledged = alert.acknowledged_at if alert.acknowledged_by == delivery.staff_id else None
    return {
        **fields_of(delivery, RECEIPT_FIELDS),
        "acknowledged_at": acknowledged,
        "last_error": delivery.last_error,
    }


def category_labels(category: str) -> dict[str, str]:
    published = taxonomy.current()
    return {lang: published.label(category, lang) for lang in LANGUAGES}


def alert_summary(alert: Alert) -> dict[str, Any]:
    """An inbox row and a live-stream event: a literal, as the stream serves one per alert."""
    return {
        "id": alert.id,
        "kind": alert.kind or "feedback",
        "feedback_id": alert.feedback_id,
        "store_id": alert.store_id,
        "category": alert.category,
        # Its labels as published now (#20 §3): the staff app's inbox labels a category
        # published after the app was loaded (the live stream's events carry them too).
        "category_labels": category_labels(alert.category),
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
        "classification": classification(alert),
    }


def classification(alert: Alert) -> dict[str, Any]:
    """What the classifier said of the alert's feedback and how sure it was (#17); `uncertain`
    alerts are shown as such. An alert made before confidences were carried: no confidence,
    not flagged."""
    if alert.classification:
        return alert.classification
    return {
        "sentiment": (alert.feedback or {}).get("sentiment") or None,
        "category": alert.category,
        "confidence": None,
        "category_confidence": None,
        "model_version": None,
        "uncertain": False,
    }


async def pattern_window(session: AsyncSession, *, alert: Alert) -> tuple[list[dict[str, Any]], int] | None:
    """A pattern alert's items and different customers as they are now (#18): the stored list
    is refreshed at most once a minute as items fold in; None for other kinds."""
    if alert.kind != "pattern":
        return None
    since = float(((alert.context or {}).get("pattern") or {}).get("since") or alert.created_at)
    found: tuple[list[dict[str, Any]], int] = await session.run_sync(
        lambda s: patterns.window_of(
            Reader.of(s.connection()), store_id=alert.store_id, category=alert.category, since=since
        )
    )
    return found


def alert_detail(
    alert: Alert,
    *,
    marks: Sequence[AlertStepMark] = (),
    principal: Principal | None = None,
    window: tuple[list[dict[str, Any]], int] | None = None,
) -> dict[str, Any]:
    """The summary, what the alert was made from (its `context` answered as `customer`), how
    it was handled (`DETAIL_FIELDS`), its checklist (#18) and, for managers, every tick of it;
    a pattern alert's items or a heads-up's arrival as `items`."""
    detail = {
        **alert_summary(alert),
        "feedback": alert.feedback,
        "customer": alert.context,
        **fields_of(alert, DETAIL_FIELDS),
        "related_feedback": alert.related_feedback or [],
        "items": alert.items or [],
        "checklist": [s.as_json() for s in checklists.checklist(alert, marks)],
    }
    if principal is not None and checklists.sees_audit(principal):
        detail["checklist_log"] = checklists.audit_log(marks)
    if window is not None:  # a pattern alert: its items and count read live
        items, customers = window
        pattern = dict((alert.context or {}).get("pattern") or {})
        detail["items"] = items
        detail["customer"] = {**(alert.context or {}), "pattern": {**pattern, "customers": customers}}
    return detail
