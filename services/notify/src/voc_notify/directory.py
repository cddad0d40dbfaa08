"""The staff directory, kept by admins: stores, staff, weekly shifts, one-off overrides, who is
on duty now, and CSV import of staff (all rows or none, with per-row errors).

One module (~550 lines): the import, the edits and the duty rules share the directory's
validation and its sessions-revoked rule (a change of role or stores ends the person's sessions)."""

from __future__ import annotations

import asyncio
import io
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, NoReturn

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import Text, cast, delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from voc_notify import duty, routing
from voc_notify.auth import hash_password, manages, revoke_sessions, verify_password
from voc_notify.errors import CsvRejected, CsvUnreadable, RowError
from voc_notify.models import STORE_COLUMNS, Shift, ShiftOverride, Staff, Store
from voc_notify.schemas import DepartmentId, NewPassword, OverrideIn, Role, ShiftIn, StaffIn, StoreIn
from voc_platform.audit import Audit
from voc_platform.csvfile import CsvProblem, csv_records
from voc_platform.db import Database
from voc_platform.errors import Conflict, FieldError, Forbidden, Invalid, NotFound
from voc_platform.fields import DirectoryId, OptionalDirectoryId
from voc_platform.identity import Actor, Principal, Revocations
from voc_platform.ids import uuid7
from voc_platform.records import fields_of

CSV_COLUMNS = (
    "id", "name", "email", "password", "role", "store_ids", "area_id", "language", "active", "department_id",
)  # fmt: skip
CSV_REQUIRED = frozenset({"id", "name", "email", "role"})


async def upsert_stores(database: Database, *, stores: Sequence[StoreIn], editor: Editor) -> int:
    """Create or replace stores by id."""
    async with database.transaction() as session:
        for item in stores:
            await session.merge(Store(**item.model_dump()))
        await editor.record(
            session,
            "stores.put",
            staff_id=None,
            detail={"stores": [s.id for s in stores][:100], "count": len(stores)},
        )
    return len(stores)


async def list_stores(session: AsyncSession, *, scope: tuple[str, ...] | None) -> list[dict[str, Any]]:
    """The stores in `scope` (None: every store), by id."""
    query = select(Store).order_by(Store.id)
    if scope is not None:
        query = query.where(Store.id.in_(scope))
    return [fields_of(s, STORE_COLUMNS) for s in await session.scalars(query)]


STAFF_LISTED = ("id", "name", "email", "role", "store_ids", "area_id", "language", "active", "department_id")


