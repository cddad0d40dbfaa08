"""Validation of each part of a playbook (`when`, a text, `notify`, `steps`, `escalate`, `sla`,
`compensation`): a value checked and built, every problem reported by line and field on the file's
`Source`. `loader` reads the files and puts the parts together."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import yaml

from voc_actions.playbooks.model import (
    CONDITION_KINDS,
    LANGUAGES,
    STEP_PLACES,
    WEEKDAYS,
    Compensation,
    Condition,
    EscalationStep,
    LocalText,
    PlaybookProblem,
    Sla,
    Step,
)
from voc_actions.playbooks.template import TemplateError, compile_template
from voc_platform import taxonomy
from voc_platform.taxonomy import CHANNELS, ROLES, SENTIMENTS, SEVERITIES
from voc_platform.taxonomy import roles as role_table

PathT = tuple[str | int, ...]

#: SLA (ack seconds, resolve seconds) when a playbook has no ``sla:``.
DEFAULT_SLA: dict[str, tuple[int, int]] = {
    "urgent": (2 * 60, 30 * 60),
    "normal": (5 * 60, 60 * 60),
    "info": (4 * 3600, 24 * 3600),
}
#: Roles notified when a playbook has no ``notify:``.
DEFAULT_NOTIFY: dict[str, tuple[str, ...]] = {
    "urgent": ("shift_lead", "store_manager"),
    "normal": ("staff", "shift_lead"),
    "info": ("staff",),
}

_WORD = re.compile(r"[a-z0-9][a-z0-9_.-]{0,59}\Z")
_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?\Z")
_HOURS = re.compile(r"(\d\d):(\d\d)-(\d\d):(\d\d)\Z")
_CURRENCY = re.compile(r"[A-Z]{3}\Z")

#: Fixed sets; `category` is the published taxonomy's (`_known`), retired ones included so an
#: old publication still replays.
_TAXONOMY_SETS: dict[str, tuple[str, ...]] = {
    "severity": SEVERITIES,
    "sentiment": SENTIMENTS,
    "channel": CHANNELS,
}


def field_name(path: PathT) -> str:
    out = ""
    for el in path:
        out += f"[{el}]" if isinstance(el, int) else (f".{el}" if out else el)
    return out or "(file)"


def parse_duration(value: Any) -> int:
    """``"5m"``, ``"30s"``, ``"2h"``, ``"1h30m"`` -> seconds; ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError(f"duration must be text with a unit such as 30s, 5m, 2h or 1h30m, got {value!r}")
    m = _DURATION.match(value.strip())
    if not value.strip() or m is None:
        raise ValueError(f"bad duration {value!r}: use 30s, 5m, 2h or 1h30m")
    h, mi, s = (int(g) if g else 0 for g in m.groups())
    total = h * 3600 + mi * 60 + s
    if total <= 0:
        raise ValueError(f"duration {value!r} must be longer than zero")
    return total


def format_duration(seconds: int) -> str:
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return "".join(f"{v}{u}" for v, u in ((h, "h"), (m, "m"), (s, "s")) if v) or "0s"


@dataclass(eq=False)
class Source:
    """One file being validated: its node tree (for line numbers) and the problem list."""

    file: str
    root: yaml.Node
    problems: list[PlaybookProblem]

    def line(self, path: PathT) -> int | None:
        node: yaml.Node = self.root
        line: int | None = node.start_mark.line + 1
        for el in path:
            if isinstance(node, yaml.MappingNode):
                for k, v in node.value:
                    if isinstance(k, yaml.ScalarNode) and k.value == str(el):
                        line, node = k.start_mark.line + 1, v
                        break
                else:
                    return line
            elif isinstance(node, yaml.SequenceNode) and isinstance(el, int):
                if el >= len(node.value):
                    return line
                node = node.value[el]
                line = node.start_mark.line + 1
            else:
                return line
        return line

    def add(self, path: PathT, message: str, line: int | None = None) -> None:
        self.problems.append(
            PlaybookProblem(
                self.file, line if line is not None else self.line(path), field_name(path), message
            )
        )

    def check_duplicate_keys(self, node: yaml.Node, path: PathT = ()) -> None:
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for k, v in node.value:
                key = str(k.value) if isinstance(k, yaml.ScalarNode) else "?"
                if key in seen:
                    self.add(
                        (*path, key),
                        "duplicate key (the later value would silently win)",
                        line=k.start_mark.line + 1,
                    )
                seen.add(key)
                self.check_duplicate_keys(v, (*path, key))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self.check_duplicate_keys(item, (*path, i))


