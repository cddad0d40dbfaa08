"""Admin REST for the staff directory beyond stores and staff: weekly shifts, one-off overrides,
who is on duty now, and CSV import of staff (all rows or none, with per-row errors)."""

from __future__ import annotations

import asyncio
import csv
import io
import time
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from voc_notify import duty, service
from voc_notify.auth import hash_password
from voc_notify.models import Shift, ShiftOverride, Staff, Store
from voc_notify.schemas import OverrideIn, Role, ShiftIn
from voc_platform.db import Database
from voc_platform.http import Problem, SessionDep
from voc_platform.ids import uuid7

CSV_COLUMNS = ("id", "name", "email", "password", "role", "store_ids", "area_id", "language")
CSV_REQUIRED = frozenset({"id", "name", "email", "role"})


class StaffCsvRow(BaseModel):
    """One CSV row; the password may be blank for existing staff (their password is kept)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-.]+$")]
    name: Annotated[str, Field(min_length=1, max_length=100)]
    email: Annotated[str, Field(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
    password: Annotated[str, Field(min_length=8, max_length=200)] | None = None
    role: Role
    store_ids: list[Annotated[str, Field(min_length=1, max_length=64)]] = []
    area_id: Annotated[str, Field(max_length=64)] | None = None
    language: Annotated[str, Field(pattern="^(ko|en)$")] = "ko"


def shift_json(shift: Shift) -> dict[str, Any]:
    return {"id": shift.id, "weekday": shift.weekday, "starts": shift.starts, "ends": shift.ends}


def override_json(override: ShiftOverride) -> dict[str, Any]:
    return {
        "id": override.id,
        "starts_on": override.starts_on,
        "ends_on": override.ends_on,
        "on_duty": override.on_duty,
        "note": override.note,
        "created_at": override.created_at,
    }


async def _staff_or_404(session: AsyncSession, staff_id: str) -> Staff:
    staff = await session.get(Staff, staff_id)
    if staff is None:
        raise Problem(404, f"No staff member '{staff_id}'.")
    return staff


def parse_staff_csv(text: str) -> tuple[list[tuple[int, StaffCsvRow]], list[dict[str, Any]]]:
    """Rows and per-row errors (`row` is the line number in the file, the header being 1)."""
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff")))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = sorted(CSV_REQUIRED - set(header))
    unknown = sorted(set(header) - set(CSV_COLUMNS))
    if missing or unknown:
        header_errors: list[dict[str, Any]] = [
            {"row": 1, "field": c, "message": "required column is missing"} for c in missing
        ]
        header_errors += [{"row": 1, "field": c, "message": "unknown column"} for c in unknown]
        return [], header_errors
    reader.fieldnames = header
    rows: list[tuple[int, StaffCsvRow]] = []
    errors: list[dict[str, Any]] = []
    for record in reader:
        line = reader.line_num
        if None in record:
            errors.append({"row": line, "field": None, "message": "more values than columns"})
            continue
        values = {k: (v or "").strip() for k, v in record.items()}
        if not any(values.values()):
            continue  # a blank line
        data: dict[str, Any] = {k: v for k, v in values.items() if v != ""}
        data["store_ids"] = [p.strip() for p in values.get("store_ids", "").split(";") if p.strip()]
        try:
            rows.append((line, StaffCsvRow.model_validate(data)))
        except ValidationError as exc:
            for err in exc.errors():
                field = ".".join(str(p) for p in err["loc"]) or None
                errors.append({"row": line, "field": field, "message": err["msg"]})
    return rows, errors


def install(app: FastAPI, *, database: Database, require_admin: Callable[..., Any]) -> None:
    admin = [Depends(require_admin)]

    @app.get("/v1/admin/staff/{staff_id}/shifts", dependencies=admin)
    async def get_shifts(staff_id: str, session: SessionDep) -> dict[str, Any]:
        await _staff_or_404(session, staff_id)
        shifts = await session.scalars(
            select(Shift).where(Shift.staff_id == staff_id).order_by(Shift.weekday, Shift.starts)
        )
        overrides = await session.scalars(
            select(ShiftOverride)
            .where(ShiftOverride.staff_id == staff_id)
            .order_by(ShiftOverride.starts_on, ShiftOverride.created_at)
        )
        return {
            "staff_id": staff_id,
            "shifts": [shift_json(s) for s in shifts],
            "overrides": [override_json(o) for o in overrides],
        }

    @app.put("/v1/admin/staff/{staff_id}/shifts", dependencies=admin)
    async def put_shifts(
        staff_id: str, body: Annotated[list[ShiftIn], Field(max_length=100)]
    ) -> dict[str, Any]:
        """Replace the weekly pattern; an empty list means "always on duty" again."""
        async with database.transaction() as session:
            await _staff_or_404(session, staff_id)
            await session.execute(delete(Shift).where(Shift.staff_id == staff_id))
            rows = [
                Shift(id=uuid7(), staff_id=staff_id, weekday=item.weekday, starts=item.starts, ends=item.ends)
                for item in body
            ]
            session.add_all(rows)
        return {"staff_id": staff_id, "shifts": [shift_json(s) for s in rows]}

    @app.post("/v1/admin/staff/{staff_id}/overrides", dependencies=admin, status_code=201)
    async def add_override(staff_id: str, body: OverrideIn) -> dict[str, Any]:
        async with database.transaction() as session:
            await _staff_or_404(session, staff_id)
            row = ShiftOverride(
                id=uuid7(),
                staff_id=staff_id,
                starts_on=body.starts_on.isoformat(),
                ends_on=body.ends_on.isoformat(),
                on_duty=body.on_duty,
                note=body.note,
                created_at=time.time(),
            )
            session.add(row)
        return override_json(row)

    @app.delete("/v1/admin/staff/{staff_id}/overrides/{override_id}", dependencies=admin, status_code=204)
    async def remove_override(staff_id: str, override_id: str) -> Response:
        async with database.transaction() as session:
            row = await session.get(ShiftOverride, override_id)
            if row is None or row.staff_id != staff_id:
                raise Problem(404, f"No override '{override_id}' for '{staff_id}'.")
            await session.delete(row)
        return Response(status_code=204)

    @app.get("/v1/admin/stores/{store_id}/on-duty", dependencies=admin)
    async def on_duty_now(
        store_id: str,
        session: SessionDep,
        at: Annotated[float | None, Query(ge=0, le=4102444800, description="epoch seconds")] = None,
    ) -> dict[str, Any]:
        """Who routing would consider on duty at the store (now, or at `at`), and its quiet hours."""
        store = await session.get(Store, store_id)
        if store is None:
            raise Problem(404, f"No store '{store_id}'.")
        now = at if at is not None else time.time()
        staff = await service.store_staff(session, store=store)
        present = await service.on_duty_ids(session, staff=staff, timezone=store.timezone, now=now)
        return {
            "store_id": store.id,
            "local_time": duty.local_time(store.timezone, now).isoformat(timespec="minutes"),
            "on_duty": [{"id": s.id, "name": s.name, "role": s.role} for s in staff if s.id in present],
            "off_duty": [{"id": s.id, "name": s.name, "role": s.role} for s in staff if s.id not in present],
            "quiet_until": duty.quiet_until(
                quiet_start=store.quiet_start, quiet_end=store.quiet_end, timezone=store.timezone, now=now
            ),
        }

    @app.post("/v1/admin/staff:import", dependencies=admin)
    async def import_staff(request: Request) -> dict[str, Any]:
        """CSV (UTF-8) with a header row; store_ids separated by ";". All rows or none."""
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != "text/csv":
            raise Problem(415, "Send the staff list as text/csv.")
        try:
            text = (await request.body()).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Problem(400, "The CSV is not UTF-8.") from exc
        numbered, errors = parse_staff_csv(text)
        rows = [row for _, row in numbered]
        async with database.transaction() as session:
            existing = {
                s.id: s
                for s in await session.scalars(select(Staff).where(Staff.id.in_([r.id for r in rows])))
            }
            owners = {
                email: sid
                for email, sid in (
                    await session.execute(
                        select(Staff.email, Staff.id).where(Staff.email.in_([r.email.lower() for r in rows]))
                    )
                ).all()
            }
            seen_ids: set[str] = set()
            seen_emails: set[str] = set()
            for line, row in numbered:
                email = row.email.lower()
                if row.id in seen_ids:
                    errors.append({"row": line, "field": "id", "message": f"'{row.id}' appears twice"})
                if email in seen_emails:
                    errors.append({"row": line, "field": "email", "message": f"'{email}' appears twice"})
                if owners.get(email, row.id) != row.id:
                    errors.append({"row": line, "field": "email", "message": "used by another staff member"})
                if row.password is None and row.id not in existing:
                    errors.append({"row": line, "field": "password", "message": "required for new staff"})
                seen_ids.add(row.id)
                seen_emails.add(email)
            if errors:
                raise Problem(
                    422,
                    f"{len(errors)} problem(s) in the CSV; nothing was imported.",
                    errors=sorted(errors, key=lambda e: e["row"]),
                )
            if not rows:
                raise Problem(422, "The CSV has no staff rows.")
            # argon2 is deliberately slow: hash off the event loop.
            hashes = await asyncio.to_thread(
                lambda: [hash_password(r.password) if r.password else None for r in rows]
            )
            created = 0
            for row, password_hash in zip(rows, hashes, strict=True):
                fields = {
                    "name": row.name,
                    "email": row.email.lower(),
                    "role": row.role,
                    "store_ids": row.store_ids,
                    "area_id": row.area_id,
                    "language": row.language,
                }
                staff = existing.get(row.id)
                if staff is None:
                    assert password_hash is not None  # checked above: new staff need a password
                    session.add(
                        Staff(
                            id=row.id,
                            **fields,
                            password_hash=password_hash,
                            active=True,
                            failed_logins=0,
                            locked_until=0.0,
                        )
                    )
                    created += 1
                else:
                    for key, value in fields.items():
                        setattr(staff, key, value)
                    if password_hash is not None:
                        staff.password_hash = password_hash
        return {"imported": len(rows), "created": created, "updated": len(rows) - created}
