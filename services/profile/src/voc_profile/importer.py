"""Bulk import of CRM customers and POS visits (CSV or JSON Lines, read by `voc_profile.uploads`).

Rows are written in batches, one transaction each. Each row is validated and either written
whole or reported with its line number; valid rows are kept. Upserts are idempotent: importing
the same file twice changes nothing the second time.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any, Generic, NamedTuple, TypeVar, cast

from pydantic import BaseModel, ValidationError
from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from voc_platform.db import Database
from voc_platform.identity import Actor
from voc_platform.ids import uuid7
from voc_platform.moments import event_time_problem
from voc_profile import audit, crm, signals
from voc_profile.identity import InvalidIdentifier, normalize
from voc_profile.models import Customer, CustomerSignals, Identifier, Visit
from voc_profile.schemas import CustomerIn, VisitIn
from voc_profile.sessions import in_session
from voc_profile.settings import Settings
from voc_profile.uploads import Format, Row, batches, checked_rows

S = TypeVar("S", bound=BaseModel)
T = TypeVar("T")

MAX_REPORTED_ERRORS = 1000


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    field: str | None
    message: str


@dataclass
class ImportReport:
    import_id: str
    kind: str
    rows: int = 0
    created: int = 0
    updated: int = 0
    inserted: int = 0
    unchanged: int = 0
    duplicates: int = 0
    failed: int = 0
    errors: list[RowError] = field(default_factory=list)
    seconds: float = 0.0

    def error(
        self, line: int, message: str, field_name: str | None = None, *, duplicate: bool = False
    ) -> None:
        if duplicate:
            self.duplicates += 1
        else:
            self.failed += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(RowError(line, field_name, message))

    def counts(self) -> tuple[int, int, int, int, int, int, int]:
        """What `restore` puts back: the counters and how many errors were reported."""
        return (
            self.created,
            self.updated,
            self.inserted,
            self.unchanged,
            self.duplicates,
            self.failed,
            len(self.errors),
        )

    def restore(self, counts: tuple[int, int, int, int, int, int, int]) -> None:
        """Forget what was counted since `counts()` (a batch that rolled back)."""
        *values, errors = counts
        self.created, self.updated, self.inserted, self.unchanged, self.duplicates, self.failed = values
        del self.errors[errors:]

    def to_dict(self, *, with_errors: bool = True) -> dict[str, Any]:
        body: dict[str, Any] = {
            "import_id": self.import_id,
            "kind": self.kind,
            "rows": self.rows,
            "duplicates": self.duplicates,
            "failed": self.failed,
            "errors": [{"line": e.line, "field": e.field, "message": e.message} for e in self.errors],
            "errors_truncated": self.failed + self.duplicates > len(self.errors),
            "seconds": round(self.seconds, 3),
        }
        if not with_errors:
            del body["errors"]
        if self.kind == "customers":
            body.update(created=self.created, updated=self.updated)
        else:
            body.update(inserted=self.inserted, unchanged=self.unchanged)
        return body


class _Refused(Exception):
    """A row refused for a reason of its own (not its schema, not a malformed identifier)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class _Importer(Generic[S, T]):
    """One kind of import: the schema of its rows (whose fields are the file's columns), what a
    valid row becomes (`make`: it may refuse it) and how a batch of those is written."""

    kind: str
    schema: type[S]
    make: Callable[[int, S, Settings], T]
    write: Callable[[Database, list[T], ImportReport, Settings, Actor], Awaitable[None]]

    async def __call__(
        self, database: Database, *, spooled: IO[bytes], fmt: Format, settings: Settings, actor: Actor
    ) -> ImportReport:
        """Read the file, check each row, write the good ones a batch at a time; then the import
        in the audit log (its counts, not its rows)."""
        started = time.perf_counter()
        report = ImportReport(import_id=uuid7(), kind=self.kind)
        rows = await checked_rows(spooled, fmt=fmt, columns=frozenset(self.schema.model_fields))
        for batch in batches(rows, settings.import_batch_size):
            good = [checked for row in batch if (checked := self._checked(row, report, settings)) is not None]
            if good:
                await self.write(database, good, report, settings, actor)
        async with database.transaction() as session:
            detail = report.to_dict(with_errors=False)
            await audit.record(
                session, actor=actor, action=f"import_{self.kind}", customer_id=None, detail=detail
            )
        report.seconds = time.perf_counter() - started
        return report

    def _checked(self, row: Row, report: ImportReport, settings: Settings) -> T | None:
        """The row validated and made, or None with its problem reported."""
        line, raw = row
        report.rows += 1
        if isinstance(raw, str):
            report.error(line, raw)
            return None
        try:
            return self.make(line, self.schema.model_validate(raw), settings)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or None
            report.error(line, first.get("msg", "invalid"), where)
        except InvalidIdentifier as exc:
            report.error(line, str(exc), exc.field)
        except _Refused as exc:
            report.error(line, str(exc), exc.field)
        return None


