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
    UniqueConstraint,
    delete,
    event,
    false,
    insert,
    inspect,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import DeclarativeBase, Mapped, Mapper, mapped_column

from voc_platform.tables import ServiceBase


class Base(ServiceBase, DeclarativeBase):
    """The notify service's tables, the platform's among them (`Base.platform_tables`)."""


outbox_table, processed_table, revocations_table, audit_table = Base.platform_tables


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
    # The department (of the published taxonomy) this staff member belongs to: they get a copy
    # of every alert in a category it owns, whichever the store (#20 §3).
    department_id: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)


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


class RefreshToken(Base):
    """One refresh token of a session (#23), by its hash: a login starts a family, each refresh
    uses one token up and adds the next. A used token shown again revokes the whole family
    (someone copied it); logout, a password change and deactivation revoke families too."""

    __tablename__ = "refresh_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    family_id: Mapped[str] = mapped_column(String(36), index=True)
    staff_id: Mapped[str] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), index=True)
    # The app install the session is bound to (None: a client that gave none, e.g. a script).
    install_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float, index=True)
    used_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    revoked_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)


class AppInstall(Base):
    """What the staff app on one browser last reported of itself (#23): notification permission,
    push subscription state, app version, whether it runs from the Home Screen."""

    __tablename__ = "app_installs"

    install_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    staff_id: Mapped[str] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), index=True)
    permission: Mapped[str] = mapped_column(String(16))  # granted|denied|default|unsupported
    push: Mapped[str] = mapped_column(String(16))  # subscribed|none|expired|error|unsupported
    app_version: Mapped[str] = mapped_column(String(32))
    standalone: Mapped[bool] = mapped_column(Boolean)
    device_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    user_agent: Mapped[str | None] = mapped_column(String(300), nullable=True)
    reported_at: Mapped[float] = mapped_column(Float)


class FallbackPage(Base):
    """The delivery watchdog's page over the fallback channel (#23): once per alert and staff
    member, when none of their devices showed an urgent alert in time."""

    __tablename__ = "fallback_pages"

    alert_id: Mapped[str] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True)
    staff_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))  # sent|failed|unavailable
    detail: Mapped[str | None] = mapped_column(String(300), nullable=True)
    created_at: Mapped[float] = mapped_column(Float)


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
    # The app install that registered it (#23), the last push its service worker reported shown,
    # and since when the delivery watchdog suspects it (a push accepted but never shown).
    install_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    last_shown_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    suspect_since: Mapped[float | None] = mapped_column(Float, nullable=True)


class Alert(Base):
    __tablename__ = "alerts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # feedback (one item) | pattern (several customers, one category, one store) | heads_up (a
    # customer with recent trouble arrived) (#18).
    kind: Mapped[str] = mapped_column(String(16), default="feedback", server_default="feedback")
    # The feedback item of a `feedback` alert; None for pattern and heads-up alerts.
    feedback_id: Mapped[str | None] = mapped_column(String(36), unique=True, nullable=True)
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
    # A pattern alert's items (one per feedback item folded in) or a heads-up's arrival facts.
    items: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    # What makes a pattern or heads-up alert one of a kind, decided by the database (#18):
    # `heads_up:<customer>:<store>:<local date>` (at most one a day), `pattern:<store>:<category>:<n>`.
    dedupe_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # The customer's name as the plan was rendered with it (profile's name on file, or the
    # arriving customer's), kept only so erasure can take it out of the plan's texts; never
    # served. NULL without a name, and once erased.
    customer_name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    # When its pushes last went out: a pattern alert re-pushes at most every
    # VOC_NOTIFY_PATTERN_REPUSH_SECONDS however many items fold in.
    pushed_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    # When what the customer and staff wrote was removed (erasure, or `VOC_RETENTION_DAYS` after
    # it was made); what happened stays. None: kept.
    redacted_at: Mapped[float | None] = mapped_column(Float, nullable=True)

    __table_args__ = (
        Index("ix_alerts_dedupe", "customer_id", "store_id", "category", "created_at"),
        # The retention pass reads the oldest alerts not yet redacted, by this index alone.
        Index("ix_alerts_retention", "redacted_at", "created_at"),
        Index("ix_alerts_kind_store", "store_id", "kind", "category", "status"),
        UniqueConstraint("dedupe_key", name="uq_alerts_dedupe_key"),
    )


