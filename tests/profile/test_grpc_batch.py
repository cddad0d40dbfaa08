"""gRPC BatchGetCustomerContexts on a real loopback server: one result per request, in order,
the same as the unary GetCustomerContext gives; first contacts in one batch create each person
once; a batch over the limit is refused with nothing written; the credential is required."""

from __future__ import annotations

import grpc
import pytest
from grpc import aio

from tests.profile.conftest import Grpc
from voc.common.v1 import common_pb2
from voc.profile.v1 import profile_pb2, profile_pb2_grpc
from voc_platform.grpc import client_channel
from voc_profile.models import Customer


def ask(**ids: str) -> profile_pb2.GetCustomerContextRequest:
    return profile_pb2.GetCustomerContextRequest(
        identifiers=common_pb2.CustomerIdentifiers(**ids),
        current_feedback=common_pb2.FeedbackFacts(feedback_id="fb-batch", category="wait_time"),
    )


async def test_a_batch_answers_each_request_in_order_like_the_unary_call(rpc: Grpc) -> None:
    known = await rpc.resolve(loyalty_id="L-7", name="김민수")
    asks = [
        ask(loyalty_id="L-7"),  # returning
        ask(phone="010-2222-3333", name="박지훈"),  # first contact
        ask(phone="+82 10 2222 3333"),  # the same new person again, in the same batch
        ask(),  # anonymous
        ask(email="not-an-email"),  # malformed only: dropped, anonymous
        profile_pb2.GetCustomerContextRequest(customer_id=known.customer_id),  # by id
    ]
    reply = await rpc.stub.BatchGetCustomerContexts(
        profile_pb2.BatchGetCustomerContextsRequest(requests=asks)
    )
    assert [r.WhichOneof("result") for r in reply.results] == ["response"] * 6
    contexts = [r.response.context for r in reply.results]
    assert [c.found for c in contexts] == [True, True, True, False, False, True]
    assert contexts[0].customer_id == contexts[5].customer_id == known.customer_id
    assert contexts[0].masked_name == "김**"
    assert contexts[1].customer_id == contexts[2].customer_id != known.customer_id
    assert contexts[1].masked_phone == "***-3333"
    assert await rpc.profile.count(Customer) == 2
    # Asked again one by one, each answer is the same customer with the same attributes.
    for request, context in zip(asks, contexts, strict=True):
        single = (await rpc.stub.GetCustomerContext(request)).context
        assert (single.found, single.customer_id, single.masked_name, single.tier) == (
            context.found,
            context.customer_id,
            context.masked_name,
            context.tier,
        )
    assert await rpc.profile.count(Customer) == 2


async def test_a_batch_over_the_limit_is_refused_and_writes_nothing(rpc: Grpc) -> None:
    asks = [ask(phone=f"010-4000-{i:04d}") for i in range(257)]
    with pytest.raises(aio.AioRpcError) as err:
        await rpc.stub.BatchGetCustomerContexts(profile_pb2.BatchGetCustomerContextsRequest(requests=asks))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "at most 256" in (err.value.details() or "")
    assert await rpc.profile.count(Customer) == 0


async def test_a_batch_needs_the_service_credential(rpc: Grpc) -> None:
    channel = client_channel(rpc.target, token="not-the-token", timeout=5)
    try:
        with pytest.raises(aio.AioRpcError) as err:
            await profile_pb2_grpc.ProfileServiceStub(channel).BatchGetCustomerContexts(
                profile_pb2.BatchGetCustomerContextsRequest(requests=[ask(phone="010-1234-5678")])
            )
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        await channel.close()
    assert await rpc.profile.count(Customer) == 0


async def test_an_item_still_waiting_near_the_deadline_fails_alone(rpc: Grpc) -> None:
    known = await rpc.resolve(loyalty_id="L-8")
    asks = [ask(loyalty_id="L-8"), ask(phone="010-7777-8888")]  # returning, first contact
    database = rpc.profile.database
    if database.write_lock is None:
        pytest.skip("SQLite: the first contact waits for the process's write lock held here")
    async with database.write_lock:  # a long write elsewhere in the service
        reply = await rpc.stub.BatchGetCustomerContexts(
            profile_pb2.BatchGetCustomerContextsRequest(requests=asks), timeout=0.5
        )
    returning, first_contact = reply.results
    assert returning.response.context.customer_id == known.customer_id
    assert first_contact.WhichOneof("result") == "error"
    assert first_contact.error.code == grpc.StatusCode.DEADLINE_EXCEEDED.value[0]
    # The first contact is made on the next call, once the write lock is free.
    again = await rpc.stub.GetCustomerContext(asks[1])
    assert again.context.found and await rpc.profile.count(Customer) == 2
