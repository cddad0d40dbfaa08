"""gRPC GetContactPoints on the platform's server on loopback: what notify asks right before a
follow-up message (#19): consent, the normalised e-mail and phone, an unknown customer, an
erased one (nothing but the fact), and INVALID_ARGUMENT without a customer id; asked by the
contact given with a feedback whose profile link came late, whoever is on file with it."""

from __future__ import annotations

import grpc
import pytest
from grpc import aio

from tests.profile.conftest import Grpc
from voc.profile.v1 import profile_pb2


async def points(
    rpc: Grpc, customer_id: str = "", *, email: str = "", phone: str = ""
) -> profile_pb2.GetContactPointsResponse:
    response: profile_pb2.GetContactPointsResponse = await rpc.stub.GetContactPoints(
        profile_pb2.GetContactPointsRequest(customer_id=customer_id, email=email, phone=phone)
    )
    return response


async def customers(rpc: Grpc, *records: dict[str, object]) -> list[str]:
    """The customers upserted through REST, their ids in order."""
    upsert = await rpc.profile.client.post(
        "/v1/customers", headers=rpc.profile.admin, json={"customers": list(records)}
    )
    assert upsert.status_code == 200, upsert.text
    return [r["customer_id"] for r in upsert.json()]


async def test_consent_and_contact_points_until_erasure(rpc: Grpc) -> None:
    consenting, declining = await customers(
        rpc,
        {
            "loyalty_id": "L-CP-1",
            "phone": "010-1234-5678",
            "email": "Min.Su@Example.com",
            "contact_consent": True,
            "preferred_language": "ko",
        },
        {"loyalty_id": "L-CP-2", "email": "jane@example.com", "contact_consent": False},
    )
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


async def test_by_the_contact_given_whoever_is_on_file_answers_the_most_restrictive(rpc: Grpc) -> None:
    agreeing, declining = await customers(
        rpc,
        {"loyalty_id": "L-BC-1", "email": "ana@example.com", "contact_consent": True},
        {"loyalty_id": "L-BC-2", "phone": "010-5555-0101", "contact_consent": False},
    )
    # Normalised as at intake: any case of the address, any way of writing the number.
    got = await points(rpc, email="Ana@Example.COM")
    assert (got.found, got.customer_id, got.contact_consent) == (True, agreeing, True)
    got = await points(rpc, phone="01055550101")
    assert (got.found, got.customer_id, got.contact_consent) == (True, declining, False)
    # The e-mail of one and the phone of another: a message would reach the one who opted out.
    both = await points(rpc, email="ana@example.com", phone="010-5555-0101")
    assert (both.customer_id, both.contact_consent) == (declining, False)
    assert not (await points(rpc, email="nobody@example.com")).found
    assert not (await points(rpc, email="not an address")).found  # identifies nobody
