"""gRPC ResolveCustomer on a real grpc.aio server on loopback (the platform's server: service
credential, health), called through the platform's client channel, with real identifiers: phone
numbers in the forms people type them, e-mail in any case, loyalty ids, create_if_missing on and
off, and malformed identifiers refused with INVALID_ARGUMENT naming the field."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from grpc import aio
from sqlalchemy import select

from tests.profile.conftest import Grpc, Profile
from voc.common.v1 import common_pb2
from voc.profile.v1 import profile_pb2, profile_pb2_grpc
from voc_profile.models import Customer, Identifier


async def read(profile: Profile, customer_id: str) -> dict[str, Any]:
    response = await profile.client.get(f"/v1/customers/{customer_id}", headers=profile.admin)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_phone_numbers_resolve_whatever_way_they_are_written(rpc: Grpc) -> None:
    first = await rpc.resolve(phone="010-1234-5678", name="김민수")
    assert first.created and first.customer_id and not first.anonymous
    for written in ("+821012345678", "010 1234 5678", "01012345678", "+82 10-1234-5678", " 010.1234.5678 "):
        again = await rpc.resolve(phone=written)
        assert (again.customer_id, again.created) == (first.customer_id, False), written
    # A Seoul landline goes through the numbering plan, not the mobile fast path.
    landline = await rpc.resolve(phone="02-312-3456")
    assert landline.created and landline.customer_id != first.customer_id
    assert (await rpc.resolve(phone="+82 2 312 3456")).customer_id == landline.customer_id
    assert (await rpc.resolve(phone="(02) 312-3456", create=False)).customer_id == landline.customer_id

    async with rpc.profile.database.session() as session:
        stored = sorted(await session.scalars(select(Identifier.value).where(Identifier.kind == "phone")))
    assert stored == ["+821012345678", "+8223123456"]  # one normalised identifier per number
    assert (await read(rpc.profile, first.customer_id))["name"] == "김민수"


async def test_email_in_any_case_and_loyalty_ids(rpc: Grpc) -> None:
    by_email = await rpc.resolve(email="Min.Su@Example.COM")
    assert by_email.created
    for written in ("min.su@example.com", "  MIN.SU@EXAMPLE.COM ", "min.su@EXAMPLE.com"):
        assert (await rpc.resolve(email=written, create=False)).customer_id == by_email.customer_id

    by_loyalty = await rpc.resolve(loyalty_id="L-1001")
    assert by_loyalty.created and by_loyalty.customer_id != by_email.customer_id
    assert (await rpc.resolve(loyalty_id=" L-1001 ", create=False)).customer_id == by_loyalty.customer_id
    assert (await rpc.resolve(loyalty_id="l-1001", create=False)).customer_id == ""  # ids are exact

    # A known loyalty id with a new e-mail: the e-mail joins that customer (create_if_missing).
    joined = await rpc.resolve(loyalty_id="L-1001", email="New.Address@example.com")
    assert (joined.customer_id, joined.created) == (by_loyalty.customer_id, False)
    assert (await rpc.resolve(email="new.address@EXAMPLE.com", create=False)).customer_id == (
        by_loyalty.customer_id
    )
    assert await rpc.profile.count(Customer) == 2


async def test_create_if_missing_false_never_writes(rpc: Grpc) -> None:
    unknown = await rpc.resolve(create=False, phone="010-5555-0000", email="nobody@example.com")
    assert (unknown.customer_id, unknown.created, unknown.anonymous) == ("", False, False)
    assert await rpc.profile.count(Customer) == 0 and await rpc.profile.count(Identifier) == 0

    known = await rpc.resolve(loyalty_id="L-7")
    # Read-only: the known customer is found, but the new phone is not attached to them.
    found = await rpc.resolve(create=False, loyalty_id="L-7", phone="010-5555-0000")
    assert (found.customer_id, found.created) == (known.customer_id, False)
    assert (await rpc.resolve(create=False, phone="010-5555-0000")).customer_id == ""
    assert await rpc.profile.count(Customer) == 1 and await rpc.profile.count(Identifier) == 1

    created = await rpc.resolve(create=True, phone="010-5555-0000")
    assert created.created and created.customer_id not in ("", known.customer_id)

    nobody = await rpc.resolve(create=True, name="이름만")
    assert nobody.anonymous and nobody.customer_id == "" and not nobody.created
    assert await rpc.profile.count(Customer) == 2


@pytest.mark.parametrize(
    ("identifiers", "field"),
    [
        ({"phone": "12"}, "phone"),
        ({"phone": "010-12"}, "phone"),
        ({"phone": "not a phone"}, "phone"),
        ({"email": "no-at-sign.example.com"}, "email"),
        ({"email": "kim@localhost"}, "email"),
        # One bad identifier refuses the call even next to a good one: nothing is half-resolved.
        ({"loyalty_id": "L-1", "phone": "010-1"}, "phone"),
        ({"phone": "010-1234-5678", "email": "@example.com"}, "email"),
    ],
)
async def test_malformed_identifiers_are_invalid_argument_naming_the_field(
    rpc: Grpc, identifiers: dict[str, str], field: str
) -> None:
    error = await rpc.refused(**identifiers)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = error.details() or ""
    assert details.startswith(f"{field}: "), details
    assert await rpc.profile.count(Customer) == 0 and await rpc.profile.count(Identifier) == 0


async def test_the_call_needs_the_service_credential(rpc: Grpc) -> None:
    async with aio.insecure_channel(rpc.target) as channel:
        stub = profile_pb2_grpc.ProfileServiceStub(channel)
        with pytest.raises(aio.AioRpcError) as err:
            await stub.ResolveCustomer(
                profile_pb2.ResolveCustomerRequest(
                    identifiers=common_pb2.CustomerIdentifiers(loyalty_id="L-1"), create_if_missing=True
                ),
                timeout=5,
            )
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert await rpc.profile.count(Customer) == 0


@pytest.mark.parametrize(
    ("identifiers", "field"),
    [
        ({"email": "a\x00@b.co"}, "email"),  # PostgreSQL cannot store a NUL; REST refuses it
        ({"loyalty_id": "L" * 100_000}, "loyalty_id"),
        ({"loyalty_id": "L" * 65}, "loyalty_id"),
        ({"loyalty_id": "L-\x00"}, "loyalty_id"),
        ({"phone": "0" * 33}, "phone"),
        ({"email": "a" * 250 + "@b.co"}, "email"),
        ({"channel_user_id": "u" * 129, "channel": "app"}, "channel_user_id"),
        ({"channel_user_id": "u-1", "channel": "c" * 33}, "channel"),
        ({"loyalty_id": "L-1", "name": "n" * 1_000_000}, "name"),
        ({"loyalty_id": "L-1", "name": "n" * 101}, "name"),
        ({"loyalty_id": "L-1", "name": "Kim\x00"}, "name"),
    ],
)
async def test_what_rest_refuses_is_not_stored_over_grpc_either(
    rpc: Grpc, identifiers: dict[str, str], field: str
) -> None:
    """The REST schemas' limits (the same constants) and REST's refusal of NUL: a 1,000,000
    character name was stored (and served as a 1 MB body), a NUL e-mail too."""
    error = await rpc.refused(**identifiers)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = error.details() or ""
    assert details.startswith(f"{field}: ") and len(details) < 200, details[:200]
    assert await rpc.profile.count(Customer) == 0 and await rpc.profile.count(Identifier) == 0


async def test_identifiers_and_a_name_at_the_rest_limits_are_stored(rpc: Grpc) -> None:
    at_limit = await rpc.resolve(
        loyalty_id="L" * 64, email="a" * 248 + "@b.co", channel_user_id="u" * 128, name="n" * 100
    )
    assert at_limit.created
    assert (await read(rpc.profile, at_limit.customer_id))["name"] == "n" * 100
    # A lookup never fails for them: the over-long name is left out, the customer still found.
    request = profile_pb2.GetCustomerContextRequest(
        identifiers=common_pb2.CustomerIdentifiers(loyalty_id="L" * 64, name="x" * 101)
    )
    found = (await rpc.stub.GetCustomerContext(request)).context
    assert found.found and found.customer_id == at_limit.customer_id and found.name == "n" * 100
    first = profile_pb2.GetCustomerContextRequest(
        identifiers=common_pb2.CustomerIdentifiers(loyalty_id="NEW-1", name="y" * 101)
    )
    created = (await rpc.stub.GetCustomerContext(first)).context
    assert created.found and created.name == ""  # a first contact: created, without the name
