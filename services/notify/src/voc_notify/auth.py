"""Staff login: passwords (argon2, verified in a worker thread), the failed-login limits (per
client address in process; per account in the database, known e-mail or not, with a capped
lock a manager can lift), the access tokens it issues (HS256 JWT, `voc_platform.identity`: every
service verifies them), their revocation (deactivation, a password set anew, logout: the
`voc.staff.sessions_revoked` event) and the single-use tickets that open the live stream."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from math import ceil
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from voc.events.v1 import events_pb2
from voc_notify.models import Base, LoginFailure, Staff, Store, StreamTicket, outbox_table
from voc_notify.routing import ROLE_LEVEL
from voc_notify.settings import Settings
from voc_platform.audit import Audit
from voc_platform.db import Database
from voc_platform.dbsync import insert_ignore
from voc_platform.errors import Forbidden, NotFound, RateLimited, Unauthenticated
from voc_platform.identity import SUBJECT_REVOKED, Actor, Caller, Principal, Revocations, issue_token
from voc_platform.outbox import add_event
from voc_platform.ratelimit import TokenBuckets

_hasher = PasswordHasher()
# Verifying against this keeps the timing of "unknown e-mail" equal to "wrong password".
_DUMMY_HASH = _hasher.hash("not-a-real-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


STREAM_TICKET_SECONDS = 60


async def issue_stream_ticket(database: Database, *, principal: Principal, now: float | None = None) -> str:
    """A ticket that opens the live stream once within `STREAM_TICKET_SECONDS`, as `principal`
    (EventSource cannot send the Authorization header; the access token stays out of URLs)."""
    now = time.time() if now is None else now
    ticket = secrets.token_urlsafe(32)
    async with database.transaction() as session:
        await session.execute(delete(StreamTicket).where(StreamTicket.expires_at < now))
        session.add(
            StreamTicket(
                ticket_hash=_ticket_hash(ticket),
                staff_id=principal.staff_id,
                role=principal.role,
                store_ids=list(principal.store_ids),
                area_id=principal.area_id,
                expires_at=now + STREAM_TICKET_SECONDS,
            )
        )
    return ticket


async def redeem_stream_ticket(database: Database, *, ticket: str, now: float | None = None) -> Principal:
    """The staff member a stream ticket was issued to; the ticket is gone afterwards (one
    connection per ticket, on any replica). 401 for an unknown, used or expired ticket."""
    now = time.time() if now is None else now
    taken = (
        delete(StreamTicket)
        .where(StreamTicket.ticket_hash == _ticket_hash(ticket))
        .returning(
            StreamTicket.staff_id,
            StreamTicket.role,
            StreamTicket.store_ids,
            StreamTicket.area_id,
            StreamTicket.expires_at,
        )
    )
    async with database.transaction() as session:
        row = (await session.execute(taken)).first()
    if row is None or row.expires_at < now:
        raise Unauthenticated("The stream ticket is not valid (each opens one stream within 60 s).")
    # As old as the ticket: a revocation after it was issued ends it (and the stream it opens).
    issued_ms = int((row.expires_at - STREAM_TICKET_SECONDS) * 1000)
    return Principal(row.staff_id, row.role, tuple(row.store_ids or ()), row.area_id, issued_ms=issued_ms)


def _ticket_hash(ticket: str) -> str:
    return hashlib.sha256(ticket.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Login:
    """A successful login: the access token and the staff member as the app shows them."""

    token: str
    staff: dict[str, Any]


class LoginGuard:
    """What bounds login work in this process: a token bucket per client address (a failed
    attempt spends a token, a successful one gives it back) and how many argon2 verifications
    run at once, each in a worker thread (tens of ms of CPU and 64 MiB each)."""

    def __init__(self, *, address_rate_per_second: float, address_burst: int, concurrency: int) -> None:
        self.addresses = TokenBuckets(rate_per_second=address_rate_per_second, burst=address_burst)
        self.concurrency = concurrency
        self._slots: asyncio.Semaphore | None = None  # made on the loop that first logs in

    @classmethod
    def from_settings(cls, settings: Settings) -> LoginGuard:
        return cls(
            address_rate_per_second=settings.login_address_rate_per_second,
            address_burst=settings.login_address_burst,
            concurrency=settings.login_concurrency,
        )

    def admit(self, address: str) -> None:
        """Spend one of the address's tokens, or refuse with `RateLimited` (429, Retry-After)."""
        wait = self.addresses.take(address)
        if wait > 0:
            raise RateLimited(
                f"Too many failed logins from this address; try again in {ceil(wait)} s.", retry_after=wait
            )

    @property
    def slots(self) -> asyncio.Semaphore:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.concurrency)
        return self._slots


