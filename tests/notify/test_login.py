"""Staff login in process: argon2 runs in a worker thread outside any transaction (parallel bad
logins stall neither the event loop nor the database's write lock), known and unknown e-mails
are answered alike, the lock is capped and a manager lifts it, and each client address has its
own budget of failures."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from argon2 import PasswordHasher
from pydantic import ValidationError

from tests.conftest import DatabaseFactory
from tests.notify.conftest import ADMIN, Notify, StallProbes, make_notify
from voc_notify import auth, directory
from voc_notify.models import Staff, Store
from voc_notify.schemas import PasswordIn
from voc_platform import identity

PASSWORD = "right-password-1"


@pytest.fixture
async def notify(databases: DatabaseFactory) -> AsyncIterator[Notify]:
    service = await make_notify(databases, auth.hash_password(PASSWORD), login_address_burst=100)
    yield service
    await service.database.dispose()


class Clock:
    """`time.time()` as auth.py reads it, moved by the test."""

    def __init__(self) -> None:
        self.now = time.time()

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(auth, "time", fake)
    return fake


async def attempt(client: httpx.AsyncClient, email: str, password: str = "wrong") -> httpx.Response:
    return await client.post("/v1/auth/login", json={"email": email, "password": password})


async def test_parallel_bad_logins_stall_neither_the_loop_nor_the_write_lock(
    databases: DatabaseFactory,
) -> None:
    """Six parallel wrong passwords against a hash that takes a while to verify. Verified on
    the loop (as before), each blocks every request and alert for the whole verification, and
    inside the login's transaction it holds SQLite's write lock as long."""
    slow = PasswordHasher(time_cost=6, parallelism=1)  # the service's lanes, slower
    slow_hash = slow.hash(PASSWORD)
    started = time.perf_counter()
    assert not auth.verify_password(slow_hash, "wrong")
    verify_seconds = time.perf_counter() - started
    service = await make_notify(databases, slow_hash, login_max_failures=100, login_address_burst=100)
    probe = StallProbes(service.database)
    health: list[float] = []

    async def health_probe(client: httpx.AsyncClient) -> None:
        while not probe.done.is_set():
            before = time.perf_counter()
            assert (await client.get("/healthz")).status_code == 200
            health.append(time.perf_counter() - before)
            await asyncio.sleep(0.01)

    try:
        async with service.client() as client:
            probes = [*probe.tasks(), asyncio.create_task(health_probe(client))]
            await asyncio.sleep(0.05)
            started = time.perf_counter()
            answers = await asyncio.gather(*(attempt(client, "lead@x.demo") for _ in range(6)))
            logins_seconds = time.perf_counter() - started
            probe.done.set()
            await asyncio.gather(*probes)
    finally:
        await service.database.dispose()
    assert [a.status_code for a in answers] == [401] * 6
    # The probes kept running through 3 rounds of verifications (six on the service's two
    # slots) and never waited long. On the loop or in the transaction, a stall lasts a whole
    # verification at least (`assert_nothing_waited_for`). A verification is timed on this
    # machine under its load of the moment (one before the run, or a round's share of the run),
    # as the directory's hashing test does: a fixed bound measured the machine, not the code.
    verification = max(verify_seconds, logins_seconds / 3)
    probe.assert_nothing_waited_for(verification)
    assert len(health) >= 10 and sorted(health)[-2] < verification / 2, (sorted(health)[-5:], verification)


async def test_known_and_unknown_accounts_are_answered_alike(
    notify: Notify, monkeypatch: pytest.MonkeyPatch
) -> None:
    verified: list[str | None] = []
    real_verify = auth.verify_password

    def counting_verify(password_hash: str | None, password: str) -> bool:
        verified.append(password_hash)
        return real_verify(password_hash, password)

    monkeypatch.setattr(auth, "verify_password", counting_verify)
    answers: dict[str, list[tuple[int, str, bool]]] = {}
    async with notify.client() as client:
        for email in ("lead@x.demo", "nobody@x.demo"):
            seen = answers[email] = []
            for _ in range(7):
                r = await attempt(client, email)
                seen.append((r.status_code, r.json()["detail"].split(";")[0], "retry-after" in r.headers))
    assert answers["lead@x.demo"] == answers["nobody@x.demo"]
    assert [status for status, _, _ in answers["nobody@x.demo"]] == [401] * 5 + [429] * 2
    # Both verified a password for each of their 5 counted attempts: the unknown e-mail against
    # the dummy hash, so neither answers sooner.
    assert len(verified) == 10 and verified[5:] == [None] * 5


async def test_the_lock_is_capped_and_a_manager_lifts_it(notify: Notify, clock: Clock) -> None:
    waits = []
    async with notify.client() as client:
        for _ in range(5):
            assert (await attempt(client, "lead@x.demo")).status_code == 401
        for _ in range(8):  # every failure past the fifth doubles the lock, up to the cap
            locked = await attempt(client, "lead@x.demo", PASSWORD)  # even the right password
            assert locked.status_code == 429
            waits.append(int(locked.headers["retry-after"]))
            clock.now += waits[-1]
            assert (await attempt(client, "lead@x.demo")).status_code == 401
        assert waits[:5] == [30, 60, 120, 240, 480] and set(waits[5:]) == {900}
        assert (await attempt(client, "lead@x.demo", PASSWORD)).status_code == 429

        unlock = "/v1/admin/staff/lead/unlock"
        assert (await client.post(unlock)).status_code == 401
        assert (await client.post(unlock, headers={"Authorization": "Bearer staff"})).status_code == 401
        assert (await client.post("/v1/admin/staff/nobody/unlock", headers=ADMIN)).status_code == 404
        assert (await client.post(unlock, headers=ADMIN)).status_code == 204
        assert (await attempt(client, "lead@x.demo", PASSWORD)).status_code == 200
        # The count starts over: four more failures do not lock.
        for _ in range(4):
            assert (await attempt(client, "lead@x.demo")).status_code == 401
        assert (await attempt(client, "lead@x.demo", PASSWORD)).status_code == 200


async def test_failures_are_forgotten_after_an_hour(notify: Notify, clock: Clock) -> None:
    async with notify.client() as client:
        for _ in range(4):
            assert (await attempt(client, "lead@x.demo")).status_code == 401
        clock.now += 3601
        for _ in range(4):
            assert (await attempt(client, "lead@x.demo")).status_code == 401
        assert (await attempt(client, "lead@x.demo", PASSWORD)).status_code == 200


async def test_each_client_address_has_a_budget_of_failures(databases: DatabaseFactory) -> None:
    service = await make_notify(
        databases, auth.hash_password(PASSWORD), login_address_burst=3, login_address_rate_per_second=0.01
    )
    try:
        async with service.client("10.0.0.7") as one, service.client("10.0.0.8") as other:
            # Successful logins cost nothing.
            for _ in range(5):
                assert (await attempt(one, "lead@x.demo", PASSWORD)).status_code == 200
            for email in ("a@x.demo", "b@x.demo", "c@x.demo"):  # spraying accounts
                assert (await attempt(one, email)).status_code == 401
            refused = await attempt(one, "d@x.demo")
            assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
            assert "address" in refused.json()["detail"]
            assert (await attempt(one, "lead@x.demo", PASSWORD)).status_code == 429
            assert (await attempt(other, "lead@x.demo", PASSWORD)).status_code == 200
    finally:
        await service.database.dispose()


def bearer(
    notify: Notify, role: str, *, stores: tuple[str, ...] = (), area: str | None = None
) -> dict[str, str]:
    """A staff token for a made-up caller of `role`, signed as notify's login signs them."""
    settings = notify.app.state.settings
    principal = identity.Principal(staff_id=f"caller-{role}", role=role, store_ids=stores, area_id=area)
    token = identity.issue_token(principal, secret=settings.jwt_secret, ttl=300)
    return {"Authorization": f"Bearer {token}"}


