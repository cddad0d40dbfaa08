"""Notify's lookups of customer context and action plan, against real profile and actions gRPC
servers on loopback: lookups made together go out as one batch call and each caller gets its
own answer; a lone lookup is the unary call; a server without the batch method is asked one
by one; a server that is down gives every caller the degraded path."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest
from grpc import aio

from tests.conftest import DatabaseFactory
from tests.profile.conftest import Profile, open_profile
from voc.actions.v1 import actions_pb2
from voc.common.v1 import common_pb2
from voc_actions import grpc_server as actions_grpc
from voc_actions.live import LiveLibrary
from voc_actions.playbooks import default_library
from voc_cli.supervisor import free_port
from voc_notify.clients import Upstreams
from voc_notify.models import Store
from voc_notify.settings import Settings
from voc_platform import telemetry
from voc_platform.grpc import create_server
from voc_profile import grpc_server as profile_grpc
from voc_profile.models import Customer

TOKEN = "upstreams-test-internal-token"


@dataclass
class Servers:
    profile: Profile
    profile_target: str
    actions_target: str


async def _serve(register: list, names: list[str]) -> tuple[aio.Server, str]:  # type: ignore[type-arg]
    server, _, port = create_server(
        port=0, host="127.0.0.1", token=TOKEN, register=register, service_names=names
    )
    await server.start()
    return server, f"127.0.0.1:{port}"


@pytest.fixture
async def servers(databases: DatabaseFactory) -> AsyncIterator[Servers]:
    async with open_profile(databases) as profile:
        profile_server, profile_target = await _serve(
            profile_grpc.register(profile.database, profile.settings, profile.trail),
            [profile_grpc.SERVICE_NAME],
        )
        actions_server, actions_target = await _serve(
            actions_grpc.register(LiveLibrary(default_library())), [actions_grpc.SERVICE_NAME]
        )
        try:
            yield Servers(profile, profile_target, actions_target)
        finally:
            await actions_server.stop(None)
            await profile_server.stop(None)


def upstreams(*, profile: str, actions: str) -> Upstreams:
    return Upstreams(
        Settings(
            internal_token=TOKEN,
            profile_grpc_target=profile,
            actions_grpc_target=actions,
            grpc_timeout_seconds=2.0,
        )
    )


def facts(n: int, category: str = "wait_time") -> common_pb2.FeedbackFacts:
    return common_pb2.FeedbackFacts(
        feedback_id=f"fb-{n}",
        store_id="store-gangnam",
        channel="kiosk",
        category=category,
        severity="high",
        sentiment="negative",
        language="ko",
    )


STORE = Store(id="s1", format="restaurant", region="seoul", name="강남역점", timezone="Asia/Seoul")


async def test_lookups_made_together_go_out_as_one_batch_each_with_its_own_answer(servers: Servers) -> None:
    client = upstreams(profile=servers.profile_target, actions=servers.actions_target)
    try:
        people = [
            common_pb2.CustomerIdentifiers(phone="010-1111-2222"),
            common_pb2.CustomerIdentifiers(phone="010-3333-4444", name="이서연"),
            common_pb2.CustomerIdentifiers(phone="010 1111 2222"),  # the first person, spelled otherwise
            common_pb2.CustomerIdentifiers(email="bad@"),  # malformed only: anonymous, no write
            common_pb2.CustomerIdentifiers(loyalty_id="L-9"),
        ]
        contexts = await asyncio.gather(
            *(client.customer_context(identifiers=ids, facts=facts(i)) for i, ids in enumerate(people))
        )
        assert client.get_context.calls == 5 and client.get_context.batches == 1
        assert [degraded for _, degraded in contexts] == [False] * 5
        found = [ctx.found if ctx is not None else None for ctx, _ in contexts]
        assert found == [True, True, True, False, True]
        ids = [ctx.customer_id if ctx is not None else "" for ctx, _ in contexts]
        # First contacts in one batch: the same phone twice is one customer, created once.
        assert ids[0] == ids[2] and len({ids[0], ids[1], ids[4]}) == 3
        assert await servers.profile.count(Customer) == 3
        assert contexts[1][0] is not None and contexts[1][0].masked_name == "이**"

        # Each plan is the one a lone lookup gives for the same facts.
        asks = [
            dict(facts=facts(0, "food_safety"), context=contexts[0][0]),
            dict(facts=facts(1, "wait_time"), context=contexts[1][0]),
            dict(facts=facts(2, "staff_attitude"), context=None),
        ]
        plans = await asyncio.gather(*(client.action_plan(**a, store=STORE, language="ko") for a in asks))
        assert client.get_plan.calls == 3 and client.get_plan.batches == 1
        assert all(not degraded for _, degraded in plans)
        for ask, (plan, _) in zip(asks, plans, strict=True):
            lone, degraded = await client.action_plan(**ask, store=STORE, language="ko")
            assert not degraded and lone.playbook_id == plan.playbook_id and lone.steps == plan.steps
        assert client.get_plan.batches == 1  # the lone lookups were unary calls
        assert len({p.playbook_id for p, _ in plans}) == 3
    finally:
        await client.close()


async def test_a_server_without_the_batch_method_is_asked_one_by_one(
    servers: Servers, caplog: pytest.LogCaptureFixture
) -> None:
    telemetry.setup("voc-tests")  # the SDK provider, as services run: spans with real trace ids
    library = default_library()
    traces_seen: list[str] = []

    async def get_plan(request: actions_pb2.GetActionPlanRequest, context: aio.ServicerContext) -> object:
        metadata = dict(context.invocation_metadata() or ())
        traces_seen.append(str(metadata.get("traceparent", "")).split("-")[1])
        return actions_grpc.plan_reply(library, request)

    # An older actions server: GetActionPlan only.
    handler = grpc.method_handlers_generic_handler(
        actions_grpc.SERVICE_NAME,
        {
            "GetActionPlan": grpc.unary_unary_rpc_method_handler(
                get_plan,
                request_deserializer=actions_pb2.GetActionPlanRequest.FromString,
                response_serializer=actions_pb2.GetActionPlanResponse.SerializeToString,
            )
        },
    )
    old, target = await _serve([lambda server: server.add_generic_rpc_handlers([handler])], [])
    client = upstreams(profile=servers.profile_target, actions=target)
    try:
        asks = [facts(i, c) for i, c in enumerate(["food_safety", "wait_time", "cleanliness"])]

        async def ask(f: common_pb2.FeedbackFacts) -> tuple[tuple[dict[str, object], bool], str | None]:
            with telemetry.span(f"handle {f.feedback_id}"):
                plan = await client.action_plan(facts=f, context=None, store=STORE, language="en")
                return plan, telemetry.current_trace_id()

        first = await asyncio.gather(*(ask(f) for f in asks))
        again = await asyncio.gather(*(ask(f) for f in asks))
        for answers in (first, again):
            assert all(not degraded for (_, degraded), _ in answers)
            assert [p.language for (p, _), _ in answers] == ["en"] * 3
        assert client.get_plan.batches == 0 and client.get_plan.calls == 6
        # Each one-by-one call went out under its own caller's trace, as a plain call would.
        callers = [trace for _, trace in first + again]
        assert sorted(traces_seen) == sorted(callers) and len(set(callers)) == 6
        # Refused once, the batch method is not asked again for a while.
        refusals = [r for r in caplog.records if "no batch method" in r.getMessage()]
        assert len(refusals) == 1
    finally:
        await client.close()
        await old.stop(None)


async def test_when_the_servers_are_down_every_caller_takes_the_degraded_path() -> None:
    client = upstreams(profile=f"127.0.0.1:{free_port()}", actions=f"127.0.0.1:{free_port()}")
    try:
        contexts = await asyncio.gather(
            *(
                client.customer_context(
                    identifiers=common_pb2.CustomerIdentifiers(phone=f"010-5555-000{i}"), facts=facts(i)
                )
                for i in range(3)
            )
        )
        assert contexts == [(None, True)] * 3
        plans = await asyncio.gather(
            *(client.action_plan(facts=facts(i), context=None, store=STORE, language="ko") for i in range(3))
        )
        # The category's built-in default plan, flagged.
        assert [(plan.playbook_id, degraded) for plan, degraded in plans] == [("builtin-wait_time", True)] * 3
    finally:
        await client.close()
