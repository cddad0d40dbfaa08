"""Bulk import of CRM customers and POS visits: CSV or JSON Lines, streamed.

Nothing is half-imported. The upload is spooled (memory up to 1 MiB, then a temporary file)
while its size is checked and its bytes are checked as UTF-8, so an oversized file or one that
is not text is refused before a single row is written. A structural pass over the spooled file
(the C csv reader, or one bounded read per JSON line) then finds what makes the whole file
unreadable — an unclosed quote, a field over the csv limit, a JSON line over `MAX_LINE_CHARS` —
and refuses it, naming the line, still before any write. Only then are the rows parsed line by
line and written in batches, one transaction each: memory stays flat whatever the file size.
Each row is validated and either written whole or reported with its line number; valid rows
are kept. Upserts are idempotent: importing the same file twice changes nothing the second time.
"""

from __future__ import annotations

import asyncio
import codecs
import csv
import io
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any, Literal, cast

import orjson
from pydantic import ValidationError
from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from voc_platform.db import Database
from voc_platform.ids import uuid7
from voc_profile import service
from voc_profile.identity import InvalidIdentifier, normalize
from voc_profile.models import Customer, CustomerSignals, Identifier, Visit
from voc_profile.schemas import CustomerIn, VisitIn
from voc_profile.settings import Settings

Format = Literal["csv", "jsonl"]
MAX_REPORTED_ERRORS = 1000
# The longest JSON line read (a customer is well under 2,000 characters); a CSV field is bounded
# by the csv module's limit (`csv.field_size_limit()`, 131,072 characters).
MAX_LINE_CHARS = 128 * 1024
CUSTOMER_COLUMNS = frozenset(CustomerIn.model_fields)
VISIT_COLUMNS = frozenset(VisitIn.model_fields)


class ImportRejected(ValueError):
    """The file as a whole is unusable (too large, wrong header, not text, not parseable):
    nothing written. `line` is the line it went wrong on, when there is one."""

    def __init__(
        self,
        status: int,
        message: str,
        errors: list[dict[str, Any]] | None = None,
        *,
        line: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.errors = errors or []
        self.line = line


def _unreadable(line: int, message: str) -> ImportRejected:
    return ImportRejected(
        400,
        f"Line {line}: {message}; nothing was imported.",
        [{"line": line, "field": None, "message": message}],
        line=line,
    )


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
    errors: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def error(
        self, line: int, message: str, field_name: str | None = None, *, duplicate: bool = False
    ) -> None:
        if duplicate:
            self.duplicates += 1
        else:
            self.failed += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append({"line": line, "field": field_name, "message": message})

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "import_id": self.import_id,
            "kind": self.kind,
            "rows": self.rows,
            "duplicates": self.duplicates,
            "failed": self.failed,
            "errors": self.errors,
            "errors_truncated": self.failed + self.duplicates > len(self.errors),
            "seconds": round(self.seconds, 3),
        }
        if self.kind == "customers":
            body.update(created=self.created, updated=self.updated)
        else:
            body.update(inserted=self.inserted, unchanged=self.unchanged)
        return body


async def spool(chunks: AsyncIterator[bytes], *, max_bytes: int) -> IO[bytes]:
    """The upload in a spooled temporary file; ImportRejected past `max_bytes` (413) or at the
    first byte that is not UTF-8 (400, naming its line), before anything is imported."""
    spooled = cast(IO[bytes], tempfile.SpooledTemporaryFile(max_size=1024 * 1024))  # noqa: SIM115
    decoder = codecs.getincrementaldecoder("utf-8")()
    size = newlines = 0
    try:
        async for chunk in chunks:
            size += len(chunk)
            if size > max_bytes:
                raise ImportRejected(413, f"The file exceeds {max_bytes} bytes; nothing was imported.")
            _check_utf8(decoder, chunk, newlines=newlines, offset=size - len(chunk))
            newlines += chunk.count(b"\n")
            spooled.write(chunk)
        _check_utf8(decoder, b"", newlines=newlines, offset=size, final=True)
        if size == 0:
            raise ImportRejected(422, "The file is empty.")
    except BaseException:
        spooled.close()
        raise
    spooled.seek(0)
    return spooled


def _check_utf8(
    decoder: codecs.IncrementalDecoder, chunk: bytes, *, newlines: int, offset: int, final: bool = False
) -> None:
    """Feed `chunk` (which starts at byte `offset` after `newlines` line ends) to the decoder."""
    pending = decoder.getstate()[0]  # an incomplete character from the last chunk
    try:
        decoder.decode(chunk, final)
    except UnicodeDecodeError as exc:
        data = pending + chunk
        line = newlines + data.count(b"\n", 0, exc.start) + 1
        at = offset - len(pending) + exc.start
        raise _unreadable(line, f"not UTF-8 text (byte {at} of the file: {exc.reason})") from None


