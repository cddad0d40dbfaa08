"""Pattern alerts (#18): several different customers raise the same category at one store within
a window, and the store manager gets one alert listing the items, later items folding into it.

The alert path pays for it with one insert and one count on an index (`record_item_sync`, in
the feedback alert's own write hop); the baseline and the alert itself are read and written only
once a window reaches its threshold (`raise_pattern_sync`). Decided by the database, whatever
replica consumes the items: on PostgreSQL a transaction lock per store and category orders the
items of one store and category (each counts every item committed before it), and the pattern
alert is created or folded under that lock; SQLite has one writer.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, delete, func, select, update

from voc_notify import masking
from voc_notify.alerts import create_alert_sync, newest_open_in_window, page_again
from voc_notify.facts import Plan
from voc_notify.models import Alert, Base, PatternItem, Store
from voc_notify.routing import Candidate, route_sync
from voc_platform.dbsync import Prepared, Reader, insert_ignore
from voc_platform.ids import uuid7
from voc_platform.taxonomy import Taxonomy

#: Items listed on a pattern alert (the newest); the count says how many there were.
MAX_LISTED = 20
#: A store's history counts as a baseline once it spans at least this long.
MIN_HISTORY_SECONDS = 86400.0
#: An open pattern alert's stored list, count and text are refreshed at most this often as items
#: fold in (its detail reads them live), so a burst costs each item one insert, not a row update.
TOUCH_SECONDS = 60.0
# A category id is any well-formed one (as actions' taxonomy accepts): a rule may name a category
# that is published later; until then it matches nothing (`PatternWatch.unpublished`).
_RULE = re.compile(r"^(?P<category>\*|[a-z][a-z0-9_]{0,39})=(?P<count>\d+)/(?P<window>\d+)(?P<unit>[smh]?)$")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600}


@dataclass(frozen=True, slots=True)
class PatternRule:
    """At least `count` different customers within `window_seconds`."""

    count: int
    window_seconds: int


def parse_rules(text: str) -> dict[str, PatternRule]:
    """`*=3/60m,food_safety=1/60m` → {category (or `*` for every other one): rule}; an empty text
    turns pattern alerts off. ValueError naming the part that is wrong."""
    rules: dict[str, PatternRule] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        match = _RULE.match(part.replace(" ", ""))
        if match is None:
            raise ValueError(f"{part!r}: write category=count/window, e.g. *=3/60m or food_safety=1/60m")
        category = match["category"]
        count, window = int(match["count"]), int(match["window"]) * _UNIT[match["unit"]]
        if window <= 0:
            raise ValueError(f"{part!r}: the window must be longer than zero (e.g. {category}={count}/60m)")
        if count < 1:
            raise ValueError(f"{part!r}: the count must be at least 1")
        rules[category] = PatternRule(count, window)
    return rules


@dataclass(frozen=True, slots=True)
class PatternWatch:
    """The configured rules and the baseline: a store's usual rate of a category over the last
    `baseline_days` (when it has at least a day of history) times `baseline_factor` raises the
    threshold above the rule's count, so a store that usually gets 10 an hour does not page at 3."""

    rules: dict[str, PatternRule]
    baseline_days: float = 28.0
    baseline_factor: float = 1.5
    repush_seconds: float = 300.0

    def rule_for(self, category: str) -> PatternRule | None:
        return self.rules.get(category) or self.rules.get("*")

    def unpublished(self, taxonomy: Taxonomy) -> list[str]:
        """The rules' categories that `taxonomy` does not accept (not published yet, or retired):
        those rules wait, matching nothing, until the category is published."""
        return sorted(c for c in self.rules if c != "*" and not taxonomy.accepts(c))


@dataclass(frozen=True, slots=True)
class Spike:
    """A window that reached its threshold with no pattern alert open: `customers` different
    customers since `since`; `item` is the one that tipped it."""

    store_id: str
    category: str
    since: float
    customers: int
    threshold: int
    usual: float | None  # the store's usual items per window, when it has history
    item: dict[str, Any]

    @property
    def trigger_feedback_id(self) -> str:
        return str(self.item["feedback_id"])


