"""Staff passwords (argon2) and short-lived access tokens (HS256 JWT)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

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
