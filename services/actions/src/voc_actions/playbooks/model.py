"""The data model of playbooks, facts, matches and plans."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from voc_actions.playbooks.template import Template
from voc_platform.records import fields_of

#: Lower sorts first: urgent beats normal beats info on a specificity tie.
PRIORITY_RANK: dict[str, int] = {"urgent": 0, "normal": 1, "info": 2}
WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
LANGUAGES: tuple[str, ...] = ("ko", "en")
#: What a playbook gives the plan of (#18): a feedback item (`plan`, the default), a store-level
#: spike of one category among several customers (`pattern`), or a customer with recent trouble
#: who has just arrived (`heads_up`). Each kind is matched only against playbooks of its kind.
PLAYBOOK_KINDS: tuple[str, ...] = ("plan", "pattern", "heads_up")
#: Kinds whose `when.category` may be left out: the playbook then applies to every category.
CATEGORY_OPTIONAL_KINDS: frozenset[str] = frozenset({"pattern", "heads_up"})

#: Keys allowed under ``when:`` and the kind of value each takes.
CONDITION_KINDS: dict[str, Literal["set", "bool", "hours", "weekdays"]] = {
    "category": "set",
    "severity": "set",
    "sentiment": "set",
    "channel": "set",
    "touchpoint": "set",
    "store.format": "set",
    "store.region": "set",
    "customer.tier": "set",
    "signals.repeat_issue": "bool",
    "signals.score_swing": "bool",
    "signals.vip": "bool",
    "signals.churn_risk": "bool",
    "signals.low_satisfaction": "bool",
    "signals.chronic_complainer": "bool",
    "customer.household_relation": "set",
    #: The item is a follow-up answer that reopened its case (`FeedbackFacts.reopens_id` set):
    #: the first response was given already (modifier-reopened).
    "feedback.reopened": "bool",
    "time.hours": "hours",
    "time.weekdays": "weekdays",
}
#: A playbook file's ``kind``: one of the matched kinds above, or a modifier applied on top of
#: whichever plan matched (§ 2b of docs/PLAYBOOKS.md).
KINDS: tuple[str, ...] = (*PLAYBOOK_KINDS, "modifier")
#: Where a modifier's added step goes: before the plan's first step or after its last.
STEP_PLACES: tuple[str, ...] = ("first", "last")
#: The order of a modifier that gives none: modifiers apply by (order, id).
DEFAULT_ORDER = 100
#: A modifier's sla part it does not give: the plan's stays (the tighter of the two wins).
NO_LIMIT = 10**9
#: Conditions a category default may have besides ``category``.
DEFAULT_KEYS: frozenset[str] = frozenset({"category", "sentiment"})


@dataclass(frozen=True)
class PlaybookProblem:
    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.field}: {self.message}"


class PlaybookValidationError(Exception):
    """Raised with every problem found, not only the first."""

    def __init__(self, problems: list[PlaybookProblem]) -> None:
        self.problems: list[PlaybookProblem] = list(problems)
        super().__init__(str(self))

    def __str__(self) -> str:
        n = len(self.problems)
        head = f"{n} playbook problem{'s' if n != 1 else ''}"
        return head + "".join(f"\n  {p}" for p in self.problems)


@dataclass(frozen=True, slots=True)
class LocalText:
    """A text in Korean and/or English; at least one is present."""

    ko: Template | None
    en: Template | None

    def pick(self, language: str) -> Template:
        first, second = (self.en, self.ko) if language == "en" else (self.ko, self.en)
        chosen = first or second
        assert chosen is not None
        return chosen

    def to_dict(self) -> dict[str, str]:
        out: dict[str, str] = {}
        if self.ko is not None:
            out["ko"] = self.ko.source
        if self.en is not None:
            out["en"] = self.en.source
        return out


@dataclass(frozen=True, slots=True)
class Step:
    text: LocalText
    role: str = "staff"
    #: A modifier's step only: "first", "last" or the 1-based place it is inserted at.
    at: str | int = "last"


@dataclass(frozen=True, slots=True)
class EscalationStep:
    after_seconds: int
    roles: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"after_seconds": self.after_seconds, "roles": list(self.roles)}


@dataclass(frozen=True, slots=True)
class Sla:
    ack_seconds: int
    resolve_seconds: int

    def to_dict(self) -> dict[str, int]:
        return {"ack_seconds": self.ack_seconds, "resolve_seconds": self.resolve_seconds}


@dataclass(frozen=True, slots=True)
class Compensation:
    max_amount: int | float
    currency: str
    authority: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_amount": self.max_amount,
            "currency": self.currency,
            "authority": self.authority,
        }


@dataclass(frozen=True, slots=True)
class Condition:
    """One ``when:`` entry, compiled for fast evaluation."""

    key: str
    kind: Literal["set", "bool", "hours", "weekdays"]
    values: tuple[str, ...] = ()
    allowed: frozenset[str] = frozenset()
    flag: bool = False
    windows: tuple[tuple[int, int], ...] = ()
    days: frozenset[int] = frozenset()

    def holds(self, facts: dict[str, Any]) -> bool:
        value = facts.get(self.key)
        if value is None:
            return False
        if self.kind == "set":
            return value in self.allowed
        if self.kind == "bool":
            return bool(value) == self.flag
        if self.kind == "hours":
            for start, end in self.windows:
                if (start <= value < end) if start < end else (value >= start or value < end):
                    return True
            return False
        return value in self.days

    def spec(self) -> str:
        """The condition as the author wrote it, e.g. ``customer.tier in [vip, gold]``."""
        if self.kind == "bool":
            return f"{self.key}={'true' if self.flag else 'false'}"
        if len(self.values) == 1 and self.kind != "hours":
            return f"{self.key}={self.values[0]}"
        if self.kind == "hours":
            return f"{self.key} {' or '.join(self.values)}"
        return f"{self.key} in [{', '.join(self.values)}]"

    def explain(self, facts: dict[str, Any]) -> str:
        """A readable reason, e.g. ``customer.tier in [vip, gold] (vip)``."""
        value = facts.get(self.key)
        shown = _show(self.key, value)
        if not self.holds(facts):
            return f"{self.spec()} not met ({shown})"
        if self.kind == "bool" or (len(self.values) == 1 and self.kind == "set"):
            return self.spec()
        return f"{self.spec()} ({shown})"

    def to_value(self) -> Any:
        if self.kind == "bool":
            return self.flag
        return list(self.values)


def _show(key: str, value: Any) -> str:
    if value is None:
        return "unknown"
    if key == "time.hours":
        return f"{value // 60:02d}:{value % 60:02d}"
    if key == "time.weekdays":
        return WEEKDAYS[int(value)]
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True, eq=False)
class Playbook:
    id: str
    version: int
    title: LocalText
    conditions: tuple[Condition, ...]
    categories: tuple[str, ...]
    priority: str
    notify_roles: tuple[str, ...]
    escalation: tuple[EscalationStep, ...]
    sla: Sla
    steps: tuple[Step, ...]
    script: LocalText
    compensation: Compensation | None
    description: str = ""
    source_file: str = ""
    raw: dict[str, Any] = field(default_factory=dict)
    source_text: str = ""
    kind: str = "plan"
    #: A modifier's place among the modifiers that apply (by order, then id).
    order: int = DEFAULT_ORDER
    #: A modifier's change to the script: a line added after the plan's (None: no change).
    script_line: LocalText | None = None
    #: The modifier's script takes the place of the plan's instead of following it.
    replaces_script: bool = False
    #: A modifier's removal of the plan's steps given to these roles (before its own are added).
    remove_roles: tuple[str, ...] = ()
    #: Values derived from this (immutable) playbook on first use, e.g. its texts prepared per
    #: language by the renderer; never compared, printed or serialised.
    derived: dict[Any, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def specificity(self) -> int:
        return len(self.conditions)

    @property
    def is_default(self) -> bool:
        """A category default: its only conditions are category (and maybe sentiment)."""
        return self.kind == "plan" and all(c.key in DEFAULT_KEYS for c in self.conditions)

    @property
    def is_modifier(self) -> bool:
        return self.kind == "modifier"

    @property
    def sort_key(self) -> tuple[int, int, str]:
        return (-self.specificity, PRIORITY_RANK.get(self.priority, 1), self.id)  # a modifier may have none

    def to_dict(self) -> dict[str, Any]:
        if self.is_modifier:
            return self._modifier_dict()
        return {
            "id": self.id,
            "version": self.version,
            "kind": self.kind,
            "title": self.title.to_dict(),
            "description": self.description,
            "when": {c.key: c.to_value() for c in self.conditions},
            "specificity": self.specificity,
            "priority": self.priority,
            "notify_roles": list(self.notify_roles),
            "escalation": [e.to_dict() for e in self.escalation],
            "sla": self.sla.to_dict(),
            "steps": [{**s.text.to_dict(), "role": s.role} for s in self.steps],
            "script": self.script.to_dict(),
            "compensation": self.compensation.to_dict() if self.compensation else None,
            "source_file": self.source_file,
        }

    def _modifier_dict(self) -> dict[str, Any]:
        """A modifier as the API lists it: its conditions and the changes it makes (absent
        changes are null)."""
        return {
            "id": self.id,
            "version": self.version,
            "kind": self.kind,
            "order": self.order,
            "title": self.title.to_dict(),
            "description": self.description,
            "when": {c.key: c.to_value() for c in self.conditions},
            "priority": self.priority or None,
            "notify_roles": list(self.notify_roles),
            "escalation": [e.to_dict() for e in self.escalation],
            "sla": {
                f"{part}_seconds": seconds if seconds < NO_LIMIT else None
                for part, seconds in (("ack", self.sla.ack_seconds), ("resolve", self.sla.resolve_seconds))
            }
            if self.sla.ack_seconds
            else None,
            "remove_steps": {"roles": list(self.remove_roles)} if self.remove_roles else None,
            "steps": [{**s.text.to_dict(), "role": s.role, "at": s.at} for s in self.steps],
            "script": self.script_line.to_dict() if self.script_line else None,
            "replace_script": self.replaces_script,
            "compensation": self.compensation.to_dict() if self.compensation else None,
            "source_file": self.source_file,
        }


@dataclass
class Facts:
    """What is known about one feedback item and its customer. Only ``category`` is required."""

    category: str
    severity: str | None = None
    sentiment: str | None = None
    channel: str | None = None
    touchpoint: str | None = None
    store_id: str | None = None
    store_format: str | None = None
    store_region: str | None = None
    language: str | None = None
    customer_tier: str | None = None
    signals: dict[str, Any] = field(default_factory=dict)
    local_time: datetime | None = None
    #: owner | driver | family_member: the customer's place in a household, when in one.
    household_relation: str | None = None
    #: A follow-up answer that reopened its case (the request's `reopens_id` is set).
    reopened: bool = False

    def as_map(self) -> dict[str, Any]:
        """The facts keyed like ``when:`` conditions."""
        m: dict[str, Any] = {
            "category": self.category,
            "severity": self.severity,
            "sentiment": self.sentiment,
            "channel": self.channel,
            "touchpoint": _norm(self.touchpoint),
            "store.format": _norm(self.store_format),
            "store.region": _norm(self.store_region),
            "customer.tier": _norm(self.customer_tier),
            "customer.household_relation": _norm(self.household_relation),
            "feedback.reopened": self.reopened,
        }
        for name, value in self.signals.items():
            m["signals." + name] = value
        if self.local_time is not None:
            m["time.hours"] = self.local_time.hour * 60 + self.local_time.minute
            m["time.weekdays"] = self.local_time.weekday()
        return m


def _norm(value: str | None) -> str | None:
    return value.strip().lower() if isinstance(value, str) and value.strip() else None


@dataclass
class Match:
    playbook: Playbook
    matched_because: list[str]
    runners_up: list[tuple[str, int]]
    facts: Facts
    #: True when no playbook matched every condition and a default was used instead.
    fallback: bool = False
    #: The ids of the modifiers applied on top of the plan, in the order they applied.
    modifiers: tuple[str, ...] = ()
    #: The plan's own conditions (a composed plan keeps them) and the modifiers applied.
    applied: tuple[Playbook, ...] = ()

    def matched(self) -> list[MatchedCondition]:
        """`matched_because` as data: each condition of the plan (a fallback's besides its
        category), then each of every applied modifier's, with the fact it was checked against."""
        fm = self.facts.as_map()
        own = [c for c in self.playbook.conditions if not (self.fallback and c.key == "category")]
        return [MatchedCondition.of(c, fm, "") for c in own] + [
            MatchedCondition.of(c, fm, m.id) for m in self.applied for c in m.conditions
        ]


