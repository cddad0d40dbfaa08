"""gRPC ActionsService: GetActionPlan."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from grpc import aio

from voc.actions.v1 import actions_pb2, actions_pb2_grpc
from voc_actions import service
from voc_actions.playbooks import Plan

SERVICE_NAME = actions_pb2.DESCRIPTOR.services_by_name["ActionsService"].full_name


def plan_message(plan: Plan) -> actions_pb2.Plan:
    """The plan as protobuf, built from the dataclasses directly (this is on the hot path)."""
    comp = plan.compensation
    return actions_pb2.Plan(
        playbook_id=plan.playbook_id,
        version=plan.version,
        title=plan.title,
        priority=plan.priority,
        steps=[actions_pb2.PlanStep(text=s.text, role=s.role) for s in plan.steps],
        script=plan.script,
        sla=actions_pb2.Sla(ack_seconds=plan.sla.ack_seconds, resolve_seconds=plan.sla.resolve_seconds),
        notify_roles=plan.notify_roles,
        escalation=[
            actions_pb2.EscalationStep(after_seconds=e.after_seconds, roles=e.roles) for e in plan.escalation
        ],
        compensation=(
            actions_pb2.Compensation(
                max_amount=comp.max_amount, currency=comp.currency, authority=comp.authority
            )
            if comp is not None
            else None
        ),
        matched_because=plan.matched_because,
        runners_up=[
            actions_pb2.RunnerUp(playbook_id=pid, specificity=specificity)
            for pid, specificity in plan.runners_up
        ],
        language=plan.language,
    )


class ActionsServicer(actions_pb2_grpc.ActionsServiceServicer):
    def __init__(self, live: service.LiveLibrary) -> None:
        self.live = live

    async def GetActionPlan(
        self, request: actions_pb2.GetActionPlanRequest, context: aio.ServicerContext
    ) -> actions_pb2.GetActionPlanResponse:
        fb = request.feedback
        local_time = None
        if request.local_time_ms:
            tz = UTC
            if request.time_zone:
                try:
                    tz = ZoneInfo(request.time_zone)  # type: ignore[assignment]
                except (KeyError, ValueError):
                    tz = UTC
            local_time = datetime.fromtimestamp(request.local_time_ms / 1000, tz)
        signals: dict[str, bool | int] = dict(request.customer.signals)
        signals["repeat_count"] = request.customer.repeat_count
        plan = service.lookup(
            self.live.library,
            feedback={
                "category": fb.category,
                "severity": fb.severity,
                "sentiment": fb.sentiment,
                "channel": fb.channel,
                "touchpoint": fb.touchpoint,
                "store_id": fb.store_id,
                "language": fb.language,
            },
            customer={
                "tier": request.customer.tier,
                "signals": signals,
                "name": request.customer.name,
                "last_visit": request.customer.last_visit,
                "repeat_count": request.customer.repeat_count,
            },
            store={
                "format": request.store.format,
                "region": request.store.region,
                "name": request.store.name,
            },
            language=request.language or fb.language or "ko",
            local_time=local_time,
        )
        return actions_pb2.GetActionPlanResponse(plan=plan_message(plan))


def register(live: service.LiveLibrary) -> list[Callable[[aio.Server], None]]:
    servicer = ActionsServicer(live)
    return [lambda server: actions_pb2_grpc.add_ActionsServiceServicer_to_server(servicer, server)]
