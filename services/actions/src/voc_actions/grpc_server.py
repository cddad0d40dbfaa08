"""gRPC ActionsService: GetActionPlan and its batch form, translated straight to and from protobuf,
and GetTaxonomy (the published taxonomy every service loads, #20 §3)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from grpc import aio

from voc.actions.v1 import actions_pb2, actions_pb2_grpc
from voc_actions.live import LiveLibrary
from voc_actions.plans import DEFAULT_LANGUAGE, facts_of, template_values
from voc_actions.playbooks import Library, Playbook
from voc_actions.playbooks.model import PLAYBOOK_KINDS
from voc_actions.playbooks.render import normalize_language, render_texts
from voc_platform import taxonomy
from voc_platform.errors import Invalid
from voc_platform.grpc import check_batch_size, item_error
from voc_platform.taxonomy_live import to_proto
from voc_platform.timezones import known_zone

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


#: The store clocks a request may give: a day inside the years a datetime holds, so that the
#: wall-clock time exists in every zone.
MIN_LOCAL_TIME_MS = int(datetime(1, 1, 2, tzinfo=UTC).timestamp() * 1000)
MAX_LOCAL_TIME_MS = int(datetime(9999, 12, 30, tzinfo=UTC).timestamp() * 1000)
_SHOWN = 100  # a refusal quotes at most this much of what the caller sent


def _shown(value: str) -> str:
    return repr(value if len(value) <= _SHOWN else value[:_SHOWN] + "…")


def checked_request(request: actions_pb2.GetActionPlanRequest) -> tuple[datetime | None, str]:
    """The request's store clock and playbook kind, or `Invalid` naming the field (the one check
    the unary and the batch call share: INVALID_ARGUMENT, or an item error of that code)."""
    kind = request.kind or "plan"
    if kind not in PLAYBOOK_KINDS:
        raise Invalid(
            f"kind: unknown playbook kind {_shown(kind)}; use {', '.join(PLAYBOOK_KINDS)}", field="kind"
        )
    tz: tzinfo = UTC
    if request.time_zone:
        zone = known_zone(request.time_zone)
        if zone is None:
            raise Invalid(
                f"time_zone: unknown time zone {_shown(request.time_zone)}; use an IANA name (Asia/Seoul)",
                field="time_zone",
            )
        tz = zone
    ms = request.local_time_ms
    if not ms:
        return None, kind
    if not MIN_LOCAL_TIME_MS <= ms <= MAX_LOCAL_TIME_MS:
        raise Invalid(
            f"local_time_ms: {ms} is outside {MIN_LOCAL_TIME_MS}..{MAX_LOCAL_TIME_MS} (years 1 to 9999)",
            field="local_time_ms",
        )
    return datetime.fromtimestamp(ms / 1000, tz), kind


def plan_reply(
    library: Library, request: actions_pb2.GetActionPlanRequest
) -> actions_pb2.GetActionPlanResponse:
    """The reply to ``request``: what ``plans.lookup`` gives, as protobuf, built without
    the intermediate query and plan dataclasses (this is the service's hot path); `Invalid` for a
    request whose fields break a rule (`checked_request`)."""
    local_time, kind = checked_request(request)
    fb = request.feedback
    cust = request.customer
    st = request.store
    signals: dict[str, bool | int] = dict(cust.signals)
    signals["repeat_count"] = cust.repeat_count
    facts = facts_of(fb, cust, st, signals=signals, local_time=local_time)
    match = library.match(facts, kind)
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
