"""gRPC ActionsService: GetActionPlan and its batch form, translated straight to and from protobuf,
and GetTaxonomy (the published taxonomy every service loads, #20 §3)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo

from grpc import aio

from voc.actions.v1 import actions_pb2, actions_pb2_grpc
from voc_actions.live import LiveLibrary
from voc_actions.plans import DEFAULT_LANGUAGE, facts_of, template_values
from voc_actions.playbooks import Library, Playbook
from voc_actions.playbooks.render import normalize_language, render_texts
from voc_platform import taxonomy
from voc_platform.grpc import check_batch_size, item_error
from voc_platform.taxonomy_live import to_proto

SERVICE_NAME = actions_pb2.DESCRIPTOR.services_by_name["ActionsService"].full_name


def _fixed_part(pb: Playbook, lang: str) -> actions_pb2.Plan:
    """The reply fields that depend only on the playbook and the language, built once per
    playbook and language and kept on the (immutable) playbook."""
    key = ("grpc-plan", lang)
    fixed: actions_pb2.Plan | None = pb.derived.get(key)
    if fixed is None:
        comp = pb.compensation
        fixed = pb.derived[key] = actions_pb2.Plan(
            playbook_id=pb.id,
            version=pb.version,
            priority=pb.priority,
            sla=actions_pb2.Sla(ack_seconds=pb.sla.ack_seconds, resolve_seconds=pb.sla.resolve_seconds),
            notify_roles=pb.notify_roles,
            escalation=[
                actions_pb2.EscalationStep(after_seconds=e.after_seconds, roles=e.roles)
                for e in pb.escalation
            ],
            compensation=(
                actions_pb2.Compensation(
                    max_amount=comp.max_amount, currency=comp.currency, authority=comp.authority
                )
                if comp is not None
                else None
            ),
            language=lang,
        )
    return fixed


def _local_time(request: actions_pb2.GetActionPlanRequest) -> datetime | None:
    if not request.local_time_ms:
        return None
    tz: tzinfo = UTC
    if request.time_zone:
        try:
            tz = ZoneInfo(request.time_zone)
        except (KeyError, ValueError):
            tz = UTC
    return datetime.fromtimestamp(request.local_time_ms / 1000, tz)


def plan_reply(
    library: Library, request: actions_pb2.GetActionPlanRequest
) -> actions_pb2.GetActionPlanResponse:
    """The reply to ``request``: what ``plans.lookup`` gives, as protobuf, built without
    the intermediate query and plan dataclasses (this is the service's hot path)."""
    fb = request.feedback
    cust = request.customer
    st = request.store
    signals: dict[str, bool | int] = dict(cust.signals)
    signals["repeat_count"] = cust.repeat_count
    facts = facts_of(fb, cust, st, signals=signals, local_time=_local_time(request))
    match = library.match(facts, request.kind or "plan")
    customer = template_values(cust.name, cust.tier, cust.last_visit, cust.repeat_count)
    store = {"name": st.name} if st.name else None
    lang, title, steps, script = render_texts(
        match, language=request.language or fb.language or DEFAULT_LANGUAGE, customer=customer, store=store
    )
    reply = actions_pb2.GetActionPlanResponse()
    plan = reply.plan
    plan.CopyFrom(_fixed_part(match.playbook, lang))
    plan.title = title
    plan.script = script
    add_step = plan.steps.add
    for text, role in steps:
        add_step(text=text, role=role)
    plan.matched_because.extend(match.matched_because)
    add_runner_up = plan.runners_up.add
    for playbook_id, specificity in match.runners_up:
        add_runner_up(playbook_id=playbook_id, specificity=specificity)
    plan.modifiers.extend(match.modifiers)
    add_matched = plan.matched.add
    for m in match.matched():
        add_matched(key=m.key, values=m.values, actual=m.actual, modifier=m.modifier)
    for other in dict.fromkeys(normalize_language(o) for o in request.other_languages):
        if other != lang:
            _, other_title, other_steps, other_script = render_texts(match, other, customer, store)
            plan.translations.add(
                language=other, title=other_title, steps=[t for t, _ in other_steps], script=other_script
            )
    return reply


@dataclass(eq=False)
class ActionsServicer(actions_pb2_grpc.ActionsServiceServicer):
    live: LiveLibrary

    async def GetActionPlan(
        self, request: actions_pb2.GetActionPlanRequest, context: aio.ServicerContext
    ) -> actions_pb2.GetActionPlanResponse:
        return plan_reply(self.live.library, request)

    async def BatchGetActionPlans(
        self, request: actions_pb2.BatchGetActionPlansRequest, context: aio.ServicerContext
    ) -> actions_pb2.BatchGetActionPlansResponse:
        await check_batch_size(context, len(request.requests))
        library = self.live.library  # one library for the whole batch, even if it is replaced
        reply = actions_pb2.BatchGetActionPlansResponse()
        add = reply.results.add
        for item in request.requests:
            try:
                add(response=plan_reply(library, item))
            except Exception as exc:
                add(error=item_error(exc))
        return reply

    async def GetTaxonomy(
        self, request: actions_pb2.GetTaxonomyRequest, context: aio.ServicerContext
    ) -> actions_pb2.GetTaxonomyResponse:
        return actions_pb2.GetTaxonomyResponse(taxonomy=to_proto(taxonomy.current()))


def register(live: LiveLibrary) -> list[Callable[[aio.Server], None]]:
    servicer = ActionsServicer(live)
    return [lambda server: actions_pb2_grpc.add_ActionsServiceServicer_to_server(servicer, server)]
