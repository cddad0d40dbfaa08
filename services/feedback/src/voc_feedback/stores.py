"""The store -> area directory the CX admin keeps here (names for the dashboard, areas for the
area filter); notify keeps its own."""

from __future__ import annotations

import time
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from voc_feedback.models import Store
from voc_feedback.schemas import StoreIn
from voc_platform.errors import FieldError, Invalid

MAX_STORES_PER_CALL = 5000


async def put_stores(session: AsyncSession, *, stores: Sequence[StoreIn]) -> list[Store]:
    """Upsert the store -> area directory (the admin's list is the truth for these ids)."""
    if len(stores) > MAX_STORES_PER_CALL:
        raise Invalid("At most 5,000 stores per call.", errors=[FieldError("body", "too long")])
    now = time.time()
    ids = [s.id for s in stores]
    if len(set(ids)) != len(ids):
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        raise Invalid(
            "Store ids repeat in the list.",
            errors=[FieldError(f"body.{ids.index(d)}.id", f"duplicate id '{d}'") for d in duplicates],
        )
    existing = {row.id: row for row in await session.scalars(select(Store).where(Store.id.in_(ids)))}
    out = []
    for store in stores:
        row = existing.get(store.id)
        if row is None:
            row = Store(id=store.id, name=store.name, area_id=store.area_id, updated_at=now)
            session.add(row)
        else:
            row.name, row.area_id, row.updated_at = store.name, store.area_id, now
        out.append(row)
    await session.flush()
    return out


async def list_stores(session: AsyncSession) -> list[Store]:
    """The directory, by id."""
    return list(await session.scalars(select(Store).order_by(Store.id)))


async def store_names(session: AsyncSession) -> dict[str, str]:
    """Store id -> name, for pages and reports."""
    return {s.id: s.name for s in await session.scalars(select(Store))}


async def areas_of(session: AsyncSession, store_ids: Sequence[str]) -> frozenset[str]:
    """The areas these stores are in (a store without an area, or unknown here, adds none)."""
    if not store_ids:
        return frozenset()
    rows = await session.scalars(select(Store.area_id).where(Store.id.in_(store_ids)))
    return frozenset(area for area in rows if area)