def account_key(email: str, *, secret: str) -> str:
    """The key of an e-mail's failed logins: an HMAC, so the table holds no e-mail (nor a
    password typed into the e-mail field) in a form a dictionary would reverse."""
    return hmac.new(secret.encode(), b"login:" + email.lower().encode(), hashlib.sha256).hexdigest()


def _locked(seconds: float) -> RateLimited:
    return RateLimited(f"Too many failed logins; try again in {ceil(seconds)} s.", retry_after=seconds)


async def login(
    database: Database, *, settings: Settings, guard: LoginGuard, email: str, password: str, address: str
) -> Login:
    """A token for the staff member with this e-mail and password.

    An unknown e-mail is answered exactly like a known one: the same failure counting and lock,
    a password verified against a dummy hash. From its `login_max_failures`th failure on the
    account is locked for a time that doubles with each, at most `lockout_max_seconds`. The
    password is verified in a worker thread, outside any transaction: the event loop and the
    database's write lock stay free for alerts."""
    guard.admit(address)
    key = account_key(email, secret=settings.jwt_secret)
    async with guard.slots:
        now = time.time()
        async with database.session() as session:
            staff = await session.scalar(select(Staff).where(Staff.email == email.lower()))
            record = await session.get(LoginFailure, key)
        if record is not None and record.locked_until > now:
            raise _locked(record.locked_until - now)
        ok = await asyncio.to_thread(verify_password, staff.password_hash if staff else None, password)
    if staff is None or not ok or not staff.active:
        await _count_failure(database, key=key, settings=settings, now=now)
        raise Unauthenticated("E-mail or password is wrong.")
    guard.addresses.give_back(address)
    if record is not None:
        await _forget_failures(database, key=key)
    principal = Principal(
        staff.id,
        staff.role,
        tuple(staff.store_ids or ()),
        staff.area_id,
        area_store_ids=await _area_stores(database, staff),
    )
    profile = {
        "id": staff.id,
        "name": staff.name,
        "role": staff.role,
        "store_ids": staff.store_ids,
        "area_id": staff.area_id,
        "language": staff.language,
    }
    return Login(issue_token(principal, secret=settings.jwt_secret, ttl=settings.token_ttl_seconds), profile)


async def _area_stores(database: Database, staff: Staff) -> tuple[str, ...]:
    """An area manager's area's stores, carried in the token (`area_stores`) so services that
    keep no store directory (profile) scope by area too; a store added to the area shows from
    the next login."""
    if staff.role != "area_manager" or not staff.area_id:
        return ()
    async with database.session() as session:
        found = await session.scalars(
            select(Store.id).where(Store.area_id == staff.area_id).order_by(Store.id)
        )
        return tuple(found)


REVOCATION_REASONS = ("deactivated", "password_changed", "directory_changed", "logout", "revoked")


