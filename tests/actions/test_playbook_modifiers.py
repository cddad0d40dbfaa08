"""Modifiers (`kind: modifier`): composition on top of any plan in a documented order, the
shipped VIP / repeat / churn-risk / chronic-complainer modifiers, `voc playbooks test` cases
that name them, publish-time validation with file, line and field, and `POST /v1/plans:lookup`
giving a VIP repeat complainer a different plan than an anonymous first-timer."""

from __future__ import annotations

import textwrap

import pytest

from tests.actions.conftest import Replicas, unique_id
from tests.actions.test_api import assert_problem
from voc_actions.playbooks import (
    Facts,
    PlaybookValidationError,
    default_library,
    parse_playbooks,
    render_plan,
    run_cases,
)

BASE = textwrap.dedent(
    """\
    id: wait-base
    version: 1
    title: {ko: 대기, en: Waiting}
    when: {category: wait_time}
    priority: normal
    notify: {roles: [staff]}
    escalate:
      - {after: 10m, roles: [shift_lead]}
      - {after: 30m, roles: [store_manager]}
    sla: {ack: 5m, resolve: 45m}
    steps:
      - {ko: 사과한다, en: Apologise}
      - {ko: 안내한다, en: Give the wait time}
    script: {ko: "{customer.name}님 죄송합니다.", en: "{customer.name}, we are sorry."}
    compensation: {max_amount: 10000, currency: KRW, authority: shift_lead}
    """
)
OTHER = textwrap.dedent(
    """\
    id: other-base
    version: 1
    title: {en: Other}
    when: {category: other}
    steps:
      - {en: Listen, role: shift_lead}
      - {en: Note it down}
    script: {en: Thanks.}
    """
)


def modifier(pid: str, body: str) -> tuple[str, str]:
    head = f"id: {pid}\nversion: 1\nkind: modifier\ntitle: {{en: {pid}}}\n"
    return f"{pid}.yaml", head + textwrap.dedent(body)


VIP = modifier(
    "vip",
    """\
    order: 10
    when: {customer.tier: [vip]}
    priority: urgent
    notify: {roles: [store_manager]}
    sla: {ack: 2m}
    escalate: [{after: 5m, roles: [store_manager]}]
    steps:
      - {en: Greet by name, role: shift_lead, at: first}
      - {en: Manager calls, role: store_manager}
    script: {en: "You matter to us."}
    compensation: {max_amount: 50000, currency: KRW, authority: store_manager}
    """,
)
REPEAT = modifier(
    "again",
    """\
    order: 20
    when: {signals.repeat_issue: true}
    steps:
      - {en: Read the last case, role: shift_lead, at: 2}
    """,
)
HOUSEHOLD = modifier(
    "driver",
    """\
    when: {customer.household_relation: [driver], category: [wait_time]}
    steps:
      - {en: The account owner may call too}
    """,
)


def files(*extra: tuple[str, str]) -> list[tuple[str, str]]:
    return [("wait-base.yaml", BASE), ("other-base.yaml", OTHER), *extra]


def test_modifiers_compose_in_order_on_any_plan() -> None:
    library = parse_playbooks(files(REPEAT, VIP, HOUSEHOLD))  # file order does not matter
    assert [m.id for m in library.modifiers] == ["vip", "again", "driver"]  # order, then id
    facts = Facts(category="wait_time", customer_tier="vip", signals={"repeat_issue": True})
    plan = render_plan(library.match(facts), "en", customer={"name": "Kim"})
    assert plan.playbook_id == "wait-base" and plan.modifiers == ("vip", "again")
    # vip first: its step at the top and the manager's at the end; then `again` at place 2.
    assert [(s.text, s.role) for s in plan.steps] == [
        ("Greet by name", "shift_lead"),
        ("Read the last case", "shift_lead"),
        ("Apologise", "staff"),
        ("Give the wait time", "staff"),
        ("Manager calls", "store_manager"),
    ]
    assert plan.priority == "urgent"
    assert plan.notify_roles == ["staff", "store_manager"]
    assert (plan.sla.ack_seconds, plan.sla.resolve_seconds) == (120, 45 * 60)  # resolve not given: kept
    assert [(e.after_seconds, e.roles) for e in plan.escalation] == [
        (300, ("store_manager",)),
        (600, ("shift_lead",)),
    ]
    assert plan.compensation is not None and plan.compensation.max_amount == 50000
    assert plan.script == "Kim, we are sorry. You matter to us."
    assert plan.matched_because == [
        "category=wait_time",
        "modifier vip: customer.tier=vip",
        "modifier again: signals.repeat_issue=true",
    ]
    # In another category the same modifiers apply; the household one only where it says.
    other = library.match(Facts(category="other", customer_tier="vip", household_relation="driver"))
    assert other.modifiers == ("vip",)
    driver = library.match(Facts(category="wait_time", household_relation="Driver"))
    assert driver.modifiers == ("driver",)
    # Nobody known: the plan as written.
    plain = render_plan(library.match(Facts(category="wait_time")), "en")
    assert plain.modifiers == () and plain.priority == "normal" and len(plain.steps) == 2


