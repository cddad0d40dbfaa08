"""Render a matched playbook into a plan for one customer, in one language."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from importlib.resources import files
from typing import Any

import yaml

from voc_actions.playbooks.model import (
    LANGUAGES,
    Compensation,
    LocalText,
    Match,
    Plan,
    PlanStep,
    Playbook,
    Sla,
)
from voc_actions.playbooks.template import VARIABLES, Template
from voc_platform.masking import INSERTED_VALUE_LIMIT
from voc_platform.taxonomy import label

#: The words inserted for a tier and a channel, per language: data, so they live in labels.yaml.
_LABELS: dict[str, dict[str, dict[str, str]]] = yaml.safe_load(
    files("voc_actions.playbooks").joinpath("labels.yaml").read_text("utf-8")
)
TIER_LABELS = _LABELS["tiers"]
CHANNEL_LABELS = _LABELS["channels"]
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_MAX_VALUE = INSERTED_VALUE_LIMIT  # notify masks a name as cut here


def normalize_language(language: str | None) -> str:
    """``ko``/``en``; anything else (``ko-KR``, ``en_US``, ``ja``) maps to the nearest one."""
    lang = (language or "ko").strip().lower()[:2]
    return lang if lang in LANGUAGES else "en"


def _clean(value: Any) -> str:
    """A customer-supplied value, made safe to insert: one line, bounded length."""
    if value is None or isinstance(value, bool):
        return ""
    if isinstance(value, datetime):
        value = value.date().isoformat()
    elif isinstance(value, date):
        value = value.isoformat()
    text = _CONTROL.sub(" ", str(value)).strip()
    return text[:_MAX_VALUE]


def _duration(seconds: int, lang: str) -> str:
    h, rest = divmod(seconds, 3600)
    m = rest // 60
    if lang == "ko":
        parts = [f"{h}시간" if h else "", f"{m}분" if m else ""]
        return " ".join(p for p in parts if p) or f"{seconds}초"
    parts = [f"{h} hour{'s' if h != 1 else ''}" if h else "",
             f"{m} minute{'s' if m != 1 else ''}" if m else ""]  # fmt: skip
    return " ".join(p for p in parts if p) or f"{seconds} seconds"


def _amount(comp: Compensation | None, lang: str) -> str:
    if comp is None:
        return ""
    n = comp.max_amount
    amount = f"{n:,}" if isinstance(n, int) else f"{n:,.2f}"
    if comp.currency == "KRW" and lang == "ko":
        return f"{amount}원"
    return f"{comp.currency} {amount}"


@dataclass(frozen=True, slots=True)
class Texts:
    """A playbook's texts in one language, with everything that does not depend on the
    feedback or the customer worked out once: a text without variables is kept rendered (a
    ``str``), the playbook's own values (compensation, SLAs) are formatted."""

    title: Template | str
    steps: tuple[tuple[Template | str, str], ...]  # (text, role)
    script: Template | str
    variables: frozenset[str]  # every variable the texts use
    fixed: dict[str, str]  # compensation.max_amount, sla.ack, sla.resolve


def texts_for(pb: Playbook, lang: str) -> Texts:
    """``pb``'s texts in ``lang`` (``ko``/``en``), prepared on first use and kept on ``pb``."""
    key = ("texts", lang)
    texts: Texts | None = pb.derived.get(key)
    if texts is None:
        texts = pb.derived[key] = _prepare(pb, lang)
    return texts


def _prepare(pb: Playbook, lang: str) -> Texts:
    used: set[str] = set()

    def prepare(text: LocalText) -> Template | str:
        template = text.pick(lang)
        names = template.variables
        used.update(names)
        return template if names else template.render({}, lang)

    return Texts(
        title=prepare(pb.title),
        steps=tuple((prepare(s.text), s.role) for s in pb.steps),
        script=prepare(pb.script),
        variables=frozenset(used),
        fixed={
            "compensation.max_amount": _amount(pb.compensation, lang),
            "sla.ack": _duration(pb.sla.ack_seconds, lang),
            "sla.resolve": _duration(pb.sla.resolve_seconds, lang),
        },
    )


