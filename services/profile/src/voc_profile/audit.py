"""Profile's side of the platform audit log (`voc_platform.audit`): who changed or read which
customer (ids and counts, never the data). A customer is the entry's target `customer:<id>`;
changes are recorded in the transaction that makes them (`record`), reads through the buffer of
`voc_platform.audit.Audit.read`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from voc_platform.audit import entry
from voc_platform.identity import Actor
from voc_profile.models import audit_table

SERVICE = Actor("service")  # another service over gRPC (its calls carry the service credential)


def target_of(customer_id: str | None) -> str | None:
    return f"customer:{customer_id}" if customer_id else None


async def record(
    session: AsyncSession,
    *,
    actor: Actor,
    action: str,
    customer_id: str | None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Record a change in the caller's transaction."""
    await session.execute(insert(audit_table), [entry(actor, action, target_of(customer_id), detail)])