def test_a_modifier_never_lowers_and_keeps_the_tighter_values() -> None:
    loose = modifier(
        "loose",
        """\
        when: {customer.tier: [gold]}
        priority: info
        sla: {ack: 30m, resolve: 2h}
        compensation: {max_amount: 5000, currency: KRW, authority: staff}
        """,
    )
    library = parse_playbooks(files(loose))
    plan = render_plan(library.match(Facts(category="wait_time", customer_tier="gold")), "en")
    assert plan.priority == "normal"
    assert (plan.sla.ack_seconds, plan.sla.resolve_seconds) == (300, 45 * 60)
    assert plan.compensation is not None and plan.compensation.max_amount == 10000


def test_a_modifier_may_replace_the_plan_s_script_and_a_later_line_still_follows() -> None:
    instead = modifier(
        "instead",
        """\
        order: 5
        when: {signals.repeat_issue: true}
        replace_script: true
        script: {ko: "{customer.name}님, 다시 연락드립니다.", en: "{customer.name}, we are calling back."}
        """,
    )
    library = parse_playbooks(files(instead, VIP))
    facts = Facts(category="wait_time", customer_tier="vip", signals={"repeat_issue": True})
    match = library.match(facts)
    assert match.modifiers == ("instead", "vip")
    en = render_plan(match, "en", customer={"name": "Kim"})
    ko = render_plan(match, "ko", customer={"name": "김"})
    assert en.script == "Kim, we are calling back. You matter to us."
    assert ko.script == "김님, 다시 연락드립니다. You matter to us."
    alone = render_plan(library.match(Facts(category="wait_time", signals={"repeat_issue": True})), "en")
    assert alone.script == "Valued customer, we are calling back."
    # without it the plan's script stays and the line follows, as before
    assert render_plan(library.match(Facts(category="wait_time", customer_tier="vip")), "en").script == (
        "Valued customer, we are sorry. You matter to us."
    )
    assert library.get("instead").to_dict()["replace_script"] is True
    assert library.get("vip").to_dict()["replace_script"] is False


def test_composition_is_cached_per_set_of_modifiers() -> None:
    library = parse_playbooks(files(VIP, REPEAT))
    facts = Facts(category="wait_time", customer_tier="vip")
    assert library.match(facts).playbook is library.match(facts).playbook
    assert library.match(facts).playbook is not library.get("wait-base")


@pytest.mark.parametrize(
    ("body", "line", "field", "message"),
    [
        (
            "when: {customer.colour: [red]}\npriority: urgent\n",
            5,
            "when.customer.colour",
            "unknown condition key",
        ),
        (
            "when: {signals.vip: true}\npriorty: urgent\nnotify: {roles: [shift_lead]}\n",
            6,
            "priorty",
            "unknown key",
        ),
        ("when: {signals.vip: true}\n", 1, "(file)", "a modifier changes something"),
        ("when: {}\npriority: urgent\n", 5, "when", "empty when"),
        ("when: {signals.vip: true}\nsteps:\n  - {en: x, at: 0}\n", 7, "steps[0].at", "first, last"),
        ("when: {signals.vip: true}\norder: -1\npriority: urgent\n", 6, "order", "order must be"),
        (
            "when: {signals.vip: true}\nremove_steps: {roles: [boss]}\n",
            6,
            "remove_steps.roles",
            "unknown role",
        ),
        (
            "when: {signals.vip: true}\npriority: urgent\nreplace_script: true\n",
            7,
            "replace_script",
            "needs a script",
        ),
        (
            "when: {signals.vip: true}\nreplace_script: yes please\nscript: {en: Hi.}\n",
            6,
            "replace_script",
            "true or false",
        ),
    ],
)
def test_a_bad_modifier_names_file_line_and_field(body: str, line: int, field: str, message: str) -> None:
    with pytest.raises(PlaybookValidationError) as caught:
        parse_playbooks(files(modifier("bad", body)))
    [problem] = caught.value.problems
    assert (problem.file, problem.line, problem.field) == ("bad.yaml", line, field)
    assert message in problem.message


