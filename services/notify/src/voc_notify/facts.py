"""What an alert is made from, as typed values: the feedback, the customer context and the plan.

Built from the event and the gRPC replies (`events.py`, `clients.py`) or the built-in plan
(`defaults.py`), handed from step to step as they are, and turned into JSON once, where an alert
row stores them (`as_stored`), which is also what the REST API serves. Frozen slotted
dataclasses: alert creation is the hot path, so no validation beyond what the proto already
guarantees.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from voc_notify.models import Store
from voc_platform.records import fields_of

# What the alert's `feedback` column and a `related_feedback` item keep of a feedback, in the
# order they are stored; `lock_text` only when set.
_STORED_FEEDBACK = (
    "id", "store_id", "channel", "text", "lock_text", "category", "severity", "sentiment", "score",
    "language", "touchpoint", "ratings", "received_at_ms", "reopens_id",
)  # fmt: skip
_RELATED_FEEDBACK = ("id", "text", "lock_text", "channel", "severity", "ratings", "received_at_ms")
_CLASSIFICATION = ("sentiment", "category", "confidence", "category_confidence", "model_version", "uncertain")


@dataclass(frozen=True, slots=True)
class Feedback:
    """The feedback item as notify uses it (`FeedbackReceived`: its facts and text)."""

    id: str
    category: str
    store_id: str = ""
    channel: str = ""
    text: str = ""
    severity: str = ""
    sentiment: str = ""
    score: float = 0.0
    language: str = ""
    touchpoint: str = ""
    # The ratings that were given (csat, nps, ces), as the proto's JSON form names them.
    ratings: Mapping[str, int] = field(default_factory=dict)
    received_at_ms: int = 0
    # How sure the classifier was (#17): None when the event carried no confidence (a producer
    # from before it); `uncertain` as the feedback service decided it (confidence < 0.6).
    confidence: float | None = None
    category_confidence: float | None = None
    model_version: str = ""
    uncertain: bool = False
    # The text with the customer's names masked (the name given with the feedback and the one
    # on file), for the lock screen and the pattern list (#18); "" when no name occurs in it.
    lock_text: str = ""
    # The case an unhappy follow-up answer reopens with this item ("" for a new complaint).
    reopens_id: str = ""

    def quoted(self) -> str:
        """What a lock screen may quote of the text (masked further by `mask_text`)."""
        return self.lock_text or self.text

    def as_stored(self) -> dict[str, Any]:
        """The alert's `feedback` column."""
        return self._stored(_STORED_FEEDBACK)

    def as_related(self) -> dict[str, Any]:
        """One item of `related_feedback`: a repeat complaint folded into an open alert."""
        return self._stored(_RELATED_FEEDBACK)

    def _stored(self, names: tuple[str, ...]) -> dict[str, Any]:
        stored = fields_of(self, names)
        stored["ratings"] = dict(self.ratings)
        if not self.lock_text:
            del stored["lock_text"]
        if not self.reopens_id:
            stored.pop("reopens_id", None)
        return stored

    def classification(self) -> dict[str, Any]:
        """The alert's `classification` column: what the classifier said and how sure it was."""
        return {**fields_of(self, _CLASSIFICATION), "model_version": self.model_version or None}


@dataclass(frozen=True, slots=True)
class Visit:
    store_id: str
    visited_at_ms: int
    amount: float


@dataclass(frozen=True, slots=True)
class Reason:
    signal: str
    reason: str  # in English
    reason_ko: str = ""  # in Korean (the staff app shows each staff member theirs)


@dataclass(frozen=True, slots=True)
class RecentContact:
    """One of the customer's earlier contacts (profile's `RecentContact`): the staff app's
    timeline. The store's name is added when the alert is read (notify's directory)."""

    feedback_id: str
    channel: str
    store_id: str
    occurred_at_ms: int
    category: str
    sentiment: str
    status: str
    outcome: str
    excerpt: str  # masked by profile, at most 80 characters

    def as_stored(self) -> dict[str, Any]:
        return {
            "feedback_id": self.feedback_id,
            "channel": self.channel,
            "store_id": self.store_id,
            "occurred_at_ms": self.occurred_at_ms,
            "category": self.category,
            "sentiment": self.sentiment,
            "status": self.status,
            "outcome": self.outcome or None,
            "excerpt": self.excerpt,
        }