class ErasureTombstone(Base):
    """A name an erasure gave (`customer:<id>`, `feedback:<id>`): an event about it that reaches
    notify after the erasure (a consumer that lagged behind) makes no copy of the customer
    (`tombstones`). Kept while the bus may still hold such an event (`TOMBSTONE_SECONDS`)."""

    __tablename__ = "erasure_tombstones"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    erased_at: Mapped[float] = mapped_column(Float, index=True)


class MailSuppression(Base):
    """An e-mail address a mail server said can never receive (a hard bounce, `suppressions`):
    no follow-up is mailed to it again until it is lifted or a year has passed. Kept as its HMAC
    (`address_key`) with the masked address, and whose it was, so an erasure removes it."""

    __tablename__ = "mail_suppressions"

    address_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    recipient: Mapped[str] = mapped_column(String(300))  # masked, for the admin list
    customer_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    feedback_id: Mapped[str] = mapped_column(String(36), index=True)  # the follow-up that bounced
    reason: Mapped[str] = mapped_column(String(300), default="")  # the server's codes, the rest masked
    suppressed_at: Mapped[float] = mapped_column(Float, index=True)


class PatternItem(Base):
    """One negative feedback item, kept for pattern detection (#18): how many different customers
    raised a category at a store within the window, and the store's usual rate (its baseline).
    Rows older than the baseline period are deleted by the escalation worker's pass."""

    __tablename__ = "pattern_items"

    feedback_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    store_id: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(32))
    # The customer id, or `anon:<feedback id>` (anonymous items count as different customers).
    customer_key: Mapped[str] = mapped_column(String(64))
    at: Mapped[float] = mapped_column(Float)
    # The feedback alert the item made (or was folded into), and a masked excerpt for the list.
    alert_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    excerpt: Mapped[str] = mapped_column(String(120))
    # When staff last corrected the item's labels (voc.feedback.corrected): the category above
    # is then the corrected one; an older correction arriving late changes nothing.
    corrected_at: Mapped[float | None] = mapped_column(Float, nullable=True)

    # Covering: the distinct customers of a window are read from the index alone.
    __table_args__ = (Index("ix_pattern_items_window", "store_id", "category", "at", "customer_key"),)


class AlertStepMark(Base):
    """A plan step ticked done or undone in the staff app (#18): append-only, so it is its own
    audit trail (who, which step, when); an alert's checklist is the latest mark per step."""

    __tablename__ = "alert_step_marks"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    alert_id: Mapped[str] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    step_index: Mapped[int] = mapped_column(Integer)
    done: Mapped[bool] = mapped_column(Boolean)
    staff_id: Mapped[str] = mapped_column(String(64))
    at: Mapped[float] = mapped_column(Float)


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
    # When the delivery watchdog found it accepted but not shown in time (#23), and when the
    # alert was acknowledged from this push's notification (its Acknowledge action).
    watched_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    notification_ack_at: Mapped[float | None] = mapped_column(Float, nullable=True)

    __table_args__ = (
        Index("ix_deliveries_due", "status", "next_attempt_at"),
        Index("ix_deliveries_unshown", "status", "shown_at", "accepted_at"),
    )


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

    __table_args__ = (
        Index("ix_timers_due", "status", "fire_at"),
        # An alert's pending timer of a kind, looked up per delivery by the watchdog every second.
        Index("ix_timers_alert_kind_status", "alert_id", "kind", "status", "fire_at"),
    )


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