def test_a_modifier_that_would_remove_every_step_is_refused() -> None:
    empties = modifier(
        "empties",
        """\
        when: {category: [other], signals.vip: true}
        priority: urgent
        remove_steps: {roles: [shift_lead, staff]}
        """,
    )
    with pytest.raises(PlaybookValidationError) as caught:
        parse_playbooks(files(empties))
    [problem] = caught.value.problems
    assert (problem.file, problem.line, problem.field) == ("empties.yaml", 7, "remove_steps.roles")
    assert "would remove every step of other-base" in problem.message
    # Removing some of a plan's steps, or all of them while adding its own, is fine.
    some = modifier("some", "when: {category: [other], signals.vip: true}\nremove_steps: {roles: [staff]}\n")
    library = parse_playbooks(files(some))
    plan = render_plan(library.match(Facts(category="other", signals={"vip": True})), "en")
    assert [s.text for s in plan.steps] == ["Listen"]
    replaced = modifier(
        "replaced",
        "when: {signals.vip: true}\nremove_steps: {roles: [staff, shift_lead]}\nsteps: [{en: Mine}]\n",
    )
    plan = render_plan(
        parse_playbooks(files(replaced)).match(Facts(category="wait_time", signals={"vip": True})), "en"
    )
    assert [s.text for s in plan.steps] == ["Mine"]


def test_publishing_checks_a_modifier_against_the_published_plans() -> None:
    library = parse_playbooks(files())
    empties = modifier("empties", "when: {signals.vip: true}\nremove_steps: {roles: [shift_lead, staff]}\n")
    with pytest.raises(PlaybookValidationError) as caught:
        library.with_published(parse_playbooks([empties]))
    assert caught.value.problems[0].field == "remove_steps.roles"
    assert "other-base" in caught.value.problems[0].message


def test_the_shipped_modifiers() -> None:
    library = default_library()
    assert [m.id for m in library.modifiers] == [
        "modifier-reopened",
        "modifier-vip",
        "modifier-repeat-issue",
        "modifier-churn-risk",
        "modifier-chronic-complainer",
    ]
    for m in library.modifiers:
        assert m.title.ko is not None and m.title.en is not None
        assert all(s.text.ko is not None and s.text.en is not None for s in m.steps)
    everyone = Facts(
        category="food_quality",
        sentiment="negative",
        customer_tier="vip",
        signals={"repeat_issue": True, "churn_risk": True, "chronic_complainer": True},
        reopened=True,
    )
    match = library.match(everyone)
    assert match.modifiers == tuple(m.id for m in library.modifiers)
    for lang in ("ko", "en"):
        plan = render_plan(match, lang)
        assert plan.steps and "{" not in plan.script


def test_cases_name_the_modifiers() -> None:
    library = parse_playbooks(files(VIP, REPEAT))
    cases = textwrap.dedent(
        """\
        cases:
          - name: vip repeat
            facts: {category: wait_time, customer.tier: vip, signals.repeat_issue: true}
            expect: wait-base
            modifiers: [vip, again]
          - name: wrong order
            facts: {category: wait_time, customer.tier: vip, signals.repeat_issue: true}
            expect: wait-base
            modifiers: [again, vip]
          - name: none
            facts: {category: wait_time}
            expect: wait-base
            modifiers: []
        """
    )
    results = run_cases(library, cases)
    assert [(r.actual, r.ok) for r in results] == [
        ("wait-base + vip + again", True),
        ("wait-base + vip + again", False),
        ("wait-base", True),
    ]


