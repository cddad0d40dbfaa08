"""Staff login: passwords (argon2, verified in a worker thread), the failed-login limits (per
client address in process; per account in the database, known e-mail or not, with a capped
lock a manager can lift), the access tokens it issues (HS256 JWT, `voc_platform.identity`: every
service verifies them), the refresh tokens that keep a shift signed in (rotating, bound to the app
install, a reused one revokes its family), the revocation of both (deactivation, a password set
anew or changed, a directory change, logout: the refresh tokens here, the access tokens on every
service through the `voc.staff.sessions_revoked` event) and the single-use tickets that open the
live stream.

The session API other code uses: `login` and `refresh` (each a `Session`), `logout`,
`change_password`, `revoke_sessions` (inside the caller's transaction; the caller notes the
revocation with `revocations.note` once committed).

One module (~540 lines): login, refresh, logout and revocation share the token and lock rules,
and a security review reads them together."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from math import ceil
from typing import Any, NamedTuple

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from voc.events.v1 import events_pb2
from voc_notify.models import Base, LoginFailure, RefreshToken, Staff, Store, StreamTicket, outbox_table
from voc_notify.routing import ROLE_LEVEL
from voc_notify.settings import Settings
from voc_platform.audit import Audit
from voc_platform.db import Database
from voc_platform.dbsync import insert_ignore
from voc_platform.errors import Forbidden, Invalid, NotFound, RateLimited, Unauthenticated
from voc_platform.identity import SUBJECT_REVOKED, Actor, Caller, Principal, Revocations, issue_token
from voc_platform.ids import uuid7
from voc_platform.outbox import add_event
from voc_platform.ratelimit import TokenBuckets
from voc_platform.records import fields_of

# One lane (argon2-cffi's default is 4): each lane is a thread, and on a two-core machine a few
# logins at once would starve the event loop that delivers alerts. One lane is also OWASP's
# argon2id recommendation; hashes made with 4 lanes still verify (their parameters are stored).
_hasher = PasswordHasher(parallelism=1)
# Verifying against a hash keeps the timing of "unknown e-mail" equal to "wrong password". This
# one was made by `_hasher` once: hashing at import cost ~0.2 s of CPU at every start of every
# notify process (dozens per test run). Should argon2-cffi's defaults change, it no longer
# matches `_hasher`'s cost and one is made here as before.
_DUMMY_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=1$ksY1dLrq3P6JZ2yMeBrQiw$DVqmAmONAZU4L/LFB0yMnGhPrdBg+geyRcgAvf4+azU"
)
if _hasher.check_needs_rehash(_DUMMY_HASH):
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
class Session:
    """A signed-in session as login and refresh answer it: a short access token, the refresh
    token that gets the next one (once), their lifetimes in seconds, and the staff member as the
    app shows them (re-read from the directory on every refresh)."""

    access_token: str
    expires_in: int
    refresh_token: str
    refresh_expires_in: int
    staff: dict[str, Any]


REFRESH_PREFIX = "vocrt_"


def _principal_of(staff: Staff, *, area_stores: tuple[str, ...], session_id: str) -> Principal:
    return Principal(
        staff.id,
        staff.role,
        tuple(staff.store_ids or ()),
        staff.area_id,
        area_store_ids=area_stores,
        session_id=session_id,
    )


# The staff member's own profile as the login answers it.
PROFILE_FIELDS = ("id", "name", "role", "store_ids", "area_id", "language")


def _profile_of(staff: Staff) -> dict[str, Any]:
    return fields_of(staff, PROFILE_FIELDS)


async def _issue(
    session: AsyncSession,
    staff: Staff,
    *,
    family_id: str,
    install_id: str | None,
    settings: Settings,
    now: float,
) -> Session:
    """A session of `family_id` in the caller's transaction: a new refresh token (stored) and an
    access token carrying identity's claims (`iat_ms` for revocation, and an area manager's
    `area_stores`), as the directory has the staff member now."""
    refresh_token = REFRESH_PREFIX + secrets.token_urlsafe(32)
    session.add(
        RefreshToken(
            token_hash=_ticket_hash(refresh_token),
            family_id=family_id,
            staff_id=staff.id,
            install_id=install_id,
            created_at=now,
            expires_at=now + settings.refresh_token_ttl_seconds,
        )
    )
    area_stores = await stores_of_area(session, staff)
    access = issue_token(
        _principal_of(staff, area_stores=area_stores, session_id=family_id),
        secret=settings.jwt_secret,
        ttl=settings.token_ttl_seconds,
        now=now,
    )
    return Session(
        access_token=access,
        expires_in=settings.token_ttl_seconds,
        refresh_token=refresh_token,
        refresh_expires_in=settings.refresh_token_ttl_seconds,
        staff=_profile_of(staff),
    )


async def _start_session(
    database: Database, *, staff: Staff, install_id: str | None, settings: Settings, now: float
) -> Session:
    """A new family with its first refresh token, and an access token."""
    async with database.transaction() as session:
        # Expired tokens are forgotten as new sessions start (no background job for it).
        await session.execute(delete(RefreshToken).where(RefreshToken.expires_at < now - 86400))
        return await _issue(
            session, staff, family_id=uuid7(), install_id=install_id, settings=settings, now=now
        )


async def refresh(
    database: Database,
    revocations: Revocations,
    *,
    settings: Settings,
    refresh_token: str,
    install_id: str | None = None,
    now: float | None = None,
) -> Session:
    """The next session of a refresh token's family: the token is used up and a new one given,
    the access token carries the role and stores the directory has now.

    401 for an unknown, expired or revoked token. A token used once already, or shown by another
    app install than the one it was issued to, revokes its whole family first (someone holds a
    copy: neither the thief nor the owner may continue), as does a deactivated staff member's.
    A copy also ends the staff member's access tokens issued so far on every service: the one
    the thief got with it would otherwise work until it expires."""
    now = time.time() if now is None else now
    outcome: _Refused | Session
    async with database.transaction() as session:
        outcome = await _rotate(
            session, revocations, token=refresh_token, install_id=install_id, settings=settings, now=now
        )
    if isinstance(outcome, _Refused):
        if outcome.revoked is not None:
            revocations.note(*outcome.revoked)
        raise Unauthenticated(outcome.message)
    return outcome


class _Refused(NamedTuple):
    """Why `_rotate` gave no session, and the access tokens it ended (staff id, cut-off ms)."""

    message: str
    revoked: tuple[str, int] | None = None


async def _rotate(
    session: AsyncSession,
    revocations: Revocations,
    *,
    token: str,
    install_id: str | None,
    settings: Settings,
    now: float,
) -> _Refused | Session:
    """`refresh` inside its transaction: the new session, or why not (the revocations, if any,
    commit with the transaction)."""
    query = select(RefreshToken).where(RefreshToken.token_hash == _ticket_hash(token))
    if (await session.connection()).dialect.name == "postgresql":
        query = query.with_for_update()
    row = await session.scalar(query)
    if row is None or row.expires_at < now:
        return _Refused("The refresh token is not valid or has expired; sign in again.")
    if row.revoked_at is not None:
        return _Refused("This session was ended (logout, password change or a reused token); sign in again.")
    theft = None
    if row.used_at is not None:
        theft = "reuse"
    elif row.install_id is not None and install_id != row.install_id:
        theft = "other_install"
    staff = await session.get(Staff, row.staff_id)
    if theft is None and (staff is None or not staff.active):
        theft = "deactivated"
    if theft is not None or staff is None:
        await _revoke(
            session, RefreshToken.family_id == row.family_id, reason=theft or "deactivated", now=now
        )
        if theft == "deactivated":
            return _Refused("The staff member is deactivated; sign in is not possible.")
        before = await _revoke_access_tokens(session, revocations, row.staff_id, "revoked", now)
        return _Refused(
            "The refresh token was already used: the session is revoked everywhere; sign in again.",
            revoked=(row.staff_id, before),
        )
    row.used_at = now
    return await _issue(
        session, staff, family_id=row.family_id, install_id=row.install_id, settings=settings, now=now
    )


async def _revoke(session: AsyncSession, where: Any, *, reason: str, now: float) -> None:
    await session.execute(
        update(RefreshToken)
        .where(where, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
    )


async def set_language(database: Database, *, principal: Principal, language: str) -> None:
    """The staff member's own reading language (alerts, plans and pushes are in it); the app's
    language switch sets it, so what the server writes follows the screen."""
    async with database.transaction() as session:
        staff = await session.get(Staff, principal.staff_id)
        if staff is None or not staff.active:
            raise Unauthenticated("The staff member is not known or deactivated.")
        staff.language = language


async def change_password(
    database: Database,
    revocations: Revocations,
    *,
    settings: Settings,
    principal: Principal,
    current: str,
    new: str,
) -> int:
    """The staff member's own password change: the current one must match (403 otherwise, counted
    like a failed login, and refused while the account is locked: 429); every session and access
    token ends, so a stolen phone's is gone too. The revocation's cut-off, noted in this process
    (`revocations.note`) once committed."""
    if current == new:
        raise Invalid("The new password is the current one.", field="body.new_password")
    async with database.session() as session:
        staff = await session.get(Staff, principal.staff_id)
    if staff is None or not staff.active:
        raise Unauthenticated("The staff member is not known or deactivated.")
    key = account_key(staff.email, secret=settings.jwt_secret)
    now = time.time()
    async with database.session() as session:
        record = await session.get(LoginFailure, key)
    if record is not None and record.locked_until > now:
        raise _locked(record.locked_until - now)  # a stolen token cannot guess the password
    ok = await asyncio.to_thread(verify_password, staff.password_hash, current)
    if not ok:
        await _count_failure(database, key=key, settings=settings, now=now)
        raise Forbidden("The current password is wrong.")
    new_hash = await asyncio.to_thread(hash_password, new)
    async with database.transaction() as session:
        row = await session.get(Staff, principal.staff_id)
        assert row is not None
        row.password_hash = new_hash
        before = await revoke_sessions(session, revocations, staff_id=row.id, reason="password_changed")
    revocations.note(principal.staff_id, before)
    return before


class LoginGuard:
    """What bounds login work in this process: a token bucket per client address (a failed
    attempt spends a token, a successful one gives it back) and how many argon2 verifications
    run at once, each in a worker thread (tens of ms of CPU and 64 MiB each)."""

    def __init__(self, settings: Settings) -> None:
        self.addresses = TokenBuckets(
            rate_per_second=settings.login_address_rate_per_second, burst=settings.login_address_burst
        )
        self.concurrency = settings.login_concurrency
        self._slots: asyncio.Semaphore | None = None  # made on the loop that first logs in

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
    database: Database,
    *,
    settings: Settings,
    guard: LoginGuard,
    email: str,
    password: str,
    address: str,
    install_id: str | None = None,
) -> Session:
    """A session for the staff member with this e-mail and password, bound to `install_id` (the
    app install asking, whose refreshes must name it again) when given.

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
    return await _start_session(database, staff=staff, install_id=install_id, settings=settings, now=now)