# ---------------------------------------------------------------------------------------------
# Customers


class _CustomerRow(NamedTuple):
    line: int
    item: CustomerIn
    identifiers: list[tuple[str, str]]


def _customer_row(line: int, item: CustomerIn, settings: Settings) -> _CustomerRow:
    identifiers = crm.identifiers_of(item, region=settings.default_region)
    if not identifiers:
        raise _Refused("identifiers", "a customer needs loyalty_id, phone, email or app_user_id")
    return _CustomerRow(line, item, identifiers)


async def _write_customers(
    database: Database, rows: list[_CustomerRow], report: ImportReport, settings: Settings, actor: Actor
) -> None:
    counted = report.counts()
    try:
        async with database.transaction() as session:
            await _write_customer_batch(session, rows, report)
    except IntegrityError:
        # A concurrent writer (an event, another import) attached one of these identifiers
        # meanwhile: redo this batch row by row, which resolves against the committed state,
        # counting only that (the rolled-back batch had counted its rows already).
        report.restore(counted)
        await _write_customer_rows(database, rows, report)


#: Create or update customers by their identifiers, a batch per transaction.
import_customers = _Importer("customers", CustomerIn, _customer_row, _write_customers)


async def _known(session: AsyncSession, identifiers: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """(kind, value) -> customer id for the identifiers of a batch already on file: one query
    for the whole batch."""
    if not identifiers:
        return {}
    rows = await session.execute(
        select(Identifier.kind, Identifier.value, Identifier.customer_id).where(
            Identifier.kind.in_(sorted({k for k, _ in identifiers})),
            Identifier.value.in_(sorted({v for _, v in identifiers})),
        )
    )
    wanted = set(identifiers)
    return {(r.kind, r.value): r.customer_id for r in rows if (r.kind, r.value) in wanted}


@dataclass
class _CustomerWrites:
    """What one batch writes: statement parameters of its inserts and updates."""

    customers: list[dict[str, Any]] = field(default_factory=list)
    identifiers: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)


async def _write_customer_batch(
    session: AsyncSession, rows: list[_CustomerRow], report: ImportReport
) -> None:
    known = await _known(session, [i for r in rows for i in r.identifiers])
    imported_by: dict[str, str | None] = {}
    if owners := set(known.values()):
        found = await session.execute(select(Customer.id, Customer.import_id).where(Customer.id.in_(owners)))
        imported_by = {r.id: r.import_id for r in found}
    now = time.time()
    writes = _plan_customer_batch(rows, known, imported_by, report, now=now)
    if writes.customers:
        await session.execute(insert(Customer), writes.customers)
    if writes.updates:
        table = cast(Table, Customer.__table__)
        values: dict[str, Any] = {k: func.coalesce(bindparam(f"b_{k}"), table.c[k]) for k in crm.CRM_FIELDS}
        values.update(updated_at=now, import_id=report.import_id)
        stmt = update(table).where(table.c.id == bindparam("b_id")).values(**values)
        await session.execute(stmt, writes.updates)
    if writes.identifiers:
        await session.execute(insert(Identifier), writes.identifiers)


