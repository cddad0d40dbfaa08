"""The audit log of every service: who (the authenticated actor, never a self-declared name) did
what to which target, when, and what changed (ids and counts, never the personal data itself).

Changes are recorded in the transaction that makes them (`Audit.record`). Reads are many (a
manager opening alerts, a context read per alert) and must not turn a lookup into a write:
`Audit.read` buffers them in memory and `run` writes them in one transaction per second, and on
shutdown; a crash loses at most that second of read entries. `run_pruning` deletes entries
older than `VOC_AUDIT_RETENTION_DAYS`, hourly. `GET /v1/audit` (`router`) is served by every
service over its own log (cx_admin or the admin token)."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import sqlalchemy as sa
from alembic.operations import Operations
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from sqlalchemy import JSON, Column, Float, Index, Integer, MetaData, String, Table, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from voc_platform.db import Database
from voc_platform.errors import FieldError, Invalid
from voc_platform.http import query_instant, require
from voc_platform.identity import Actor, Caller, Identity, Permission, Revocations
from voc_platform.periodic import every
from voc_platform.settings import ServiceSettings

log = logging.getLogger(__name__)
CHUNK = 100
PRUNE_EVERY_SECONDS = 3600.0
#: Entries kept past the retention: the proof an erasure was done (profile's `erase`).
KEPT_ACTIONS: tuple[str, ...] = ("erase",)
MAX_EPOCH_SECONDS = 4102444800.0  # 2100-01-01


def define_audit_table(metadata: MetaData) -> Table:
    """The `audit_log` table, attached to a service's own metadata."""
    return Table(
        "audit_log",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("at", Float, nullable=False),
        Column("actor", String(100), nullable=False),  # admin | staff:<id> | key:<id> | service | system
        Column("actor_role", String(32), nullable=True),
        Column("on_behalf_of", String(64), nullable=True),  # X-Voc-Actor beside the admin token
        Column("action", String(64), nullable=False),
        Column("target", String(200), nullable=True),  # <kind>:<id>, e.g. customer:…, api_key:…
        Column("detail", JSON, nullable=False),
        Index("ix_audit_at", "at"),
        Index("ix_audit_target", "target", "at"),
        Index("ix_audit_actor", "actor", "at"),
    )


# The indexes as the migrations create them (name, columns), in creation order.
AUDIT_INDEXES: tuple[tuple[str, list[str]], ...] = (
    ("ix_audit_at", ["at"]),
    ("ix_audit_target", ["target", "at"]),
    ("ix_audit_actor", ["actor", "at"]),
)


