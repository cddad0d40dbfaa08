"""The feedback service's tables. It owns them; no other service reads them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from voc_feedback.classification import UNCERTAIN_BELOW
from voc_platform.tables import ServiceBase


class Base(ServiceBase, DeclarativeBase):
    """The feedback service's tables, the platform's among them (`Base.platform_tables`)."""


outbox_table, processed_table, revocations_table, audit_table = Base.platform_tables


class ApiKey(Base):
    """A store app's key: only its SHA-256 is kept; the key itself is shown once."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    store_ids: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[float] = mapped_column(Float)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    # Rotation: the old key keeps working until expires_at (the grace period), then stops.
    expires_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    replaced_by: Mapped[str | None] = mapped_column(String(36), nullable=True)


class Store(Base):
    """What feedback knows about a store: its name and area, for the area filter and dashboard.

    Set by the CX admin (`PUT /v1/admin/stores`); notify keeps its own directory.
    """

    __tablename__ = "stores"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    area_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    updated_at: Mapped[float] = mapped_column(Float)


class Feedback(Base):
    __tablename__ = "feedback"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    store_id: Mapped[str] = mapped_column(String(64), index=True)
    channel: Mapped[str] = mapped_column(String(32))
    text: Mapped[str | None] = mapped_column(Text, nullable=True)
    language: Mapped[str] = mapped_column(String(8))
    sentiment: Mapped[str] = mapped_column(String(16))
    score: Mapped[float] = mapped_column(Float)
    category: Mapped[str] = mapped_column(String(32), index=True)
    severity: Mapped[str] = mapped_column(String(16))
    explanation: Mapped[list[str]] = mapped_column(JSON)
    # The learned classifier's calibrated confidence and version (#17); None on older rows.
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True, default=None)
    category_confidence: Mapped[float | None] = mapped_column(Float, nullable=True, default=None)
    model_version: Mapped[str | None] = mapped_column(String(64), nullable=True, default=None)
    csat: Mapped[int | None] = mapped_column(Integer, nullable=True)
    nps: Mapped[int | None] = mapped_column(Integer, nullable=True)
    ces: Mapped[int | None] = mapped_column(Integer, nullable=True)
    revisit_intent: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    touchpoint: Mapped[str | None] = mapped_column(String(64), nullable=True)
    occurred_at: Mapped[float] = mapped_column(Float)
    received_at: Mapped[float] = mapped_column(Float, index=True)
    # Identifiers as submitted (personal data: redacted when the customer is erased).
    customer: Mapped[dict[str, Any]] = mapped_column(JSON)
    customer_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    api_key_id: Mapped[str] = mapped_column(String(36))
    # Loop timestamps (first occurrence), so KPIs need no timeline scan.
    alerted_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    acknowledged_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    resolved_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    escalated: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The priority of the plan its alert carries (urgent, normal, info), from `voc.alert.created`;
    # None until alerted. An info plan (praise) is FYI, not an open case (`cases.OPEN_CASE`).
    priority: Mapped[str | None] = mapped_column(String(16), nullable=True, default=None)
    # A follow-up answered unhappy opens a new item linked to the case it reopens.
    reopens_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    # When what the customer and staff wrote was removed (erasure, or `VOC_RETENTION_DAYS` after
    # it arrived): the numbers and steps stay. None: kept.
    redacted_at: Mapped[float | None] = mapped_column(Float, nullable=True, default=None)

    # The retention pass reads the oldest items not yet redacted, by this index alone.
    __table_args__ = (Index("ix_feedback_retention", "redacted_at", "received_at"),)

    @property
    def uncertain(self) -> bool:
        """The classifier's confidence is too low to trust (#17); an item classified before
        confidences were kept is not. The API, the event and the analytics all say this."""
        return self.confidence is not None and self.confidence < UNCERTAIN_BELOW


