"""A tiny, safe template language for playbook text.

Syntax (the DESIGN §6 syntax): ``{customer.name}`` inserts a variable; ``{customer.name|손님}``
inserts a variable with an author-chosen fallback text. Nothing else exists: no expressions,
no attribute access, no filters, no loops. Templates are compiled when a playbook is loaded,
so a syntax error or an unknown variable is a validation error, never a render-time surprise.
Rendering is one pass of string concatenation; inserted values are never re-parsed, so a
customer named ``{store.name}`` stays ``{store.name}``.

Why not Jinja: a Jinja sandbox still evaluates author expressions and has a history of escapes;
the manual needs variable substitution only, so the safest engine is one that cannot do more.
Braces are reserved: ``{{``, ``}}`` and ``{%`` are rejected with a hint, which also rejects
Jinja-style attacks such as ``{{ ''.__class__.__mro__ }}`` at load time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

#: Every variable a playbook may use, with the neutral phrase rendered when the value is unknown.
VARIABLES: dict[str, dict[str, str]] = {
    "customer.name": {"ko": "고객", "en": "valued customer"},
    "customer.tier": {"ko": "회원", "en": "member"},
    "customer.last_visit": {"ko": "지난 방문", "en": "your last visit"},
    "customer.repeat_count": {"ko": "여러", "en": "several"},
    "store.name": {"ko": "저희 매장", "en": "our store"},
    "feedback.category": {"ko": "말씀하신 부분", "en": "the issue you raised"},
    "feedback.channel": {"ko": "접수 채널", "en": "the channel you used"},
    "feedback.touchpoint": {"ko": "매장", "en": "the store"},
    "compensation.max_amount": {"ko": "정해진 한도", "en": "the approved limit"},
    "sla.ack": {"ko": "몇 분", "en": "a few minutes"},
    "sla.resolve": {"ko": "오늘 중", "en": "today"},
}

_NAME = re.compile(r"[a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)*\Z")
_MAX_DEFAULT = 40


class TemplateError(ValueError):
    """A template that cannot be compiled; the message is meant for a playbook author."""


@dataclass(frozen=True, slots=True)
class Var:
    name: str
    default: str | None = None


@dataclass(frozen=True, slots=True)
class Template:
    source: str
    parts: tuple[str | Var, ...]

    @property
    def variables(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parts if isinstance(p, Var))

    def render(self, values: Mapping[str, str], language: str) -> str:
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            value = values.get(part.name)
            if not value:
                if part.default:
                    value = part.default  # the author's own words, as written
                else:
                    value = VARIABLES[part.name].get(language) or VARIABLES[part.name]["en"]
                    if not out:
                        # A neutral phrase opening the text: "Valued customer, ..." not "valued".
                        value = value[:1].upper() + value[1:]
            out.append(value)
        return "".join(out)


def compile_template(source: str) -> Template:
    """Compile ``source``; raise TemplateError naming the first problem."""
    parts: list[str | Var] = []
    literal: list[str] = []
    i, n = 0, len(source)
    while i < n:
        ch = source[i]
        if ch == "}":
            if source.startswith("}}", i):
                raise TemplateError(
                    "'}}' is not allowed: only single-brace variables such as {customer.name} exist"
                )
            raise TemplateError(f"unmatched '}}' at position {i + 1}")
        if ch != "{":
            literal.append(ch)
            i += 1
            continue
        if source.startswith(("{{", "{%", "{#"), i):
            raise TemplateError(
                f"'{source[i : i + 2]}' is not allowed: Jinja syntax is not supported, "
                "only single-brace variables such as {customer.name}"
            )
        end = source.find("}", i + 1)
        nxt = source.find("{", i + 1)
        if end < 0 or (0 <= nxt < end):
            raise TemplateError(f"unclosed '{{' at position {i + 1}")
        body = source[i + 1 : end]
        name, sep, default = body.partition("|")
        name = name.strip()
        if not name:
            raise TemplateError("empty placeholder '{}'")
        if not _NAME.match(name):
            raise TemplateError(f"invalid placeholder {{{body}}}: expected a name such as {{customer.name}}")
        if name not in VARIABLES:
            raise TemplateError(f"unknown variable {{{name}}}; allowed: " + ", ".join(sorted(VARIABLES)))
        fallback: str | None = None
        if sep:
            fallback = default.strip()
            if not fallback:
                raise TemplateError(f"empty fallback in {{{body}}}")
            if len(fallback) > _MAX_DEFAULT:
                raise TemplateError(f"fallback text in {{{name}|...}} is longer than {_MAX_DEFAULT}")
        if literal:
            parts.append("".join(literal))
            literal = []
        parts.append(Var(name, fallback))
        i = end + 1
    if literal:
        parts.append("".join(literal))
    return Template(source, tuple(parts))
