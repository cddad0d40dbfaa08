"""The notify service's tables: directory, devices, alerts, deliveries and escalation timers."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    delete,
    event,
    insert,
    inspect,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import DeclarativeBase, Mapped, Mapper, mapped_column

from voc_platform.audit import define_audit_table
from voc_platform.identity import define_revocations_table
from voc_platform.outbox import define_platform_tables


class Base(DeclarativeBase):
    pass


outbox_table, processed_table = define_platform_tables(Base.metadata)
revocations_table = define_revocations_table(Base.metadata)  # staff tokens revoked (voc_platform.identity)
audit_table = define_audit_table(Base.metadata)  # who did what (voc_platform.audit)


class Store(Base):
    __tablename__ = "stores"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    area_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    format: Mapped[str | None] = mapped_column(String(32), nullable=True)
    region: Mapped[str | None] = mapped_column(String(64), nullable=True)
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Seoul")
    language: Mapped[str] = mapped_column(String(8), default="ko")
    # Local "HH:MM" bounds of the store's quiet hours (non-urgent pushes are held); may wrap midnight.
    quiet_start: Mapped[str | None] = mapped_column(String(5), nullable=True)
    quiet_end: Mapped[str | None] = mapped_column(String(5), nullable=True)


#: Every column of a store, in order: the reads that build a transient `Store` or serve one.
STORE_COLUMNS = (
    "id",
    "name",
    "area_id",
    "format",
    "region",
    "timezone",
    "language",
    "quiet_start",
    "quiet_end",
)


class Staff(Base):
    __tablename__ = "staff"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    store_ids: Mapped[list[str]] = mapped_column(JSON)
    area_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    language: Mapped[str] = mapped_column(String(8), default="ko")
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class LoginFailure(Base):
    """Failed logins of one account, whether its e-mail is a staff member's or not (so both are
    answered alike): keyed by an HMAC of the e-mail (`auth.account_key`), cleared by a
    successful login or a manager's unlock, forgotten once stale."""

    __tablename__ = "login_failures"

    account_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    locked_until: Mapped[float] = mapped_column(Float)
    last_failed_at: Mapped[float] = mapped_column(Float, index=True)


class StreamTicket(Base):
    """A single-use ticket that opens the live stream (EventSource cannot send an Authorization
    header, and a token in the URL ends up in logs and history): the hash of the ticket and the
    staff member it was issued to, as their access token named them."""

    __tablename__ = "stream_tickets"

    ticket_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    staff_id: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(32))
    store_ids: Mapped[list[str]] = mapped_column(JSON)
    area_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    expires_at: Mapped[float] = mapped_column(Float, index=True)


class StaffStore(Base):
    """Which stores a staff member works at, one row per pair: routing asks "who works at this
    store" by index instead of reading every staff member's `store_ids` (chains have thousands).

    Kept equal to `Staff.store_ids` by the mapper hooks below, whatever code path writes staff.
    """

    __tablename__ = "staff_stores"

    staff_id: Mapped[str] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), primary_key=True)
    store_id: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


@event.listens_for(Staff, "after_insert")
@event.listens_for(Staff, "after_update")
def _sync_staff_stores(_mapper: Mapper[Staff], connection: Connection, staff: Staff) -> None:
    history = inspect(staff).attrs.store_ids.history
    if not history.has_changes():
        return
    connection.execute(delete(StaffStore).where(StaffStore.staff_id == staff.id))
    stores = sorted(set(staff.store_ids or []))
    if stores:
        connection.execute(insert(StaffStore), [{"staff_id": staff.id, "store_id": s} for s in stores])