def _not_text(exc: UnicodeDecodeError) -> ImportRejected:
    return ImportRejected(400, f"The file is not UTF-8 text ({exc.reason}); nothing was imported.")


def check_structure(spooled: IO[bytes], *, fmt: Format, columns: frozenset[str]) -> None:
    """Read the whole spooled file as `rows_of` will, without validating or writing a row:
    ImportRejected for anything that makes the file as a whole unreadable (header, encoding, an
    unclosed quote, an oversized field or line). Leaves the file at its start."""
    text = io.TextIOWrapper(spooled, encoding="utf-8-sig", errors="strict", newline="")
    try:
        if fmt == "csv":
            records = _csv_records(text)
            _csv_header(next(records, None), columns)
            for _ in records:
                pass
        else:
            for _ in _json_lines(text):
                pass
    except UnicodeDecodeError as exc:  # spool() checks the bytes; this is for other callers
        raise _not_text(exc) from exc
    finally:
        text.detach()
        spooled.seek(0)


def _csv_records(text: IO[str]) -> Iterator[tuple[int, list[str]]]:
    """(the line a record starts on, its fields); ImportRejected where the csv reader cannot go on.
    Strict: an unclosed quote at the end of the file is an error, not the rest of the file read
    as one field."""
    reader = csv.reader(text, strict=True)
    while True:
        start = reader.line_num + 1
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            message = str(exc)
            if message == "unexpected end of data":
                message = "a quoted field starts on this line and is never closed"
            elif message.startswith("field larger than field limit"):
                message = f"a field is longer than {csv.field_size_limit()} characters"
            else:
                message = f"not readable as CSV ({message})"
            raise _unreadable(start, message) from None
        yield start, values


def _csv_header(first: tuple[int, list[str]] | None, columns: frozenset[str]) -> list[str]:
    if first is None:
        raise ImportRejected(422, "The file is empty.")
    header = [h.strip() for h in first[1]]
    unknown = [h for h in header if h not in columns]
    if unknown or not header or len(set(header)) != len(header):
        raise ImportRejected(
            422,
            "The CSV header has unknown or repeated columns; nothing was imported.",
            [{"field": h, "message": f"unknown column; expected some of {sorted(columns)}"} for h in unknown]
            or [{"field": "header", "message": "repeated column"}],
        )
    return header


def _json_lines(text: IO[str]) -> Iterator[tuple[int, str]]:
    """(line number, line) of the non-blank lines, each read with a bound: a line longer than
    MAX_LINE_CHARS is ImportRejected without being held in memory."""
    number = 0
    # Two more than the limit: a line of exactly the limit and its CR LF is read whole.
    while line := text.readline(MAX_LINE_CHARS + 2):
        number += 1
        if len(line) > MAX_LINE_CHARS and len(line.rstrip("\r\n")) > MAX_LINE_CHARS:
            raise _unreadable(number, f"the line is longer than {MAX_LINE_CHARS} characters")
        if line.strip():
            yield number, line


def rows_of(
    spooled: IO[bytes], *, fmt: Format, columns: frozenset[str]
) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line number, row) pairs; a row that cannot be read at all is its error message. A CSV
    row's line is the line it starts on (a quoted field may span lines)."""
    text = io.TextIOWrapper(spooled, encoding="utf-8-sig", errors="strict", newline="")
    try:
        if fmt == "csv":
            records = _csv_records(text)
            header = _csv_header(next(records, None), columns)
            for line, values in records:
                if not any(v.strip() for v in values):
                    continue
                if len(values) != len(header):
                    yield line, f"expected {len(header)} fields, found {len(values)}"
                    continue
                yield line, {h: v.strip() for h, v in zip(header, values, strict=True) if v.strip()}
        else:
            for number, json_line in _json_lines(text):
                try:
                    value = orjson.loads(json_line)
                except orjson.JSONDecodeError as exc:
                    yield number, f"not valid JSON: {exc}"
                    continue
                if not isinstance(value, dict):
                    yield number, "each line must be a JSON object"
                    continue
                yield number, value
    except UnicodeDecodeError as exc:
        raise _not_text(exc) from exc
    finally:
        text.detach()


async def checked_rows(
    spooled: IO[bytes], *, fmt: Format, columns: frozenset[str]
) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """`rows_of`, once the structural pass found the whole file readable. The pass runs in a
    thread: a large file is read at C speed without holding up the event loop."""
    await asyncio.to_thread(check_structure, spooled, fmt=fmt, columns=columns)
    return rows_of(spooled, fmt=fmt, columns=columns)


