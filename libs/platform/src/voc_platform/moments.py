"""When a client says something happened (a feedback's `occurred_at`, a visit's `visited_at`, a
check-in's `occurred_at`): the one rule every intake applies before storing it. A time outside
what a datetime can hold (year 0001 at +14:00 is before `datetime.min` in UTC) was accepted once
and then broke every reader that turned it back into a date: lists, exports, the alert's last
visit."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime

#: Nothing a store records happened before this.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC).timestamp()
#: Device clocks run a little fast; more than this ahead is a wrong clock or a wrong value.
FUTURE_SLACK_SECONDS = 300.0


def event_time_problem(epoch: float, *, now: float | None = None) -> str | None:
    """Why `epoch` (seconds) cannot be the time of a customer's feedback or visit, or None."""
    if not math.isfinite(epoch):
        return "is not a time"
    if epoch < EARLIEST:
        return "is before 2000-01-01"
    if epoch > (time.time() if now is None else now) + FUTURE_SLACK_SECONDS:
        return "is in the future"
    return None


def checked_event_time(value: datetime | None, *, field: str) -> datetime | None:
    """A request's datetime of an event, as its schema's validator: with an offset, and a real
    moment (`event_time_problem`); ValueError naming `field` otherwise."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError(f"{field} needs a time zone offset (e.g. 2026-11-23T09:30:00+09:00)")
    if (problem := event_time_problem(value.timestamp())) is not None:
        raise ValueError(f"{field} {problem}")
    return value
