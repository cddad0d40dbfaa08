from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    field_validator,
    model_validator,
)

from voc_notify.duty import HHMM_PATTERN, parse_hhmm
from voc_notify.lifecycle import OUTCOMES
from voc_notify.webhooks.catalog import EVENT_TYPES
from voc_notify.webhooks.signing import KEEP_PREVIOUS_MAX_SECONDS, KEEP_PREVIOUS_SECONDS
from voc_platform import taxonomy
from voc_platform.fields import MAX_RESOLUTION_NOTE_CHARS, DirectoryId, OptionalDirectoryId, Sentiment
from voc_platform.moments import checked_event_time
from voc_platform.timezones import known_zone

Role = Literal["staff", "shift_lead", "store_manager", "area_manager", "cx_admin", "analyst"]


def _time_of_day(value: str) -> str:
    parse_hhmm(value)  # raises ValueError with the reason, which pydantic reports per field
    return value


# The pattern is declared for clients and fuzzers; the check with its own message is parse_hhmm's.
TimeOfDay = Annotated[
    str,
    Field(max_length=5, json_schema_extra={"pattern": HHMM_PATTERN, "examples": ["22:00"]}),
    AfterValidator(_time_of_day),
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# An app install's own id (random, kept in the browser's IndexedDB): sessions are bound to it.
InstallId = Annotated[str, Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")]
RefreshTokenText = Annotated[str, Field(min_length=1, max_length=200)]


def _long_enough(password: str) -> str:
    if len(password.strip()) < 8:
        raise ValueError("a password needs at least 8 characters besides leading and trailing spaces")
    return password


# A password is taken exactly as typed: the models strip whitespace from text, and a password's
# leading or trailing spaces are part of it (a login with "  pw  " matched "pw").
GivenPassword = Annotated[str, StringConstraints(strip_whitespace=False, min_length=1, max_length=200)]
NewPassword = Annotated[
    str,
    StringConstraints(strip_whitespace=False, min_length=8, max_length=200),
    AfterValidator(_long_enough),
]


class LoginIn(Strict):
    email: Annotated[str, Field(min_length=3, max_length=254)]
    password: GivenPassword
    install_id: InstallId | None = None


class RefreshIn(Strict):
    refresh_token: RefreshTokenText
    install_id: InstallId | None = None


class LogoutIn(Strict):
    refresh_token: RefreshTokenText


class LanguageIn(Strict):
    language: Literal["ko", "en"]


class PasswordIn(Strict):
    current_password: GivenPassword
    new_password: NewPassword


class TokenOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # built from an `auth.Session`

    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int
    refresh_token: str
    refresh_expires_in: int
    staff: dict[str, object]


class InstallReportIn(Strict):
    """What the staff app reports of itself on start and on every change (#23)."""

    install_id: InstallId
    permission: Literal["granted", "denied", "default", "unsupported"]
    push: Literal["subscribed", "none", "expired", "error", "unsupported"]
    app_version: Annotated[str, Field(min_length=1, max_length=32)]
    standalone: StrictBool = False
    device_id: Annotated[str, Field(max_length=36)] | None = None


class Keys(Strict):
    p256dh: Annotated[str, Field(min_length=1, max_length=200)]
    auth: Annotated[str, Field(min_length=1, max_length=64)]


class SubscriptionIn(BaseModel):
    # Browsers add fields (expirationTime); accept and ignore them.
    model_config = ConfigDict(extra="ignore")

    endpoint: Annotated[str, Field(min_length=8, max_length=2048)]
    keys: Keys
    expirationTime: int | None = None  # noqa: N815 - the browser's name
    install_id: InstallId | None = None  # the app install subscribing (#23)


class ResolveIn(Strict):
    outcome: Literal[OUTCOMES]  # type: ignore[valid-type]
    note: Annotated[str, Field(max_length=MAX_RESOLUTION_NOTE_CHARS)] = ""


class CorrectionIn(Strict):
    """The staff app's correction of an alert's labels (#17): at least one; feedback checks them
    against the taxonomy (the one home of that rule) and answers 422 for an unknown one."""

    sentiment: Sentiment | None = None
    category: Annotated[str, Field(min_length=1, max_length=64)] | None = None


class StepIn(Strict):
    done: StrictBool


class ReceiptIn(Strict):
    kind: Literal["shown", "opened"]
    device_id: Annotated[str, Field(max_length=64)] | None = None


class StoreIn(Strict):
    id: DirectoryId
    name: Annotated[str, Field(min_length=1, max_length=200)]
    area_id: OptionalDirectoryId = None
    format: Annotated[str, Field(max_length=32)] | None = None
    region: Annotated[str, Field(max_length=64)] | None = None
    timezone: Annotated[str, Field(max_length=64)] = "Asia/Seoul"
    language: Literal["ko", "en"] = "ko"
    # Quiet hours (local HH:MM, may wrap midnight): non-urgent pushes are held until they end.
    quiet_start: TimeOfDay | None = None
    quiet_end: TimeOfDay | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        # known_zone also refuses an area ("America") and names ZoneInfo cannot open at all.
        if known_zone(value) is None:
            raise ValueError(f"{value[:100]!r} is not an IANA time zone (e.g. Asia/Seoul)")
        return value

    @model_validator(mode="after")
    def _quiet_pair(self) -> StoreIn:
        if (self.quiet_start is None) != (self.quiet_end is None):
            raise ValueError("quiet_start and quiet_end go together")
        if self.quiet_start is not None and self.quiet_start == self.quiet_end:
            raise ValueError("quiet hours need different start and end times")
        return self


def _published_department(value: str) -> str:
    known = [d.id for d in taxonomy.current().departments]
    if value not in known:
        raise ValueError(f"unknown department {value!r}; known: {', '.join(known) or 'none'}")
    return value


#: A department of the published taxonomy (#20 §3).
DepartmentId = Annotated[str, Field(max_length=40), AfterValidator(_published_department)]


class StaffIn(Strict):
    id: DirectoryId
    name: Annotated[str, Field(min_length=1, max_length=100)]
    email: Annotated[str, Field(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
    # Required for someone new; for an existing member, left out (or null) keeps their password
    # (an edit of name, role, stores, language or active), given sets it anew (a reset).
    password: NewPassword | None = None
    role: Role
    store_ids: list[DirectoryId] = []
    area_id: OptionalDirectoryId = None
    # The language the staff member reads alerts and plans in; not given: theirs so far, or
    # for someone new their first store's language (ko without a store).
    language: Literal["ko", "en"] | None = None
    # false deactivates: no login, no alerts, the staff member's tokens revoked on every service
    active: StrictBool = True
    # A department of the published taxonomy: a copy of the alerts of the categories it owns.
    department_id: DepartmentId | None = None


class ShiftIn(Strict):
    weekday: Annotated[int, Field(ge=0, le=6, description="0 = Monday … 6 = Sunday")]
    starts: TimeOfDay
    ends: TimeOfDay

    @model_validator(mode="after")
    def _not_empty(self) -> ShiftIn:
        if self.starts == self.ends:
            raise ValueError("a shift needs different start and end times")
        return self


class OverrideIn(Strict):
    starts_on: dt.date
    ends_on: dt.date
    on_duty: StrictBool
    note: Annotated[str, Field(max_length=200)] = ""

    @model_validator(mode="after")
    def _ordered(self) -> OverrideIn:
        if self.ends_on < self.starts_on:
            raise ValueError("ends_on is before starts_on")
        if (self.ends_on - self.starts_on).days > 366:
            raise ValueError("an override covers at most a year")
        return self


def _event_types(value: list[str]) -> list[str]:
    from voc_notify.webhooks.catalog import EVENT_TYPES

    if "*" in value and len(value) > 1:
        raise ValueError('"*" (every type) stands alone')
    unknown = [t for t in value if t != "*" and t not in EVENT_TYPES]
    if unknown:
        raise ValueError(f'unknown event type {unknown[0]!r}; known: {", ".join(EVENT_TYPES)} or "*"')
    return list(dict.fromkeys(value))


class WebhookRecoverIn(Strict):
    """`POST /v1/admin/webhooks/{id}/recover`: send once more what failed since `since`."""

    since: dt.datetime

    @field_validator("since")
    @classmethod
    def _since(cls, value: dt.datetime) -> dt.datetime:
        checked = checked_event_time(value, field="since")
        assert checked is not None
        return checked


class WebhookRotateIn(Strict):
    """`POST /v1/admin/webhooks/{id}/rotate-secret`: how long the replaced secret still signs
    beside the new one (0: no longer at all, for a secret that leaked)."""

    keep_previous_seconds: Annotated[int, Field(ge=0, le=KEEP_PREVIOUS_MAX_SECONDS)] = KEEP_PREVIOUS_SECONDS


class WebhookIn(Strict):
    url: Annotated[str, Field(min_length=1, max_length=2048)]
    # The enum documents the types; `_event_types` checks them (and that "*" stands alone).
    events: Annotated[
        list[Annotated[str, Field(max_length=64, json_schema_extra={"enum": ["*", *EVENT_TYPES]})]],
        Field(min_length=1, max_length=20),
    ]
    description: Annotated[str, Field(max_length=500)] = ""
    format: Literal["standard", "slack", "teams"] = "standard"

    _events = field_validator("events")(classmethod(lambda cls, v: _event_types(v)))


class DeliveryReportIn(BaseModel):
    """What a gateway says became of one message (docs/NOTIFY.md, "Delivery reports"). Fields
    beyond these are passed over: a provider's report carries more than we read."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    # The id we gave the message: "follow-up.<feedback id>" (the SMS request's message_id).
    message_id: Annotated[str, Field(min_length=1, max_length=300)]
    status: Literal["delivered", "failed"]
    # The gateway's reason or code when it failed ("unreachable handset", "E-5001").
    error: Annotated[str, Field(max_length=300)] | None = None
    # What the report is of, when the sender knows: a mail provider's relay says "email". Unsaid,
    # it is of the channel the message last went by.
    channel: Literal["email", "sms"] | None = None


MAX_DELIVERY_REPORTS = 100
# A batch of them (a gateway that reports in batches); one report alone is a `DeliveryReportIn`.
DeliveryReportBatch = Annotated[list[DeliveryReportIn], Field(min_length=1, max_length=MAX_DELIVERY_REPORTS)]


class DeliveryReportsOut(BaseModel):
    """What became of the reports sent, each counted once."""

    recorded: int  # taken: the case timeline has them
    duplicates: int  # taken before (reports come at least once)
    unknown: int  # name no follow-up of ours (another system's message, a Message-ID of another domain)
    not_sent: int  # of a message never sent: nothing to report on
    ignored: int  # a mail that is no delivery report, or one naming no message (an auto-reply)


class MailSuppressionOut(BaseModel):
    """An address no follow-up is mailed to: its server refused it for good (a hard bounce)."""

    address_key: str  # HMAC of the address: what `DELETE` takes
    recipient: str  # masked
    customer_id: str | None
    feedback_id: str  # the follow-up whose mail bounced
    reason: str  # the server's codes, the rest masked
    suppressed_at: float  # epoch seconds
    expires_at: float  # mailed again after this (a year), unless it bounces again


class MailSuppressionsOut(BaseModel):
    suppressions: list[MailSuppressionOut]


class MailSuppressionSearchIn(Strict):
    """An address to look for, as the customer gives it (case and blanks around it aside): in
    the body, so it stays out of URLs and the logs of proxies on the way."""

    email: str = Field(min_length=1, max_length=254)
