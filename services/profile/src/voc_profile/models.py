"""The profile service's tables: customers, their identifiers, visits, feedback history, the
stored signals, merges, the alerts about each customer and the audit log of personal data."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from voc_platform.tables import ServiceBase


class Base(ServiceBase, DeclarativeBase):
    """The profile service's tables, the platform's among them (`Base.platform_tables`)."""


outbox_table, processed_table, revocations_table, audit_table = Base.platform_tables


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    tier: Mapped[str] = mapped_column(String(16), default="basic")
    lifetime_value: Mapped[float] = mapped_column(Float, default=0.0)
    preferred_language: Mapped[str | None] = mapped_column(String(8), nullable=True)
    home_store_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # True: agreed; False: opted out (the CRM says so); None: never said (created from feedback).
    contact_consent: Mapped[bool | None] = mapped_column(Boolean, nullable=True, default=None)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    # Household: people sharing one account (the buyer is not always the user).
    household_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    household_relation: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # Set when this customer was merged into another (the survivor); undone by an admin.
    merged_into: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    erased_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    # The bulk import that last wrote this row: a second row of the same file is a duplicate.
    import_id: Mapped[str | None] = mapped_column(String(36), nullable=True)

    __table_args__ = (Index("ix_customers_tier", "tier"), Index("ix_customers_ltv", "lifetime_value"))


class Identifier(Base):
    """One normalised identifier (phone in E.164, lower-case e-mail, loyalty id, channel id)."""

    __tablename__ = "customer_identifiers"

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    value: Mapped[str] = mapped_column(String(254), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)


class Visit(Base):
    __tablename__ = "visits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    store_id: Mapped[str] = mapped_column(String(64))
    visited_at: Mapped[float] = mapped_column(Float)
    amount: Mapped[float] = mapped_column(Float, default=0.0)

    __table_args__ = (
        Index("ix_visits_customer", "customer_id", "visited_at"),
        # One POS visit is one row: re-importing the same file changes nothing.
        Index("ux_visits_natural", "customer_id", "store_id", "visited_at", unique=True),
    )


class Checkin(Base):
    """A real-time check-in (`POST /v1/visits`, #18): the visit it added, whom it was for, and the
    caller's Idempotency-Key with the body's hash (a replay answers the same id, another body
    under the same key is refused)."""

    __tablename__ = "checkins"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    caller: Mapped[str] = mapped_column(String(64))  # "admin" or the store key's id
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str] = mapped_column(String(36), index=True)
    store_id: Mapped[str] = mapped_column(String(64))
    visited_at: Mapped[float] = mapped_column(Float)
    heads_up: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[float] = mapped_column(Float)

    __table_args__ = (Index("ux_checkins_idempotency", "caller", "idempotency_key", unique=True),)


class FeedbackHistory(Base):
    """The facts of each feedback item this customer gave (from voc.feedback.received)."""

    __tablename__ = "feedback_history"

    feedback_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    store_id: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(32))
    category: Mapped[str] = mapped_column(String(32))
    sentiment: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(16))
    csat: Mapped[int | None] = mapped_column(Integer, nullable=True)
    nps: Mapped[int | None] = mapped_column(Integer, nullable=True)
    revisit_intent: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    occurred_at: Mapped[float] = mapped_column(Float)
    # The text, masked (the customer's name, e-mails, long numbers) and cut to 80 characters:
    # what staff see of an earlier contact (`context.recent_contacts`). Erasure clears it.
    excerpt: Mapped[str | None] = mapped_column(String(80), nullable=True)
    # When staff last corrected the item's category or sentiment (voc.feedback.corrected, #17
    # with #18): the labels above are then the corrected ones; an older correction arriving
    # late changes nothing. NULL: the classifier's labels.
    corrected_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    # A follow-up survey's unhappy answer: the feedback id of the case it reopened
    # (`FeedbackReceived.reopens_id`). Shown among the customer's contacts, never counted as a
    # complaint of its own (`voc_platform.taxonomy.is_complaint`). NULL: any other feedback.
    reopens_id: Mapped[str | None] = mapped_column(String(36), nullable=True)

    __table_args__ = (
        Index("ix_history_customer", "customer_id", "occurred_at"),
        Index("ix_history_intent", "store_id", "occurred_at"),
    )


class CustomerSignals(Base):
    """The event-derived signals of one customer, kept current as events arrive.

    `refresh_at` is when a window next moves (a complaint ages out, a stated revisit comes due,
    the oldest item leaves the summary's 365 days), so a background pass recomputes only the
    customers whose signals can have changed.
    """

    __tablename__ = "customer_signals"

    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    repeat_issue: Mapped[bool] = mapped_column(Boolean, default=False)
    score_swing: Mapped[bool] = mapped_column(Boolean, default=False)
    complaint_count_90d: Mapped[int] = mapped_column(Integer, default=0)
    low_satisfaction: Mapped[bool] = mapped_column(Boolean, default=False)
    churn_risk: Mapped[bool] = mapped_column(Boolean, default=False)
    satisfaction_mean: Mapped[float | None] = mapped_column(Float, nullable=True)
    # The latest stated revisit intent not yet followed by a visit.
    pending_intent_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    refresh_at: Mapped[float | None] = mapped_column(Float, nullable=True, index=True)
    updated_at: Mapped[float] = mapped_column(Float)
    # What the signals read of the history, kept up to date per event (voc_profile.summary);
    # NULL (not built yet, or invalidated by a merge): readers use the history itself. Read by
    # the hot paths' own statements only: deferred, so listing customers does not load it.
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True, deferred=True)

    __table_args__ = (
        Index("ix_signals_repeat", "repeat_issue", "customer_id"),
        Index("ix_signals_swing", "score_swing", "customer_id"),
        Index("ix_signals_low", "low_satisfaction", "customer_id"),
        Index("ix_signals_churn", "churn_risk", "customer_id"),
        Index("ix_signals_complaints", "complaint_count_90d", "customer_id"),
    )


class CustomerMerge(Base):
    """Two customers found to be one person; everything moved is listed so an admin can undo."""

    __tablename__ = "customer_merges"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    survivor_id: Mapped[str] = mapped_column(String(36), index=True)
    merged_id: Mapped[str] = mapped_column(String(36), index=True)
    identifiers: Mapped[list[list[str]]] = mapped_column(JSON, default=list)
    feedback_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    visit_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    # Survivor attributes that were empty and filled from the merged customer (undo clears them).
    filled: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    trigger: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[float] = mapped_column(Float)
    undone_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    undone_by: Mapped[str | None] = mapped_column(String(100), nullable=True)


class AlertHistory(Base):
    """Alerts raised about this customer's feedback and their outcomes (from voc.alert.*)."""

    __tablename__ = "alert_history"

    alert_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    feedback_id: Mapped[str] = mapped_column(String(36), index=True)
    customer_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    store_id: Mapped[str] = mapped_column(String(64))
    priority: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class OutreachAssignment(Base):
    """A customer of an outreach list given to a staff member of a store to contact (#20).

    `active_key` is `<customer>:<store>` while the assignment is open or in progress and NULL
    once done or cancelled: its unique index allows one live assignment per customer and store
    (NULLs never collide, on SQLite and PostgreSQL alike)."""

    __tablename__ = "outreach_assignments"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    list_kind: Mapped[str] = mapped_column(String(32))  # the signal of the list it came from
    store_id: Mapped[str] = mapped_column(String(64))
    assignee_id: Mapped[str] = mapped_column(String(64))
    assignee_name: Mapped[str] = mapped_column(String(100))  # from the directory, when assigned
    assigned_by: Mapped[str] = mapped_column(String(100))  # the actor: staff:<id> or admin
    assigned_at: Mapped[float] = mapped_column(Float)
    due_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    status: Mapped[str] = mapped_column(String(16))  # open | in_progress | done | cancelled
    active_key: Mapped[str | None] = mapped_column(String(120), nullable=True, unique=True)
    updated_at: Mapped[float] = mapped_column(Float)

    __table_args__ = (
        Index("ix_outreach_store", "store_id", "assigned_at"),
        Index("ix_outreach_assignee", "assignee_id", "status"),
    )


class OutreachContact(Base):
    """One attempt to reach the customer of an assignment: channel, outcome, a note (never
    logged), who and when."""

    __tablename__ = "outreach_contacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    assignment_id: Mapped[str] = mapped_column(
        ForeignKey("outreach_assignments.id", ondelete="CASCADE"), index=True
    )
    channel: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(String(500), default="")
    contacted_by: Mapped[str] = mapped_column(String(100))
    contacted_at: Mapped[float] = mapped_column(Float)


class AuditEntry(Base):
    """Who read or changed personal data: never the data itself, only ids and what was done
    (the platform's audit table, `voc_platform.audit`; a customer is the target
    `customer:<id>`)."""

    __table__ = audit_table


# Core handles on the tables, for the prepared statements (`voc_platform.dbsync`) of the hot paths.
customers_table = Base.metadata.tables["customers"]
identifiers_table = Base.metadata.tables["customer_identifiers"]
visits_table = Base.metadata.tables["visits"]
history_table = Base.metadata.tables["feedback_history"]
signals_table = Base.metadata.tables["customer_signals"]
alerts_table = Base.metadata.tables["alert_history"]
