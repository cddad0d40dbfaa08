"""Modifiers: playbooks of `kind: modifier` applied on top of whichever plan matched.

A modifier's `when` names customer and feedback facts (tier, signals, household relation,
category, severity, ...), in any category. Those whose conditions all hold apply by (`order`,
id), each to the result of the one before:

- `priority`: raised to it (info < normal < urgent), never lowered;
- `remove_steps: {roles: [...]}`: the plan's steps for those roles go (before its own come);
- `steps`: added, each `at: first`, `last` (the default) or a 1-based place; a step the plan
  already has (the same text in ko or en, ignoring case and spacing) is not added again: the
  plan's keeps its place and role (steps carry no ids or deadlines to reconcile);
- `notify: {roles}`: added to the plan's roles (widened, never narrowed);
- `sla`: the tighter (earlier) of the plan's and the modifier's, each of ack and resolve;
- `escalate`: each role is paged at the earlier of the two times, a role the plan did not
  page is added; steps with the same time are one step;
- `compensation`: the modifier's when the plan has none, or its limit is higher in the same
  currency (its authority with it);
- `script`: a line added after the plan's script; with `replace_script: true` it takes the
  plan's script's place (a later modifier's line still follows it).

The composed playbook keeps the plan's id and version and is kept on the plan (a playbook
is immutable), per set of modifiers, so a lookup composes once per combination seen.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

from voc_actions.playbooks.model import (
    LANGUAGES,
    PRIORITY_RANK,
    Compensation,
    EscalationStep,
    LocalText,
    Playbook,
    PlaybookProblem,
    Sla,
    Step,
)
from voc_actions.playbooks.template import Template

#: Composed playbooks kept per plan (combinations of modifiers seen), explanations per modifier.
_COMPOSED_MAX = 256


def applicable(modifiers: Sequence[Playbook], fm: dict[str, Any]) -> tuple[Playbook, ...]:
    """The modifiers (already in apply order) whose every condition holds for the facts `fm`."""
    return tuple(m for m in modifiers if all(c.holds(fm) for c in m.conditions))


def because(modifier: Playbook, fm: dict[str, Any]) -> str:
    """One line of `matched_because` for an applied modifier: its id and why. Kept on the
    modifier per the facts its conditions look at (formatting costs more than matching)."""
    key = ("because", *[fm.get(c.key) for c in modifier.conditions])
    line: str | None = modifier.derived.get(key)
    if line is None:
        if len(modifier.derived) >= _COMPOSED_MAX:
            modifier.derived.clear()
        line = f"modifier {modifier.id}: " + ", ".join(c.explain(fm) for c in modifier.conditions)
        modifier.derived[key] = line
    return line


def composed(base: Playbook, modifiers: tuple[Playbook, ...]) -> Playbook:
    """`base` with `modifiers` applied in order; the same object for the same set (cached)."""
    if not modifiers:
        return base
    key = ("composed", *((m.id, m.version) for m in modifiers))
    pb: Playbook | None = base.derived.get(key)
    if pb is None:
        if len(base.derived) >= _COMPOSED_MAX:
            base.derived.clear()
        pb = base
        for m in modifiers:
            pb = apply(pb, m)
        base.derived[key] = pb
    return pb


def apply(plan: Playbook, m: Playbook) -> Playbook:
    """`plan` changed by the modifier `m` (the module docstring says how)."""
    priority = plan.priority
    if m.priority and PRIORITY_RANK[m.priority] < PRIORITY_RANK[priority]:
        priority = m.priority
    return dataclasses.replace(
        plan,
        priority=priority,
        steps=_steps(plan.steps, m),
        notify_roles=tuple(dict.fromkeys((*plan.notify_roles, *m.notify_roles))),
        sla=_sla(plan.sla, m.sla),
        escalation=_escalation(plan.escalation, m.escalation),
        compensation=_compensation(plan.compensation, m.compensation),
        script=_script(plan.script, m),
    )


def _steps(steps: tuple[Step, ...], m: Playbook) -> tuple[Step, ...]:
    kept = [s for s in steps if s.role not in m.remove_roles]
    seen = {key for s in kept for key in _step_keys(s)}
    for step in m.steps:
        keys = _step_keys(step)
        if not seen.isdisjoint(keys):
            continue  # already in the plan (the base's or an earlier modifier's): kept where it is
        seen.update(keys)
        added = Step(step.text, step.role)
        if step.at == "first":
            kept.insert(0, added)
        elif step.at == "last":
            kept.append(added)
        else:
            kept.insert(int(step.at) - 1, added)  # past the end: appended
    return tuple(kept) or steps  # never a plan without steps (publishing refuses one alone)


def _step_keys(step: Step) -> set[tuple[str, str]]:
    """What makes two steps the same: their text in a language, normalised (case, spacing,
    a closing full stop); a step is a duplicate when it matches in ko or in en."""
    keys: set[tuple[str, str]] = set()
    for lang in LANGUAGES:
        template = getattr(step.text, lang)
        if template is not None:
            keys.add((lang, _normalised(template.source)))
    return keys


def _normalised(text: str) -> str:
    return " ".join(text.split()).casefold().rstrip(".。 ")


def _sla(plan: Sla, m: Sla) -> Sla:
    if not m.ack_seconds:  # the modifier has no sla (a part it does not give is NO_LIMIT)
        return plan
    ack = min(plan.ack_seconds, m.ack_seconds)
    return Sla(ack, max(ack, min(plan.resolve_seconds, m.resolve_seconds)))


def _escalation(
    plan: tuple[EscalationStep, ...], m: tuple[EscalationStep, ...]
) -> tuple[EscalationStep, ...]:
    if not m:
        return plan
    earliest: dict[str, int] = {}
    for step in (*plan, *m):
        for role in step.roles:
            earliest[role] = min(earliest.get(role, step.after_seconds), step.after_seconds)
    by_time: dict[int, list[str]] = {}
    for role, after in earliest.items():
        by_time.setdefault(after, []).append(role)
    return tuple(EscalationStep(after, tuple(roles)) for after, roles in sorted(by_time.items()))


def _compensation(plan: Compensation | None, m: Compensation | None) -> Compensation | None:
    if m is None:
        return plan
    if plan is None or (plan.currency == m.currency and m.max_amount > plan.max_amount):
        return m
    return plan


def _script(script: LocalText, m: Playbook) -> LocalText:
    line = m.script_line
    if line is None:
        return script
    if m.replaces_script:
        return line
    joined: dict[str, Template] = {}
    for lang in LANGUAGES:
        first, second = script.pick(lang), line.pick(lang)
        joined[lang] = Template(f"{first.source} {second.source}", (*first.parts, " ", *second.parts))
    return LocalText(ko=joined["ko"], en=joined["en"])


def step_problems(modifiers: Iterable[Playbook], plans: Iterable[Playbook]) -> list[PlaybookProblem]:
    """A modifier that removes steps and would leave one of the plans it can apply to with
    none: one problem each, at its `remove_steps` (its own added steps count)."""
    plans = [p for p in plans if p.kind == "plan"]  # modifiers apply to feedback plans only
    problems: list[PlaybookProblem] = []
    for m in modifiers:
        if not m.remove_roles or m.steps:
            continue
        categories = next((c.allowed for c in m.conditions if c.key == "category"), None)
        for plan in plans:
            if categories is not None and not categories.intersection(plan.categories):
                continue
            if all(s.role in m.remove_roles for s in plan.steps):
                problems.append(
                    PlaybookProblem(
                        m.source_file,
                        _line(m, "remove_steps"),
                        "remove_steps.roles",
                        f"would remove every step of {plan.id} (its steps are all for "
                        f"{', '.join(sorted({s.role for s in plan.steps}))}); keep a role or add steps",
                    )
                )
                break
    return problems


def _line(pb: Playbook, key: str) -> int | None:
    for i, line in enumerate(pb.source_text.splitlines(), 1):
        if line.startswith(f"{key}:"):
            return i
    return None
