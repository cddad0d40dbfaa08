"""gRPC ProfileService: ResolveCustomer and GetCustomerContext."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
from grpc import aio

from voc.common.v1 import common_pb2
from voc.profile.v1 import profile_pb2, profile_pb2_grpc
from voc_platform.db import Database
from voc_profile import service
from voc_profile.identity import InvalidIdentifier, normalize
from voc_profile.settings import Settings

SERVICE_NAME = profile_pb2.DESCRIPTOR.services_by_name["ProfileService"].full_name


def identifiers_of(ids: common_pb2.CustomerIdentifiers, region: str) -> list[tuple[str, str]]:
    return normalize(
        loyalty_id=ids.loyalty_id,
        phone=ids.phone,
        email=ids.email,
        channel_user_id=ids.channel_user_id,
        channel=ids.channel,
        region=region,
    )


def current_facts(facts: common_pb2.FeedbackFacts) -> dict[str, Any] | None:
    if not facts.feedback_id:
        return None
    return {
        "feedback_id": facts.feedback_id,
        "category": facts.category,
        "sentiment": facts.sentiment,
        "csat": facts.ratings.csat if facts.ratings.HasField("csat") else None,
        "nps": facts.ratings.nps if facts.ratings.HasField("nps") else None,
        "occurred_at": facts.occurred_at_ms / 1000,
        "revisit_intent": facts.revisit_intent if facts.HasField("revisit_intent") else None,
    }


def context_message(ctx: service.Context) -> profile_pb2.CustomerContext:
    d = ctx.to_dict()
    sig = d["signals"]
    return profile_pb2.CustomerContext(
        customer_id=d["customer_id"] or "",
        found=d["found"],
        name=d["name"] or "",
        masked_name=d["masked_name"],
        masked_phone=d["masked_phone"],
        tier=d["tier"] or "",
        lifetime_value=d["lifetime_value"],
        preferred_language=d["preferred_language"] or "",
        home_store_id=d["home_store_id"] or "",
        last_visits=[
            profile_pb2.Visit(
                store_id=v["store_id"], visited_at_ms=int(v["visited_at"] * 1000), amount=v["amount"]
            )
            for v in d["last_visits"]
        ],
        feedback_count=d["feedback_count"],
        mean_csat=d["mean_csat"] or 0.0,
        signals=profile_pb2.Signals(
            repeat_issue=sig["repeat_issue"],
            repeat_counts=sig["repeat_counts"],
            score_swing=sig["score_swing"],
            score_swing_delta=sig["score_swing_delta"],
            complaint_count_90d=sig["complaint_count_90d"],
            chronic_complainer=sig["chronic_complainer"],
            low_satisfaction=sig["low_satisfaction"],
            churn_risk=sig["churn_risk"],
            vip=sig["vip"],
            reasons=[
                profile_pb2.SignalReason(
                    signal=r["signal"], reason=r["reason"], feedback_ids=r["feedback_ids"]
                )
                for r in sig["reasons"]
            ],
        ),
    )


class ProfileServicer(profile_pb2_grpc.ProfileServiceServicer):
    def __init__(self, database: Database, settings: Settings) -> None:
        self.database = database
        self.settings = settings

    async def ResolveCustomer(
        self, request: profile_pb2.ResolveCustomerRequest, context: aio.ServicerContext
    ) -> profile_pb2.ResolveCustomerResponse:
        try:
            ids = identifiers_of(request.identifiers, self.settings.default_region)
        except InvalidIdentifier as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{exc.field}: {exc}")
        if not ids:
            return profile_pb2.ResolveCustomerResponse(anonymous=True)
        async with self.database.transaction() as session:
            res = await service.resolve(
                session,
                identifiers=ids,
                name=request.identifiers.name or None,
                create_if_missing=request.create_if_missing,
            )
        return profile_pb2.ResolveCustomerResponse(customer_id=res.customer_id or "", created=res.created)

    async def GetCustomerContext(
        self, request: profile_pb2.GetCustomerContextRequest, context: aio.ServicerContext
    ) -> profile_pb2.GetCustomerContextResponse:
        customer_id = request.customer_id
        if not customer_id:
            try:
                ids = identifiers_of(request.identifiers, self.settings.default_region)
            except InvalidIdentifier:
                ids = []  # a malformed identifier reads as anonymous, never fails the alert
            if not ids:
                return profile_pb2.GetCustomerContextResponse(
                    context=profile_pb2.CustomerContext(found=False)
                )
            # Resolution creates the customer on first contact, so history starts here.
            async with self.database.transaction() as session:
                res = await service.resolve(
                    session, identifiers=ids, name=request.identifiers.name or None, create_if_missing=True
                )
            customer_id = res.customer_id or ""
        async with self.database.session() as session:
            ctx = await service.customer_context(
                session,
                customer_id=customer_id,
                settings=self.settings,
                current=current_facts(request.current_feedback),
            )
        return profile_pb2.GetCustomerContextResponse(context=context_message(ctx))


def register(database: Database, settings: Settings) -> list[Callable[[aio.Server], None]]:
    servicer = ProfileServicer(database, settings)
    return [lambda server: profile_pb2_grpc.add_ProfileServiceServicer_to_server(servicer, server)]