@dataclass(frozen=True, slots=True)
class HouseholdMember:
    customer_id: str
    masked_name: str
    relation: str


@dataclass(frozen=True, slots=True)
class Signals:
    repeat_issue: bool = False
    repeat_counts: Mapping[str, int] = field(default_factory=dict)
    score_swing: bool = False
    score_swing_delta: float = 0.0
    complaint_count_90d: int = 0
    chronic_complainer: bool = False
    low_satisfaction: bool = False
    churn_risk: bool = False
    vip: bool = False
    reasons: tuple[Reason, ...] = ()


@dataclass(frozen=True, slots=True)
class CustomerContext:
    """What staff may see of the customer: masked identity, tier, signals, last visits.
    `known` is False for anonymous feedback and when profile could not be asked."""

    known: bool = False
    customer_id: str | None = None
    masked_name: str = ""
    masked_phone: str = ""
    tier: str = ""
    lifetime_value: float = 0.0
    feedback_count: int = 0
    mean_csat: float | None = None
    last_visits: tuple[Visit, ...] = ()
    signals: Signals = field(default_factory=Signals)
    # The earlier contacts across channels and stores, newest first (at most 5), and the
    # customer's place in a household (owner | driver | family_member) with its other members.
    recent_contacts: tuple[RecentContact, ...] = ()
    household_relation: str = ""
    household: tuple[HouseholdMember, ...] = ()
    # The name on file (the plan is rendered with it): never stored in `context` (as_stored),
    # only in the alert's `customer_name` for erasure.
    name: str = ""

    def repeat_count(self, category: str) -> int:
        return self.signals.repeat_counts.get(category, 0)

    def as_stored(self) -> dict[str, Any]:
        """The alert's `context` column (served as `customer`)."""
        if not self.known:
            return {"known": False}
        sig = self.signals
        return {
            "known": True,
            "customer_id": self.customer_id,
            "masked_name": self.masked_name,
            "masked_phone": self.masked_phone,
            "tier": self.tier,
            "lifetime_value": self.lifetime_value,
            "feedback_count": self.feedback_count,
            "mean_csat": self.mean_csat,
            "last_visits": [
                {"store_id": v.store_id, "visited_at_ms": v.visited_at_ms, "amount": v.amount}
                for v in self.last_visits
            ],
            "signals": {
                "repeat_issue": sig.repeat_issue,
                "repeat_counts": dict(sig.repeat_counts),
                "score_swing": sig.score_swing,
                "score_swing_delta": sig.score_swing_delta,
                "complaint_count_90d": sig.complaint_count_90d,
                "chronic_complainer": sig.chronic_complainer,
                "low_satisfaction": sig.low_satisfaction,
                "churn_risk": sig.churn_risk,
                "vip": sig.vip,
                "reasons": [
                    {"signal": r.signal, "reason": r.reason, "reason_ko": r.reason_ko} for r in sig.reasons
                ],
            },
            "recent_contacts": [c.as_stored() for c in self.recent_contacts],
            "household": {
                "relation": self.household_relation,
                "members": [
                    {"customer_id": m.customer_id, "masked_name": m.masked_name, "relation": m.relation}
                    for m in self.household
                ],
            }
            if self.household_relation or self.household
            else None,
        }

    @classmethod
    def from_stored(cls, stored: Mapping[str, Any] | None) -> CustomerContext:
        """The parts of a stored `context` that the push text reads (who, tier, repeats)."""
        if not stored or not stored.get("known"):
            return UNKNOWN_CUSTOMER
        signals = stored.get("signals") or {}
        return cls(
            known=True,
            customer_id=stored.get("customer_id"),
            masked_name=stored.get("masked_name") or "",
            tier=stored.get("tier") or "",
            signals=Signals(repeat_counts=signals.get("repeat_counts") or {}),
        )