def template_values(
    match: Match, lang: str, customer: Mapping[str, Any] | None, store: Mapping[str, Any] | None,
) -> dict[str, str]:  # fmt: skip
    """The value of every template variable; an empty string means "unknown" (neutral phrase)."""
    return _values(match, lang, customer, store, texts_for(match.playbook, lang).fixed, VARIABLES)


def _values(
    match: Match, lang: str, customer: Mapping[str, Any] | None, store: Mapping[str, Any] | None,
    fixed: Mapping[str, str], names: Collection[str],
) -> dict[str, str]:  # fmt: skip
    """The values of the variables ``names`` (computing only those: this is on the hot path)."""
    cust = customer or {}
    facts = match.facts
    values: dict[str, str] = {}
    if "customer.name" in names:
        values["customer.name"] = _clean(cust.get("name"))
    if "customer.tier" in names:
        tier = _clean(cust.get("tier") or facts.customer_tier).lower()
        values["customer.tier"] = TIER_LABELS.get(tier, {}).get(lang, tier.upper() if tier else "")
    if "customer.last_visit" in names:
        values["customer.last_visit"] = _clean(cust.get("last_visit"))
    if "customer.repeat_count" in names:
        repeat = cust.get("repeat_count", facts.signals.get("repeat_count"))
        values["customer.repeat_count"] = _clean(repeat) if isinstance(repeat, int) and repeat > 0 else ""
    if "store.name" in names:
        values["store.name"] = _clean((store or {}).get("name"))
    if "feedback.category" in names:
        values["feedback.category"] = str(label(facts.category, lang)) if facts.category else ""
    if "feedback.channel" in names:
        channel = facts.channel or ""
        values["feedback.channel"] = CHANNEL_LABELS.get(channel, {}).get(lang, _clean(channel))
    if "feedback.touchpoint" in names:
        values["feedback.touchpoint"] = _clean(facts.touchpoint)
    for name, value in fixed.items():
        if name in names:
            values[name] = value
    return values


def render_texts(
    match: Match,
    language: str | None = None,
    customer: Mapping[str, Any] | None = None,
    store: Mapping[str, Any] | None = None,
) -> tuple[str, str, list[tuple[str, str]], str]:
    """The plan's language and rendered texts: ``(language, title, [(step, role)], script)``.

    What :func:`render_plan` puts in a plan; the gRPC service builds its reply from it directly.
    """
    lang = normalize_language(language or match.facts.language)
    texts = texts_for(match.playbook, lang)
    if not texts.variables:
        values: dict[str, str] = {}
    else:
        values = _values(match, lang, customer, store, texts.fixed, texts.variables)

    def render(text: Template | str) -> str:
        return text if isinstance(text, str) else text.render(values, lang)

    return (
        lang,
        render(texts.title),
        [(render(text), role) for text, role in texts.steps],
        render(texts.script),
    )


def render_plan(
    match: Match,
    language: str | None = None,
    customer: Mapping[str, Any] | None = None,
    store: Mapping[str, Any] | None = None,
) -> Plan:
    """The plan for ``match`` in ``language`` (default: the feedback's language, else ko).

    ``customer`` may carry name, tier, last_visit, repeat_count; ``store`` may carry name.
    Unknown values render as neutral phrases ("고객" / "valued customer"), never blanks.
    """
    lang, title, steps, script = render_texts(match, language, customer, store)
    pb = match.playbook
    return Plan(
        playbook_id=pb.id,
        version=pb.version,
        title=title,
        priority=pb.priority,
        steps=[PlanStep(text, role) for text, role in steps],
        script=script,
        sla=Sla(pb.sla.ack_seconds, pb.sla.resolve_seconds),
        notify_roles=list(pb.notify_roles),
        escalation=list(pb.escalation),
        compensation=pb.compensation,
        matched_because=list(match.matched_because),
        runners_up=list(match.runners_up),
        language=lang,
        fallback=match.fallback,
        modifiers=match.modifiers,
        matched=tuple(match.matched()),
    )
