"""Validation: every error family names file, line and field; all problems are collected."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest

from voc_actions.playbooks import (
    PlaybookProblem,
    PlaybookValidationError,
    load_directory,
    parse_duration,
    parse_playbooks,
)

GOOD = textwrap.dedent(
    """\
    id: food-safety
    version: 3
    title: {ko: 식품 안전 — 즉시 대응, en: Food safety — act now}
    when:
      category: [food_safety]
      severity: [high, critical]
    priority: urgent
    notify: {roles: [shift_lead, store_manager]}
    escalate: [{after: 5m, roles: [store_manager]}, {after: 15m, roles: [area_manager]}]
    sla: {ack: 2m, resolve: 30m}
    steps:
      - {ko: 진심으로 사과한다, en: Apologize sincerely}
      - {ko: 해당 메뉴를 회수한다, en: Pull the item, role: shift_lead}
    script: {ko: "{customer.name}님, 죄송합니다", en: "{customer.name}, we are sorry"}
    compensation: {max_amount: 20000, currency: KRW, authority: shift_lead}
    """
)


def problems_of(*files: tuple[str, str], **kw: bool) -> list[PlaybookProblem]:
    with pytest.raises(PlaybookValidationError) as exc:
        parse_playbooks(list(files), **kw)
    return exc.value.problems


def replace(line_no: int, new: str, text: str = GOOD) -> str:
    """GOOD with line ``line_no`` (1-based) replaced by ``new`` (may be several lines)."""
    lines = text.splitlines()
    lines[line_no - 1] = new
    return "\n".join(lines) + "\n"


def one(problems: list[PlaybookProblem]) -> PlaybookProblem:
    assert len(problems) == 1, problems
    return problems[0]


def test_good_playbook_parses_with_everything() -> None:
    lib = parse_playbooks([("fs.yaml", GOOD)])
    pb = lib.get("food-safety")
    assert pb is not None
    assert pb.version == 3 and pb.priority == "urgent" and pb.specificity == 2
    assert pb.source_file == "fs.yaml" and pb.raw["id"] == "food-safety"
    assert [s.role for s in pb.steps] == ["staff", "shift_lead"]
    assert [(e.after_seconds, e.roles) for e in pb.escalation] == [
        (300, ("store_manager",)),
        (900, ("area_manager",)),
    ]
    assert pb.sla.ack_seconds == 120 and pb.sla.resolve_seconds == 1800
    d = pb.to_dict()
    assert d["when"] == {"category": ["food_safety"], "severity": ["high", "critical"]}
    assert d["compensation"] == {"max_amount": 20000, "currency": "KRW", "authority": "shift_lead"}


def test_problem_str_format() -> None:
    assert str(PlaybookProblem("a.yaml", 3, "when.x", "bad")) == "a.yaml:3: when.x: bad"
    assert str(PlaybookProblem("a.yaml", None, "id", "bad")) == "a.yaml: id: bad"


def alias_bomb(levels: int) -> str:
    """A "billion laughs" playbook: each level is ten aliases of the one before, so ``levels``
    lines of YAML stand for 10**levels strings once walked."""
    lines = ['a0: &a0 "lol"']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels + 1)]
    return GOOD + "description:\n" + "".join(f"  {line}\n" for line in lines)


def test_anchors_and_aliases_are_refused_before_anything_walks_them() -> None:
    """#21 finding 11: a few aliased lines expand to billions of nodes in any walk (validation,
    the duplicate-key check, JSON for storage). Refused at the first anchor, with its line."""
    start = time.perf_counter()
    p = one(problems_of(("bomb.yaml", alias_bomb(6))))
    assert time.perf_counter() - start < 1.0
    assert (p.file, p.line, p.field) == ("bomb.yaml", GOOD.count("\n") + 2, "(yaml)")
    assert "anchors and aliases are not allowed" in p.message and "&a0" in p.message
    # A lone alias (of an anchor on an earlier line) names its own line too.
    merged = replace(10, "sla: &sla {ack: 2m, resolve: 30m}\nsla_copy: *sla")
    assert one(problems_of(("merge.yaml", merged))).line == 10
    # A '*' or '&' inside quoted text is just text.
    quoted = replace(14, 'script: {ko: "{customer.name}님 &*", en: "a *star* & more"}')
    assert parse_playbooks([("quoted.yaml", quoted)]).get("food-safety") is not None


def test_invalid_yaml() -> None:
    p = one(problems_of(("bad.yaml", "id: x\nwhen: [1\n")))
    assert (p.file, p.field) == ("bad.yaml", "(yaml)")
    assert p.line is not None and "invalid YAML" in p.message


def test_empty_and_non_mapping_files() -> None:
    assert one(problems_of(("e.yaml", ""))).message == "empty file"
    p = one(problems_of(("l.yaml", "- a\n- b\n")))
    assert p.line == 1 and "mapping" in p.message


def test_unknown_top_level_key() -> None:
    p = one(problems_of(("x.yaml", GOOD + "colour: red\n")))
    assert (p.line, p.field) == (16, "colour") and "unknown key" in p.message


def test_duplicate_yaml_key() -> None:
    p = one(problems_of(("x.yaml", GOOD + "priority: info\n")))
    assert (p.line, p.field) == (16, "priority") and "duplicate key" in p.message


def test_missing_required_fields() -> None:
    text = "id: x\nversion: 1\n"
    fields = {p.field for p in problems_of(("x.yaml", text))}
    assert fields == {"title", "when", "steps", "script"}


def test_unknown_condition_key() -> None:
    p = one(problems_of(("x.yaml", replace(6, "  weather: [rain]"))))
    assert (p.file, p.line, p.field) == ("x.yaml", 6, "when.weather")
    assert "unknown condition key" in p.message


def test_category_required_in_when() -> None:
    p = one(problems_of(("x.yaml", replace(5, "  sentiment: negative"))))
    assert (p.line, p.field) == (4, "when") and "category is required" in p.message


@pytest.mark.parametrize(
    ("line", "new", "field", "word"),
    [
        (5, "  category: [food]", "when.category", "unknown category"),
        (6, "  severity: [catastrophic]", "when.severity", "unknown severity"),
        (6, "  sentiment: angry", "when.sentiment", "unknown sentiment"),
        (6, "  channel: [fax]", "when.channel", "unknown channel"),
        (6, "  store.format: Big Store", "when.store.format", "lowercase"),
        (6, "  signals.vip: yes please", "when.signals.vip", "true or false"),
        (6, "  severity: []", "when.severity", "empty list"),
        (7, "priority: asap", "priority", "unknown priority"),
        (8, "notify: {roles: [janitor]}", "notify.roles", "unknown role"),
        (
            15,
            "compensation: {max_amount: 20000, currency: KRW, authority: ceo}",
            "compensation.authority",
            "role",
        ),
        (
            15,
            "compensation: {max_amount: -5, currency: won, authority: staff}",
            "compensation.max_amount",
            ">= 0",
        ),
        (2, "version: 0", "version", "positive integer"),
        (2, "version: two", "version", "positive integer"),
        (2, "version: 1.5", "version", "positive integer"),
        (1, "id: Food Safety!", "id", "bad id"),
    ],
)
def test_taxonomy_and_value_errors(line: int, new: str, field: str, word: str) -> None:
    probs = problems_of(("x.yaml", replace(line, new)))
    p = probs[0]
    assert (p.file, p.line, p.field) == ("x.yaml", line, field), probs
    assert word in p.message


def test_bad_step_role() -> None:
    p = one(problems_of(("x.yaml", replace(13, "  - {ko: 회수, en: Pull, role: chef}"))))
    assert (p.line, p.field) == (13, "steps[1].role") and "unknown role" in p.message


@pytest.mark.parametrize("value", ["5m", "30s", "2h", "1h30m", "90s", "1h5m10s"])
def test_valid_durations(value: str) -> None:
    assert parse_duration(value) > 0


@pytest.mark.parametrize("value", ["5", "5 min", "1d", "m", "", "0m", "-5m", "h1"])
def test_bad_durations(value: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(value)


def test_bad_duration_in_sla_and_escalation() -> None:
    text = replace(10, "sla: {ack: 2 minutes, resolve: 30}")
    text = replace(9, "escalate: [{after: 5, roles: [store_manager]}]", text)
    probs = problems_of(("x.yaml", text))
    assert {(p.line, p.field) for p in probs} == {
        (9, "escalate[0].after"),
        (10, "sla.ack"),
        (10, "sla.resolve"),
    }
    assert all("duration" in p.message for p in probs)


def test_sla_ack_after_resolve() -> None:
    p = one(problems_of(("x.yaml", replace(10, "sla: {ack: 2h, resolve: 30m}"))))
    assert (p.line, p.field) == (10, "sla") and "must not be later" in p.message


def test_empty_escalation() -> None:
    p = one(problems_of(("x.yaml", replace(9, "escalate: []"))))
    assert (p.line, p.field) == (9, "escalate") and "empty escalation" in p.message


def test_non_increasing_escalation() -> None:
    text = replace(9, "escalate:\n  - {after: 15m, roles: [store_manager]}\n"
                      "  - {after: 15m, roles: [area_manager]}")  # fmt: skip
    p = one(problems_of(("x.yaml", text)))
    assert (p.line, p.field) == (11, "escalate[1].after") and "strictly increase" in p.message


def test_cyclic_escalation() -> None:
    text = replace(9, "escalate:\n  - {after: 5m, roles: [store_manager]}\n"
                      "  - {after: 10m, roles: [area_manager]}\n"
                      "  - {after: 20m, roles: [store_manager]}")  # fmt: skip
    p = one(problems_of(("x.yaml", text)))
    assert (p.line, p.field) == (12, "escalate[2].roles") and "cyclic" in p.message


def test_escalation_must_climb() -> None:
    text = replace(9, "escalate: [{after: 5m, roles: [area_manager]}, {after: 9m, roles: [staff]}]")
    p = one(problems_of(("x.yaml", text)))
    assert (p.line, p.field) == (9, "escalate[1].roles") and "must climb" in p.message


def test_missing_text_and_unknown_language() -> None:
    text = replace(3, "title: {fr: Sécurité}")
    text = replace(12, "  - {role: staff}", text)
    probs = problems_of(("x.yaml", text))
    got = {(p.line, p.field) for p in probs}
    assert (3, "title.fr") in got and (3, "title") in got and (12, "steps[0]") in got
    assert any("missing text" in p.message for p in probs)


def test_one_language_is_enough() -> None:
    text = replace(3, "title: {en: Food safety}")
    assert parse_playbooks([("x.yaml", text)]).get("food-safety") is not None


@pytest.mark.parametrize(
    ("script", "word"),
    [
        ('"{customer.__class__}"', "unknown variable"),
        ("\"{{ ''.__class__.__mro__ }}\"", "Jinja syntax is not supported"),
        ('"{% for x in y %}"', "Jinja syntax is not supported"),
        ('"hello {customer.name"', "unclosed"),
        ('"hello }"', "unmatched"),
        ('"hello {}"', "empty placeholder"),
        ('"{customer.name()}"', "invalid placeholder"),
        ('"{customer.password}"', "unknown variable"),
    ],
)
def test_template_errors_and_sandbox(script: str, word: str) -> None:
    p = one(problems_of(("x.yaml", replace(14, f"script: {{ko: 좋아요, en: {script}}}"))))
    assert (p.line, p.field) == (14, "script.en")
    assert "template error" in p.message and word in p.message


def test_duplicate_ids_across_files() -> None:
    p = one(problems_of(("a.yaml", GOOD), ("b.yaml", GOOD)))
    assert (p.file, p.line, p.field) == ("b.yaml", 1, "id")
    assert "a.yaml" in p.message


def test_all_problems_are_collected_across_files() -> None:
    bad = replace(7, "priority: asap", replace(5, "  category: [food]"))
    probs = problems_of(("ok.yaml", GOOD.replace("food-safety", "ok")), ("bad.yaml", bad),
                        ("broken.yaml", "id: [\n"))  # fmt: skip
    assert [(p.file, p.line) for p in probs][:2] == [("bad.yaml", 5), ("bad.yaml", 7)]
    assert probs[2].file == "broken.yaml"


def test_require_defaults() -> None:
    probs = problems_of(("a.yaml", GOOD), require_defaults=True)
    missing = {p.message.split("'")[1] for p in probs}
    assert "food_safety" in missing  # GOOD has a severity condition: not a default
    assert "praise" in missing and len(probs) == 13
    assert all(p.field == "when.category" and p.file == "(library)" for p in probs)


def test_load_directory_skips_cases(tmp_path: Path) -> None:
    (tmp_path / "fs.yaml").write_text(GOOD, encoding="utf-8")
    (tmp_path / "cases.yaml").write_text("cases: []\n", encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not yaml", encoding="utf-8")
    lib = load_directory(tmp_path)
    assert [p.id for p in lib.playbooks] == ["food-safety"]


def test_load_directory_not_a_directory(tmp_path: Path) -> None:
    with pytest.raises(PlaybookValidationError):
        load_directory(tmp_path / "missing")