async def test_a_manager_unlocks_the_staff_they_manage_and_no_one_else(notify: Notify) -> None:
    """Finding 3's "let a manager unlock": a store manager of the locked staff member's store, the
    area manager of its area and cx_admin may; a shift lead may not (403); a manager of another
    store or area gets 404, as for a staff member who does not exist; nobody unlocks a higher role."""
    async with notify.database.transaction() as s:
        s.add(Store(id="s2", name="Store 2", area_id="a2", timezone="Asia/Seoul", language="en"))
        s.add(
            Staff(
                id="area-boss",
                name="Area",
                email="area@x.demo",
                password_hash=auth.hash_password(PASSWORD),
                role="area_manager",
                store_ids=[],
                area_id="a1",
                language="en",
                active=True,
            )
        )
    async with notify.client() as client:

        async def lock() -> None:
            for _ in range(5):
                assert (await attempt(client, "lead@x.demo")).status_code == 401
            assert (await attempt(client, "lead@x.demo", PASSWORD)).status_code == 429

        unlock = "/v1/staff/lead/unlock"
        assert (await client.post(unlock)).status_code == 401
        assert (await client.post(unlock, headers=ADMIN)).status_code == 401  # not a staff token
        for allowed in (
            bearer(notify, "store_manager", stores=("s1",)),
            bearer(notify, "area_manager", area="a1"),
            bearer(notify, "cx_admin"),
        ):
            await lock()
            assert (await client.post(unlock, headers=allowed)).status_code == 204
            assert (await attempt(client, "lead@x.demo", PASSWORD)).status_code == 200

        await lock()
        refused = {
            "shift lead of the store": (bearer(notify, "shift_lead", stores=("s1",)), 403),
            "manager of another store": (bearer(notify, "store_manager", stores=("s2",)), 404),
            "manager of another area": (bearer(notify, "area_manager", area="a2"), 404),
        }
        for who, (headers, status) in refused.items():
            answer = await client.post(unlock, headers=headers)
            assert answer.status_code == status, who
            assert answer.headers["content-type"] == "application/problem+json", who
        missing = await client.post("/v1/staff/nobody/unlock", headers=bearer(notify, "cx_admin"))
        assert missing.status_code == 404
        # A store manager does not manage their area manager.
        store_manager = bearer(notify, "store_manager", stores=("s1",))
        assert (await client.post("/v1/staff/area-boss/unlock", headers=store_manager)).status_code == 404
        # None of the refused calls lifted the lock.
        assert (await attempt(client, "lead@x.demo", PASSWORD)).status_code == 429