def test_a_step_the_plan_already_has_is_not_added_again() -> None:
    """The same step from the plan and a modifier (or two modifiers) is listed once, where it
    first stood and with its first role; the same text in ko is enough, case and spacing aside."""
    again = modifier(
        "same",
        """\
        order: 10
        when: {customer.tier: [vip]}
        steps:
          - {ko: "사과한다 ", en: "  apologise.", role: shift_lead, at: first}
          - {ko: 안내한다, en: Tell them how long the wait is, at: 2}
          - {ko: 점장이 연락한다, en: The manager calls, role: store_manager}
        """,
    )
    twice = modifier(
        "twice",
        """\
        order: 20
        when: {customer.tier: [vip]}
        steps:
          - {en: THE   MANAGER CALLS, role: store_manager, at: first}
          - {en: Write it down}
        """,
    )
    library = parse_playbooks(files(again, twice))
    plan = render_plan(library.match(Facts(category="wait_time", customer_tier="vip")), "en")
    assert plan.modifiers == ("same", "twice")
    assert [(s.text, s.role) for s in plan.steps] == [
        ("Apologise", "staff"),
        ("Give the wait time", "staff"),
        ("The manager calls", "store_manager"),
        ("Write it down", "staff"),
    ]
    # A step the modifier removed first is added back at the modifier's own place.
    redo = modifier(
        "redo",
        """\
        when: {customer.tier: [vip]}
        remove_steps: {roles: [staff]}
        steps:
          - {ko: 안내한다, en: Give the wait time, role: shift_lead}
        """,
    )
    plan = render_plan(
        parse_playbooks(files(redo)).match(Facts(category="wait_time", customer_tier="vip")), "en"
    )
    assert [(s.text, s.role) for s in plan.steps] == [("Give the wait time", "shift_lead")]


def test_the_shipped_vip_staff_attitude_plan_says_each_step_once() -> None:
    """The reviewer's VIP staff-attitude plan: "greet them by name" and the store manager's
    apology once each, and a script any reader (a shift lead too) can say."""
    library = default_library()
    facts = Facts(category="staff_attitude", severity="medium", sentiment="negative", customer_tier="vip")
    match = library.match(facts)
    assert (match.playbook.id, match.modifiers) == ("staff-attitude-vip", ("modifier-vip",))
    for lang, name, apology, manager in (
        ("en", "by name", "apologis", ("i'm the store manager", "as store manager")),
        ("ko", "이름으로", "사과", ("점장인 제가", "점장으로서")),
    ):
        plan = render_plan(match, lang, {"name": "Kim"})
        texts = [" ".join(s.text.split()).casefold() for s in plan.steps]
        assert len(texts) == len(set(texts)), texts
        assert sum(name in t for t in texts) == 1, texts
        assert sum(apology in t for t in texts) == 1, texts
        assert not any(m in plan.script.casefold() for m in manager), plan.script


def test_no_shipped_script_speaks_as_the_manager() -> None:
    """Scripts are not rendered per reader role, so none may say "I'm the store manager"."""
    first_person = (
        "i'm the store manager",
        "i'm the manager",
        "as store manager",
        "this is the branch manager",
        "점장인 제가",
        "점장으로서",
        "지점장입니다",
    )
    for pb in default_library().playbooks:
        for text in (pb.script, pb.script_line):
            for template in (text.ko, text.en) if text is not None else ():
                assert template is not None
                assert not any(p in template.source.casefold() for p in first_person), (
                    pb.id,
                    template.source,
                )


WAIT = {"category": "wait_time", "severity": "medium", "sentiment": "negative", "channel": "kiosk"}