@dataclass(frozen=True, slots=True)
class PatternOutcome:
    """A pattern alert opened or updated: the alert (transient), whom it paged, how many pushes."""

    alert: Alert
    recipients: list[Candidate]
    deliveries: int
    created: bool


_ITEM_INSERT = Prepared(lambda dialect: insert_ignore(dialect, Base.metadata.tables["pattern_items"]))
_CUSTOMERS = Prepared(
    select(func.count(func.distinct(PatternItem.customer_key))).where(
        PatternItem.store_id == bindparam("store_id"),
        PatternItem.category == bindparam("category"),
        PatternItem.at >= bindparam("since"),
    )
)
_HISTORY = Prepared(
    select(func.count(), func.min(PatternItem.at)).where(
        PatternItem.store_id == bindparam("store_id"),
        PatternItem.category == bindparam("category"),
        PatternItem.at >= bindparam("start"),
        PatternItem.at < bindparam("until"),
    )
)
_LOCK = Prepared(
    lambda dialect: select(func.pg_advisory_xact_lock(func.hashtextextended(bindparam("key"), 0)))
)
_PATTERN_COLUMNS = (
    Alert.id, Alert.status, Alert.updates, Alert.pushed_at, Alert.priority, Alert.escalation_level,
    Alert.acknowledged_by, Alert.plan, Alert.area_id, Alert.context, Alert.created_at, Alert.updated_at,
)  # fmt: skip
# The store's pattern alert for the category still open and active within the window.
_OPEN_PATTERN = Prepared(newest_open_in_window(select(*_PATTERN_COLUMNS), Alert.kind == "pattern"))
# The newest resolved one within the window: only items after its resolution count anew.
_RESOLVED_PATTERN = Prepared(
    select(func.max(Alert.resolved_at)).where(
        Alert.store_id == bindparam("store_id"),
        Alert.kind == "pattern",
        Alert.category == bindparam("category"),
        Alert.status == "resolved",
        Alert.resolved_at >= bindparam("since"),
    )
)


def lock_window(reader: Reader, store_id: str, category: str) -> None:
    """The store's window of a category, for the transaction (PostgreSQL; SQLite has one writer):
    counting, folding and erasure change its items and its alert one at a time."""
    if reader.dialect.name == "postgresql":
        reader.all(_LOCK, {"key": f"pattern:{store_id}:{category}"})


def record_item_sync(
    reader: Reader,
    *,
    watch: PatternWatch,
    feedback_id: str,
    store: Store,
    category: str,
    customer_key: str,
    alert_id: str | None,
    excerpt: str,
    language: str,
    now: float,
) -> Spike | PatternOutcome | None:
    """Keep one negative item (in the feedback alert's own hop). With the store's pattern alert
    for the category open, fold the item into it (a few indexed statements; re-pushed at most
    every `watch.repush_seconds`): the `PatternOutcome`. Else count the different customers of
    the window: a `Spike` when they reach the threshold (the rule's count, raised by the store's
    baseline), for the caller to open the alert with its plan; None below it."""
    rule = watch.rule_for(category)
    if rule is None:
        return None
    lock_window(reader, store.id, category)
    since = now - rule.window_seconds
    where = {"store_id": store.id, "category": category}
    key = customer_key[:64]
    item = {"feedback_id": feedback_id, "alert_id": alert_id, "at": now, "excerpt": excerpt[:120]}
    open_alert = reader.first(_OPEN_PATTERN, {**where, "since": since})
    if open_alert is not None:
        _ITEM_INSERT.execute(reader, {**where, **item, "customer_key": key})
        return _fold(reader, open_alert, store=store, category=category, language=language,
                     repush_seconds=watch.repush_seconds, now=now)  # fmt: skip
    _ITEM_INSERT.execute(reader, {**where, **item, "customer_key": key})
    customers = int(reader.scalar(_CUSTOMERS, {**where, "since": since}) or 0)
    if customers < rule.count:
        return None
    # The rare path from here: the window reached the rule's count with no alert open.
    resolved_at = reader.scalar(_RESOLVED_PATTERN, {**where, "since": since})
    if resolved_at is not None:  # a resolved alert answered the items before its resolution
        since = max(since, float(resolved_at))
        customers = int(reader.scalar(_CUSTOMERS, {**where, "since": since}) or 0)
        if customers < rule.count:
            return None
    threshold, usual = rule.count, None
    if watch.baseline_days > 0:
        until = now - rule.window_seconds
        start = until - watch.baseline_days * 86400
        row = reader.first(_HISTORY, {**where, "start": start, "until": until})
        if row is not None and row[0] and row[1] is not None and until - row[1] >= MIN_HISTORY_SECONDS:
            usual = row[0] * rule.window_seconds / (until - row[1])
            threshold = max(rule.count, math.ceil(usual * watch.baseline_factor))
    if customers < threshold:
        return None
    return Spike(store.id, category, since, customers, threshold, usual, item)


