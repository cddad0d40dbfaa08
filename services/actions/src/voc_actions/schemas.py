"""The REST bodies of the actions service: a publication, and a plan lookup (DESIGN §5)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    field_validator,
    model_validator,
)

from voc_actions.plans import DEFAULT_LANGUAGE, PlanQuery, facts_of, template_values
from voc_platform import taxonomy
from voc_platform.taxonomy import CHANNELS, SENTIMENTS, SEVERITIES

#: A playbook file name as the CLI sends it: a bare ``*.yaml``/``*.yml`` name, no directories.
FILE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}\.ya?ml$"
#: Profile signals a lookup may carry (booleans; ``repeat_count`` is the count behind repeat_issue).
BOOLEAN_SIGNALS = (
    "repeat_issue", "score_swing", "vip", "churn_risk", "low_satisfaction", "chronic_complainer",
)  # fmt: skip

FileName = Annotated[str, StringConstraints(pattern=FILE_NAME_PATTERN)]
Word = Annotated[str, StringConstraints(strip_whitespace=True, max_length=60)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
Severity = Literal[SEVERITIES]  # type: ignore[valid-type]
Sentiment = Literal[SENTIMENTS]  # type: ignore[valid-type]
Channel = Literal[CHANNELS]  # type: ignore[valid-type]
Language = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2}([-_][A-Za-z0-9]{2,8})?$")]


# Files by name: a name the pattern refuses is refused (422), as the document now says.
PlaybookFiles = Annotated[
    dict[FileName, Annotated[str, Field(max_length=60_000)]],
    Field(max_length=200, json_schema_extra={"additionalProperties": False}),
]


class PublishIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    files: Annotated[PlaybookFiles, Field(min_length=1)]


class TaxonomyIn(BaseModel):
    """A taxonomy version: the document as JSON (`taxonomy`) or as YAML text (`yaml`), and the
    playbooks its new categories need (`playbooks`: files, published in the same transaction)."""

    model_config = ConfigDict(extra="forbid")

    taxonomy: dict[str, Any] | None = None
    yaml: Annotated[str, Field(max_length=200_000)] | None = None
    playbooks: PlaybookFiles = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_document(self) -> TaxonomyIn:
        if (self.taxonomy is None) == (self.yaml is None):
            raise ValueError("send the taxonomy as `taxonomy` (JSON) or as `yaml` (text), one of them")
        return self


class RollbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: The version whose content becomes active again; the one before the active by default.
    to_version: Annotated[StrictInt, Field(ge=1)] | None = None


class LookupFeedback(BaseModel):
    model_config = ConfigDict(extra="forbid")

    category: Word  # one of the published taxonomy's (checked below)
    severity: Severity | None = None
    sentiment: Sentiment | None = None
    channel: Channel | None = None
    touchpoint: Word | None = None
    store_id: Word | None = None
    language: Language | None = None
    # A follow-up answer: the feedback id of the case it reopened (`feedback.reopened`).
    reopens_id: Word | None = None

    @field_validator("category")
    @classmethod
    def _published_category(cls, value: str) -> str:
        known = taxonomy.current().known
        if value not in known:
            raise ValueError(f"unknown category {value!r}; known: {', '.join(known)}")
        return value


class LookupCustomer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tier: Word | None = None
    signals: dict[str, StrictBool | Annotated[StrictInt, Field(ge=0)]] = {}
    name: ShortText | None = None
    last_visit: ShortText | None = None
    repeat_count: Annotated[int, Field(ge=0, le=10_000)] | None = None
    # The customer's place in a household (owner, driver, family_member), for modifiers.
    household_relation: Word | None = None

    @field_validator("signals")
    @classmethod
    def _known_signals(cls, value: dict[str, bool | int]) -> dict[str, bool | int]:
        for key, flag in value.items():
            if key == "repeat_count":
                if isinstance(flag, bool):
                    raise ValueError("signals.repeat_count is a count, not true/false")
            elif key not in BOOLEAN_SIGNALS:
                raise ValueError(f"unknown signal {key!r}; known: repeat_count, {', '.join(BOOLEAN_SIGNALS)}")
            elif not isinstance(flag, bool):
                raise ValueError(f"signals.{key} must be true or false")
        return value


class LookupStore(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: Word | None = None
    region: Word | None = None
    name: ShortText | None = None


class LookupIn(BaseModel):
    """The DESIGN §5 body, plus optional store facts, staff language and the store's local time."""

    model_config = ConfigDict(extra="forbid")

    feedback: LookupFeedback
    customer: LookupCustomer = LookupCustomer()
    store: LookupStore = LookupStore()
    language: Language | None = None
    # The store's wall clock, for time.hours / time.weekdays conditions; an offset is ignored.
    local_time: datetime | None = None
    # Which playbooks answer (#18): a feedback item's plan, a pattern alert's, a heads-up's.
    kind: Literal["plan", "pattern", "heads_up"] = "plan"

    def query(self) -> PlanQuery:
        """The lookup as the domain takes it: blank values are unknown, a missing category is other."""
        fb, cust, store = self.feedback, self.customer, self.store
        facts = facts_of(fb, cust, store, signals=dict(cust.signals), local_time=self.local_time)
        return PlanQuery(
            facts=facts,
            language=self.language or fb.language or DEFAULT_LANGUAGE,
            customer=template_values(cust.name, cust.tier, cust.last_visit, cust.repeat_count),
            store_name=store.name or None,
            kind=self.kind,
        )