async def stores_of_area(session: AsyncSession, staff: Staff) -> tuple[str, ...]:
    """An area manager's area's stores, carried in the token (`area_stores`) so services that
    keep no store directory (profile) scope by area too; a store added to the area shows from
    the next login or refresh."""
    if staff.role != "area_manager" or not staff.area_id:
        return ()
    found = await session.scalars(select(Store.id).where(Store.area_id == staff.area_id).order_by(Store.id))
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
    """End what signs `staff_id` in, in the caller's transaction: every access token issued until
    now, on every service (`_revoke_access_tokens`), and every refresh token (their next refresh
    is a 401), except for a directory change: its access tokens carry a stale role or stores,
    while the next refresh reads the new ones. The caller notes the revocation in memory once
    committed (`revocations.note`). The cut-off."""
    now = time.time() if now is None else now
    if reason != "directory_changed":
        await _revoke(session, RefreshToken.staff_id == staff_id, reason=reason, now=now)
    return await _revoke_access_tokens(session, revocations, staff_id, reason, now)


async def _revoke_access_tokens(
    session: AsyncSession, revocations: Revocations, staff_id: str, reason: str, now: float
) -> int:
    """End every access token issued to `staff_id` until now, on every service: the revocation
    row here and the `StaffSessionsRevoked` event (outbox; not a webhook type) in the caller's
    transaction. Other services store it from their consumer and refuse the tokens within their
    refresh interval. The cut-off, in ms."""
    assert reason in REVOCATION_REASONS, reason
    before_ms = int(now * 1000)
    await revocations.record(session, staff_id=staff_id, revoked_before_ms=before_ms, reason=reason)
    event = events_pb2.StaffSessionsRevoked(staff_id=staff_id, revoked_before_ms=before_ms, reason=reason)
    await add_event(session, outbox_table, subject=SUBJECT_REVOKED, message=event)
    return before_ms


