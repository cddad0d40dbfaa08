"""The REST lookup body as the domain takes it (`LookupIn.query`): blank values are unknown, the
language falls back to the feedback's and then Korean, and only known template values are passed."""

from __future__ import annotations

from datetime import datetime

from voc_actions import plans
from voc_actions.playbooks import default_library
from voc_actions.schemas import LookupIn


def test_blank_values_are_unknown_and_only_known_customer_values_are_kept() -> None:
    body = LookupIn.model_validate(
        {
            "feedback": {"category": "wait_time", "channel": "kiosk", "touchpoint": "", "language": "en"},
            "customer": {"tier": "vip", "name": "", "repeat_count": 0, "signals": {"repeat_count": 3}},
            "store": {"format": "restaurant", "name": ""},
            "local_time": "2026-11-16T12:30:00",
        }
    )
    query = body.query()
    assert query.facts.category == "wait_time" and query.facts.channel == "kiosk"
    assert query.facts.touchpoint is None and query.facts.severity is None
    assert query.facts.store_format == "restaurant" and query.facts.customer_tier == "vip"
    assert query.facts.signals == {"repeat_count": 3}
    assert query.facts.local_time == datetime(2026, 11, 16, 12, 30)
    assert query.language == "en"
    assert query.customer == {"tier": "vip"}  # a blank name and a zero count are not known values
    assert query.store_name is None


def test_the_language_defaults_to_korean_and_the_plan_is_rendered_in_it() -> None:
    query = LookupIn.model_validate({"feedback": {"category": "food_quality"}}).query()
    assert query.language == plans.DEFAULT_LANGUAGE == "ko"
    plan = plans.lookup(default_library(), query)
    assert plan.language == "ko" and plan.playbook_id