_WINDOW_ITEMS = Prepared(
    select(PatternItem.feedback_id, PatternItem.alert_id, PatternItem.at, PatternItem.excerpt)
    .where(
        PatternItem.store_id == bindparam("store_id"),
        PatternItem.category == bindparam("category"),
        PatternItem.at >= bindparam("since"),
    )
    .order_by(PatternItem.at.desc())
    .limit(MAX_LISTED)
)
_AREA_SPIKES = Prepared(
    select(func.count())
    .select_from(Alert)
    .where(
        Alert.area_id == bindparam("area_id"),
        Alert.kind == "pattern",
        Alert.category == bindparam("category"),
        Alert.store_id != bindparam("store_id"),
        Alert.status != "resolved",
        Alert.created_at >= bindparam("since"),
    )
)
_FOLD = Prepared(update(Alert).where(Alert.id == bindparam("alert_id")))


def raise_pattern_sync(
    reader: Reader,
    *,
    spike: Spike,
    store: Store,
    plan: Plan,
    language: str,
    repush_seconds: float,
    now: float,
) -> PatternOutcome | None:
    """Open the store's pattern alert for the spike (its plan asked of actions before the hop),
    listing the window's items. Under the same lock as the counting: when another replica opened
    it meanwhile, the tipping item is folded into that one instead."""
    lock_window(reader, spike.store_id, spike.category)
    where = {"store_id": spike.store_id, "category": spike.category}
    open_alert = reader.first(_OPEN_PATTERN, {**where, "since": spike.since})
    if open_alert is not None:
        return _fold(reader, open_alert, store=store, category=spike.category, language=language,
                     repush_seconds=repush_seconds, now=now, touch=True)  # fmt: skip
    items, _ = window_of(reader, store_id=spike.store_id, category=spike.category, since=spike.since)
    window_minutes = max(1, round((now - spike.since) / 60))
    return _open(reader, spike, items=items, customers=spike.customers, store=store, plan=plan,
                 language=language, window_minutes=window_minutes, now=now)  # fmt: skip


def _open(
    reader: Reader,
    spike: Spike,
    *,
    items: list[dict[str, Any]],
    customers: int,
    store: Store,
    plan: Plan,
    language: str,
    window_minutes: int,
    now: float,
) -> PatternOutcome:
    wanted = list(plan.notify_roles) or ["store_manager"]
    area_spike = (
        store.area_id is not None
        and (
            reader.scalar(
                _AREA_SPIKES,
                {
                    "area_id": store.area_id,
                    "category": spike.category,
                    "store_id": store.id,
                    "since": spike.since,
                },
            )
            or 0
        )
        > 0
    )
    if area_spike and "area_manager" not in wanted:
        wanted.append("area_manager")  # the same category spikes at another store of the area
    recipients = route_sync(reader, store=store, wanted=wanted, now=now)
    title, body = masking.pattern_text(
        store_name=store.name, category=spike.category, priority=plan.priority, customers=customers,
        window_minutes=window_minutes, items=items, language=language,
    )  # fmt: skip
    alert = Alert(
        id=uuid7(),
        kind="pattern",
        feedback_id=None,
        store_id=store.id,
        area_id=store.area_id,
        customer_id=None,
        category=spike.category,
        priority=plan.priority,
        status="open",
        title=title,
        body=body,
        feedback={},
        classification=None,
        context=_pattern_context(spike, customers=customers, window_minutes=window_minutes),
        plan=plan.as_stored(),
        degraded=[],
        escalation_level=0,
        created_at=now,
        traceparent=None,
        related_feedback=[],
        updates=0,
        items=items,
        dedupe_key=f"pattern:{store.id}:{spike.category}:{spike.trigger_feedback_id}",
        pushed_at=now,
    )
    deliveries = create_alert_sync(
        reader, alert=alert, plan=plan, store=store, recipients=recipients, now=now
    )
    return PatternOutcome(alert, recipients, deliveries, created=True)


