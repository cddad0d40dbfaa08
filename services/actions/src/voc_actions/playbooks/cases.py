"""Playbook test cases: given these facts, expect this playbook."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

import yaml

from voc_actions.playbooks.matcher import Library
from voc_actions.playbooks.model import PLAYBOOK_KINDS, Facts, PlaybookProblem, PlaybookValidationError

FACT_KEYS: dict[str, str] = {
    "category": "category",
    "severity": "severity",
    "sentiment": "sentiment",
    "channel": "channel",
    "touchpoint": "touchpoint",
    "language": "language",
    "store.id": "store_id",
    "store.format": "store_format",
    "store.region": "store_region",
    "customer.tier": "customer_tier",
    "customer.household_relation": "household_relation",
}
SIGNALS: tuple[str, ...] = (
    "repeat_issue", "repeat_count", "score_swing", "vip", "churn_risk", "low_satisfaction",
    "chronic_complainer",
)  # fmt: skip


class CaseResult(NamedTuple):
    """One case: the plan expected and the one given, as `id` or, when the case lists
    `modifiers`, `id + modifier + ...` (in the order they apply)."""

    name: str
    expected: str
    actual: str
    ok: bool


def facts_from_case(raw: dict[str, Any]) -> Facts:
    """Facts from a case's ``facts:`` mapping (keys as in ``when:``, plus ``time``;
    ``feedback.reopened: true`` for a follow-up answer that reopened its case)."""
    kwargs: dict[str, Any] = {}
    signals: dict[str, Any] = {}
    for key, value in raw.items():
        if key in FACT_KEYS:
            kwargs[FACT_KEYS[key]] = None if value is None else str(value)
        elif key.startswith("signals.") and key[8:] in SIGNALS:
            signals[key[8:]] = value
        elif key == "signals" and isinstance(value, dict):
            signals.update(value)
        elif key == "feedback.reopened":
            if not isinstance(value, bool):
                raise ValueError("feedback.reopened: expected true or false")
            kwargs["reopened"] = value
        elif key == "time":
            kwargs["local_time"] = (
                value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
            )
        else:
            raise ValueError(f"unknown fact {key!r}")
    if "category" not in kwargs:
        raise ValueError("facts.category is required")
    return Facts(signals=signals, **kwargs)


def run_cases(library: Library, cases_yaml_text: str, filename: str = "cases.yaml") -> list[
    CaseResult
]:  # fmt: skip
    """Run every case against ``library``; malformed cases raise PlaybookValidationError."""
    try:
        data = yaml.safe_load(cases_yaml_text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise PlaybookValidationError(
            [PlaybookProblem(filename, line, "(yaml)", f"invalid YAML: {exc}")]
        ) from exc
    except RecursionError:  # "[[[[…" hundreds deep: the parser recurses per level
        raise PlaybookValidationError(
            [PlaybookProblem(filename, None, "(yaml)", "nested too deeply to be a list of cases")]
        ) from None
    cases = data.get("cases") if isinstance(data, dict) else data
    if not isinstance(cases, list):
        raise PlaybookValidationError(
            [PlaybookProblem(filename, 1, "cases", "expected `cases:` with a list of cases")]
        )
    problems: list[PlaybookProblem] = []
    results: list[CaseResult] = []
    for i, case in enumerate(cases):
        where = f"cases[{i}]"
        if not isinstance(case, dict) or not isinstance(case.get("facts"), dict):
            problems.append(PlaybookProblem(filename, None, where, "expected {name, facts, expect}"))
            continue
        name = str(case.get("name") or where)
        expected = case.get("expect")
        if not isinstance(expected, str):
            problems.append(PlaybookProblem(filename, None, f"{where}.expect",
                                            "expected a playbook id"))  # fmt: skip
            continue
        try:
            facts = facts_from_case(case["facts"])
        except (ValueError, TypeError) as exc:
            problems.append(PlaybookProblem(filename, None, f"{where}.facts", str(exc)))
            continue
        kind = case.get("kind", "plan")
        if kind not in PLAYBOOK_KINDS:
            known = ", ".join(PLAYBOOK_KINDS)
            problems.append(PlaybookProblem(filename, None, f"{where}.kind",
                                            f"unknown kind {kind!r}; use {known}"))  # fmt: skip
            continue
        match = library.match(facts, kind)
        actual = match.playbook.id
        if "modifiers" in case:
            modifiers = case["modifiers"]
            if not isinstance(modifiers, list) or not all(isinstance(m, str) for m in modifiers):
                problems.append(PlaybookProblem(filename, None, f"{where}.modifiers",
                                                "expected a list of modifier ids ([] for none)"))  # fmt: skip
                continue
            expected = " + ".join((expected, *modifiers))
            actual = " + ".join((actual, *match.modifiers))
        results.append(CaseResult(name, expected, actual, actual == expected))
    if problems:
        raise PlaybookValidationError(problems)
    return results
