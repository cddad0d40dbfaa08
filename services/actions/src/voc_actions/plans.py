"""Plan lookup: the playbook that best matches one feedback item's facts, rendered for the staff.

REST asks through `lookup`; gRPC (`grpc_server.plan_reply`, the hot path) does the same match and
render straight into protobuf, and `tests/actions/test_grpc_reply.py` keeps the two equal. Both
read their request through `facts_of` and `template_values` (the feedback item as the REST body's
model or as the gRPC request's message)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from voc_actions.playbooks import Facts, Library, Plan, render_plan

if TYPE_CHECKING:
    from voc.actions.v1 import actions_pb2
    from voc.common.v1 import common_pb2
    from voc_actions.schemas import LookupCustomer, LookupFeedback, LookupStore

DEFAULT_LANGUAGE = "ko"


@dataclass(frozen=True, slots=True)
class PlanQuery:
    """What a lookup knows: the facts to match and the values the plan's texts may use."""

    facts: Facts
    language: str
    #: the customer's template values that are known: name, tier, last_visit, repeat_count
    customer: Mapping[str, str | int]
    store_name: str | None = None
    #: plan (a feedback item), pattern or heads_up: which playbooks are matched
    kind: str = "plan"


def facts_of(
    feedback: LookupFeedback | common_pb2.FeedbackFacts,
    customer: LookupCustomer | actions_pb2.CustomerFacts,
    store: LookupStore | actions_pb2.StoreFacts,
    *,
    signals: dict[str, Any],
    local_time: datetime | None,
) -> Facts:
    """The facts a lookup matches on: a blank value is unknown, a missing category is other; a
    feedback item that names the case it reopens (`reopens_id`) is `feedback.reopened`.
    `signals` are the caller's own (gRPC adds the repeat count to the customer's)."""
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
        customer_tier=customer.tier or None,
        signals=signals,
        local_time=local_time,
        household_relation=customer.household_relation or None,
        reopened=bool(feedback.reopens_id),
    )


def template_values(
    name: str | None, tier: str | None, last_visit: str | None, repeat_count: int | None
) -> dict[str, str | int]:
    """The customer's values a plan's texts may use, those that are known (blank is unknown)."""
    values: dict[str, str | int] = {}
    if name:
        values["name"] = name
    if tier:
        values["tier"] = tier
    if last_visit:
        values["last_visit"] = last_visit
    if repeat_count:
        values["repeat_count"] = repeat_count
    return values


def lookup(library: Library, query: PlanQuery) -> Plan:
    """The plan of the best-matching playbook (a category default at worst), in the query's language."""
    return render_plan(
        library.match(query.facts, query.kind),
        language=query.language,
        customer=query.customer,
        store={"name": query.store_name} if query.store_name else None,
    )