def window_of(
    reader: Reader, *, store_id: str, category: str, since: float
) -> tuple[list[dict[str, Any]], int]:
    """A pattern alert's items since its window began (newest first, at most `MAX_LISTED`) and
    how many different customers raised them: read when its text is refreshed and when staff
    open it, never per item."""
    where = {"store_id": store_id, "category": category, "since": since}
    items = [
        {"feedback_id": r.feedback_id, "alert_id": r.alert_id, "at": r.at, "excerpt": r.excerpt}
        for r in reader.all(_WINDOW_ITEMS, where)
    ]
    return items, int(reader.scalar(_CUSTOMERS, where) or 0)


def _fold(
    reader: Reader,
    open_alert: Any,
    *,
    store: Store,
    category: str,
    language: str,
    repush_seconds: float,
    now: float,
    touch: bool = False,
) -> PatternOutcome | None:
    """An item (already inserted) joins the open pattern alert. Its stored list, count and text
    are refreshed from the window at most every `TOUCH_SECONDS` (the detail reads them live),
    and its recipients pushed again under the same Topic only once `repush_seconds` passed since
    the last push: then the outcome; else None (nothing else written on the hot path)."""
    repush = open_alert.pushed_at is None or now - float(open_alert.pushed_at) >= repush_seconds
    last = float(open_alert.updated_at or open_alert.created_at)
    if not (repush or touch or now - last >= TOUCH_SECONDS):
        return None
    pattern = dict((open_alert.context or {}).get("pattern") or {})
    since = float(pattern.get("since") or open_alert.created_at)
    items, customers = window_of(reader, store_id=store.id, category=category, since=since)
    title, body = masking.pattern_text(
        store_name=store.name, category=category, priority=open_alert.priority, customers=customers,
        window_minutes=int(pattern.get("window_minutes") or 60), items=items, language=language,
    )  # fmt: skip
    change: dict[str, Any] = {
        "items": items,
        "updates": (open_alert.updates or 0) + 1,
        "updated_at": now,
        "title": title,
        "body": body,
        "context": {"known": False, "pattern": {**pattern, "customers": customers}},
    }
    if repush:
        change["pushed_at"] = now
    _FOLD.execute(reader, {**change, "alert_id": open_alert.id})
    if not repush:
        return None
    alert = Alert(
        id=open_alert.id, kind="pattern", feedback_id=None, store_id=store.id, area_id=open_alert.area_id,
        category=category, priority=open_alert.priority, status=open_alert.status,
        escalation_level=open_alert.escalation_level, acknowledged_by=open_alert.acknowledged_by,
        plan=open_alert.plan, created_at=open_alert.created_at, **change,
    )  # fmt: skip
    staff, deliveries = page_again(reader, alert=alert, store=store, now=now)
    return PatternOutcome(alert, staff, deliveries, created=False)


def _pattern_context(spike: Spike, *, customers: int, window_minutes: int) -> dict[str, Any]:
    """A pattern alert's `context` (served as `customer`): no one customer, but the window."""
    return {
        "known": False,
        "pattern": {
            "since": spike.since,
            "customers": customers,
            "window_minutes": window_minutes,
            "threshold": spike.threshold,
            "usual_per_window": round(spike.usual, 2) if spike.usual is not None else None,
        },
    }


def customer_key(customer_id: str | None, feedback_id: str) -> str:
    """Who raised an item, for counting different customers: anonymous items count apart."""
    return customer_id or f"anon:{feedback_id}"


_PRUNE = Prepared(delete(PatternItem).where(PatternItem.at < bindparam("before")))


def prune_sync(reader: Reader, *, watch: PatternWatch, now: float) -> int:
    """Forget items older than the baseline period and the longest window."""
    longest = max((r.window_seconds for r in watch.rules.values()), default=0)
    return int(_PRUNE.execute(reader, {"before": now - longest - watch.baseline_days * 86400}) or 0)
