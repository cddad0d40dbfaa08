"""Whom an alert pages: the store's staff and its area managers, who of them is on duty, and the
role ladder climbed when nobody with the wanted roles is."""

from __future__ import annotations

import time
from typing import NamedTuple

from sqlalchemy import bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from voc_notify import duty
from voc_notify.models import Shift, ShiftOverride, Staff, StaffStore, Store
from voc_platform import taxonomy
from voc_platform.dbsync import Prepared, Reader
from voc_platform.taxonomy import roles

ROLE_LEVEL: dict[str, int] = {name: int(meta["level"]) for name, meta in roles().items()}

#: The columns of a `Candidate`, in its order.
STAFF_COLUMNS = (Staff.id, Staff.name, Staff.role, Staff.area_id, Staff.language)


class Candidate(NamedTuple):
    """A staff member routing may page, as routing reads it: routing runs for every alert over
    the store's whole staff list, and a transient ORM `Staff` per candidate cost far more
    (docs/BENCHMARKS.md)."""

    id: str
    name: str
    role: str
    area_id: str | None
    language: str


def _climb(candidates: list[Candidate], wanted: list[str], eligible: set[str] | None) -> list[Candidate]:
    """The wanted roles among `candidates`, else each next level up the role ladder."""
    wanted_levels = sorted({ROLE_LEVEL.get(r, 1) for r in wanted}) or [2]
    level = wanted_levels[0]
    while level <= ROLE_LEVEL["area_manager"]:
        roles_now = {r for r in wanted if ROLE_LEVEL.get(r, 1) >= level} or {
            r for r, lv in ROLE_LEVEL.items() if lv == level
        }
        chosen = [s for s in candidates if s.role in roles_now and (eligible is None or s.id in eligible)]
        if chosen:
            return chosen
        level += 1
        wanted = [r for r, lv in ROLE_LEVEL.items() if lv == level]
    return []


async def store_staff(session: AsyncSession, *, store: Store) -> list[Staff]:
    """Active staff who work at the store, plus the area managers of its area (by index)."""
    works_here = Staff.id.in_(select(StaffStore.staff_id).where(StaffStore.store_id == store.id))
    area_manager = (Staff.role == "area_manager") & (Staff.area_id == store.area_id)
    scope = or_(works_here, area_manager) if store.area_id else works_here
    return list(await session.scalars(select(Staff).where(Staff.active.is_(True), scope).order_by(Staff.id)))


async def on_duty_ids(
    session: AsyncSession, *, staff: list[Staff], timezone: str | None, now: float
) -> set[str]:
    """The ids among `staff` whose shifts and overrides put them on duty at `now`."""
    ids = [s.id for s in staff]
    if not ids:
        return set()
    shifts: dict[str, list[Shift]] = {}
    for shift in await session.scalars(select(Shift).where(Shift.staff_id.in_(ids))):
        shifts.setdefault(shift.staff_id, []).append(shift)
    overrides: dict[str, list[ShiftOverride]] = {}
    for override in await session.scalars(select(ShiftOverride).where(ShiftOverride.staff_id.in_(ids))):
        overrides.setdefault(override.staff_id, []).append(override)
    return {
        sid
        for sid in ids
        if duty.on_duty(
            shifts=shifts.get(sid, []), overrides=overrides.get(sid, []), timezone=timezone, now=now
        )
    }


# Routing runs for every alert: the same reads as `store_staff` and `on_duty_ids`, as prepared
# statements in one hop. The staff come back as `Candidate` tuples, the shifts and overrides as
# transient (never added) objects; an area_id of NULL matches no area manager, as in
# `store_staff`.
_CANDIDATE_IDS = select(Staff.id).where(
    Staff.active.is_(True),
    or_(
        Staff.id.in_(select(StaffStore.staff_id).where(StaffStore.store_id == bindparam("store_id"))),
        (Staff.role == "area_manager") & (Staff.area_id == bindparam("area_id")),
    ),
)
_CANDIDATES = Prepared(select(*STAFF_COLUMNS).where(Staff.id.in_(_CANDIDATE_IDS)).order_by(Staff.id))
_CANDIDATE_SHIFTS = Prepared(
    select(Shift.id, Shift.staff_id, Shift.weekday, Shift.starts, Shift.ends).where(
        Shift.staff_id.in_(_CANDIDATE_IDS)
    )
)
_CANDIDATE_OVERRIDES = Prepared(
    select(
        ShiftOverride.id,
        ShiftOverride.staff_id,
        ShiftOverride.starts_on,
        ShiftOverride.ends_on,
        ShiftOverride.on_duty,
        ShiftOverride.created_at,
    ).where(ShiftOverride.staff_id.in_(_CANDIDATE_IDS))
)


def route_sync(reader: Reader, *, store: Store, wanted: list[str], now: float) -> list[Candidate]:
    """Staff on duty now with one of `wanted` roles at the store (area managers: in its area).

    When nobody with those roles is on duty, the next level up is asked, up to area managers.
    When nobody at any level is on duty, the same ladder ignoring shifts, so that an alert is
    never left without an owner.
    """
    where = {"store_id": store.id, "area_id": store.area_id}
    candidates = [Candidate(*row) for row in reader.all(_CANDIDATES, where)]
    shifts: dict[str, list[Shift]] = {}
    for row in reader.all(_CANDIDATE_SHIFTS, where):
        shifts.setdefault(row.staff_id, []).append(Shift(**row._asdict()))
    overrides: dict[str, list[ShiftOverride]] = {}
    for row in reader.all(_CANDIDATE_OVERRIDES, where):
        overrides.setdefault(row.staff_id, []).append(ShiftOverride(**row._asdict()))
    present = {
        c.id
        for c in candidates
        if duty.on_duty(
            shifts=shifts.get(c.id, []), overrides=overrides.get(c.id, []), timezone=store.timezone, now=now
        )
    }
    return _climb(candidates, wanted, present) or _climb(candidates, wanted, None)


_DEPARTMENT = Prepared(
    select(*STAFF_COLUMNS)
    .where(Staff.active.is_(True), Staff.department_id == bindparam("department_id"))
    .order_by(Staff.id)
)


def with_department(reader: Reader, recipients: list[Candidate], *, category: str) -> list[Candidate]:
    """`recipients` plus the active staff of the department that owns `category` in the
    published taxonomy (#20 §3: HQ food safety gets a copy of every food-safety alert, whichever
    the store), each once."""
    department = taxonomy.current().department_of(category)
    if department is None:
        return recipients
    have = {r.id for r in recipients}
    extra = [Candidate(*row) for row in reader.all(_DEPARTMENT, {"department_id": department})]
    return recipients + [c for c in extra if c.id not in have]


async def staff_for_roles(
    session: AsyncSession, *, store: Store, wanted: list[str], now: float | None = None
) -> list[Candidate]:
    """`route_sync` on a session's connection (escalation, tools)."""
    at = now or time.time()
    return await session.run_sync(
        lambda s: route_sync(Reader.of(s.connection()), store=store, wanted=list(wanted), now=at)
    )


def hold_until(store: Store, *, priority: str, now: float) -> float | None:
    """Non-urgent pushes wait for the end of the store's quiet hours; urgent ones never wait."""
    if priority == "urgent":
        return None
    return duty.quiet_until(
        quiet_start=store.quiet_start, quiet_end=store.quiet_end, timezone=store.timezone, now=now
    )
