"""The typed values the steps hand each other: a feedback item of the history, a signal's reason,
and what the signals and the context read of a customer, a visit and a household member."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from voc.common.v1 import common_pb2
from voc_platform.records import fields_of
from voc_platform.taxonomy import is_complaint


class FeedbackItem(NamedTuple):
    """The facts of one feedback item that the signals and the context read. The field order is
    the order of a row kept in the summary (`summary.FIELDS`): `list(item)` is that row."""

    feedback_id: str
    store_id: str
    channel: str
    category: str
    sentiment: str
    csat: int | None
    nps: int | None
    revisit_intent: bool | None
    occurred_at: float
    # Set on a follow-up survey's unhappy answer: the feedback id of the case it reopened. The
    # answer is the customer's verdict on that case, not a new complaint (`taxonomy.is_complaint`).
    reopens_id: str | None = None

    @property
    def complaint(self) -> bool:
        """Whether the item counts as a complaint of its own (`voc_platform.taxonomy.is_complaint`)."""
        return is_complaint(self.sentiment, self.reopens_id)


def feedback_item(
    facts: common_pb2.FeedbackFacts, *, store_id: str = "", channel: str = "", reopens_id: str | None = None
) -> FeedbackItem | None:
    """The item of a feedback message; None when it names no feedback. The place (store,
    channel) only when given: the context of a feedback being handled shows it without one;
    `reopens_id` the case a follow-up answer reopened (`FeedbackReceived.reopens_id`)."""
    if not facts.feedback_id:
        return None
    ratings = facts.ratings
    # Positional: a NamedTuple built by keyword costs twice as much, on every context call.
    return FeedbackItem(
        facts.feedback_id,
        store_id,
        channel,
        facts.category,
        facts.sentiment,
        ratings.csat if ratings.HasField("csat") else None,
        ratings.nps if ratings.HasField("nps") else None,
        facts.revisit_intent if facts.HasField("revisit_intent") else None,
        facts.occurred_at_ms / 1000,
        reopens_id or None,
    )


class RecentContact(NamedTuple):
    """One of the customer's earlier contacts as staff see it: where and when, what about, how
    its case went (`status`: received | alerted | acknowledged | resolved, with the outcome),
    a masked excerpt of what they said, and for a follow-up answer the case it reopened."""

    feedback_id: str
    channel: str
    store_id: str
    occurred_at: float
    category: str
    sentiment: str
    status: str
    outcome: str | None
    excerpt: str
    # A follow-up answer: the case it reopened (shown as such, not counted as a complaint).
    reopens_id: str | None = None


@dataclass(slots=True)  # not frozen: a frozen __init__ costs 3x, and every context builds some
class Reason:
    """Why a signal is set, with the feedback behind it. Stored as JSON (orjson writes the
    dataclass as an object with these keys) and answered as is."""

    signal: str
    reason: str  # in English
    feedback_ids: list[str]
    reason_ko: str = ""  # the same reason in Korean (staff read it in their own language)

    @classmethod
    def of(cls, stored: dict[str, Any]) -> Reason:
        """A reason as stored in `customer_signals.reasons` (stored before #18: no Korean)."""
        return cls(stored["signal"], stored["reason"], stored["feedback_ids"], stored.get("reason_ko", ""))

    def to_dict(self) -> dict[str, Any]:
        return fields_of(self, ("signal", "reason", "feedback_ids", "reason_ko"))


class MemberFacts(Protocol):
    """What the context reads of a household member (and, with more, of the customer)."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str | None: ...
    @property
    def household_relation(self) -> str | None: ...
    @property
    def tier(self) -> str: ...


class CustomerFacts(MemberFacts, Protocol):
    """What the signals and the context read of a customer (a Core row, an ORM row, or a
    customer created just now)."""

    @property
    def lifetime_value(self) -> float: ...
    @property
    def preferred_language(self) -> str | None: ...
    @property
    def home_store_id(self) -> str | None: ...
    @property
    def contact_consent(self) -> bool | None: ...
    @property
    def household_id(self) -> str | None: ...


class VisitFacts(Protocol):
    @property
    def store_id(self) -> str: ...
    @property
    def visited_at(self) -> float: ...
    @property
    def amount(self) -> float: ...