UNKNOWN_CUSTOMER = CustomerContext()


@dataclass(frozen=True, slots=True)
class PlanStep:
    text: str
    role: str


@dataclass(frozen=True, slots=True)
class Sla:
    ack_seconds: int = 0
    resolve_seconds: int = 0


@dataclass(frozen=True, slots=True)
class EscalationStep:
    """Page `roles` when the alert is still unacknowledged `after_seconds` after it went out."""

    after_seconds: int
    roles: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Compensation:
    max_amount: float
    currency: str
    authority: str


@dataclass(frozen=True, slots=True)
class RunnerUp:
    playbook_id: str
    specificity: int


@dataclass(frozen=True, slots=True)
class PlanTexts:
    """A plan's texts in another language (its steps in the plan's order)."""

    language: str
    title: str
    steps: tuple[str, ...]
    script: str


@dataclass(frozen=True, slots=True)
class MatchedCondition:
    """One condition the plan (or a modifier of it) matched on, and the fact it was checked
    against: the staff app words it in its reader's language."""

    key: str
    values: tuple[str, ...]
    actual: str = ""
    modifier: str = ""

    def as_stored(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "values": list(self.values),
            "actual": self.actual,
            "modifier": self.modifier,
        }


@dataclass(frozen=True, slots=True)
class Plan:
    """The action plan (actions' `Plan`, or the built-in one): what staff do, whom to page first,
    the SLA and the escalation ladder."""

    playbook_id: str
    version: int = 0
    title: str = ""
    priority: str = "normal"
    steps: tuple[PlanStep, ...] = ()
    script: str = ""
    sla: Sla | None = None
    notify_roles: tuple[str, ...] = ()
    escalation: tuple[EscalationStep, ...] = ()
    compensation: Compensation | None = None
    matched_because: tuple[str, ...] = ()
    runners_up: tuple[RunnerUp, ...] = ()
    language: str = ""
    modifiers: tuple[str, ...] = ()
    translations: tuple[PlanTexts, ...] = ()
    matched: tuple[MatchedCondition, ...] = ()

    def as_stored(self) -> dict[str, Any]:
        """The alert's `plan` column: the proto's JSON form (field names as in the proto, every
        field printed, `sla` only when set, `compensation` null when absent)."""
        stored: dict[str, Any] = {
            "playbook_id": self.playbook_id,
            "version": self.version,
            "title": self.title,
            "priority": self.priority,
            "steps": [{"text": s.text, "role": s.role} for s in self.steps],
            "script": self.script,
        }
        if self.sla is not None:
            stored["sla"] = {"ack_seconds": self.sla.ack_seconds, "resolve_seconds": self.sla.resolve_seconds}
        c = self.compensation
        stored.update(
            notify_roles=list(self.notify_roles),
            escalation=[{"after_seconds": e.after_seconds, "roles": list(e.roles)} for e in self.escalation],
            compensation=None
            if c is None
            else {"max_amount": c.max_amount, "currency": c.currency, "authority": c.authority},
            matched_because=list(self.matched_because),
            runners_up=[
                {"playbook_id": r.playbook_id, "specificity": r.specificity} for r in self.runners_up
            ],
            language=self.language,
            modifiers=list(self.modifiers),
            translations=[
                {"language": t.language, "title": t.title, "steps": list(t.steps), "script": t.script}
                for t in self.translations
            ],
            matched=[m.as_stored() for m in self.matched],
        )
        return stored


@dataclass(frozen=True, slots=True)
class AlertInput:
    """Everything a new alert (or a repeat complaint folded into one) is made from."""

    feedback: Feedback
    # A transient row (read with the event, or a stand-in for a store not in the directory).
    store: Store
    customer: CustomerContext
    plan: Plan
    language: str
    degraded: tuple[str, ...] = ()
    # W3C traceparent of the consumer span, so the pushes join the feedback's trace.
    traceparent: str | None = None
