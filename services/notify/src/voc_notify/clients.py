"""gRPC clients for profile and actions, with the degraded paths of DESIGN §3, and their
replies as notify's typed values (`facts.py`)."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from datetime import datetime

import grpc
from grpc import aio

from voc.actions.v1 import actions_pb2, actions_pb2_grpc
from voc.common.v1 import common_pb2
from voc.profile.v1 import profile_pb2, profile_pb2_grpc
from voc_notify.defaults import default_plan
from voc_notify.facts import (
    UNKNOWN_CUSTOMER,
    Compensation,
    CustomerContext,
    EscalationStep,
    HouseholdMember,
    MatchedCondition,
    Plan,
    PlanStep,
    PlanTexts,
    Reason,
    RecentContact,
    RunnerUp,
    Signals,
    Sla,
    Visit,
)
from voc_notify.models import Store
from voc_notify.settings import Settings
from voc_notify.words import LANGUAGES
from voc_platform.grpc import Coalescing, ItemFailed, client_channel
from voc_platform.timezones import known_zone

log = logging.getLogger(__name__)
#: The languages staff may read (the directory's `language`).


class Upstreams:
    """Long-lived channels to profile and actions (created once, reused for every alert)."""

    def __init__(self, settings: Settings) -> None:
        timeout, tls = settings.grpc_timeout_seconds, settings.grpc_tls()
        self._profile_channel = client_channel(
            settings.profile_grpc_target, token=settings.internal_token, timeout=timeout, tls=tls
        )
        self._actions_channel = client_channel(
            settings.actions_grpc_target, token=settings.internal_token, timeout=timeout, tls=tls
        )
        self.profile = profile_pb2_grpc.ProfileServiceStub(self._profile_channel)
        self.actions = actions_pb2_grpc.ActionsServiceStub(self._actions_channel)
        # Alerts handled together (one fetch of events) ask together: one batch call each.
        self.get_context = Coalescing(
            method="/voc.profile.v1.ProfileService/GetCustomerContext",
            single=self.profile.GetCustomerContext,
            batch=lambda requests: self.profile.BatchGetCustomerContexts(
                profile_pb2.BatchGetCustomerContextsRequest(requests=requests)
            ),
        )
        self.get_plan = Coalescing(
            method="/voc.actions.v1.ActionsService/GetActionPlan",
            single=self.actions.GetActionPlan,
            batch=lambda requests: self.actions.BatchGetActionPlans(
                actions_pb2.BatchGetActionPlansRequest(requests=requests)
            ),
        )

    async def close(self) -> None:
        await self._profile_channel.close()
        await self._actions_channel.close()

    async def customer_context(
        self, *, identifiers: common_pb2.CustomerIdentifiers, facts: common_pb2.FeedbackFacts
    ) -> tuple[profile_pb2.CustomerContext | None, bool]:
        """(context, degraded). None context with degraded=False means anonymous."""
        if not any(
            (identifiers.loyalty_id, identifiers.phone, identifiers.email, identifiers.channel_user_id)
        ):
            return None, False
        try:
            response = await self.get_context(
                profile_pb2.GetCustomerContextRequest(identifiers=identifiers, current_feedback=facts)
            )
        except (aio.AioRpcError, ItemFailed) as exc:
            log.warning("profile unavailable (%s): plan without customer context", _code(exc))
            return None, True
        return response.context, False

    async def context_of(self, customer_id: str) -> tuple[profile_pb2.CustomerContext | None, bool]:
        """(context, degraded) of a customer profile already knows by id (a check-in's)."""
        try:
            response = await self.get_context(profile_pb2.GetCustomerContextRequest(customer_id=customer_id))
        except (aio.AioRpcError, ItemFailed) as exc:
            log.warning("profile unavailable (%s): heads-up without the customer's story", _code(exc))
            return None, True
        return response.context, False

    async def contact_points(
        self, customer_id: str, *, email: str = "", phone: str = ""
    ) -> profile_pb2.GetContactPointsResponse:
        """Consent and contact points of a customer (by id, else of whoever is on file with this
        e-mail or phone), right before a follow-up message is sent. Raises `aio.AioRpcError`
        when profile cannot answer (the caller tries again later)."""
        response: profile_pb2.GetContactPointsResponse = await self.profile.GetContactPoints(
            profile_pb2.GetContactPointsRequest(customer_id=customer_id, email=email, phone=phone)
        )
        return response

    async def action_plan(
        self,
        *,
        facts: common_pb2.FeedbackFacts,
        context: profile_pb2.CustomerContext | None,
        store: Store | None,
        language: str,
    ) -> tuple[Plan, bool]:
        """(plan, degraded): actions' plan for this feedback, customer and store, or the
        built-in default plan when actions cannot answer."""
        try:
            response = await self.get_plan(_plan_request(facts, context, store, language))
        except (aio.AioRpcError, ItemFailed) as exc:
            log.warning("actions unavailable (%s): built-in default plan", _code(exc))
            return default_plan(category=facts.category, severity=facts.severity, language=language), True
        return plan_from_proto(response.plan), False

    async def kind_plan(
        self,
        kind: str,
        *,
        facts: common_pb2.FeedbackFacts,
        customer: actions_pb2.CustomerFacts,
        store: Store | None,
        language: str,
        fallback_roles: tuple[str, ...],
    ) -> tuple[Plan, bool]:
        """(plan, degraded) of a pattern or heads-up alert (#18): actions' playbooks of that kind,
        or the built-in default plan paging `fallback_roles` when actions cannot answer. One
        unary call: these alerts are rare next to feedback alerts."""
        request = _plan_request(facts, None, store, language)
        request.kind = kind
        request.customer.CopyFrom(customer)
        try:
            response = await self.actions.GetActionPlan(request)
        except aio.AioRpcError as exc:
            log.warning("actions unavailable (%s): built-in default %s plan", _code(exc), kind)
            plan = default_plan(category=facts.category, severity=facts.severity, language=language)
            return replace(plan, notify_roles=fallback_roles, escalation=()), True
        return plan_from_proto(response.plan), False


def _plan_request(
    facts: common_pb2.FeedbackFacts,
    context: profile_pb2.CustomerContext | None,
    store: Store | None,
    language: str,
) -> actions_pb2.GetActionPlanRequest:
    customer = actions_pb2.CustomerFacts()
    if context is not None and context.found:
        sig = context.signals
        repeat = sig.repeat_counts.get(facts.category, 0)
        customer = actions_pb2.CustomerFacts(
            tier=context.tier,
            known=True,
            name=context.name,
            repeat_count=repeat,
            last_visit=(
                datetime.fromtimestamp(context.last_visits[0].visited_at_ms / 1000).date().isoformat()
                if context.last_visits
                else ""
            ),
            signals={
                "repeat_issue": repeat >= 2,
                "score_swing": sig.score_swing,
                "vip": sig.vip,
                "churn_risk": sig.churn_risk,
                "low_satisfaction": sig.low_satisfaction,
                "chronic_complainer": sig.chronic_complainer,
            },
            household_relation=context.household_relation,
        )
    tz = (store.timezone if store is not None else None) or "Asia/Seoul"
    if known_zone(tz) is None:  # an old row's unknown zone must not stop the plan
        tz = "UTC"
    return actions_pb2.GetActionPlanRequest(
        feedback=facts,
        customer=customer,
        store=actions_pb2.StoreFacts(
            format=(store.format if store is not None else None) or "",
            region=(store.region if store is not None else None) or "",
            name=(store.name if store is not None else None) or "",
        ),
        language=language,
        local_time_ms=int(time.time() * 1000),
        time_zone=tz,
        # Staff read the plan in their own language: the other one comes in the same reply.
        other_languages=[other for other in LANGUAGES if other != language],
    )


def _code(exc: aio.AioRpcError | ItemFailed) -> str:
    code: grpc.StatusCode = exc.code if isinstance(exc, ItemFailed) else exc.code()
    return str(code.name)


def customer_from_proto(context: profile_pb2.CustomerContext | None) -> CustomerContext:
    """What staff may see of the customer (masked identity, tier, signals, last visits)."""
    if context is None or not context.found:
        return UNKNOWN_CUSTOMER
    sig = context.signals
    return CustomerContext(
        known=True,
        customer_id=context.customer_id,
        masked_name=context.masked_name,
        name=context.name,
        masked_phone=context.masked_phone,
        tier=context.tier,
        lifetime_value=context.lifetime_value,
        feedback_count=context.feedback_count,
        mean_csat=context.mean_csat or None,
        last_visits=tuple(Visit(v.store_id, v.visited_at_ms, v.amount) for v in context.last_visits),
        signals=Signals(
            repeat_issue=sig.repeat_issue,
            repeat_counts=dict(sig.repeat_counts),
            score_swing=sig.score_swing,
            score_swing_delta=sig.score_swing_delta,
            complaint_count_90d=sig.complaint_count_90d,
            chronic_complainer=sig.chronic_complainer,
            low_satisfaction=sig.low_satisfaction,
            churn_risk=sig.churn_risk,
            vip=sig.vip,
            reasons=tuple(Reason(r.signal, r.reason, r.reason_ko) for r in sig.reasons),
        ),
        recent_contacts=tuple(
            RecentContact(
                r.feedback_id,
                r.channel,
                r.store_id,
                r.occurred_at_ms,
                r.category,
                r.sentiment,
                r.status,
                r.outcome,
                r.excerpt,
            )
            for r in context.recent_contacts
        ),
        household_relation=context.household_relation,
        household=tuple(HouseholdMember(m.customer_id, m.masked_name, m.relation) for m in context.household),
    )


def plan_from_proto(plan: actions_pb2.Plan) -> Plan:
    c = plan.compensation
    return Plan(
        playbook_id=plan.playbook_id,
        version=plan.version,
        title=plan.title,
        priority=plan.priority,
        steps=tuple(PlanStep(s.text, s.role) for s in plan.steps),
        script=plan.script,
        sla=Sla(plan.sla.ack_seconds, plan.sla.resolve_seconds) if plan.HasField("sla") else None,
        notify_roles=tuple(plan.notify_roles),
        escalation=tuple(EscalationStep(e.after_seconds, tuple(e.roles)) for e in plan.escalation),
        compensation=Compensation(c.max_amount, c.currency, c.authority)
        if plan.HasField("compensation")
        else None,
        matched_because=tuple(plan.matched_because),
        runners_up=tuple(RunnerUp(r.playbook_id, r.specificity) for r in plan.runners_up),
        language=plan.language,
        modifiers=tuple(plan.modifiers),
        translations=tuple(
            PlanTexts(t.language, t.title, tuple(t.steps), t.script) for t in plan.translations
        ),
        matched=tuple(MatchedCondition(m.key, tuple(m.values), m.actual, m.modifier) for m in plan.matched),
    )


__all__ = ["Upstreams", "customer_from_proto", "grpc", "plan_from_proto"]