async def revoke_sessions(
    session: AsyncSession,
    revocations: Revocations,
    *,
    staff_id: str,
    reason: str,
    now: float | None = None,
) -> int:
    """End every access token issued to `staff_id` until now, on every service: the revocation
    row here and the `StaffSessionsRevoked` event (outbox) in the caller's transaction. The
    caller notes it in memory once committed (`revocations.note`); other services store it
    from their consumer and refuse the tokens within their refresh interval. The cut-off."""
    assert reason in REVOCATION_REASONS, reason
    before_ms = int((time.time() if now is None else now) * 1000)
    await revocations.record(session, staff_id=staff_id, revoked_before_ms=before_ms, reason=reason)
    event = events_pb2.StaffSessionsRevoked(staff_id=staff_id, revoked_before_ms=before_ms, reason=reason)
    await add_event(session, outbox_table, subject=SUBJECT_REVOKED, message=event)
    return before_ms


async def _count_failure(database: Database, *, key: str, settings: Settings, now: float) -> None:
    """Count one failed login of the account, locking it from the `login_max_failures`th on.
    Failures are forgotten `login_failures_kept_seconds` after the last one."""
    stale = now - settings.login_failures_kept_seconds
    async with database.transaction() as session:
        dialect = (await session.connection()).dialect.name
        fresh = {"account_key": key, "failures": 0, "locked_until": 0.0, "last_failed_at": now}
        await session.execute(insert_ignore(dialect, Base.metadata.tables["login_failures"]), fresh)
        record = await session.get(LoginFailure, key, with_for_update=True, populate_existing=True)
        assert record is not None
        if record.last_failed_at < stale:
            record.failures = 0
        record.failures += 1
        record.last_failed_at = now
        over = record.failures - settings.login_max_failures
        if over >= 0:
            lock = min(settings.lockout_base_seconds * 2 ** min(over, 16), settings.lockout_max_seconds)
            record.locked_until = now + lock
        await session.execute(
            delete(LoginFailure).where(LoginFailure.last_failed_at < stale, LoginFailure.locked_until < now)
        )


async def _forget_failures(database: Database, *, key: str) -> None:
    async with database.transaction() as session:
        await session.execute(delete(LoginFailure).where(LoginFailure.account_key == key))


def manages(manager: Principal, staff: Staff, *, staff_areas: set[str]) -> bool:
    """Whether `manager` looks after `staff`: cx_admin everyone, an area manager the staff of their
    area's stores (and the area's other managers), a store manager their stores' staff. Nobody
    manages someone of a higher role."""
    if ROLE_LEVEL.get(staff.role, 0) > ROLE_LEVEL.get(manager.role, 0):
        return False
    if manager.role == "cx_admin":
        return True
    if manager.role == "area_manager" and manager.area_id:
        return manager.area_id in staff_areas or staff.area_id == manager.area_id
    if ROLE_LEVEL.get(manager.role, 0) >= ROLE_LEVEL["store_manager"]:
        return bool(set(manager.store_ids) & set(staff.store_ids or ()))
    return False


async def unlock(
    database: Database,
    *,
    staff_id: str,
    settings: Settings,
    audit: Audit,
    by: Principal | None = None,
    actor: Actor | None = None,
) -> None:
    """Clear a staff member's failed logins and lock: the admin token's call (`by` None) or a
    manager's, for staff they manage (`manages`); anyone else's is answered as a missing staff
    member, so the call does not tell which accounts exist."""
    if by is not None and ROLE_LEVEL.get(by.role, 0) < ROLE_LEVEL["store_manager"]:
        raise Forbidden("Unlocking a login is for store managers and above.")
    async with database.transaction() as session:
        staff = await session.get(Staff, staff_id)
        if staff is not None and by is not None:
            areas = set(
                await session.scalars(
                    select(Store.area_id).where(
                        Store.id.in_(staff.store_ids or ()), Store.area_id.is_not(None)
                    )
                )
            )
            if not manages(by, staff, staff_areas={a for a in areas if a}):
                staff = None
        if staff is None:
            raise NotFound(f"No staff member '{staff_id}'.")
        key = account_key(staff.email, secret=settings.jwt_secret)
        await session.execute(delete(LoginFailure).where(LoginFailure.account_key == key))
        who = actor or (Caller(by).actor if by is not None else Actor("admin"))
        await audit.record(session, actor=who, action="staff.unlock", target=f"staff:{staff_id}")