class Device(Base):
    """A Web Push subscription of one staff member's browser."""

    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    staff_id: Mapped[str] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), index=True)
    endpoint: Mapped[str] = mapped_column(String(2048))
    endpoint_hash: Mapped[str] = mapped_column(String(64), unique=True)
    p256dh: Mapped[str] = mapped_column(String(200))
    auth: Mapped[str] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300), nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    last_success_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class Alert(Base):
    __tablename__ = "alerts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    feedback_id: Mapped[str] = mapped_column(String(36), unique=True)
    store_id: Mapped[str] = mapped_column(String(64), index=True)
    area_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    customer_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    category: Mapped[str] = mapped_column(String(32))
    priority: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), index=True)  # open|acknowledged|resolved
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)  # masked: what a lock screen may show
    feedback: Mapped[dict[str, Any]] = mapped_column(JSON)
    context: Mapped[dict[str, Any]] = mapped_column(JSON)
    plan: Mapped[dict[str, Any]] = mapped_column(JSON)
    degraded: Mapped[list[str]] = mapped_column(JSON)
    # The feedback's classification and how sure the classifier was (#17): sentiment, category,
    # confidence, category_confidence, model_version, uncertain. None on alerts made before.
    classification: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[float] = mapped_column(Float, index=True)
    acknowledged_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    resolved_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    resolved_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(32), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    # W3C traceparent of the consumer span, so the push sends join the feedback's trace.
    traceparent: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Later feedback from the same customer about the same category, merged into this alert.
    related_feedback: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    updates: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    updated_at: Mapped[float | None] = mapped_column(Float, nullable=True)

    __table_args__ = (Index("ix_alerts_dedupe", "customer_id", "store_id", "category", "created_at"),)


class AlertRecipient(Base):
    __tablename__ = "alert_recipients"

    alert_id: Mapped[str] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True)
    staff_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    level: Mapped[int] = mapped_column(Integer, default=0)
    added_at: Mapped[float] = mapped_column(Float)


class Delivery(Base):
    """One push to one device; the delivery worker sends pending ones and retries."""

    __tablename__ = "deliveries"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    alert_id: Mapped[str] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    device_id: Mapped[str] = mapped_column(String(36))
    staff_id: Mapped[str] = mapped_column(String(64))
    level: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16))  # pending|accepted|failed|gone|cancelled
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[float] = mapped_column(Float)
    created_at: Mapped[float] = mapped_column(Float)
    accepted_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    shown_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    opened_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(300), nullable=True)
    # Set when a non-urgent push waits for the store's quiet hours to end (next_attempt_at = this).
    held_until: Mapped[float | None] = mapped_column(Float, nullable=True)

    __table_args__ = (Index("ix_deliveries_due", "status", "next_attempt_at"),)


class EscalationTimer(Base):
    """A durable timer: fires at `fire_at` unless the alert was acknowledged (or resolved)."""

    __tablename__ = "escalation_timers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    alert_id: Mapped[str] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # ack | resolve
    level: Mapped[int] = mapped_column(Integer)
    roles: Mapped[list[str]] = mapped_column(JSON)
    fire_at: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16))  # pending|fired|cancelled

    __table_args__ = (Index("ix_timers_due", "status", "fire_at"),)


class Shift(Base):
    """A weekly working slot in the store's local time; `ends` <= `starts` runs past midnight."""

    __tablename__ = "shifts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    staff_id: Mapped[str] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), index=True)
    weekday: Mapped[int] = mapped_column(Integer)  # 0 = Monday, as datetime.weekday()
    starts: Mapped[str] = mapped_column(String(5))  # "HH:MM" local
    ends: Mapped[str] = mapped_column(String(5))


class ShiftOverride(Base):
    """A one-off change to the weekly pattern: on or off duty for whole local dates."""

    __tablename__ = "shift_overrides"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    staff_id: Mapped[str] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), index=True)
    starts_on: Mapped[str] = mapped_column(String(10))  # ISO date, inclusive
    ends_on: Mapped[str] = mapped_column(String(10))  # ISO date, inclusive
    on_duty: Mapped[bool] = mapped_column(Boolean)
    note: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[float] = mapped_column(Float)
