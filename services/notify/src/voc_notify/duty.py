"""Who is on duty and when a store is quiet, in the store's own time zone. Pure functions.

Rules (docs/NOTIFY.md): a one-off override covering today's local date wins (the newest one
when several do); otherwise a staff member with no weekly shifts is always on duty, so a
directory without shifts routes exactly as before; otherwise one of the weekly shifts must
cover the local time now. A shift whose end is not after its start runs past midnight.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from voc_notify.models import Shift, ShiftOverride
from voc_platform.timezones import known_zone

#: "HH:MM", 00:00-23:59 (ASCII digits: `\d` would take any script's); the API documents declare it.
HHMM_PATTERN = r"^([01][0-9]|2[0-3]):([0-5][0-9])$"
_HHMM = re.compile(HHMM_PATTERN)
MINUTES_PER_DAY = 24 * 60


def parse_hhmm(value: str) -> int:
    """Minutes after local midnight of an "HH:MM" string (00:00-23:59)."""
    match = _HHMM.match(value)
    if match is None:
        raise ValueError(f"'{value}' is not a time of day as HH:MM (00:00-23:59)")
    return int(match.group(1)) * 60 + int(match.group(2))


def zone(name: str | None) -> ZoneInfo:
    # Stores are validated on the way in; an unknown zone in old rows must not stop routing.
    return known_zone(name or "UTC") or ZoneInfo("UTC")


def local_time(timezone: str | None, now: float) -> datetime:
    return datetime.fromtimestamp(now, zone(timezone))


def covers(shift: Shift, local: datetime) -> bool:
    start, end = parse_hhmm(shift.starts), parse_hhmm(shift.ends)
    minute = local.hour * 60 + local.minute
    weekday = local.weekday()
    if start < end:
        return weekday == shift.weekday and start <= minute < end
    # Overnight: from `start` on its weekday until `end` on the next day.
    return (weekday == shift.weekday and minute >= start) or (
        weekday == (shift.weekday + 1) % 7 and minute < end
    )


def on_duty(
    *, shifts: Iterable[Shift], overrides: Iterable[ShiftOverride], timezone: str | None, now: float
) -> bool:
    local = local_time(timezone, now)
    today = local.date().isoformat()
    applicable = [o for o in overrides if o.starts_on <= today <= o.ends_on]
    if applicable:
        return max(applicable, key=lambda o: o.created_at).on_duty
    shifts = list(shifts)
    if not shifts:
        return True
    return any(covers(s, local) for s in shifts)


def quiet_until(
    *, quiet_start: str | None, quiet_end: str | None, timezone: str | None, now: float
) -> float | None:
    """When the store's quiet hours end, if `now` falls inside them; None otherwise."""
    if not quiet_start or not quiet_end:
        return None
    start, end = parse_hhmm(quiet_start), parse_hhmm(quiet_end)
    if start == end:
        return None
    local = local_time(timezone, now)
    minute = local.hour * 60 + local.minute
    if start < end:
        inside, end_day = start <= minute < end, local.date()
    elif minute >= start:  # wraps midnight, and we are before it
        inside, end_day = True, local.date() + timedelta(days=1)
    else:
        inside, end_day = minute < end, local.date()
    if not inside:
        return None
    ends = datetime.combine(end_day, time(end // 60, end % 60), tzinfo=local.tzinfo)
    if ends.timestamp() <= now:
        # The end's wall time happens twice (a DST fall-back) and its first time is past: the
        # second one (fold=1).
        ends = ends.replace(fold=1)
    return max(ends.timestamp(), now)