def _plan_customer_batch(
    rows: list[_CustomerRow],
    known: dict[tuple[str, str], str],
    imported_by: dict[str, str | None],
    report: ImportReport,
    *,
    now: float,
) -> _CustomerWrites:
    """Each row: a duplicate (same identifier, or same customer, earlier in the file), a
    conflict (identifiers of different customers), an update or a new customer."""
    writes = _CustomerWrites()
    seen_in_batch: dict[tuple[str, str], int] = {}
    updated_ids: set[str] = set()
    for row in rows:
        earlier = next((seen_in_batch[i] for i in row.identifiers if i in seen_in_batch), None)
        if earlier is not None:
            report.error(row.line, f"duplicate of line {earlier} (same identifier)", duplicate=True)
            continue
        matched = {known[i] for i in row.identifiers if i in known}
        if len(matched) > 1:
            report.error(
                row.line, "these identifiers belong to different customers; merge them first", "identifiers"
            )
            continue
        if matched:
            customer_id = matched.pop()
            if imported_by.get(customer_id) == report.import_id or customer_id in updated_ids:
                report.error(
                    row.line, "duplicate of an earlier row of this file (same customer)", duplicate=True
                )
                continue
            writes.updates.append(
                {"b_id": customer_id, **{f"b_{k}": getattr(row.item, k) for k in crm.CRM_FIELDS}}
            )
            updated_ids.add(customer_id)
            report.updated += 1
        else:
            customer_id = uuid7()
            writes.customers.append(_new_customer(customer_id, row.item, import_id=report.import_id, now=now))
            report.created += 1
        for ident in row.identifiers:
            seen_in_batch[ident] = row.line
            if ident not in known:
                writes.identifiers.append({"kind": ident[0], "value": ident[1], "customer_id": customer_id})
    return writes


def _new_customer(customer_id: str, item: CustomerIn, *, import_id: str, now: float) -> dict[str, Any]:
    return {
        "id": customer_id,
        "name": item.name,
        "tier": item.tier or "basic",
        "lifetime_value": item.lifetime_value if item.lifetime_value is not None else 0.0,
        "preferred_language": item.preferred_language,
        "home_store_id": item.home_store_id,
        "contact_consent": item.contact_consent,
        "household_id": item.household_id,
        "household_relation": item.household_relation,
        "attributes": {},
        "import_id": import_id,
        "created_at": now,
        "updated_at": now,
    }


async def _write_customer_rows(database: Database, rows: list[_CustomerRow], report: ImportReport) -> None:
    """Each row as a batch of its own, by the batch's rules: a row that repeats an earlier row of
    the file is a duplicate here too (its customer carries this import's id once committed)."""
    for row in rows:
        counted = report.counts()
        try:
            async with database.transaction() as session:
                await _write_customer_batch(session, [row], report)
        except IntegrityError:
            report.restore(counted)
            report.error(
                row.line, "another writer changed this customer's identifiers meanwhile; import it again"
            )


# ---------------------------------------------------------------------------------------------
# Visits


def parse_time(value: str | float | int) -> float:
    """Epoch seconds, or ISO 8601 with a time zone (a POS clock without one is ambiguous), of a
    real moment (`voc_platform.moments`)."""
    epoch = _epoch(value)
    if (problem := event_time_problem(epoch)) is not None:
        raise ValueError(f"visited_at {problem}")
    return epoch


def _epoch(value: str | float | int) -> float:
    if isinstance(value, int | float):
        return float(value)
    text = value.strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:  # its own message is Python's ("offset must be a timedelta strictly ...")
        raise ValueError(
            "visited_at is not an ISO 8601 date-time with a valid offset (e.g. 2025-03-01T12:30:00+09:00)"
        ) from None
    if moment.tzinfo is None:
        raise ValueError("visited_at needs a time zone (e.g. 2025-03-01T12:30:00+09:00)")
    return moment.timestamp()


