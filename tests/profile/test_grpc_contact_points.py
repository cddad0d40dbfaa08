"""gRPC GetContactPoints on the platform's server on loopback: what notify asks right before a
follow-up message (#19): consent, the normalised e-mail and phone, an unknown customer, an
erased one (nothing but the fact), and INVALID_ARGUMENT without a customer id."""

from __future__ import annotations

import grpc
import pytest
from grpc import aio

from tests.profile.conftest import Grpc
from voc.profile.v1 import profile_pb2


async def points(rpc: Grpc, customer_id: str) -> profile_pb2.GetContactPointsResponse:
    response: profile_pb2.GetContactPointsResponse = await rpc.stub.GetContactPoints(
        profile_pb2.GetContactPointsRequest(customer_id=customer_id)
    )
    return response


async def test_consent_and_contact_points_until_erasure(rpc: Grpc) -> None:
    upsert = await rpc.profile.client.post(
        "/v1/customers",
        headers=rpc.profile.admin,
        json={
            "customers": [
                {
                    "loyalty_id": "L-CP-1",
                    "phone": "010-1234-5678",
                    "email": "Min.Su@Example.com",
                    "contact_consent": True,
                    "preferred_language": "ko",
                },
                {"loyalty_id": "L-CP-2", "email": "jane@example.com", "contact_consent": False},
            ]
        },
    )
    assert upsert.status_code == 200, upsert.text
    consenting, declining = (r["customer_id"] for r in upsert.json())
    got = await points(rpc, consenting)
    assert (got.found, got.erased, got.contact_consent) == (True, False, True)
    assert (got.email, got.phone, got.preferred_language, got.customer_id) == (
        "min.su@example.com",
        "+821012345678",
        "ko",
        consenting,
    )
    other = await points(rpc, declining)
    assert (other.contact_consent, other.email, other.phone) == (False, "jane@example.com", "")
    assert not (await points(rpc, "0193a7c0-0000-7000-8000-00000000dead")).found

    erased = await rpc.profile.client.delete(f"/v1/customers/{consenting}", headers=rpc.profile.admin)
    assert erased.status_code == 200, erased.text
    gone = await points(rpc, consenting)
    assert (gone.found, gone.erased, gone.contact_consent, gone.email, gone.phone) == (
        True,
        True,
        False,
        "",
        "",
    )

    with pytest.raises(aio.AioRpcError) as err:
        await points(rpc, "")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "customer_id" in (
        err.value.details() or ""
    )
