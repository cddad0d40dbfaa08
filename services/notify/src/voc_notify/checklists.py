"""The plan's checklist, kept server-side per alert (#18): staff tick steps done or undone in the
app, every tick is kept (who, which step, when: the audit trail managers see), and a resolution
says how many steps were done before it (plan adherence, carried by `AlertResolved`)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from voc_notify.models import Alert, AlertStepMark
from voc_notify.routing import ROLE_LEVEL
from voc_platform.errors import Conflict, FieldError, Invalid
from voc_platform.identity import Principal
from voc_platform.ids import uuid7

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StepState:
    """One step of the plan and its latest mark."""

    index: int
    text: str
    role: str
    done: bool
    by: str | None
    at: float | None

    def as_json(self) -> dict[str, Any]:
        return {"index": self.index, "text": self.text, "role": self.role, "done": self.done,
                "done_by": self.by, "at": self.at}  # fmt: skip


def steps_of(alert: Alert) -> list[dict[str, Any]]:
    return list((alert.plan or {}).get("steps") or [])


async def marks_of(session: AsyncSession, *, alert_id: str) -> list[AlertStepMark]:
    """Every tick of the alert, oldest first."""
    rows = await session.scalars(
        select(AlertStepMark)
        .where(AlertStepMark.alert_id == alert_id)
        .order_by(AlertStepMark.at, AlertStepMark.id)
    )
    return list(rows)


def checklist(alert: Alert, marks: Iterable[AlertStepMark]) -> list[StepState]:
    """Each step of the alert's plan with its latest mark (not done when never ticked)."""
    latest: dict[int, AlertStepMark] = {m.step_index: m for m in marks}  # the last mark wins
    out = []
    for index, step in enumerate(steps_of(alert)):
        mark: AlertStepMark | None = latest.get(index)
        out.append(
            StepState(index, str(step.get("text") or ""), str(step.get("role") or "staff"),
                      bool(mark and mark.done), mark.staff_id if mark else None, mark.at if mark else None)
        )  # fmt: skip
    return out


def adherence(alert: Alert, marks: Iterable[AlertStepMark]) -> tuple[int, int]:
    """(steps done, steps in the plan) as the checklist stands."""
    states = checklist(alert, marks)
    return sum(1 for s in states if s.done), len(states)


def audit_log(marks: Iterable[AlertStepMark]) -> list[dict[str, Any]]:
    """Every tick, oldest first: what managers see of how the plan was carried out."""
    return [{"index": m.step_index, "done": m.done, "staff_id": m.staff_id, "at": m.at} for m in marks]


def sees_audit(principal: Principal) -> bool:
    """The tick-by-tick log is for store managers and above."""
    return ROLE_LEVEL.get(principal.role, 0) >= ROLE_LEVEL["store_manager"]


async def mark_step(
    session: AsyncSession, *, alert: Alert, principal: Principal, index: int, done: bool, now: float
) -> list[StepState]:
    """Tick step `index` done (or undone) for the principal; the checklist after it. A step the
    plan does not have is 422 naming `index`; a resolved alert's checklist is closed (409)."""
    steps = steps_of(alert)
    if not 0 <= index < len(steps):
        raise Invalid(
            f"The plan has {len(steps)} steps; step {index} is not one of them.",
            errors=[
                FieldError("path.index", f"must be between 0 and {len(steps) - 1}" if steps else "no steps")
            ],
        )
    if alert.status == "resolved":
        raise Conflict("The alert is resolved; its checklist is closed.")
    session.add(
        AlertStepMark(
            id=uuid7(), alert_id=alert.id, step_index=index, done=done, staff_id=principal.staff_id, at=now
        )
    )
    await session.flush()
    log.info("alert %s step %d %s by %s", alert.id, index, "done" if done else "undone", principal.staff_id)
    return checklist(alert, await marks_of(session, alert_id=alert.id))
