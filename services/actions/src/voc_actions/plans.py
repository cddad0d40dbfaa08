"""Plan lookup: the playbook that best matches one feedback item's facts, rendered for the staff.

REST asks through `lookup`; gRPC (`grpc_server.plan_reply`, the hot path) does the same match and
render straight into protobuf, and `tests/actions/test_grpc_reply.py` keeps the two equal. Both
read their request through `facts_of` and `template_values`, written for either shape (the REST
body's models, the gRPC request's messages)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from voc_actions.playbooks import Facts, Library, Plan, render_plan

DEFAULT_LANGUAGE = "ko"


@dataclass(frozen=True, slots=True)
class PlanQuery:
    """What a lookup knows: the facts to match and the values the plan's texts may use."""

    facts: Facts
    language: str
    #: the customer's template values that are known: name, tier, last_visit, repeat_count
    customer: Mapping[str, str | int]
    store_name: str | None = None


class FeedbackFacts(Protocol):
    """What a lookup says of the feedback item (`LookupFeedback`, `common.v1.FeedbackFacts`)."""

    @property
    def category(self) -> str | None: ...
    @property
    def severity(self) -> str | None: ...
    @property
    def sentiment(self) -> str | None: ...
    @property
    def channel(self) -> str | None: ...
    @property
    def touchpoint(self) -> str | None: ...
    @property
    def store_id(self) -> str | None: ...
    @property
    def language(self) -> str | None: ...


class StoreFacts(Protocol):
    """What a lookup says of the store (`LookupStore`, `actions.v1.StoreFacts`)."""

    @property
    def format(self) -> str | None: ...
    @property
    def region(self) -> str | None: ...


class CustomerValues(Protocol):
    """The customer's values a plan's texts may use (`LookupCustomer`, `actions.v1.CustomerFacts`)."""

    @property
    def name(self) -> str | None: ...
    @property
    def tier(self) -> str | None: ...
    @property
    def last_visit(self) -> str | None: ...
    @property
    def repeat_count(self) -> int | None: ...


def facts_of(
    feedback: FeedbackFacts,
    store: StoreFacts,
    *,
    tier: str | None,
    signals: dict[str, Any],
    local_time: datetime | None,
) -> Facts:
    """The facts a lookup matches on: a blank value is unknown, a missing category is other."""
    return Facts(
        category=feedback.category or "other",
        severity=feedback.severity or None,
        sentiment=feedback.sentiment or None,
        channel=feedback.channel or None,
        touchpoint=feedback.touchpoint or None,
        store_id=feedback.store_id or None,
        store_format=store.format or None,
        store_region=store.region or None,
        language=feedback.language or None,
        customer_tier=tier or None,
        signals=signals,
        local_time=local_time,
    )


def template_values(customer: CustomerValues) -> dict[str, str | int]:
    """The customer's values a plan's texts may use, those that are known (blank is unknown)."""
    values: dict[str, str | int] = {}
    if customer.name:
        values["name"] = customer.name
    if customer.tier:
        values["tier"] = customer.tier
    if customer.last_visit:
        values["last_visit"] = customer.last_visit
    if customer.repeat_count:
        values["repeat_count"] = customer.repeat_count
    return values


def lookup(library: Library, query: PlanQuery) -> Plan:
    """The plan of the best-matching playbook (a category default at worst), in the query's language."""
    return render_plan(
        library.match(query.facts),
        language=query.language,
        customer=query.customer,
        store={"name": query.store_name} if query.store_name else None,
    )