def _validation_message(exc: ValidationError) -> tuple[str | None, str]:
    first = exc.errors()[0]
    loc = ".".join(str(p) for p in first.get("loc", ())) or None
    return loc, first.get("msg", "invalid")


def _batches(
    rows: Iterator[tuple[int, dict[str, Any] | str]], size: int
) -> Iterator[list[tuple[int, dict[str, Any] | str]]]:
    batch: list[tuple[int, dict[str, Any] | str]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


# ---------------------------------------------------------------------------------------------
# Customers


@dataclass
class _CustomerRow:
    line: int
    data: dict[str, Any]
    identifiers: list[tuple[str, str]]


async def import_customers(
    database: Database, spooled: IO[bytes], *, fmt: Format, settings: Settings, actor: str
) -> ImportReport:
    started = time.perf_counter()
    report = ImportReport(import_id=uuid7(), kind="customers")
    rows = await checked_rows(spooled, fmt=fmt, columns=CUSTOMER_COLUMNS)
    for batch in _batches(rows, settings.import_batch_size):
        valid: list[_CustomerRow] = []
        for line, raw in batch:
            report.rows += 1
            if isinstance(raw, str):
                report.error(line, raw)
                continue
            try:
                item = CustomerIn.model_validate(raw)
                data = item.model_dump(exclude_none=True)
                identifiers = normalize(
                    loyalty_id=item.loyalty_id or "",
                    phone=item.phone or "",
                    email=item.email or "",
                    channel_user_id=item.app_user_id or "",
                    channel="app" if item.app_user_id else "",
                    region=settings.default_region,
                )
            except ValidationError as exc:
                loc, msg = _validation_message(exc)
                report.error(line, msg, loc)
                continue
            except InvalidIdentifier as exc:
                report.error(line, str(exc), exc.field)
                continue
            if not identifiers:
                report.error(line, "a customer needs loyalty_id, phone, email or app_user_id", "identifiers")
                continue
            valid.append(_CustomerRow(line, data, identifiers))
        if valid:
            try:
                async with database.transaction() as session:
                    await _write_customer_batch(session, valid, report)
            except IntegrityError:
                # A concurrent writer (an event) attached one of these identifiers meanwhile:
                # redo this batch row by row, which resolves against the committed state.
                await _write_customer_rows(database, valid, report, settings=settings, actor=actor)
    async with database.transaction() as session:
        await service.audit(
            session,
            actor=actor,
            action="import_customers",
            customer_id=None,
            detail={k: v for k, v in report.to_dict().items() if k not in ("errors",)},
        )
    report.seconds = time.perf_counter() - started
    return report


async def _write_customer_batch(session: Any, rows: list[_CustomerRow], report: ImportReport) -> None:
    all_ids = [i for r in rows for i in r.identifiers]
    known = await service.known_customers(session, identifiers=all_ids)
    owners = set(known.values())
    imported_by: dict[str, str | None] = {}
    if owners:
        imported_by = dict(
            (
                await session.execute(select(Customer.id, Customer.import_id).where(Customer.id.in_(owners)))
            ).all()
        )
    seen_in_batch: dict[tuple[str, str], int] = {}
    now = time.time()
    new_customers: list[dict[str, Any]] = []
    new_identifiers: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    updated_ids: set[str] = set()
    for row in rows:
        earlier = next((seen_in_batch[i] for i in row.identifiers if i in seen_in_batch), None)
        if earlier is not None:
            report.error(row.line, f"duplicate of line {earlier} (same identifier)", duplicate=True)
            continue
        matched = {known[i] for i in row.identifiers if i in known}
        if len(matched) > 1:
            report.error(
                row.line,
                "these identifiers belong to different customers; merge them first",
                "identifiers",
            )
            continue
        if matched:
            customer_id = matched.pop()
            if imported_by.get(customer_id) == report.import_id or customer_id in updated_ids:
                report.error(
                    row.line, "duplicate of an earlier row of this file (same customer)", duplicate=True
                )
                continue
            updates.append({"b_id": customer_id, **{f"b_{k}": row.data.get(k) for k in service.CRM_FIELDS}})
            updated_ids.add(customer_id)
            report.updated += 1
        else:
            customer_id = uuid7()
            new_customers.append(
                {
                    "id": customer_id,
                    "name": row.data.get("name"),
                    "tier": row.data.get("tier", "basic"),
                    "lifetime_value": row.data.get("lifetime_value", 0.0),
                    "preferred_language": row.data.get("preferred_language"),
                    "home_store_id": row.data.get("home_store_id"),
                    "contact_consent": row.data.get("contact_consent", False),
                    "household_id": row.data.get("household_id"),
                    "household_relation": row.data.get("household_relation"),
                    "attributes": {},
                    "import_id": report.import_id,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            report.created += 1
        for ident in row.identifiers:
            seen_in_batch[ident] = row.line
            if ident not in known:
                new_identifiers.append({"kind": ident[0], "value": ident[1], "customer_id": customer_id})
    if new_customers:
        await session.execute(insert(Customer), new_customers)
    if updates:
        table = cast(Table, Customer.__table__)
        values: dict[str, Any] = {
            k: func.coalesce(bindparam(f"b_{k}"), table.c[k]) for k in service.CRM_FIELDS
        }
        values["updated_at"] = now
        values["import_id"] = report.import_id
        stmt = update(table).where(table.c.id == bindparam("b_id")).values(**values)
        await session.execute(stmt, updates)
    if new_identifiers:
        await session.execute(insert(Identifier), new_identifiers)


async def _write_customer_rows(
    database: Database, rows: list[_CustomerRow], report: ImportReport, *, settings: Settings, actor: str
) -> None:
    for row in rows:
        try:
            async with database.transaction() as session:
                _, created = await service.upsert_customer(
                    session, data=row.data, region=settings.default_region, actor=actor
                )
                report.created += int(created)
                report.updated += int(not created)
        except (ValueError, IntegrityError) as exc:
            report.error(row.line, str(exc).splitlines()[0])


# ---------------------------------------------------------------------------------------------
# Visits


def parse_time(value: str | float | int) -> float:
    """Epoch seconds, or ISO 8601 with a time zone (a POS clock without one is ambiguous)."""
    if isinstance(value, int | float):
        return float(value)
    text = value.strip()
    try:
        return float(text)
    except ValueError:
        pass
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("visited_at needs a time zone (e.g. 2025-03-01T12:30:00+09:00)")
    return moment.timestamp()


async def import_visits(
    database: Database, spooled: IO[bytes], *, fmt: Format, settings: Settings, actor: str
) -> ImportReport:
    started = time.perf_counter()
    report = ImportReport(import_id=uuid7(), kind="visits")
    rows = await checked_rows(spooled, fmt=fmt, columns=VISIT_COLUMNS)
    for batch in _batches(rows, settings.import_batch_size):
        parsed: list[tuple[int, VisitIn, float, list[tuple[str, str]]]] = []
        for line, raw in batch:
            report.rows += 1
            if isinstance(raw, str):
                report.error(line, raw)
                continue
            try:
                item = VisitIn.model_validate(raw)
                visited_at = parse_time(item.visited_at)
                identifiers = normalize(
                    loyalty_id=item.loyalty_id or "",
                    phone=item.phone or "",
                    email=item.email or "",
                    region=settings.default_region,
                )
            except ValidationError as exc:
                loc, msg = _validation_message(exc)
                report.error(line, msg, loc)
                continue
            except InvalidIdentifier as exc:
                report.error(line, str(exc), exc.field)
                continue
            except ValueError as exc:
                report.error(line, str(exc), "visited_at")
                continue
            if not item.customer_id and not identifiers:
                report.error(line, "a visit needs customer_id, loyalty_id, phone or email", "customer")
                continue
            parsed.append((line, item, visited_at, identifiers))
        if parsed:
            async with database.transaction() as session:
                await _write_visit_batch(session, parsed, report, settings=settings)
    async with database.transaction() as session:
        await service.audit(
            session,
            actor=actor,
            action="import_visits",
            customer_id=None,
            detail={k: v for k, v in report.to_dict().items() if k not in ("errors",)},
        )
    report.seconds = time.perf_counter() - started
    return report


async def _write_visit_batch(
    session: Any,
    rows: list[tuple[int, VisitIn, float, list[tuple[str, str]]]],
    report: ImportReport,
    *,
    settings: Settings,
) -> None:
    known = await service.known_customers(session, identifiers=[i for _, _, _, ids in rows for i in ids])
    direct = {item.customer_id for _, item, _, _ in rows if item.customer_id}
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
    if not values:
        return
    dialect = session.bind.dialect.name
    builder = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = builder(Visit).on_conflict_do_nothing(index_elements=["customer_id", "store_id", "visited_at"])
    customers = {v["customer_id"] for v in values}
    counted = select(func.count()).select_from(Visit).where(Visit.customer_id.in_(customers))
    before = await session.scalar(counted)
    await session.execute(stmt, values)
    after = await session.scalar(counted)
    inserted = int(after or 0) - int(before or 0)
    report.inserted += inserted
    report.unchanged += len(values) - inserted
    # A visit after a stated revisit intent clears churn risk: recompute only those customers.
    pending = await session.scalars(
        select(CustomerSignals.customer_id).where(
            CustomerSignals.customer_id.in_(customers), CustomerSignals.pending_intent_at.is_not(None)
        )
    )
    for customer_id in list(pending):
        await service.refresh_signals(session, customer_id=customer_id, settings=settings)