async def test_a_password_is_taken_exactly_as_typed(databases: DatabaseFactory) -> None:
    """Text fields are stripped of surrounding whitespace; passwords were too, so "  pw  " was
    stored and checked as "pw" (schemathesis). A password's spaces are now part of it, in a
    login, a change and a new staff member's password alike."""
    spaced = "  spaced password  "
    service = await make_notify(databases, auth.hash_password(spaced), login_address_burst=100)
    try:
        async with service.client() as client:
            assert (await attempt(client, "lead@x.demo", spaced.strip())).status_code == 401
            login = await attempt(client, "lead@x.demo", spaced)
            assert login.status_code == 200, login.text
            bearer = {"Authorization": f"Bearer {login.json()['access_token']}"}
            changed = await client.post(
                "/v1/auth/password",
                headers=bearer,
                json={"current_password": spaced, "new_password": " trailing-space "},
            )
            assert changed.status_code == 204, changed.text
            async with service.database.session() as session:
                stored = (await session.get(Staff, "lead")).password_hash  # type: ignore[union-attr]
            assert auth.verify_password(stored, " trailing-space ")
            assert not auth.verify_password(stored, "trailing-space")
    finally:
        await service.database.dispose()


def test_a_csv_password_cell_is_trimmed_like_every_cell() -> None:
    """The staff CSV trims its cells, the password's too (a spreadsheet's space after a comma is
    not part of it; a blank cell keeps the member's password)."""
    rows, errors = directory.parse_staff_csv(
        "id,name,email,password,role,store_ids\n"
        " new-lead , New Lead , new@x.demo , pass word  ,shift_lead, s1 \n"
        "kept,Kept,kept@x.demo, ,staff,s1\n"
    )
    assert errors == []
    [(_, row), (_, kept)] = rows
    assert (row.id, row.name, row.email, row.password, row.store_ids) == (
        "new-lead", "New Lead", "new@x.demo", "pass word", ["s1"]
    )  # fmt: skip
    assert kept.password is None


def test_a_new_password_of_spaces_is_refused() -> None:
    with pytest.raises(ValidationError):
        PasswordIn(current_password="x", new_password=" " * 12)
    with pytest.raises(ValidationError):
        PasswordIn(current_password="x", new_password="  short1  ")
    assert PasswordIn(current_password="x", new_password=" long enough ").new_password == " long enough "


async def test_a_staff_member_sets_their_own_reading_language(notify: Notify) -> None:
    """The staff app's language switch (apps review: the screen said English, the server's
    titles, plans and pushes stayed in the directory's language)."""
    async with notify.client() as client:
        token = (await attempt(client, "lead@x.demo", PASSWORD)).json()["access_token"]
        own = {"Authorization": f"Bearer {token}"}
        assert (await client.put("/v1/auth/language", json={"language": "ko"})).status_code == 401
        refused = await client.put("/v1/auth/language", json={"language": "fr"}, headers=own)
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "body.language"
        assert (
            await client.put("/v1/auth/language", json={"language": "ko"}, headers=own)
        ).status_code == 204
    async with notify.database.session() as session:
        staff = await session.get(Staff, "lead")
    assert staff is not None and staff.language == "ko"
