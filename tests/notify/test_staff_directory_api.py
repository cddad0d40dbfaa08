"""`PUT /v1/admin/staff` in process (#21): passwords are hashed in a worker thread before the
transaction, so neither the event loop nor the database's write lock waits for argon2; an e-mail
another staff member has is 409 and an id or e-mail twice in the list 422 (they were an
IntegrityError, 500), and nothing is written then."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from tests.conftest import DatabaseFactory
from tests.notify.conftest import StallProbes
from tests.notify.test_login import ADMIN, PASSWORD, make_notify
from voc_notify import auth
from voc_notify.models import Staff


def person(staff_id: str, email: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": staff_id,
        "name": staff_id.title(),
        "email": email,
        "password": "a-new-password-1",
        "role": "staff",
        "store_ids": ["s1"],
        **fields,
    }


async def test_hashing_passwords_stalls_neither_the_loop_nor_the_write_lock(
    databases: DatabaseFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Six new staff with a hasher slow enough to see: hashed on the loop (as before), each
    hash blocks every request and alert for its whole duration, and inside the transaction it
    holds SQLite's write lock as long."""
    slow = PasswordHasher(time_cost=6, parallelism=1)  # the service's lanes, slower
    started = time.perf_counter()
    slow.hash(PASSWORD)
    hash_seconds = time.perf_counter() - started
    monkeypatch.setattr(auth, "_hasher", slow)
    service = await make_notify(databases, slow.hash(PASSWORD))
    probe = StallProbes(service.database)

    staff = [person(f"new-{i}", f"new-{i}@x.demo") for i in range(6)]
    try:
        async with service.client() as client:
            probes = probe.tasks()
            await asyncio.sleep(0.05)
            started = time.perf_counter()
            answer = await client.put("/v1/admin/staff", json=staff, headers=ADMIN)
            put_seconds = time.perf_counter() - started
            probe.done.set()
            await asyncio.gather(*probes)
            login = await client.post(
                "/v1/auth/login", json={"email": "new-5@x.demo", "password": "a-new-password-1"}
            )
    finally:
        await service.database.dispose()
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"staff": 6}
    assert login.status_code == 200, login.text  # the hashes stored are the passwords'
    # Hashed on the loop or in the transaction, a stall lasts a whole hash at least. A hash is
    # timed on this machine under its load of the moment (the six hashes of the PUT take six
    # hashes' time, however busy the machine): a fixed bound measured the machine, not the code.
    probe.assert_nothing_waited_for(max(hash_seconds, put_seconds / len(staff)))


async def test_an_email_of_someone_else_is_409_and_repeats_are_422(databases: DatabaseFactory) -> None:
    service = await make_notify(databases, auth.hash_password(PASSWORD))
    try:
        async with service.client() as client:
            taken = await client.put(
                "/v1/admin/staff",
                json=[person("fresh", "fresh@x.demo"), person("other", "LEAD@x.demo")],
                headers=ADMIN,
            )
            repeated = await client.put(
                "/v1/admin/staff",
                json=[person("a", "same@x.demo"), person("b", "same@x.demo"), person("a", "a@x.demo")],
                headers=ADMIN,
            )
            # The staff member keeping their own e-mail is an update, not a conflict.
            own = await client.put(
                "/v1/admin/staff", json=[person("lead", "lead@x.demo", role="shift_lead")], headers=ADMIN
            )
        async with service.database.session() as session:
            ids = set(await session.scalars(select(Staff.id)))
    finally:
        await service.database.dispose()
    assert taken.status_code == 409, taken.text
    assert taken.headers["content-type"].startswith("application/problem+json")
    assert taken.json()["errors"] == [{"field": "body.1.email", "message": "used by another staff member"}]
    assert repeated.status_code == 422, repeated.text
    assert {e["field"] for e in repeated.json()["errors"]} == {"body.1.email", "body.2.id"}
    assert own.status_code == 200, own.text
    assert ids == {"lead"}  # neither refused list wrote anyone


async def test_a_staff_members_language_defaults_from_their_store(databases: DatabaseFactory) -> None:
    """#18: staff read alerts in their own language; without one given, someone new gets their
    first store's (s1 speaks English), an update keeps theirs, no store means Korean; a
    language other than ko or en is 422."""
    service = await make_notify(databases, auth.hash_password(PASSWORD))
    try:
        async with service.client() as client:
            created = await client.put(
                "/v1/admin/staff",
                json=[
                    person("from-store", "from-store@x.demo"),
                    person("storeless", "storeless@x.demo", store_ids=[]),
                    person("chosen", "chosen@x.demo", language="ko"),
                ],
                headers=ADMIN,
            )
            kept = await client.put(
                "/v1/admin/staff", json=[person("chosen", "chosen@x.demo", name="Renamed")], headers=ADMIN
            )
            bad = await client.put(
                "/v1/admin/staff", json=[person("x", "x@x.demo", language="ja")], headers=ADMIN
            )
            # A JSON boolean is true or false: 0 was read as false (schemathesis).
            numeric = await client.put(
                "/v1/admin/staff", json=[person("y", "y@x.demo", active=0)], headers=ADMIN
            )
        async with service.database.session() as session:
            languages = dict((await session.execute(select(Staff.id, Staff.language))).all())
    finally:
        await service.database.dispose()
    assert created.status_code == kept.status_code == 200, (created.text, kept.text)
    assert languages == {"lead": "en", "from-store": "en", "storeless": "ko", "chosen": "ko"}
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "body.0.language"
    assert numeric.status_code == 422 and numeric.json()["errors"][0]["field"] == "body.0.active"


async def test_a_chains_whole_store_list_goes_in_one_call(databases: DatabaseFactory) -> None:
    """1,000 stores (the list takes 5,000) are about 190 KiB of JSON: the 64 KiB limit of every
    other call refused them with 413. The directory's calls take bulk bodies."""
    stores = [
        {
            "id": f"store-{n:04d}",
            "name": f"프론트라인 {n}호점 (서울특별시 강남구)",
            "area_id": f"area-{n % 12:02d}",
            "region": "KR-11",
            "timezone": "Asia/Seoul",
            "language": "ko",
            "quiet_start": "22:00",
            "quiet_end": "08:00",
        }
        for n in range(1000)
    ]
    service = await make_notify(databases, auth.hash_password(PASSWORD))
    try:
        async with service.client() as client:
            answer = await client.put("/v1/admin/stores", json=stores, headers=ADMIN)
            listed = await client.get("/v1/admin/stores", headers=ADMIN)
    finally:
        await service.database.dispose()
    assert len(answer.request.content) > 3 * 64 * 1024
    assert answer.status_code == 200, answer.text[:300]
    assert {s["id"] for s in listed.json()} >= {s["id"] for s in stores}