@dataclass(frozen=True, slots=True)
class MatchedCondition:
    """One condition and the fact it was checked against (the reader's app words it)."""

    key: str
    values: tuple[str, ...]
    actual: str
    modifier: str

    @classmethod
    def of(cls, condition: Condition, facts: dict[str, Any], modifier: str) -> MatchedCondition:
        value = facts.get(condition.key)
        values = (("true" if condition.flag else "false"),) if condition.kind == "bool" else condition.values
        return cls(condition.key, values, "" if value is None else _show(condition.key, value), modifier)


@dataclass
class PlanStep:
    text: str
    role: str

    def to_dict(self) -> dict[str, str]:
        return {"text": self.text, "role": self.role}


@dataclass
class Plan:
    playbook_id: str
    version: int
    title: str
    priority: str
    steps: list[PlanStep]
    script: str
    sla: Sla
    notify_roles: list[str]
    escalation: list[EscalationStep]
    compensation: Compensation | None
    matched_because: list[str]
    runners_up: list[tuple[str, int]]
    language: str
    fallback: bool = False
    modifiers: tuple[str, ...] = ()
    matched: tuple[MatchedCondition, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            **fields_of(self, ("playbook_id", "version", "title", "priority")),
            "steps": [s.to_dict() for s in self.steps],
            "script": self.script,
            "sla": self.sla.to_dict(),
            "notify_roles": list(self.notify_roles),
            "escalation": [e.to_dict() for e in self.escalation],
            "compensation": self.compensation.to_dict() if self.compensation else None,
            "matched_because": list(self.matched_because),
            "runners_up": [{"playbook_id": i, "specificity": s} for i, s in self.runners_up],
            "language": self.language,
            "modifiers": list(self.modifiers),
            "matched": [
                {"key": m.key, "values": list(m.values), "actual": m.actual, "modifier": m.modifier}
                for m in self.matched
            ],
        }
