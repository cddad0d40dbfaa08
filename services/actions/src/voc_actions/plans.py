"""Plan lookup: the playbook that best matches one feedback item's facts, rendered for the staff.

REST asks through `lookup`; gRPC (`grpc_server.plan_reply`, the hot path) does the same match and
render straight into protobuf, and `tests/actions/test_grpc_reply.py` keeps the two equal."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

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


def lookup(library: Library, query: PlanQuery) -> Plan:
    """The plan of the best-matching playbook (a category default at worst), in the query's language."""
    return render_plan(
        library.match(query.facts),
        language=query.language,
        customer=query.customer,
        store={"name": query.store_name} if query.store_name else None,
    )