class FollowUpMessage(Base):
    """The follow-up link of one resolved case, to be sent to its customer once (the feedback
    id is the key: at most one per case). Sent by the follow-up worker when due, retried with
    back-off while the link is valid. The contact is dropped once the message is settled."""

    __tablename__ = "follow_up_messages"

    feedback_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    store_id: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    url: Mapped[str] = mapped_column(String(500))
    language: Mapped[str] = mapped_column(String(8))
    # Asked again: the case reopened one the customer answered unhappy (FollowUpRequested.again).
    again: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # What the customer gave with the feedback (the profile's contact points are asked at send time).
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    phone: Mapped[str | None] = mapped_column(String(32), nullable=True)
    channel: Mapped[str | None] = mapped_column(String(8), nullable=True)  # email | sms
    recipient: Mapped[str | None] = mapped_column(String(300), nullable=True)  # masked
    # The e-mail address it went to as `suppressions.address_key` (an HMAC, no address): a bounce
    # that comes after the contact was dropped still suppresses that address.
    recipient_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The channel a delivery report said it never arrived by (a bounced e-mail): not chosen again.
    undelivered_channel: Mapped[str | None] = mapped_column(String(8), nullable=True)
    status: Mapped[str] = mapped_column(
        String(16)
    )  # pending | sending | sent | failed | not_sent; delivered | undelivered (a delivery report)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[float] = mapped_column(Float)
    # Set when the send waits for the store's quiet hours to end (next_attempt_at = this).
    held_until: Mapped[float | None] = mapped_column(Float, nullable=True)
    expires_at: Mapped[float] = mapped_column(Float)  # the link's; no attempt after it
    created_at: Mapped[float] = mapped_column(Float)
    sent_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(300), nullable=True)

    __table_args__ = (Index("ix_follow_up_messages_due", "status", "next_attempt_at"),)


class WebhookEndpoint(Base):
    """An outside system that hears notify's events (#19): where to, which types, in what shape,
    and the signing secret (encrypted with a key derived from notify's secret: `webhooks.secrets`)."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list[str]] = mapped_column(JSON)  # event types, or ["*"]
    description: Mapped[str] = mapped_column(String(500), default="")
    format: Mapped[str] = mapped_column(String(16), default="standard")  # standard|slack|teams
    secret: Mapped[str] = mapped_column(String(200))  # encrypted; never answered after creation
    status: Mapped[str] = mapped_column(String(16), index=True)  # active|disabled
    disabled_reason: Mapped[str | None] = mapped_column(String(300), nullable=True)
    disabled_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    # When the current run of failed attempts began (None after a success): 24 h of it disables.
    failing_since: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_success_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    secret_rotated_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    # After a rotation the replaced secret still signs (a second signature in the same header)
    # until `previous_secret_until`, so a receiver can switch without losing a delivery.
    previous_secret: Mapped[str | None] = mapped_column(String(200), nullable=True)  # encrypted
    previous_secret_until: Mapped[float | None] = mapped_column(Float, nullable=True)


class WebhookDelivery(Base):
    """One event for one endpoint; its id is the `webhook-id` of every attempt (at-least-once:
    a retry carries the same id and the same body)."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event_type: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)  # the standard JSON body, as signed
    status: Mapped[str] = mapped_column(String(16))  # pending|delivered|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[float] = mapped_column(Float)  # also the lease while in flight
    created_at: Mapped[float] = mapped_column(Float)
    delivered_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(300), nullable=True)

    __table_args__ = (
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        # Each endpoint's due deliveries, leased a read per endpoint (dispatch.lease_due_sync).
        Index("ix_webhook_deliveries_endpoint_due", "endpoint_id", "status", "next_attempt_at"),
    )


class WebhookAttempt(Base):
    """One HTTP attempt of a delivery, as `GET /v1/admin/webhooks/{id}/deliveries` shows it."""

    __tablename__ = "webhook_attempts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    endpoint_id: Mapped[str] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), index=True
    )
    delivery_id: Mapped[str] = mapped_column(String(40), index=True)
    event_type: Mapped[str] = mapped_column(String(64))
    attempted_at: Mapped[float] = mapped_column(Float, index=True)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    latency_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    error: Mapped[str | None] = mapped_column(String(300), nullable=True)
    # At most 300 bytes of the receiver's answer (decoded leniently), never more.
    response: Mapped[str | None] = mapped_column(String(300), nullable=True)
