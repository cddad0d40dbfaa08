"""Store-app API keys: create (shown once, only the hash kept), authenticate, rotate with a grace
period, revoke."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from voc_feedback.models import ApiKey, Store
from voc_platform.dbsync import Prepared, Reader
from voc_platform.errors import Conflict, FieldError, Invalid, NotFound, Unauthenticated
from voc_platform.ids import uuid7


@dataclass(frozen=True, slots=True)
class KeyIdentity:
    """An authenticated store-app key: what intake and scoping need of it."""

    id: str
    prefix: str
    store_ids: tuple[str, ...]


def hash_api_key(key: str) -> str:
    # Keys are 32 random bytes: a fast hash is enough (no dictionary to guess from).
    return hashlib.sha256(key.encode()).hexdigest()


def new_api_key() -> str:
    return "vocsk_" + secrets.token_urlsafe(32)


_KEY_BY_HASH = Prepared(
    select(ApiKey.id, ApiKey.prefix, ApiKey.store_ids, ApiKey.revoked_at, ApiKey.expires_at).where(
        ApiKey.key_hash == bindparam("key_hash")
    )
)


def authenticate(reader: Reader, key: str) -> KeyIdentity:
    """The key's identity; `Unauthenticated` when it is unknown, revoked or past its grace."""
    row = reader.first(_KEY_BY_HASH, {"key_hash": hash_api_key(key)})
    if (
        row is None
        or row.revoked_at is not None
        or (row.expires_at is not None and row.expires_at <= time.time())
    ):
        raise Unauthenticated("The API key is unknown, revoked or expired.")
    return KeyIdentity(row.id, row.prefix, tuple(row.store_ids))


_STORE_EXISTS = Prepared(select(Store.id).where(Store.id == bindparam("store_id")))


@dataclass(frozen=True, slots=True)
class StoreAuthority:
    """What another service asks of a store and a store-app key (`AuthorizeStore`): whether the
    store exists, whether the key is live, and which stores it may act for."""

    store_known: bool
    key_valid: bool
    key_store_ids: tuple[str, ...]


def authorize_store(reader: Reader, *, store_id: str, api_key: str) -> StoreAuthority:
    """The store checked, and the key when one is given (never raises for a bad key: the caller
    answers 401 itself)."""
    known = reader.scalar(_STORE_EXISTS, {"store_id": store_id}) is not None
    if not api_key:
        return StoreAuthority(known, False, ())
    try:
        identity = authenticate(reader, api_key)
    except Unauthenticated:
        return StoreAuthority(known, False, ())
    return StoreAuthority(known, True, identity.store_ids)


async def authenticate_in(session: AsyncSession, *, key: str) -> KeyIdentity:
    """`authenticate` on the session's connection (one greenlet hop)."""
    identity: KeyIdentity = await session.run_sync(lambda s: authenticate(Reader.of(s.connection()), key))
    return identity


async def create_api_key(session: AsyncSession, *, name: str, store_ids: Sequence[str]) -> tuple[ApiKey, str]:
    """A new key for these stores, each of which must be in the store directory (a misspelt id
    made a key whose feedback no store's staff would see): its row and the key itself (shown
    once, never stored)."""
    known = set(await session.scalars(select(Store.id).where(Store.id.in_(set(store_ids)))))
    if unknown := [(i, store_id) for i, store_id in enumerate(store_ids) if store_id not in known]:
        raise Invalid(
            "The key names stores that are not in the store directory; add them first "
            "(PUT /v1/admin/stores).",
            errors=[FieldError(f"body.store_ids.{i}", f"unknown store '{sid}'") for i, sid in unknown],
        )
    return await _issue(session, name=name, store_ids=store_ids)


async def _issue(session: AsyncSession, *, name: str, store_ids: Sequence[str]) -> tuple[ApiKey, str]:
    key = new_api_key()
    row = ApiKey(
        id=uuid7(),
        name=name,
        key_hash=hash_api_key(key),
        prefix=key[:12],
        store_ids=sorted(set(store_ids)),
        created_at=time.time(),
        revoked_at=None,
    )
    session.add(row)
    await session.flush()
    return row, key


async def list_api_keys(session: AsyncSession) -> list[ApiKey]:
    """Every key, oldest first."""
    return list(await session.scalars(select(ApiKey).order_by(ApiKey.created_at)))


async def rotate_api_key(session: AsyncSession, *, key_id: str, grace_seconds: int) -> tuple[ApiKey, str]:
    """A new key for the same stores; the old one keeps working for the grace period."""
    old = await session.get(ApiKey, key_id, with_for_update=True)
    if old is None:
        raise NotFound(f"No API key '{key_id}'.")
    now = time.time()
    if old.revoked_at is not None or old.replaced_by is not None:
        raise Conflict(f"API key '{key_id}' is revoked or was already rotated; rotate its successor.")
    new, key = await _issue(session, name=old.name, store_ids=old.store_ids)  # its stores as they were
    old.replaced_by = new.id
    old.expires_at = now + grace_seconds
    await session.flush()
    return new, key


async def revoke_api_key(session: AsyncSession, *, key_id: str) -> ApiKey:
    """Stop the key at once (revoking twice keeps the first time)."""
    row = await session.get(ApiKey, key_id)
    if row is None:
        raise NotFound(f"No API key '{key_id}'.")
    row.revoked_at = row.revoked_at or time.time()
    await session.flush()
    return row