class _VisitRow(NamedTuple):
    line: int
    item: VisitIn
    visited_at: float
    identifiers: list[tuple[str, str]]


def _visit_row(line: int, item: VisitIn, settings: Settings) -> _VisitRow:
    try:
        visited_at = parse_time(item.visited_at)
    except ValueError as exc:
        raise _Refused("visited_at", str(exc)) from None
    identifiers = normalize(
        loyalty_id=item.loyalty_id or "",
        phone=item.phone or "",
        email=item.email or "",
        region=settings.default_region,
    )
    if not item.customer_id and not identifiers:
        raise _Refused("customer", "a visit needs customer_id, loyalty_id, phone or email")
    return _VisitRow(line, item, visited_at, identifiers)


async def _write_visits(
    database: Database, rows: list[_VisitRow], report: ImportReport, settings: Settings, actor: Actor
) -> None:
    async with database.transaction() as session:
        await _write_visit_batch(session, rows, report, settings=settings)


#: Add POS visits to their customers (by id or identifier), a batch per transaction.
import_visits = _Importer("visits", VisitIn, _visit_row, _write_visits)


async def _write_visit_batch(
    session: AsyncSession, rows: list[_VisitRow], report: ImportReport, *, settings: Settings
) -> None:
    values = await _owned_visits(session, rows, report)
    if not values:
        return
    dialect = (await session.connection()).dialect.name
    builder = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = builder(Visit).on_conflict_do_nothing(index_elements=["customer_id", "store_id", "visited_at"])
    customers = {v["customer_id"] for v in values}
    # The rows this statement inserted (a row another import committed meanwhile is not one):
    # counting the table before and after took that commit for ours on PostgreSQL.
    inserted = len((await session.execute(stmt.returning(Visit.customer_id), values)).all())
    report.inserted += inserted
    report.unchanged += len(values) - inserted
    # A visit after a stated revisit intent clears churn risk: recompute only those customers.
    pending = await session.scalars(
        select(CustomerSignals.customer_id).where(
            CustomerSignals.customer_id.in_(customers), CustomerSignals.pending_intent_at.is_not(None)
        )
    )
    for customer_id in list(pending):
        await in_session(session, signals.refresh, customer_id=customer_id, settings=settings)


async def _owned_visits(
    session: AsyncSession, rows: list[_VisitRow], report: ImportReport
) -> list[dict[str, Any]]:
    """The insert parameters of the rows whose customer is known (one, on file, not erased);
    the others, and repeats within the batch, reported."""
    known = await _known(session, [i for row in rows for i in row.identifiers])
    direct = {row.item.customer_id for row in rows if row.item.customer_id}
    existing: set[str] = set()
    if direct:
        existing = set(
            await session.scalars(
                select(Customer.id).where(Customer.id.in_(direct), Customer.erased_at.is_(None))
            )
        )
    values: list[dict[str, Any]] = []
    seen: dict[tuple[str, str, float], int] = {}
    for line, item, visited_at, identifiers in rows:
        owners = {known[i] for i in identifiers if i in known}
        if item.customer_id:
            if item.customer_id not in existing:
                report.error(line, f"no customer '{item.customer_id}'", "customer_id")
                continue
            owners.add(item.customer_id)
        if not owners:
            report.error(line, "no customer with these identifiers", "customer")
            continue
        if len(owners) > 1:
            report.error(line, "these identifiers belong to different customers", "customer")
            continue
        key = (owners.pop(), item.store_id, visited_at)
        if key in seen:
            report.error(line, f"duplicate of line {seen[key]}", duplicate=True)
            continue
        seen[key] = line
        values.append(
            {"customer_id": key[0], "store_id": key[1], "visited_at": key[2], "amount": item.amount}
        )
    return values