def create_audit_log(op: Operations) -> None:
    """The migration step that adds `audit_log` (actions 0003, feedback 0005, notify 0012):
    the table as first shipped. Frozen: a later change to the table is a new migration."""
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("actor_role", sa.String(length=32), nullable=True),
        sa.Column("on_behalf_of", sa.String(length=64), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    for name, columns in AUDIT_INDEXES:
        op.create_index(name, "audit_log", columns)


def drop_audit_log(op: Operations) -> None:
    """Undo `create_audit_log`."""
    for name, _ in reversed(AUDIT_INDEXES):
        op.drop_index(name, table_name="audit_log")
    op.drop_table("audit_log")


def entry(
    actor: Actor, action: str, target: str | None, detail: dict[str, Any] | None, *, at: float | None = None
) -> dict[str, Any]:
    """An audit_log row."""
    return {
        "at": time.time() if at is None else at,
        "actor": actor.name[:100],
        "actor_role": actor.role,
        "on_behalf_of": actor.on_behalf_of,
        "action": action[:64],
        "target": target[:200] if target else None,
        "detail": detail or {},
    }


@dataclass(frozen=True, slots=True)
class AuditQuery:
    actor: str | None = None
    action: str | None = None
    target: str | None = None
    since: float | None = None
    until: float | None = None
    before_id: int | None = None
    limit: int = 100


class Audit:
    """One service's audit log: the table, the buffer of read entries and the pruning."""

    def __init__(self, database: Database, table: Table, *, flush_seconds: float = 1.0) -> None:
        self.database = database
        self.table = table
        self.flush_seconds = flush_seconds
        self._pending: list[dict[str, Any]] = []

    async def record(
        self,
        session: AsyncSession,
        *,
        actor: Actor,
        action: str,
        target: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Record a change in the caller's transaction (it is written with the change or not at all)."""
        await session.execute(insert(self.table), [entry(actor, action, target, detail)])

    def read(
        self, *, actor: Actor, action: str, target: str | None = None, detail: dict[str, Any] | None = None
    ) -> None:
        """Buffer a read entry (written within `flush_seconds`)."""
        self._pending.append(entry(actor, action, target, detail))

    async def flush(self) -> int:
        """Write the buffered entries, `CHUNK` per transaction: on SQLite a statement holds the
        event loop while it runs, so one big insert would stall every call for its duration."""
        written = 0
        while self._pending:
            rows, self._pending = self._pending[:CHUNK], self._pending[CHUNK:]
            try:
                async with self.database.transaction() as session:
                    await session.execute(insert(self.table), rows)
            except Exception:
                self._pending = rows + self._pending  # keep them for the next pass
                raise
            written += len(rows)
            await asyncio.sleep(0)  # let waiting calls run between chunks
        return written

    async def run(self) -> None:
        await every(self.flush_seconds, self.flush, log=log, failed="audit flush failed; retrying")

    async def prune(self, *, retention_days: int, now: float | None = None) -> int:
        """Delete the entries older than `retention_days`, but the record of an erasure (proof
        that it was done, naming no one but an id that leads nowhere); how many went."""
        cutoff = (time.time() if now is None else now) - retention_days * 86400.0
        async with self.database.transaction() as session:
            result = await session.execute(
                delete(self.table).where(self.table.c.at < cutoff, self.table.c.action.not_in(KEPT_ACTIONS))
            )
        return int(getattr(result, "rowcount", 0) or 0)

    async def run_pruning(self, *, retention_days: int, every_seconds: float = PRUNE_EVERY_SECONDS) -> None:
        while True:
            try:
                pruned = await self.prune(retention_days=retention_days)
                if pruned:
                    log.info("audit: %d entries older than %d days deleted", pruned, retention_days)
            except Exception:
                log.exception("audit prune failed; retrying")
            await asyncio.sleep(every_seconds)

    async def entries(self, session: AsyncSession, query: AuditQuery) -> list[dict[str, Any]]:
        """The entries matching `query`, newest first."""
        t = self.table
        stmt = select(t).order_by(t.c.id.desc()).limit(query.limit)
        for column, value in (
            (t.c.actor, query.actor),
            (t.c.action, query.action),
            (t.c.target, query.target),
        ):
            if value:
                stmt = stmt.where(column == value)
        if query.since is not None:
            stmt = stmt.where(t.c.at >= query.since)
        if query.until is not None:
            stmt = stmt.where(t.c.at < query.until)
        if query.before_id is not None:
            stmt = stmt.where(t.c.id < query.before_id)
        return [dict(row._mapping) for row in await session.execute(stmt)]

    async def targets(self, session: AsyncSession, targets: Sequence[str]) -> list[dict[str, Any]]:
        """Every entry about these targets, oldest first (a subject access export)."""
        t = self.table
        stmt = select(t).where(t.c.target.in_(list(targets))).order_by(t.c.at)
        return [dict(row._mapping) for row in await session.execute(stmt)]


def _instant(value: str | None, field: str) -> float | None:
    """An ISO 8601 date-time with an offset, a date (midnight UTC) or epoch seconds."""
    if value is None or value == "":
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds) or abs(seconds) > MAX_EPOCH_SECONDS:
            raise Invalid(
                f"'{field}' is out of range.",
                errors=[FieldError(f"query.{field}", "not a time this log holds")],
            )
        return seconds
    return query_instant(value, field, takes="epoch seconds, a date or a date-time with an offset")


_Name = Annotated[str | None, Query(min_length=1, max_length=200)]


def build_router() -> APIRouter:
    """`GET /v1/audit` over the service's own log (`app.state.audit`), for the audit.read
    permission (cx_admin) and the admin token."""
    router = APIRouter(tags=["audit"])

    @router.get("/v1/audit", responses={401: {}, 403: {}, 422: {}})
    async def audit_log(
        request: Request,
        caller: Annotated[Caller, Depends(require(Permission.AUDIT))],
        actor: _Name = None,
        action: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
        target: _Name = None,
        since: Annotated[str | None, Query(alias="from", max_length=40)] = None,
        until: Annotated[str | None, Query(alias="to", max_length=40)] = None,
        before_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,  # the id column is INTEGER
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> dict[str, Any]:
        """Entries newest first, filtered by actor (`staff:<id>`, `admin`), action, target
        (`customer:<id>`, …) and period; `before_id` pages on. Buffered reads are written first."""
        audit: Audit = request.app.state.audit
        query = AuditQuery(
            actor, action, target, _instant(since, "from"), _instant(until, "to"), before_id, limit
        )
        if query.since is not None and query.until is not None and query.until <= query.since:
            raise Invalid("'to' must be after 'from'.", errors=[FieldError("query.to", "before 'from'")])
        await audit.flush()
        async with audit.database.session() as session:
            return {"entries": await audit.entries(session, query)}

    return router


def install(
    app: FastAPI,
    *,
    settings: ServiceSettings,
    database: Database,
    revocations_table: Table,
    audit: Audit | Table,
    consume_revocations: bool = True,
) -> Identity:
    """Who may call the app and what it records: `app.state.identity` (staff tokens verified with
    the shared secret, the revocation list), `app.state.audit` and `GET /v1/audit`. The runtime
    starts what they run (the revocation consumer and refresh, the audit flush and pruning)."""
    revocations = Revocations(database, revocations_table, poll_seconds=settings.revocation_poll_seconds)
    identity = Identity(secret=settings.jwt_secret, admin_token=settings.admin_token, revocations=revocations)
    app.state.identity = identity
    app.state.consume_revocations = consume_revocations
    app.state.audit = audit if isinstance(audit, Audit) else Audit(database, audit)
    app.include_router(build_router())
    return identity