def unknown_keys(src: Source, value: dict[Any, Any], path: PathT, allowed: Iterable[str], hint: str) -> bool:
    """Report each key of `value` that is not `allowed` ("unknown key; <hint>"); True when none is."""
    ok = True
    for key in value:
        if key not in allowed:
            src.add((*path, str(key)), f"unknown key; {hint}")
            ok = False
    return ok


def strings(src: Source, value: Any, path: PathT, what: str) -> list[str] | None:
    """A string or a non-empty list of strings (any-of)."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        src.add(path, f"expected {what} or a list of them, got {value!r}")
        return None
    if not items:
        src.add(path, "empty list: give at least one value or remove the key")
        return None
    ok: list[str] = []
    for i, item in enumerate(items):
        if not isinstance(item, str) or not item.strip():
            p = path if isinstance(value, str) else (*path, i)
            src.add(p, f"expected {what}, got {item!r}")
            return None
        ok.append(item.strip())
    return list(dict.fromkeys(ok))


def parse_roles(src: Source, value: Any, path: PathT) -> tuple[str, ...] | None:
    names = strings(src, value, path, "a role")
    if names is None:
        return None
    bad = [r for r in names if r not in ROLES]
    if bad:
        src.add(path, f"unknown role {bad[0]!r}; known roles: {', '.join(ROLES)}")
        return None
    return tuple(names)


def parse_text(src: Source, value: Any, path: PathT, extra_keys: tuple[str, ...] = ()) -> LocalText | None:
    if not isinstance(value, dict):
        src.add(path, "expected text in both languages, e.g. {ko: ..., en: ...}")
        return None
    hint = "text takes ko and en" + (f" (and {', '.join(extra_keys)})" if extra_keys else "")
    ok = unknown_keys(src, value, path, (*LANGUAGES, *extra_keys), hint)
    compiled: dict[str, Any] = {}
    for lang in LANGUAGES:
        if lang not in value or value[lang] is None:
            continue
        raw = value[lang]
        if not isinstance(raw, str) or not raw.strip():
            src.add((*path, lang), "expected non-empty text")
            ok = False
            continue
        try:
            compiled[lang] = compile_template(raw.strip())
        except TemplateError as exc:
            src.add((*path, lang), f"template error: {exc}")
            ok = False
    if not any(lang in value and value[lang] is not None for lang in LANGUAGES):
        src.add(path, "missing text: give ko, en or both (the other language falls back)")
        return None
    if not ok:
        return None
    return LocalText(ko=compiled.get("ko"), en=compiled.get("en"))


def parse_condition(src: Source, key: str, value: Any) -> Condition | None:
    path: PathT = ("when", key)
    kind = CONDITION_KINDS[key]
    if kind == "bool":
        if not isinstance(value, bool):
            src.add(path, f"expected true or false, got {value!r}")
            return None
        return Condition(key, "bool", flag=value)
    if kind == "set":
        names = strings(src, value, path, "a value")
        if names is None:
            return None
        known = taxonomy.current().known if key == "category" else _TAXONOMY_SETS.get(key)
        for i, name in enumerate(names):
            if known is not None and name not in known:
                src.add(path, f"unknown {key} {name!r}; known: {', '.join(known)}")
                return None
            if known is None and not _WORD.match(name):
                src.add(
                    path if isinstance(value, str) else (*path, i),
                    f"{name!r}: use lowercase letters, digits, '_' or '-'",
                )
                return None
        return Condition(key, "set", values=tuple(names), allowed=frozenset(names))
    if kind == "hours":
        names = strings(src, value, path, "a time window like 22:00-06:00")
        if names is None:
            return None
        windows: list[tuple[int, int]] = []
        for name in names:
            m = _HOURS.match(name)
            bad = m is None
            if m is not None:
                h1, m1, h2, m2 = (int(g) for g in m.groups())
                bad = h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2 != 0)
                start, end = h1 * 60 + m1, h2 * 60 + m2
                if not bad and start == end % 1440:
                    src.add(path, f"time window {name!r} is empty or covers the whole day")
                    return None
            if bad:
                src.add(path, f"bad time window {name!r}: use HH:MM-HH:MM, e.g. 22:00-06:00")
                return None
            windows.append((start, end))
        return Condition(key, "hours", values=tuple(names), windows=tuple(windows))
    names = strings(src, value, path, "a weekday (mon..sun)")
    if names is None:
        return None
    lowered = [n.lower() for n in names]
    unknown = [n for n in lowered if n not in WEEKDAYS]
    if unknown:
        src.add(path, f"unknown weekday {unknown[0]!r}; use {', '.join(WEEKDAYS)}")
        return None
    return Condition(
        key, "weekdays", values=tuple(lowered), days=frozenset(WEEKDAYS.index(n) for n in lowered)
    )


def parse_when(
    src: Source, value: Any, *, need_category: bool = True, allow_empty: bool = False
) -> tuple[tuple[Condition, ...], tuple[str, ...]] | None:
    """The conditions and the categories they name (a modifier's `when` may name none: then it
    applies in every category). Only a pattern or heads-up default may have no condition."""
    if not isinstance(value, dict):
        src.add(("when",), "expected a mapping of conditions, e.g. {category: [food_safety]}")
        return None
    ok = True
    conds: dict[str, Condition] = {}
    for key, val in value.items():
        if key not in CONDITION_KINDS:
            src.add(("when", str(key)), f"unknown condition key; allowed: {', '.join(CONDITION_KINDS)}")
            ok = False
            continue
        cond = parse_condition(src, key, val)
        if cond is None:
            ok = False
        else:
            conds[key] = cond
    if need_category and "category" not in value:
        src.add(("when",), "when.category is required: every playbook belongs to a category")
        ok = False
    if not value and not allow_empty:
        src.add(("when",), "empty when: give at least one condition")
        ok = False
    if not ok:
        return None
    ordered = tuple(conds[k] for k in CONDITION_KINDS if k in conds)
    return ordered, conds["category"].values if "category" in conds else ()


def parse_escalation(src: Source, value: Any) -> tuple[EscalationStep, ...] | None:
    if not isinstance(value, list):
        src.add(("escalate",), "expected a list like [{after: 5m, roles: [store_manager]}]")
        return None
    if not value:
        src.add(("escalate",), "empty escalation chain: add steps or remove `escalate`")
        return None
    levels = {name: int(info.get("level", 0)) for name, info in role_table().items()}
    chain: list[EscalationStep] = []
    used: dict[str, int] = {}
    ok = True
    prev_after: int | None = None
    prev_top: tuple[int, str] | None = None
    for i, item in enumerate(value):
        path: PathT = ("escalate", i)
        if not isinstance(item, dict):
            src.add(path, "expected {after: 5m, roles: [...]}")
            ok = False
            continue
        if not unknown_keys(src, item, path, ("after", "roles"), "an escalation step has after and roles"):
            ok = False
        after: int | None = None
        if "after" not in item:
            src.add(path, "missing after (e.g. after: 5m)")
            ok = False
        else:
            try:
                after = parse_duration(item["after"])
            except ValueError as exc:
                src.add((*path, "after"), str(exc))
                ok = False
        if after is not None and prev_after is not None and after <= prev_after:
            src.add(
                (*path, "after"),
                f"must be later than the previous step ({format_duration(prev_after)}); "
                "every `after` counts from the alert, so the chain must strictly increase",
            )
            ok = False
        if after is not None:
            prev_after = after
        if "roles" not in item:
            src.add(path, "missing roles")
            ok = False
            continue
        roles = parse_roles(src, item["roles"], (*path, "roles"))
        if roles is None:
            ok = False
            continue
        for role in roles:
            if role in used:
                src.add(
                    (*path, "roles"),
                    f"cyclic escalation: {role} is already in escalate[{used[role]}]; "
                    "each role appears in one step only",
                )
                ok = False
        top = max((levels.get(r, 0), r) for r in roles)
        if prev_top is not None and top[0] <= prev_top[0] and not any(r in used for r in roles):
            src.add(
                (*path, "roles"),
                f"escalation must climb: the highest role here ({top[1]}) is not above "
                f"the previous step's ({prev_top[1]})",
            )
            ok = False
        for role in roles:
            used.setdefault(role, i)
        prev_top = top
        if after is not None:
            chain.append(EscalationStep(after, roles))
    return tuple(chain) if ok else None


def parse_sla(src: Source, value: Any, priority: str) -> Sla | None:
    ack, resolve = DEFAULT_SLA.get(priority, DEFAULT_SLA["normal"])
    if value is None:
        return Sla(ack, resolve)
    if not isinstance(value, dict):
        src.add(("sla",), "expected {ack: 5m, resolve: 60m}")
        return None
    ok = unknown_keys(src, value, ("sla",), ("ack", "resolve"), "sla takes ack and resolve")
    got: dict[str, int] = {}
    for key in ("ack", "resolve"):
        if key not in value:
            continue
        try:
            got[key] = parse_duration(value[key])
        except ValueError as exc:
            src.add(("sla", key), str(exc))
            ok = False
    if not ok:
        return None
    sla = Sla(got.get("ack", ack), got.get("resolve", resolve))
    if sla.ack_seconds > sla.resolve_seconds:
        src.add(
            ("sla",),
            f"ack ({format_duration(sla.ack_seconds)}) must not be later than "
            f"resolve ({format_duration(sla.resolve_seconds)})",
        )
        return None
    return sla


def parse_compensation(src: Source, value: Any) -> Compensation | None:
    path: PathT = ("compensation",)
    if not isinstance(value, dict):
        src.add(path, "expected {max_amount: 20000, currency: KRW, authority: shift_lead}")
        return None
    allowed = ("max_amount", "currency", "authority")
    ok = unknown_keys(src, value, path, allowed, "compensation takes max_amount, currency, authority")
    amount = value.get("max_amount")
    if isinstance(amount, bool) or not isinstance(amount, int | float) or amount < 0:
        src.add((*path, "max_amount"), f"expected a number >= 0, got {amount!r}")
        ok = False
    currency = value.get("currency")
    if not isinstance(currency, str) or not _CURRENCY.match(currency):
        src.add((*path, "currency"), f"expected a 3-letter currency code like KRW, got {currency!r}")
        ok = False
    authority = value.get("authority")
    if authority not in ROLES:
        src.add(
            (*path, "authority"),
            f"expected the role allowed to grant it ({', '.join(ROLES)}), got {authority!r}",
        )
        ok = False
    if not ok:
        return None
    assert isinstance(amount, int | float) and isinstance(currency, str)
    assert isinstance(authority, str)
    return Compensation(amount, currency, authority)


def parse_notify(src: Source, data: dict[Any, Any], priority: str) -> tuple[str, ...]:
    """The file's `notify: {roles: [...]}`, or the priority's default roles (also after a problem)."""
    default = DEFAULT_NOTIFY[priority]
    if "notify" not in data:
        return default
    value = data["notify"]
    if not isinstance(value, dict) or "roles" not in value:
        src.add(("notify",), "expected {roles: [shift_lead, ...]}")
        return default
    unknown_keys(src, value, ("notify",), ("roles",), "notify takes roles")
    return parse_roles(src, value["roles"], ("notify", "roles")) or default


def parse_steps(src: Source, value: Any, *, modifier: bool = False) -> tuple[Step, ...]:
    """The steps: a text each (ko/en), with one role (staff unless given); a modifier's may say
    where they go (`at: first`, `last` or a 1-based place)."""
    if not isinstance(value, list) or not value:
        src.add(("steps",), "expected a non-empty list of steps, e.g. - {ko: ..., en: ...}")
        return ()
    steps: list[Step] = []
    extra = ("role", "at") if modifier else ("role",)
    for i, item in enumerate(value):
        step_text = parse_text(src, item, ("steps", i), extra_keys=extra)
        at: str | int = "last"
        if modifier and isinstance(item, dict) and "at" in item:
            at = item["at"]
            if isinstance(at, bool) or not (at in STEP_PLACES or (isinstance(at, int) and at >= 1)):
                src.add(("steps", i, "at"), f"expected first, last or a place 1, 2, ..., got {at!r}")
                at = "last"
        role = "staff"
        if isinstance(item, dict) and "role" in item:
            r = parse_roles(src, item["role"], ("steps", i, "role"))
            if r is not None and len(r) != 1:
                src.add(("steps", i, "role"), "a step has exactly one role")
            elif r is not None:
                role = r[0]
        if step_text is not None:
            steps.append(Step(step_text, role, at))
    return tuple(steps)