async def logout(
    database: Database,
    revocations: Revocations,
    audit: Audit,
    *,
    refresh_token: str | None = None,
    principal: Principal | None = None,
    now: float | None = None,
) -> None:
    """Log a staff member out. With a refresh token (the app's logout: no access token needed, it
    may have expired) its session (family) ends; without one, the `principal` of the access token
    sent, and the session that token was issued in. Either way every access token of that staff
    member issued so far stops working on every service (the phone that logs out takes the
    others' access tokens with it; their own sessions refresh). An unknown or already ended
    refresh token is no error (logging out twice is fine)."""
    now = time.time() if now is None else now
    revoked: tuple[str, int] | None = None
    async with database.transaction() as session:
        if refresh_token is not None:
            row = (
                await session.execute(
                    select(RefreshToken.family_id, RefreshToken.staff_id).where(
                        RefreshToken.token_hash == _ticket_hash(refresh_token)
                    )
                )
            ).first()
            staff_id = None if row is None else row.staff_id
            if row is not None:
                await _revoke(session, RefreshToken.family_id == row.family_id, reason="logout", now=now)
            actor = Actor(f"staff:{staff_id}")
        else:
            assert principal is not None
            staff_id = principal.staff_id
            actor = Caller(principal).actor
            if principal.session_id is not None:  # the session the access token came from ends too
                where = (RefreshToken.family_id == principal.session_id) & (RefreshToken.staff_id == staff_id)
                await _revoke(session, where, reason="logout", now=now)
        if staff_id is not None:
            before = await _revoke_access_tokens(session, revocations, staff_id, "logout", now)
            revoked = (staff_id, before)
            await audit.record(session, actor=actor, action="logout", target=f"staff:{staff_id}")
    if revoked is not None:
        revocations.note(*revoked)


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