def _like_literal(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def list_staff(session: AsyncSession, *, scope: tuple[str, ...] | None) -> list[dict[str, Any]]:
    """Staff (never a password hash) by id: everyone for `scope` None, else those working at one
    of its stores. The scope is a condition of the query (store ids are JSON lists: a match on
    the quoted id in their text form, the same on SQLite and PostgreSQL)."""
    query = select(Staff).order_by(Staff.id)
    if scope is not None:
        if not scope:
            return []
        as_text = cast(Staff.store_ids, Text)
        query = query.where(or_(*(as_text.like(f'%"{_like_literal(s)}"%', escape="\\") for s in scope)))
    return [fields_of(s, STAFF_LISTED) for s in await session.scalars(query)]


def _new_staff(staff_id: str, fields: dict[str, Any], password_hash: str) -> Staff:
    return Staff(id=staff_id, **{"active": True, **fields}, password_hash=password_hash)


async def _with_language(
    session: AsyncSession, fields: dict[str, Any], existing: Staff | None
) -> dict[str, Any]:
    """`fields` with a language: the one given, else the staff member's so far, else their
    first store's, else ko."""
    if fields.get("language"):
        return fields
    if existing is not None:
        return {**fields, "language": existing.language}
    store = await session.get(Store, fields["store_ids"][0]) if fields.get("store_ids") else None
    return {**fields, "language": store.language if store is not None else "ko"}


async def _hash_passwords(
    database: Database, items: Sequence[tuple[str, str | None]]
) -> list[tuple[str | None, bool]]:
    """Per (staff id, password or None): the password's hash and whether it differs from the
    staff member's current one (a changed password ends their sessions, #23; the same one sent
    again does not). argon2 is deliberately slow (tens of ms, 64 MiB each): in a worker thread,
    before the transaction, so neither the event loop nor the database's write lock waits."""
    async with database.session() as session:
        rows = await session.execute(
            select(Staff.id, Staff.password_hash).where(Staff.id.in_([i for i, _ in items]))
        )
        current: dict[str, str] = {r.id: r.password_hash for r in rows}

    def work() -> list[tuple[str | None, bool]]:
        return [
            (hash_password(p), sid in current and not verify_password(current[sid], p))
            if p
            else (None, False)
            for sid, p in items
        ]

    return await asyncio.to_thread(work)


@dataclass(frozen=True, slots=True)
class Editor:
    """Who changes the directory (the audit log's actor), and where the change is recorded:
    the audit log, and the revocation list when a staff member's tokens must end."""

    actor: Actor
    audit: Audit
    revocations: Revocations
    #: A manager's token (shifts and overrides of the staff they manage); None: the admin token,
    #: or a change only cx_admin may make anyway.
    manager: Principal | None = None

    async def record(
        self,
        session: AsyncSession,
        action: str,
        *,
        staff_id: str | None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Audit one change of the directory by this editor, about a staff member or not."""
        target = None if staff_id is None else f"staff:{staff_id}"
        await self.audit.record(session, actor=self.actor, action=action, target=target, detail=detail)


async def _staff_changed(
    session: AsyncSession, editor: Editor, *, staff_id: str, reason: str, revoked: list[tuple[str, int]]
) -> None:
    before = await revoke_sessions(session, editor.revocations, staff_id=staff_id, reason=reason)
    revoked.append((staff_id, before))


async def _save_staff(
    session: AsyncSession,
    editor: Editor,
    *,
    staff_id: str,
    fields: dict[str, Any],
    existing: Staff | None,
    password_hash: str | None,
    password_changed: bool,
    action: str,
    revoked: list[tuple[str, int]],
) -> None:
    """Create or update one staff member (a new one needs `password_hash`; None keeps the
    password), end their tokens when their access changed, and audit it as `action`."""
    fields = await _with_language(session, fields, existing)
    if existing is None:
        assert password_hash is not None  # the callers check: new staff need a password
        session.add(_new_staff(staff_id, fields, password_hash))
    else:
        access = (existing.role, list(existing.store_ids or ()), existing.area_id)
        was_active = existing.active
        for key, value in fields.items():
            setattr(existing, key, value)
        existing.password_hash = password_hash or existing.password_hash
        reason = _revocation_reason(
            deactivated=was_active and not existing.active,
            password_changed=password_changed,
            access_changed=access != (existing.role, list(existing.store_ids or ()), existing.area_id),
        )
        if reason is not None:
            await _staff_changed(session, editor, staff_id=staff_id, reason=reason, revoked=revoked)
    await editor.record(
        session, action, staff_id=staff_id, detail={"created": existing is None, **_audited(fields)}
    )


def _note(editor: Editor, revoked: list[tuple[str, int]]) -> None:
    """The revocations, in this process's memory once their transaction committed."""
    for staff_id, before in revoked:
        editor.revocations.note(staff_id, before)


async def upsert_staff(database: Database, *, staff: Sequence[StaffIn], editor: Editor) -> int:
    """Create or update staff by id. A password given is set anew (a reset); left out, an
    existing member keeps theirs and someone new is `Invalid` (422 naming `body.N.password`). An
    existing member's tokens are revoked when the password differs from theirs or their role,
    stores or area change; `active: false` deactivates. An id or an e-mail twice in the list is
    `Invalid` (422), an e-mail another staff member has is a `Conflict` (409); nothing is
    written then."""
    _no_repeats([(f"body.{i}", item.id, item.email.lower()) for i, item in enumerate(staff)])
    # argon2 is deliberately slow (tens of ms, 64 MiB each): in a worker thread, before the
    # transaction, so neither the event loop nor the database's write lock waits for it.
    hashes = await _hash_passwords(database, [(item.id, item.password) for item in staff])
    revoked: list[tuple[str, int]] = []
    try:
        async with database.transaction() as session:
            owners = await _email_owners(session, [item.email for item in staff])
            taken = [
                FieldError(f"body.{i}.email", "used by another staff member")
                for i, item in enumerate(staff)
                if owners.get(item.email.lower(), item.id) != item.id
            ]
            if taken:
                raise Conflict("An e-mail in the list belongs to another staff member.", errors=taken)
            known = set(await session.scalars(select(Staff.id).where(Staff.id.in_([i.id for i in staff]))))
            unset = [
                FieldError(f"body.{i}.password", "required for new staff")
                for i, item in enumerate(staff)
                if item.password is None and item.id not in known
            ]
            if unset:
                raise Invalid("A new staff member needs a password.", errors=unset)
            for item, (password_hash, changed) in zip(staff, hashes, strict=True):
                fields = item.model_dump(exclude={"id", "password"})
                fields["email"] = fields["email"].lower()
                existing = await session.get(Staff, item.id)
                await _save_staff(
                    session, editor, staff_id=item.id, fields=fields, existing=existing,
                    password_hash=password_hash, password_changed=changed, action="staff.put",
                    revoked=revoked,
                )  # fmt: skip
    except IntegrityError as exc:  # a concurrent call took the e-mail after the check above
        raise Conflict("An e-mail in the list belongs to another staff member.") from exc
    _note(editor, revoked)
    return len(staff)


def _audited(fields: dict[str, Any]) -> dict[str, Any]:
    """What the audit log keeps of a staff record: the access it gives, not the person."""
    return {k: fields[k] for k in ("role", "store_ids", "area_id", "active", "department_id") if k in fields}


def _no_repeats(items: Sequence[tuple[str, str, str]]) -> None:
    """`Invalid` naming each (path, id, e-mail) whose id or e-mail came earlier in the list."""
    ids: set[str] = set()
    emails: set[str] = set()
    errors: list[FieldError] = []
    for path, staff_id, email in items:
        if staff_id in ids:
            errors.append(FieldError(f"{path}.id", f"'{staff_id}' appears twice"))
        if email in emails:
            errors.append(FieldError(f"{path}.email", "appears twice"))
        ids.add(staff_id)
        emails.add(email)
    if errors:
        raise Invalid("The list names a staff member or an e-mail twice.", errors=errors)


async def _email_owners(session: AsyncSession, emails: Sequence[str]) -> dict[str, str]:
    """E-mail (lower case) -> the id of the staff member who has it, for these e-mails."""
    query = select(Staff.email, Staff.id).where(Staff.email.in_([e.lower() for e in emails]))
    return {email: staff_id for email, staff_id in (await session.execute(query)).all()}


# What the directory answers of a shift and of an override: their columns but `staff_id`.
SHIFT_FIELDS = ("id", "weekday", "starts", "ends")
OVERRIDE_FIELDS = ("id", "starts_on", "ends_on", "on_duty", "note", "created_at")


def shift_json(shift: Shift) -> dict[str, Any]:
    return fields_of(shift, SHIFT_FIELDS)


def override_json(override: ShiftOverride) -> dict[str, Any]:
    return fields_of(override, OVERRIDE_FIELDS)


async def _staff(session: AsyncSession, staff_id: str) -> Staff:
    staff = await session.get(Staff, staff_id)
    if staff is None:
        raise NotFound(f"No staff member '{staff_id}'.")
    return staff


async def _managed_staff(session: AsyncSession, staff_id: str, editor: Editor) -> Staff:
    """The staff member whose schedule `editor` changes: 404 when nobody has the id, 403 when the
    editor is a manager who does not manage them (`auth.manages`: their stores' staff, their
    area's, nobody of a higher role); the admin token and cx_admin manage everyone."""
    staff = await _staff(session, staff_id)
    if editor.manager is None:
        return staff
    areas = set(
        await session.scalars(
            select(Store.area_id).where(Store.id.in_(staff.store_ids or ()), Store.area_id.is_not(None))
        )
    )
    if not manages(editor.manager, staff, staff_areas={a for a in areas if a}):
        raise Forbidden(f"'{staff_id}' is not among the staff you manage.")
    return staff


async def schedule(session: AsyncSession, *, staff_id: str, scope: tuple[str, ...] | None) -> dict[str, Any]:
    """A staff member's weekly shifts and one-off overrides; one outside `scope` (who works at
    none of its stores) is answered as missing."""
    staff = await _staff(session, staff_id)
    if scope is not None and not set(staff.store_ids or ()) & set(scope):
        raise NotFound(f"No staff member '{staff_id}'.")
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


async def replace_shifts(
    database: Database, *, staff_id: str, shifts: Sequence[ShiftIn], editor: Editor
) -> dict[str, Any]:
    """Replace the weekly pattern; an empty list means "always on duty" again."""
    async with database.transaction() as session:
        await _managed_staff(session, staff_id, editor)
        await session.execute(delete(Shift).where(Shift.staff_id == staff_id))
        rows = [
            Shift(id=uuid7(), staff_id=staff_id, weekday=item.weekday, starts=item.starts, ends=item.ends)
            for item in shifts
        ]
        session.add_all(rows)
        await editor.record(session, "shifts.put", staff_id=staff_id, detail={"shifts": len(rows)})
    return {"staff_id": staff_id, "shifts": [shift_json(s) for s in rows]}


async def add_override(
    database: Database, *, staff_id: str, override: OverrideIn, editor: Editor
) -> dict[str, Any]:
    """On or off duty for whole local dates, whatever the weekly pattern says."""
    async with database.transaction() as session:
        await _managed_staff(session, staff_id, editor)
        row = ShiftOverride(
            id=uuid7(),
            staff_id=staff_id,
            starts_on=override.starts_on.isoformat(),
            ends_on=override.ends_on.isoformat(),
            on_duty=override.on_duty,
            note=override.note,
            created_at=time.time(),
        )
        session.add(row)
        await editor.record(
            session,
            "override.add",
            staff_id=staff_id,
            detail={
                "override_id": row.id,
                "starts_on": row.starts_on,
                "ends_on": row.ends_on,
                "on_duty": row.on_duty,
            },
        )
    return override_json(row)


async def remove_override(database: Database, *, staff_id: str, override_id: str, editor: Editor) -> None:
    async with database.transaction() as session:
        await _managed_staff(session, staff_id, editor)
        row = await session.get(ShiftOverride, override_id)
        if row is None or row.staff_id != staff_id:
            raise NotFound(f"No override '{override_id}' for '{staff_id}'.")
        await session.delete(row)
        await editor.record(
            session, "override.remove", staff_id=staff_id, detail={"override_id": override_id}
        )


async def on_duty_report(session: AsyncSession, *, store_id: str, now: float) -> dict[str, Any]:
    """Who routing would consider on duty at the store at `now`, and its quiet hours."""
    store = await session.get(Store, store_id)
    if store is None:
        raise NotFound(f"No store '{store_id}'.")
    staff = await routing.store_staff(session, store=store)
    present = await routing.on_duty_ids(session, staff=staff, timezone=store.timezone, now=now)
    return {
        "store_id": store.id,
        "local_time": duty.local_time(store.timezone, now).isoformat(timespec="minutes"),
        "on_duty": [{"id": s.id, "name": s.name, "role": s.role} for s in staff if s.id in present],
        "off_duty": [{"id": s.id, "name": s.name, "role": s.role} for s in staff if s.id not in present],
        "quiet_until": duty.quiet_until(
            quiet_start=store.quiet_start, quiet_end=store.quiet_end, timezone=store.timezone, now=now
        ),
    }


class StaffCsvRow(BaseModel):
    """One CSV row; the password may be blank for existing staff (their password is kept)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: DirectoryId
    name: Annotated[str, Field(min_length=1, max_length=100)]
    email: Annotated[str, Field(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
    password: NewPassword | None = None
    role: Role
    store_ids: list[DirectoryId] = []
    area_id: OptionalDirectoryId = None
    language: Annotated[str, Field(pattern="^(ko|en)$")] | None = None  # as `StaffIn.language`
    # true/false (also 1/0, yes/no); blank keeps an existing member's state, a new one is active.
    # false deactivates: their tokens end on every service, as `POST …/deactivate` does.
    active: bool | None = None
    department_id: DepartmentId | None = None  # as `StaffIn.department_id`


def _csv_records(text: str) -> Iterator[tuple[int, list[str]]]:
    """(the line a record starts on, its cells); CsvUnreadable where the csv reader cannot go on
    (`voc_platform.csvfile`, as profile's importer reads)."""
    try:
        yield from csv_records(io.StringIO(text.removeprefix("\ufeff")))
    except CsvProblem as problem:
        raise CsvUnreadable(line=problem.line, message=problem.message) from None


def parse_staff_csv(text: str) -> tuple[list[tuple[int, StaffCsvRow]], list[RowError]]:
    """Rows and per-row errors (`row` is the line a record starts on, the header being 1);
    CsvUnreadable when the file cannot be read as CSV at all."""
    records = _csv_records(text)
    first = next(records, None)
    header = [h.strip() for h in (first[1] if first is not None else [])]
    missing = sorted(CSV_REQUIRED - set(header))
    unknown = sorted(set(header) - set(CSV_COLUMNS))
    # A repeated column is refused, never resolved: with "role,role" the last cell won, so a row
    # reading "staff" to a reviewer made the member a cx_admin.
    repeated = sorted(h for h, n in Counter(header).items() if n > 1)  # linear: a header may be long
    if missing or unknown or repeated:
        return [], [
            *(RowError(1, c, "required column is missing") for c in missing),
            *(RowError(1, c, "unknown column") for c in unknown),
            *(RowError(1, c, "repeated column") for c in repeated),
        ]
    rows: list[tuple[int, StaffCsvRow]] = []
    errors: list[RowError] = []
    for line, cells in records:
        if len(cells) > len(header):
            errors.append(RowError(line, None, "more values than columns"))
            continue
        # Cells are trimmed, the password's too: spreadsheets put a space after commas, and a
        # blank one keeps the member's password (the API takes a password exactly as typed).
        # A short row's missing cells are blank.
        values = dict(
            zip(header, [c.strip() for c in cells] + [""] * (len(header) - len(cells)), strict=True)
        )
        if not any(values.values()):
            continue  # a blank line
        data: dict[str, Any] = {k: v for k, v in values.items() if v != ""}
        data["store_ids"] = [p.strip() for p in values.get("store_ids", "").split(";") if p.strip()]
        try:
            rows.append((line, StaffCsvRow.model_validate(data)))
        except ValidationError as exc:
            for err in exc.errors():
                errors.append(RowError(line, ".".join(str(p) for p in err["loc"]) or None, err["msg"]))
    return rows, errors


def _conflicts(
    numbered: list[tuple[int, StaffCsvRow]], *, existing: set[str], owners: dict[str, str]
) -> list[RowError]:
    """Rows that clash with each other or with the directory: an id or e-mail twice, an e-mail of
    someone else, a new staff member without a password."""
    errors: list[RowError] = []
    seen_ids: set[str] = set()
    seen_emails: set[str] = set()
    for line, row in numbered:
        email = row.email.lower()
        if row.id in seen_ids:
            errors.append(RowError(line, "id", f"'{row.id}' appears twice"))
        if email in seen_emails:
            errors.append(RowError(line, "email", f"'{email}' appears twice"))
        if owners.get(email, row.id) != row.id:
            errors.append(RowError(line, "email", "used by another staff member"))
        if row.password is None and row.id not in existing:
            errors.append(RowError(line, "password", "required for new staff"))
        seen_ids.add(row.id)
        seen_emails.add(email)
    return errors


async def import_staff_csv(database: Database, *, text: str, editor: Editor) -> dict[str, int]:
    """Create or update the staff of a CSV (UTF-8, a header row, store_ids separated by ";"):
    all rows or none. Every problem is reported at once: the file's own and its clashes with
    the directory. An existing member whose password, role, stores or area changed has their
    tokens revoked."""
    numbered, errors = parse_staff_csv(text)
    rows = [row for _, row in numbered]
    async with database.session() as session:
        errors += await _clashes(session, numbered)
    if errors:
        _reject_csv(errors)
    if not rows:
        raise Invalid("The CSV has no staff rows.")
    # argon2 is deliberately slow: in a worker thread, outside the transaction, so neither the
    # event loop nor the database's write lock waits for it.
    hashes = await _hash_passwords(database, [(r.id, r.password) for r in rows])
    revoked: list[tuple[str, int]] = []
    async with database.transaction() as session:
        clashes = await _clashes(session, numbered)  # again: the directory may have moved meanwhile
        if clashes:
            _reject_csv(clashes)
        existing = {
            s.id: s for s in await session.scalars(select(Staff).where(Staff.id.in_([r.id for r in rows])))
        }
        created = 0
        for row, (password_hash, changed) in zip(rows, hashes, strict=True):
            fields = row.model_dump(
                exclude={"id", "password"} | ({"active"} if row.active is None else set())
            )
            fields["email"] = row.email.lower()
            staff = existing.get(row.id)
            if staff is None:
                created += 1
            await _save_staff(
                session, editor, staff_id=row.id, fields=fields, existing=staff,
                password_hash=password_hash, password_changed=changed, action="staff.import", revoked=revoked,
            )  # fmt: skip
    _note(editor, revoked)
    return {"imported": len(rows), "created": created, "updated": len(rows) - created}


def _revocation_reason(*, deactivated: bool, password_changed: bool, access_changed: bool) -> str | None:
    """Why a changed staff member's tokens must end (`auth.REVOCATION_REASONS`), if they must:
    deactivation, a new password (the same one sent again is no change, #23), or a new role,
    stores or area (a token carries them)."""
    if deactivated:
        return "deactivated"
    if password_changed:
        return "password_changed"
    if access_changed:
        return "directory_changed"
    return None


async def set_active(database: Database, *, staff_id: str, active: bool, editor: Editor) -> None:
    """Deactivate a staff member (no login, refresh or alerts; their refresh tokens and access
    tokens revoked on every service at once) or activate them again."""
    revoked: list[tuple[str, int]] = []
    async with database.transaction() as session:
        staff = await _staff(session, staff_id)
        was_active = staff.active
        staff.active = active
        if was_active and not active:
            await _staff_changed(session, editor, staff_id=staff_id, reason="deactivated", revoked=revoked)
        await editor.record(session, "staff.activate" if active else "staff.deactivate", staff_id=staff_id)
    _note(editor, revoked)


async def _clashes(session: AsyncSession, numbered: list[tuple[int, StaffCsvRow]]) -> list[RowError]:
    """The CSV rows' clashes with each other and with the directory as the session reads it."""
    ids = [row.id for _, row in numbered]
    existing = set(await session.scalars(select(Staff.id).where(Staff.id.in_(ids))))
    owners = await _email_owners(session, [row.email for _, row in numbered])
    return _conflicts(numbered, existing=existing, owners=owners)


def _reject_csv(errors: Sequence[RowError]) -> NoReturn:
    raise CsvRejected(
        f"{len(errors)} problem(s) in the CSV; nothing was imported.",
        rows=sorted(errors, key=lambda e: e.row),
    )