class TimelineEntry(Base):
    """Who did what to a feedback case, and when."""

    __tablename__ = "feedback_timeline"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    feedback_id: Mapped[str] = mapped_column(ForeignKey("feedback.id", ondelete="CASCADE"))
    at: Mapped[float] = mapped_column(Float)
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str | None] = mapped_column(String(64), nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    event_id: Mapped[str | None] = mapped_column(String(64), nullable=True)

    __table_args__ = (Index("ix_timeline_feedback", "feedback_id", "at"),)


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"

    api_key_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    feedback_id: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[float] = mapped_column(Float, index=True)


class Target(Base):
    """A target for one metric of a store or an area (#20 §5); a store's own target overrides
    its area's. The direction (at least / at most) comes with the metric (`voc_feedback.targets`)."""

    __tablename__ = "targets"

    place_kind: Mapped[str] = mapped_column(String(8), primary_key=True)  # store | area
    place_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    metric: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[float] = mapped_column(Float)
    updated_by: Mapped[str] = mapped_column(String(100))  # the actor: staff:<id> or admin
    updated_at: Mapped[float] = mapped_column(Float)


class FollowUp(Base):
    """The one-time follow-up survey of a resolved case (`/f/{token}`)."""

    __tablename__ = "follow_ups"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    feedback_id: Mapped[str] = mapped_column(
        ForeignKey("feedback.id", ondelete="CASCADE"), unique=True, index=True
    )
    language: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    answered_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    csat: Mapped[int | None] = mapped_column(Integer, nullable=True)
    satisfied: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    revisit_intent: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    reopened_feedback_id: Mapped[str | None] = mapped_column(String(36), nullable=True)


class ClassificationCorrection(Base):
    """A person's correction of an item's sentiment and/or category (#17): the item's row then
    carries the corrected labels (what every list, report and export reads); this keeps who,
    when, what it was before and which model was corrected, one row per correction (the latest
    wins), and is what `GET /v1/classifier/corrections` hands to training."""

    __tablename__ = "classification_corrections"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # uuid7: ordered in time
    feedback_id: Mapped[str] = mapped_column(ForeignKey("feedback.id", ondelete="CASCADE"))
    store_id: Mapped[str] = mapped_column(String(64))
    sentiment: Mapped[str | None] = mapped_column(String(16), nullable=True)  # None: not corrected
    category: Mapped[str | None] = mapped_column(String(32), nullable=True)
    previous_sentiment: Mapped[str] = mapped_column(String(16))
    previous_category: Mapped[str] = mapped_column(String(32))
    model_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    corrected_by: Mapped[str] = mapped_column(String(64))  # staff id, or "admin" (the admin token)
    corrected_at: Mapped[float] = mapped_column(Float)

    __table_args__ = (
        Index("ix_corrections_feedback", "feedback_id", "corrected_at"),
        Index("ix_corrections_at", "corrected_at"),
    )


class PlanAdherence(Base):
    """How an alert's plan was carried out (#18), from `voc.alert.resolved`: the steps ticked
    done in the staff app before it was resolved, of how many, per alert (one row however many
    feedback items the alert answered)."""

    __tablename__ = "plan_adherence"

    alert_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    store_id: Mapped[str] = mapped_column(String(64), index=True)
    playbook_id: Mapped[str] = mapped_column(String(80))
    steps_done: Mapped[int] = mapped_column(Integer)
    steps_total: Mapped[int] = mapped_column(Integer)
    resolved_at: Mapped[float] = mapped_column(Float, index=True)


class ClassifierModel(Base):
    """A classifier version in the registry (`model_registry`): uploaded as a candidate, then
    active (at most one row: the version every replica serves) and retired when another takes
    over. No active row: the model committed in the package serves."""

    __tablename__ = "classifier_models"
    __table_args__ = (
        Index(
            "uq_classifier_models_active",
            "status",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
    )

    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[float] = mapped_column(Float)
    created_by: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # candidate | active | retired
    # The gate's figures: the candidate's and the baseline's, scored in one run (gate.py).
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    training_rows: Mapped[int] = mapped_column(Integer)  # corrections included
    # model.npz + model.json (+ gate.json), zipped, ~2.4 MB: loaded only when asked for.
    bundle: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    promoted_at: Mapped[float | None] = mapped_column(Float, nullable=True)  # last time it became active
