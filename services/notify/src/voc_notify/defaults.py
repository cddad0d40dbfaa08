"""The built-in plan used when the actions service cannot be reached (flagged as degraded).

Deliberately plain: apologise, listen, fix what can be fixed, tell the shift lead.
"""

from __future__ import annotations

from voc_notify.facts import EscalationStep, Plan, PlanStep, PlanTexts, Sla

_TITLES = {
    "ko": "고객 피드백 — 기본 대응",
    "en": "Customer feedback — standard response",
}
_STEPS = {
    "ko": (
        "고객에게 먼저 다가가 사과하고 이야기를 끝까지 듣는다",
        "바로 고칠 수 있는 것은 즉시 조치한다",
        "조치 내용을 기록하고 시프트 리더에게 알린다",
    ),
    "en": (
        "Approach the customer, apologise and listen to the end",
        "Fix what can be fixed right away",
        "Record what you did and tell the shift lead",
    ),
}
_ESCALATION = (EscalationStep(300, ("store_manager",)), EscalationStep(900, ("area_manager",)))


def default_plan(*, category: str, severity: str, language: str) -> Plan:
    lang = language if language in _TITLES else "en"
    urgent = severity in ("high", "critical")
    return Plan(
        playbook_id=f"builtin-{category}",
        version=0,
        title=_TITLES[lang],
        priority="urgent" if urgent else "normal",
        steps=tuple(PlanStep(text, "staff") for text in _STEPS[lang]),
        script="",
        sla=Sla(ack_seconds=120 if urgent else 300, resolve_seconds=1800 if urgent else 3600),
        notify_roles=("shift_lead", "store_manager") if urgent else ("shift_lead",),
        escalation=_ESCALATION,
        compensation=None,
        matched_because=("actions service unavailable: built-in default",),
        runners_up=(),
        language=lang,
        translations=tuple(
            PlanTexts(other, _TITLES[other], _STEPS[other], "") for other in _TITLES if other != lang
        ),
    )