async def test_lookup_a_vip_repeat_complainer_gets_a_different_plan(actions_replicas: Replicas) -> None:
    a = actions_replicas.a
    first_timer = await a.lookup({"feedback": WAIT, "language": "en"})
    vip = await a.lookup(
        {
            "feedback": WAIT,
            "customer": {"tier": "vip", "signals": {"repeat_issue": True}, "repeat_count": 2, "name": "Kim"},
            "language": "en",
        }
    )
    assert first_timer.status_code == vip.status_code == 200, (first_timer.text, vip.text)
    plain, special = first_timer.json(), vip.json()
    assert plain["playbook_id"] == special["playbook_id"] == "wait-time-default"
    assert (plain["priority"], special["priority"]) == ("normal", "urgent")
    assert plain["modifiers"] == [] and special["modifiers"] == ["modifier-vip", "modifier-repeat-issue"]
    assert len(special["steps"]) == len(plain["steps"]) + 4
    assert "store_manager" in special["notify_roles"] and "store_manager" not in plain["notify_roles"]
    assert special["sla"]["ack_seconds"] < plain["sla"]["ack_seconds"]
    assert special["matched_because"][1].startswith("modifier modifier-vip: ")
    assert special["compensation"]["max_amount"] == 50000 and plain["compensation"] is None
    # chronic complainer and household relation are facts a lookup may carry
    chronic = await a.lookup(
        {
            "feedback": WAIT,
            "customer": {"signals": {"chronic_complainer": True}, "household_relation": "driver"},
        }
    )
    assert chronic.status_code == 200 and chronic.json()["modifiers"] == ["modifier-chronic-complainer"]


async def test_publishing_a_bad_modifier_is_refused_with_file_line_and_field(
    actions_replicas: Replicas,
) -> None:
    a = actions_replicas.a
    before = await a.live_set()
    pid = unique_id("mod")
    name, text = modifier(pid, "when: {signals.mood: true}\npriority: urgent\n")
    body = assert_problem(await a.publish({name: text}), 422)
    assert body["errors"] == [
        {
            "file": name,
            "line": 5,
            "field": "when.signals.mood",
            "message": body["errors"][0]["message"],
        }
    ]
    assert "unknown condition key" in body["errors"][0]["message"]
    # A modifier that would empty a shipped plan (wait-time-default: staff and shift lead steps).
    name, text = modifier(pid, "when: {signals.vip: true}\nremove_steps: {roles: [staff, shift_lead]}\n")
    body = assert_problem(await a.publish({name: text}), 422)
    [error] = body["errors"]
    assert (error["file"], error["line"], error["field"]) == (name, 6, "remove_steps.roles")
    assert "would remove every step" in error["message"]
    assert await a.live_set() == before


def test_the_grpc_reply_carries_the_modifiers_and_the_other_language() -> None:
    from voc.actions.v1 import actions_pb2
    from voc.common.v1 import common_pb2
    from voc_actions import grpc_server

    request = actions_pb2.GetActionPlanRequest(
        feedback=common_pb2.FeedbackFacts(category="wait_time", sentiment="negative", language="ko"),
        customer=actions_pb2.CustomerFacts(
            tier="vip", known=True, name="김민수", signals={"repeat_issue": True}
        ),
        language="ko",
        other_languages=["en", "ko", "en-US"],
    )
    plan = grpc_server.plan_reply(default_library(), request).plan
    assert list(plan.modifiers) == ["modifier-vip", "modifier-repeat-issue"]
    assert plan.language == "ko" and plan.script.startswith("김민수님")
    [english] = plan.translations  # the plan's own language and duplicates are not repeated
    assert english.language == "en" and english.script.startswith("김민수, ")
    assert english.title == "Wait-time complaint — update and apologise"
    assert len(english.steps) == len(plan.steps) and english.steps[0].startswith("Before you approach")


async def test_a_modifier_as_the_api_lists_it(actions_replicas: Replicas) -> None:
    response = await actions_replicas.a.get("/v1/playbooks/modifier-vip")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["kind"], body["order"], body["priority"]) == ("modifier", 10, "urgent")
    assert body["when"] == {"sentiment": ["negative", "neutral"], "customer.tier": ["vip", "vvip"]}
    assert body["sla"] == {"ack_seconds": 180, "resolve_seconds": None}  # resolve: the plan's
    assert body["steps"][0]["at"] == "first" and body["steps"][1]["at"] == "last"
    assert body["script"]["ko"] and body["script"]["en"]
    plan = await actions_replicas.a.get("/v1/playbooks/wait-time-default")
    assert plan.json()["kind"] == "plan"
