"""The feedback summary kept with each customer's stored signals (`customer_signals.summary`).

The signals and the context are functions of the customer's feedback facts of the last 365 days
(`items`, in time order). A customer who complains every week would make every event and every
context call read, and the whole history grow, if they were recomputed from the table each
time. They need much less than the whole history:

- the count and the CSAT sum of the items in the window (feedback count, mean CSAT);
- the last 5 items (recent feedback), the last `swing_window + 1` CSAT and NPS scores (score
  swing; at least `low_satisfaction_window` CSAT scores), the last 2 stated revisit intents
  (churn: the latest one that is not the feedback being handled);
- every complaint inside the longest complaint window (repeat issue, chronic count, reasons;
  `taxonomy.is_complaint`: a follow-up answer that reopened a case is not one).

The summary holds exactly that: the aggregates plus `items`, the subset of the history the
signals read, in history order. Because every signal reads only those items (the last k of a
kind are the last k of that kind in the subset too), `compute_signals` over the subset gives
what it gives over the whole history. A new item is added in place (one write per event, no
history read); the subset is pruned as items fall out of every set that needs them.

It describes the history as of `as_of` and is used only when that still holds at `now`:
- `as_of <= now` (complaints older than `as_of - complaint window` were pruned);
- no item is missing: everything since `since` is counted and `since <= now - 365 days`;
- nothing counted has left the 365-day window (`oldest >= now - 365 days`);
- it was built for the current window and count settings (`shape`).
Otherwise the caller reads the history (and rebuilds the summary when it writes).
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from typing import Any, Protocol, TypedDict

from voc_platform.taxonomy import is_complaint
from voc_profile.facts import FeedbackItem

DAY = 86400.0
HISTORY_SECONDS = 365 * DAY
# 2: items carry `reopens_id` (a follow-up answer is no complaint); a version 1 summary is not
# usable, so it is rebuilt from the history on the customer's next event or refresh.
VERSION = 2
# A stored item: a list in this order (compact JSON), the fields of a FeedbackItem.
FIELDS = FeedbackItem._fields
_CSAT, _NPS, _INTENT, _SENTIMENT, _AT, _REOPENS = 5, 6, 7, 4, 8, 9


class Summary(TypedDict):
    """The stored document (`customer_signals.summary`, JSON)."""

    v: int
    shape: list[float]
    since: float
    as_of: float
    oldest: float | None
    n: int
    csat_sum: int
    csat_n: int
    items: list[list[Any]]


class SignalSettings(Protocol):
    repeat_window_days: int
    chronic_window_days: int
    swing_window: int
    low_satisfaction_window: int


@dataclass(frozen=True)
class Shape:
    """How much of the history the summary keeps (from the settings it was built with)."""

    complaint_seconds: float
    csat: int
    nps: int
    recent: int = 5
    intents: int = 2

    @classmethod
    def of(cls, settings: SignalSettings) -> Shape:
        return cls(
            complaint_seconds=max(settings.repeat_window_days, settings.chronic_window_days) * DAY,
            csat=max(settings.swing_window + 1, settings.low_satisfaction_window, 2),
            nps=max(settings.swing_window + 1, 2),
        )

    def key(self) -> list[float]:
        return [self.complaint_seconds, self.csat, self.nps, self.recent, self.intents]


def _prune(rows: list[list[Any]], shape: Shape, as_of: float) -> list[list[Any]]:
    """The rows some signal can still read (rows in history order)."""
    complaints_from = as_of - shape.complaint_seconds
    recent = csat = nps = intents = 0
    kept: list[list[Any]] = []
    for row in reversed(rows):
        keep = False
        if recent < shape.recent:
            recent += 1
            keep = True
        if row[_CSAT] is not None and csat < shape.csat:
            csat += 1
            keep = True
        if row[_NPS] is not None and nps < shape.nps:
            nps += 1
            keep = True
        if row[_INTENT] and intents < shape.intents:
            intents += 1
            keep = True
        if is_complaint(row[_SENTIMENT], row[_REOPENS]) and row[_AT] >= complaints_from:
            keep = True
        if keep:
            kept.append(row)
    kept.reverse()
    return kept


def build(items: list[FeedbackItem], *, shape: Shape, now: float) -> Summary:
    """The summary of `items`: the customer's history since `now - 365 days`, in time order."""
    since = now - HISTORY_SECONDS
    rows: list[list[Any]] = [list(i) for i in items if i.occurred_at >= since]
    csats = [r[_CSAT] for r in rows if r[_CSAT] is not None]
    return {
        "v": VERSION,
        "shape": shape.key(),
        "since": since,
        "as_of": now,
        "oldest": min((r[_AT] for r in rows), default=None),
        "n": len(rows),
        "csat_sum": sum(csats),
        "csat_n": len(csats),
        "items": _prune(rows, shape, now),
    }


def usable(summary: Summary | None, *, shape: Shape, now: float) -> bool:
    """True when the summary describes the history as read at `now` (see the module notes)."""
    if not summary or summary.get("v") != VERSION or summary.get("shape") != shape.key():
        return False
    window_start = now - HISTORY_SECONDS
    oldest = summary["oldest"]
    return bool(
        summary["as_of"] <= now
        and summary["since"] <= window_start
        and (oldest is None or oldest >= window_start)
    )


def add(summary: Summary, item: FeedbackItem, *, shape: Shape, now: float) -> Summary:
    """The summary with one more history item (`summary` must be usable at `now`)."""
    rows: list[list[Any]] = list(summary["items"])
    updated = summary.copy()
    updated["as_of"] = as_of = max(summary["as_of"], now)
    at = item.occurred_at
    # An item already outside the window of every later read is not counted.
    if at >= max(summary["since"], as_of - HISTORY_SECONDS):
        row: list[Any] = list(item)
        # After the items of the same time: the history's order (insertion breaks ties).
        rows.insert(bisect_right([r[_AT] for r in rows], at), row)
        updated["n"] = summary["n"] + 1
        if row[_CSAT] is not None:
            updated["csat_sum"] = summary["csat_sum"] + row[_CSAT]
            updated["csat_n"] = summary["csat_n"] + 1
        updated["oldest"] = at if summary["oldest"] is None else min(summary["oldest"], at)
    updated["items"] = _prune(rows, shape, as_of)
    return updated


def items(summary: Summary) -> list[FeedbackItem]:
    """The kept items, in history order."""
    make = FeedbackItem._make
    return [make(row) for row in summary["items"]]


def expires_at(summary: Summary) -> float | None:
    """When the oldest counted item leaves the 365-day window (the summary needs a rebuild)."""
    oldest = summary["oldest"]
    return None if oldest is None else float(oldest) + HISTORY_SECONDS
