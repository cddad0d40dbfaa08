"""Staff login: passwords (argon2), lockout after repeated failures, and short-lived access
tokens (HS256 JWT)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select

from voc_notify.models import Staff
from voc_notify.settings import Settings
from voc_platform.db import Database
from voc_platform.errors import RateLimited, Unauthenticated

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


@dataclass(frozen=True)
class Principal:
    staff_id: str
    role: str
    store_ids: tuple[str, ...]
    area_id: str | None


def issue_token(principal: Principal, *, secret: str, ttl: int, now: float | None = None) -> str:
    now = now or time.time()
    claims = {
        "sub": principal.staff_id,
        "role": principal.role,
        "stores": list(principal.store_ids),
        "area": principal.area_id,
        "iat": int(now),
        "exp": int(now + ttl),
        "iss": "voc-notify",
    }
    return jwt.encode(claims, secret, algorithm="HS256")


class TokenError(Exception):
    pass


def read_token(token: str, *, secret: str) -> Principal:
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            issuer="voc-notify",
            options={"require": ["exp", "sub", "iss"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenError("The access token has expired; log in again.") from exc
    except jwt.PyJWTError as exc:
        raise TokenError("The access token is not valid.") from exc
    return Principal(
        staff_id=claims["sub"],
        role=claims.get("role", "staff"),
        store_ids=tuple(claims.get("stores") or ()),
        area_id=claims.get("area"),
    )


@dataclass(frozen=True, slots=True)
class Login:
    """A successful login: the access token and the staff member as the app shows them."""

    token: str
    staff: dict[str, Any]


async def login(database: Database, *, settings: Settings, email: str, password: str) -> Login:
    """A token for the staff member with this e-mail and password. Each failure counts; past
    `login_max_failures` the account is locked for a time that doubles with every further one."""
    now = time.time()
    async with database.transaction() as session:
        staff = await session.scalar(select(Staff).where(Staff.email == email.lower()))
        if staff is not None and staff.locked_until > now:
            wait = int(staff.locked_until - now) + 1
            raise RateLimited(f"Too many failed logins; try again in {wait} s.", retry_after=wait)
        ok = verify_password(staff.password_hash if staff else None, password)
        if staff is None or not ok or not staff.active:
            if staff is not None:
                staff.failed_logins += 1
                over = staff.failed_logins - settings.login_max_failures
                if over >= 0:
                    staff.locked_until = now + settings.lockout_base_seconds * (2 ** min(over, 8))
            principal = None
        else:
            staff.failed_logins, staff.locked_until = 0, 0.0
            principal = Principal(staff.id, staff.role, tuple(staff.store_ids or ()), staff.area_id)
            profile = {
                "id": staff.id,
                "name": staff.name,
                "role": staff.role,
                "store_ids": staff.store_ids,
                "area_id": staff.area_id,
                "language": staff.language,
            }
    if principal is None:  # raised after the commit: the failure is counted
        raise Unauthenticated("E-mail or password is wrong.")
    return Login(issue_token(principal, secret=settings.jwt_secret, ttl=settings.token_ttl_seconds), profile)
