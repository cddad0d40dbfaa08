"""The profile service's tables: customers, their identifiers, visits and feedback history."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from voc_platform.outbox import define_platform_tables


class Base(DeclarativeBase):
    pass


outbox_table, processed_table = define_platform_tables(Base.metadata)


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    tier: Mapped[str] = mapped_column(String(16), default="basic")
    lifetime_value: Mapped[float] = mapped_column(Float, default=0.0)
    preferred_language: Mapped[str | None] = mapped_column(String(8), nullable=True)
    home_store_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    contact_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


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

    __table_args__ = (Index("ix_visits_customer", "customer_id", "visited_at"),)


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

    __table_args__ = (Index("ix_history_customer", "customer_id", "occurred_at"),)
