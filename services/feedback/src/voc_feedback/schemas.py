"""Request and response bodies of the feedback REST API (DESIGN §5); the responses are built
from rows by their `of` constructors."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator, model_validator

from voc_feedback.personal import FREE_TEXT_KEYS, MAX_TEXT_CHARS, masked_text, shown_explanation
from voc_platform.fields import DirectoryId, OptionalDirectoryId, Sentiment
from voc_platform.masking import redact_card_and_resident_numbers
from voc_platform.moments import checked_event_time
from voc_platform.records import copy_fields

if TYPE_CHECKING:
    from voc_feedback.corrections import Correction
    from voc_feedback.models import ApiKey, Feedback, FollowUp, Store, TimelineEntry

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


_LAST_TS = 253402300799.0  # 9999-12-31T23:59:59Z, the last second a datetime holds


def _ts(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def clean_text(value: str) -> str:
    """NFC-normalise, one newline for each line break (a browser's form sends a textarea's as
    CRLF, two characters its `maxlength` counted as one), and strip control characters
    (keeping newlines and tabs)."""
    text = unicodedata.normalize("NFC", value).replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub("", text).strip()


def clean_long_text(value: str | None, field: str) -> str | None:
    """A customer's free text (`clean_text`): at most MAX_TEXT_CHARS as sent, None when empty,
    and without card or resident registration numbers: never stored, published or shown."""
    if value is None:
        return None
    cleaned = clean_text(value)
    if len(cleaned) > MAX_TEXT_CHARS:
        raise ValueError(f"{field} is longer than {MAX_TEXT_CHARS} characters")
    return redact_card_and_resident_numbers(cleaned) or None


class Channel(StrEnum):
    kiosk = "kiosk"
    app = "app"
    web = "web"
    survey = "survey"
    sms = "sms"
    email = "email"
    call_center = "call_center"
    chatbot = "chatbot"
    social = "social"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Ratings(Strict):
    csat: Annotated[int, Field(ge=1, le=5, strict=True)] | None = None
    nps: Annotated[int, Field(ge=0, le=10, strict=True)] | None = None
    ces: Annotated[int, Field(ge=1, le=7, strict=True)] | None = None

    def any(self) -> bool:
        return any(v is not None for v in (self.csat, self.nps, self.ces))


class CustomerIn(Strict):
    loyalty_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    phone: Annotated[str, Field(min_length=4, max_length=32, pattern=r"^\+?[0-9 ()\-.]+$")] | None = None
    email: Annotated[str, Field(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")] | None = None
    name: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    channel_user_id: Annotated[str, Field(min_length=1, max_length=128)] | None = None

    @field_validator("name")
    @classmethod
    def _clean_name(cls, value: str | None) -> str | None:
        return clean_text(value) if value is not None else None


class FeedbackIn(Strict):
    store_id: DirectoryId
    channel: Channel
    text: str | None = None
    ratings: Ratings | None = None
    customer: CustomerIn | None = None
    revisit_intent: StrictBool | None = None
    touchpoint: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    occurred_at: datetime | None = None
    language: Annotated[str, Field(pattern=r"^[a-z]{2}(-[A-Za-z]{2})?$")] | None = None

    @field_validator("text")
    @classmethod
    def _clean(cls, value: str | None) -> str | None:
        return clean_long_text(value, "text")

    @field_validator("occurred_at")
    @classmethod
    def _a_real_moment(cls, value: datetime | None) -> datetime | None:
        return checked_event_time(value, field="occurred_at")

    @model_validator(mode="after")
    def _needs_content(self) -> FeedbackIn:
        if not self.text and not (self.ratings and self.ratings.any()):
            raise ValueError("give at least text or one rating (csat, nps, ces)")
        return self


class Classification(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # read from a Feedback row

    language: str
    sentiment: str
    score: float
    category: str
    severity: str
    explanation: list[str]
    # Additive (#17): the learned model's calibrated confidence (0..1), its version, and whether
    # the confidence is too low to trust ("uncertain"); None / False on items classified before.
    confidence: float | None = None
    category_confidence: float | None = None
    model_version: str | None = None
    uncertain: bool = False

    @classmethod
    def of(cls, row: Feedback, *, shown_text: str | None = None) -> Classification:
        """`shown_text`: the masked text a reader without personal data sees; the explanation
        then quotes only words that text shows (it quoted the model's weighty words as typed:
        an e-mail's local part, half a resident number)."""
        found = cls.model_validate(row)
        if shown_text is None:
            return found
        return found.model_copy(update={"explanation": shown_explanation(found.explanation, shown_text)})


class TimelineOut(BaseModel):
    at: datetime
    kind: str
    actor: str | None
    detail: dict[str, Any]

    @classmethod
    def of(cls, entry: TimelineEntry, *, personal: bool = True) -> TimelineOut:
        """`personal` False: the free text people wrote on it (a resolution's note, an answer's
        comment) without the phone numbers and e-mails in it (`FeedbackSummary.of`)."""
        detail = entry.detail
        if not personal:
            detail = {
                k: masked_text(v) if k in FREE_TEXT_KEYS and isinstance(v, str) else v
                for k, v in detail.items()
            }
        # Clamped: a time stored before steps were checked (year 10^11) must not break the item.
        at = _ts(min(max(entry.at, 0.0), _LAST_TS))
        return cls(at=at, kind=entry.kind, actor=entry.actor, detail=detail)


#: The timeline details people write (the others are ids, outcomes and counts).


class FollowUpOut(BaseModel):
    url: str | None  # None once answered or expired (one-time), and always for a store key
    created_at: datetime
    expires_at: datetime
    answered_at: datetime | None
    csat: int | None
    satisfied: bool | None
    reopened_feedback_id: str | None

    @classmethod
    def of(cls, follow: FollowUp, *, url: str | None) -> FollowUpOut:
        return cls(
            url=url,
            created_at=_ts(follow.created_at),
            expires_at=_ts(follow.expires_at),
            answered_at=_ts(follow.answered_at) if follow.answered_at else None,
            csat=follow.csat,
            satisfied=follow.satisfied,
            reopened_feedback_id=follow.reopened_feedback_id,
        )


class FeedbackSummary(BaseModel):
    """One row of `GET /v1/feedback` (no timeline)."""

    id: str
    store_id: str
    channel: str
    text: str | None
    ratings: Ratings
    customer_id: str | None
    revisit_intent: bool | None
    touchpoint: str | None
    occurred_at: datetime
    received_at: datetime
    status: str
    classification: Classification
    reopens_id: str | None
    # The priority of the plan its alert carries (urgent, normal, info: FYI, no open case, as
    # the staff app's chip says); null until alerted.
    priority: str | None = None

    @classmethod
    def of(cls, row: Feedback, *, personal: bool = True) -> FeedbackSummary:
        """`personal` False (a reader without customer records, `Access.personal_data`): the
        phone numbers and e-mails in the text masked, no customer id."""
        shown = None if personal else masked_text(row.text) or ""
        hidden: dict[str, Any] = {} if shown is None else {"text": shown or None, "customer_id": None}
        classification = Classification.of(row, shown_text=shown)
        return copy_fields(
            cls,
            row,
            ratings=Ratings(csat=row.csat, nps=row.nps, ces=row.ces),
            occurred_at=_ts(row.occurred_at),
            received_at=_ts(row.received_at),
            classification=classification,
            **hidden,
        )


class CorrectionIn(Strict):
    """`POST /v1/feedback/{id}/corrections`: the corrected labels (at least one; checked against
    the taxonomy by `corrections.check_labels`, the one home of the rule)."""

    sentiment: Sentiment | None = None
    category: Annotated[str, Field(min_length=1, max_length=64)] | None = None


class CorrectionOut(BaseModel):
    """The correction in force (the latest): the labels it set (None: that one was not
    corrected), what they replaced, the model version corrected, who and when."""

    sentiment: str | None
    category: str | None
    previous_sentiment: str
    previous_category: str
    model_version: str | None
    by: str
    at: datetime

    @classmethod
    def of(cls, correction: Correction) -> CorrectionOut:
        return copy_fields(cls, correction, by=correction.corrected_by, at=_ts(correction.corrected_at))


class CorrectedOut(BaseModel):
    """The answer to a correction: the item's effective labels and the correction stored."""

    feedback_id: str
    sentiment: str
    category: str
    correction: CorrectionOut


class FeedbackOut(FeedbackSummary):
    """`GET /v1/feedback/{id}`: the list's row (its classification with any correction applied),
    its timeline, its follow-up survey and the correction in force."""

    timeline: list[TimelineOut]
    follow_up: FollowUpOut | None = None
    correction: CorrectionOut | None = None

    @classmethod
    def of(
        cls,
        row: Feedback,
        timeline: Sequence[TimelineEntry] = (),
        *,
        follow_up: FollowUpOut | None = None,
        correction: Correction | None = None,
        personal: bool = True,
    ) -> FeedbackOut:
        return cls(
            **FeedbackSummary.of(row, personal=personal).model_dump(),
            timeline=[TimelineOut.of(t, personal=personal) for t in timeline],
            follow_up=follow_up,
            correction=CorrectionOut.of(correction) if correction is not None else None,
        )


class FeedbackPage(BaseModel):
    items: list[FeedbackSummary]
    next_cursor: str | None


class Accepted(BaseModel):
    id: str
    status: str = "received"


class ApiKeyIn(Strict):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    store_ids: Annotated[list[DirectoryId], Field(min_length=1)]


class ApiKeyOut(BaseModel):
    id: str
    name: str
    prefix: str
    store_ids: list[str]
    created_at: datetime
    revoked_at: datetime | None
    expires_at: datetime | None = None
    replaced_by: str | None = None

    @classmethod
    def of(cls, row: ApiKey) -> ApiKeyOut:
        return copy_fields(
            cls,
            row,
            created_at=_ts(row.created_at),
            revoked_at=_ts(row.revoked_at) if row.revoked_at else None,
            expires_at=_ts(row.expires_at) if row.expires_at else None,
        )


class ApiKeyRotate(Strict):
    # How long the old key keeps working so store apps can switch without downtime.
    grace_seconds: Annotated[int, Field(ge=0, le=30 * 24 * 3600, strict=True)] = 24 * 3600


class StoreIn(Strict):
    id: DirectoryId
    name: Annotated[str, Field(min_length=1, max_length=200)]
    area_id: OptionalDirectoryId = None

    @field_validator("name")
    @classmethod
    def _clean_name(cls, value: str) -> str:
        cleaned = clean_text(value)
        if not cleaned:
            raise ValueError("name is empty after removing control characters")
        return cleaned


class StoreOut(BaseModel):
    id: str
    name: str
    area_id: str | None

    @classmethod
    def of(cls, row: Store) -> StoreOut:
        return cls(id=row.id, name=row.name, area_id=row.area_id)


class FollowUpAnswer(Strict):
    """The customer's answer to the follow-up survey (HTML form or JSON)."""

    csat: Annotated[int, Field(ge=1, le=5, strict=True)]
    revisit_intent: Annotated[bool | None, Field(strict=True)] = None  # true/false, not "on" or 1
    comment: str | None = None

    @field_validator("comment")
    @classmethod
    def _clean_comment(cls, value: str | None) -> str | None:
        return clean_long_text(value, "comment")


class ApiKeyCreated(ApiKeyOut):
    api_key: str  # shown once

    @classmethod
    def created(cls, row: ApiKey, key: str) -> ApiKeyCreated:
        return cls(**ApiKeyOut.of(row).model_dump(), api_key=key)


TargetMetric = Literal["nps", "csat", "ack_minutes", "resolve_minutes", "recovery_rate"]


class TargetIn(BaseModel):
    """One target of a store or an area (#20 §5); the direction comes with the metric."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    store_id: OptionalDirectoryId = None
    area_id: OptionalDirectoryId = None
    metric: TargetMetric
    value: Annotated[float, Field(allow_inf_nan=False)]
