"""The profile bodies: CRM customers (JSON API, CSV or JSON Lines import), their upsert results,
and POS visits (import)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from voc_platform.fields import DirectoryId, OptionalDirectoryId
from voc_platform.moments import checked_event_time
from voc_profile.identity import CHANNEL_USER_ID_MAX, EMAIL_MAX, LOYALTY_ID_MAX, NAME_MAX, PHONE_MAX
from voc_profile.signals import SIGNALS

Tier = Annotated[str, Field(pattern=r"^(basic|silver|gold|vip)$")]
Relation = Annotated[str, Field(pattern=r"^(owner|driver|family_member)$")]
# The identifiers a customer record and a visit row may carry, as raw input (normalised later).
# Their limits are identity's, which gRPC and events are held to too.
LoyaltyId = Annotated[str, Field(max_length=LOYALTY_ID_MAX)]
Phone = Annotated[str, Field(max_length=PHONE_MAX)]
Email = Annotated[str, Field(max_length=EMAIL_MAX)]


class CustomerIn(BaseModel):
    """One CRM customer (JSON API, CSV row or JSON Lines line): identifiers and attributes."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    loyalty_id: LoyaltyId | None = None
    phone: Phone | None = None
    email: Email | None = None
    app_user_id: Annotated[str, Field(max_length=CHANNEL_USER_ID_MAX)] | None = None
    name: Annotated[str, Field(max_length=NAME_MAX)] | None = None
    tier: Tier | None = None
    lifetime_value: Annotated[float, Field(ge=0, le=1e13, allow_inf_nan=False)] | None = None
    preferred_language: Annotated[str, Field(pattern=r"^(ko|en)$")] | None = None
    home_store_id: OptionalDirectoryId = None
    contact_consent: bool | None = None
    household_id: Annotated[str, Field(max_length=64)] | None = None
    household_relation: Relation | None = None


class CustomersIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customers: Annotated[list[CustomerIn], Field(min_length=1, max_length=1000)]


class UpsertResult(BaseModel):
    index: int
    customer_id: str | None
    created: bool
    error: str | None = None


class VisitIn(BaseModel):
    """One POS visit: who (customer_id or an identifier), where, when, how much."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    customer_id: Annotated[str, Field(max_length=36)] | None = None
    loyalty_id: LoyaltyId | None = None
    phone: Phone | None = None
    email: Email | None = None
    store_id: DirectoryId
    visited_at: str | float  # ISO 8601 with an offset, or epoch seconds (`importer.parse_time`)
    amount: Annotated[float, Field(ge=0, le=1e12, allow_inf_nan=False)] = 0.0

    @field_validator("visited_at", mode="before")
    @classmethod
    def _not_a_boolean(cls, value: object) -> object:
        # A JSON Lines `true` would be read as 1.0 (epoch 1970) and refused for its date.
        if isinstance(value, bool):
            raise ValueError("visited_at must be a string or a number, not a boolean")
        return value


class CheckinCustomer(BaseModel):
    """Who checked in: at least one identifier."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    loyalty_id: LoyaltyId | None = None
    phone: Phone | None = None
    email: Email | None = None


CheckinChannel = Literal["pos", "kiosk", "app", "reservation", "web", "other"]


class CheckinIn(BaseModel):
    """A real-time check-in from a POS, kiosk, app or reservation system (#18)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    store_id: DirectoryId
    customer: CheckinCustomer
    occurred_at: datetime | None = None  # default: now
    amount: Annotated[float, Field(ge=0, le=1e12, allow_inf_nan=False)] | None = None
    channel: CheckinChannel = "pos"

    @field_validator("occurred_at")
    @classmethod
    def _a_real_moment(cls, value: datetime | None) -> datetime | None:
        return checked_event_time(value, field="occurred_at")


class CheckinAccepted(BaseModel):
    id: str
    customer_id: str
    heads_up: bool


class AssignmentIn(BaseModel):
    """A customer of an outreach list given to a staff member of a store (#20)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    customer_id: Annotated[str, Field(min_length=1, max_length=36)]
    # The list's signal; the enum documents them, `lists.check_signal` checks.
    list_kind: Annotated[str, Field(min_length=1, max_length=32, json_schema_extra={"enum": list(SIGNALS)})]
    store_id: DirectoryId
    assignee_id: Annotated[str, Field(min_length=1, max_length=64)]
    due_at: datetime | None = None


class ContactIn(BaseModel):
    """One attempt to reach the customer of an assignment."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    channel: Literal["phone", "sms", "email", "kakao", "in_store"]
    outcome: Literal["reached", "no_answer", "declined", "resolved", "callback"]
    note: Annotated[str, Field(max_length=500)] = ""
    contacted_at: datetime | None = None  # default: now
