"""The built-in plan used when a library has no playbook at all for a category (nor ``other``)."""

from __future__ import annotations

from functools import cache

from voc_actions.playbooks.model import Condition, LocalText, Playbook, Sla, Step
from voc_actions.playbooks.template import compile_template

BUILTIN_ID = "builtin-default"


def _t(ko: str, en: str) -> LocalText:
    return LocalText(compile_template(ko), compile_template(en))


@cache
def builtin_default() -> Playbook:
    return Playbook(
        id=BUILTIN_ID,
        version=1,
        title=_t("고객 의견 — 확인 필요", "Customer feedback — please review"),
        conditions=(Condition("category", "set", ("other",), frozenset({"other"})),),
        categories=("other",),
        priority="normal",
        notify_roles=("staff", "shift_lead"),
        escalation=(),
        sla=Sla(300, 3600),
        steps=(
            Step(_t("의견 전문과 고객 정보를 확인한다", "Read the full feedback and the customer context")),
            Step(
                _t(
                    "고객에게 연락해 경청하고 사과 또는 감사를 전한다",
                    "Contact the customer, listen, and apologise or thank them",
                )
            ),
            Step(
                _t("조치 내용을 기록하고 해결 처리한다", "Record what you did and resolve the alert"),
                role="shift_lead",
            ),
        ),
        script=_t(
            "{customer.name}님, 소중한 의견 감사합니다. 말씀하신 내용을 바로 확인하겠습니다.",
            "Thank you, {customer.name}, for telling us. We are looking into it right away.",
        ),
        compensation=None,
        description="Built into the engine; used only when the library has no matching default.",
        source_file="(built-in)",
    )
