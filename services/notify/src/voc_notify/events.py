"""Notify's consumers: a received feedback item becomes an alert on the right phones; a resolved
case's follow-up request becomes a message to its customer (`follow_ups`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from nats.aio.msg import Msg
from sqlalchemy import bindparam, select

from voc.actions.v1 import actions_pb2
from voc.common.v1 import common_pb2
from voc.events.v1 import events_pb2
from voc_notify import alerts, arrivals, follow_ups, metrics, patterns, tombstones, views
from voc_notify.alerts import NewAlert
from voc_notify.clients import Upstreams, customer_from_proto
from voc_notify.facts import AlertInput, CustomerContext, Feedback, Plan
from voc_notify.models import STORE_COLUMNS, Alert, Store, processed_table
from voc_notify.patterns import PatternOutcome, PatternWatch, Spike
from voc_notify.stream import AlertBroker
from voc_notify.webhooks.enqueue import enqueue_sync
from voc_notify.workers import DeliveryWorker, lease_alert_deliveries
from voc_platform import dbsync, telemetry
from voc_platform.bus import ConsumerSpec
from voc_platform.db import Database
from voc_platform.dbsync import Prepared, Reader
from voc_platform.masking import mask_names, mask_text
from voc_platform.outbox import mark_processed, mark_processed_sync, wake_relays
from voc_platform.records import copy_fields

log = logging.getLogger(__name__)
CONSUMER = "notify-alerts"
FOLLOW_UP_CONSUMER = "notify-follow-ups"
ARRIVALS_CONSUMER = "notify-arrivals"

_ALERT_FOR_FEEDBACK = Prepared(select(Alert.id).where(Alert.feedback_id == bindparam("feedback_id")))
_STORE = Prepared(
    select(*(getattr(Store, key) for key in STORE_COLUMNS)).where(Store.id == bindparam("store_id"))
)


def _before_upstreams(reader: Reader, feedback_id: str, store_id: str) -> tuple[bool, Store | None]:
    """(the feedback already has its alert, the store as a transient object) in one hop."""
    if reader.scalar(_ALERT_FOR_FEEDBACK, {"feedback_id": feedback_id}) is not None:
        return True, None
    return False, _store_of(reader, store_id)


def _store_of(reader: Reader, store_id: str) -> Store | None:
    """The store as a transient object (None when the directory does not have it)."""
    row = reader.first(_STORE, {"store_id": store_id})
    return Store(**row._asdict()) if row is not None else None


def feedback_of(event: events_pb2.FeedbackReceived, *, names: tuple[str, ...] = ()) -> Feedback:
    """The event's feedback; `names` (the customer's, as given and as on file) are masked in the
    text a lock screen may quote."""
    facts = event.facts
    names = (event.customer.name, *names)
    masked = mask_names(event.text, *names) if any(names) else event.text
    # The facts' fields of the same names (store, channel, category, severity, sentiment, score,
    # language, touchpoint; +0.4 µs against naming each), and what the event carries beside them.
    return copy_fields(
        Feedback,
        facts,
        id=facts.feedback_id,
        text=event.text,
        ratings={f.name: value for f, value in facts.ratings.ListFields()},
        received_at_ms=event.received_at_ms,
        confidence=event.confidence if event.HasField("confidence") else None,
        category_confidence=event.category_confidence if event.HasField("category_confidence") else None,
        model_version=event.model_version,
        uncertain=event.uncertain,
        lock_text=masked if masked != event.text else "",
        reopens_id=event.reopens_id,
    )


def _without_customer(event: events_pb2.FeedbackReceived) -> events_pb2.FeedbackReceived:
    """The event without who sent it or their words (an erased customer's item)."""
    bare = events_pb2.FeedbackReceived()
    bare.CopyFrom(event)
    bare.ClearField("customer")
    bare.text = ""
    return bare


def upstream_facts(event: events_pb2.FeedbackReceived) -> common_pb2.FeedbackFacts:
    """The facts profile and actions are asked with: the event's, with the case an unhappy
    follow-up answer reopens, so profile counts the answer as that incident, not another
    complaint, even before it has consumed the answer's event."""
    if not event.reopens_id or event.facts.reopens_id:
        return event.facts
    facts = common_pb2.FeedbackFacts()
    facts.CopyFrom(event.facts)
    facts.reopens_id = event.reopens_id
    return facts


class AlertConsumer:
    """`voc.feedback.received` → customer context and plan from upstream → the alert (or the
    repeat folded into its open alert) in one write hop → live event and first pushes."""

    def __init__(
        self,
        database: Database,
        upstreams: Upstreams,
        broker: AlertBroker,
        delivery: DeliveryWorker,
        *,
        dedupe_window: float,
        watch: PatternWatch | None = None,
    ) -> None:
        self.database, self.upstreams, self.broker, self.delivery = database, upstreams, broker, delivery
        self.dedupe_window = dedupe_window
        self.watch = watch if watch is not None and watch.rules else None

    async def handle(self, msg: Msg) -> None:
        event = events_pb2.FeedbackReceived.FromString(msg.data)
        facts = event.facts
        event_id = (msg.headers or {}).get("Nats-Msg-Id", facts.feedback_id)
        has_alert, store = await dbsync.read(
            self.database, _before_upstreams, facts.feedback_id, facts.store_id
        )
        if has_alert:
            return  # redelivery of an event that already made its alert
        given = await self._gather(event, store)
        # A new alert (most feedback), or a repeat complaint folded into its open alert, is
        # prepared statements only: one dbsync write hop.
        created, leased, pattern = await alerts.write_alert(
            self.database, self._write, facts=given, event=event, event_id=event_id, now=time.time()
        )
        if created is None:
            return
        metrics.alert_written(priority=created.alert.priority, merged=created.merged, degraded=given.degraded)
        wake_relays()
        self._announce(created, given)
        if isinstance(pattern, PatternOutcome):  # the item folded into the open pattern alert
            self._announce_pattern(pattern)
        await self._send_first_pushes(created, leased)
        if isinstance(pattern, Spike):
            await self._open_pattern(pattern, given)

    async def _gather(self, event: events_pb2.FeedbackReceived, store: Store | None) -> AlertInput:
        """The alert's input: the customer (profile first: the plan depends on who it is), the
        plan, and what was degraded on the way."""
        facts = upstream_facts(event)
        language = store.language if store else (facts.language or "ko")
        context, profile_down = await self.upstreams.customer_context(identifiers=event.customer, facts=facts)
        plan, actions_down = await self.upstreams.action_plan(
            facts=facts, context=context, store=store, language=language
        )
        carrier: dict[str, str] = {}
        telemetry.inject(carrier)
        return AlertInput(
            feedback=feedback_of(
                event, names=(context.name,) if context is not None and context.found else ()
            ),
            # The store read before the gRPC calls (read-only here; stores change rarely).
            store=store
            or Store(id=facts.store_id, name=facts.store_id, area_id=None, timezone="UTC", language=language),
            customer=customer_from_proto(context),
            plan=plan,
            language=language,
            degraded=tuple(
                name
                for name, down in (
                    ("profile_unavailable", profile_down),
                    ("actions_unavailable", actions_down),
                )
                if down
            ),
            traceparent=carrier.get("traceparent"),
        )

    def _write(
        self,
        reader: Reader,
        *,
        facts: AlertInput,
        event: events_pb2.FeedbackReceived,
        event_id: str,
        now: float,
    ) -> tuple[NewAlert | None, list[Any], Spike | PatternOutcome | None]:
        """The hop: the event marked processed, its webhook deliveries (feedback.received and
        .classified) enqueued, the alert written, a negative item counted for pattern alerts (or
        folded into the open one), the first pushes leased."""
        if not mark_processed_sync(reader, processed_table, consumer=CONSUMER, event_id=event_id):
            return None, [], None
        # Its customer erased before this event reached us (a consumer that lagged): no copy of
        # their words in the alert, the pattern list or the webhooks.
        erased = tombstones.erased_sync(reader, tombstones.feedback_key(facts.feedback.id))
        enqueue_sync(
            reader, [("voc.feedback.received", _without_customer(event) if erased else event)], now=now
        )
        created = alerts.new_alert_sync(
            reader, facts=facts, now=now, dedupe_window=self.dedupe_window, erased=erased
        )
        if created is None:
            return None, [], None
        pattern = self._count(reader, created, facts, now, erased=erased) if self.watch is not None else None
        # The first pushes are leased here and sent right after the commit, by this handler:
        # no worker wake and no separate lease transaction on the critical path.
        leased = (
            lease_alert_deliveries(reader, alert_id=created.alert.id, now=now) if created.deliveries else []
        )
        if isinstance(pattern, PatternOutcome) and pattern.deliveries:
            leased += lease_alert_deliveries(reader, alert_id=pattern.alert.id, now=now)
        return created, leased, pattern

    def _count(
        self, reader: Reader, created: NewAlert, facts: AlertInput, now: float, *, erased: bool = False
    ) -> Spike | PatternOutcome | None:
        """A negative item joins its store's pattern window: an insert and an indexed count, or
        a few indexed statements folding it into the open pattern alert."""
        feedback = facts.feedback
        if self.watch is None or feedback.sentiment != "negative":
            return None
        return patterns.record_item_sync(
            reader,
            watch=self.watch,
            feedback_id=feedback.id,
            store=facts.store,
            category=feedback.category,
            customer_key=patterns.customer_key(facts.customer.customer_id, feedback.id),
            alert_id=created.alert.id,
            excerpt="" if erased else mask_text(feedback.quoted() or "", 80),
            language=facts.language,
            now=now,
        )

    def _announce_pattern(self, outcome: PatternOutcome) -> None:
        alert = outcome.alert
        self.broker.announce(
            "alert.created" if outcome.created else "alert.updated", alert, views.alert_summary(alert)
        )

    async def _open_pattern(self, spike: Spike, given: AlertInput) -> None:
        """The spike's pattern alert: its plan asked of actions, then opened (or, when another
        replica opened it meanwhile, the item folded into that one) and pushed at once."""
        assert self.watch is not None
        plan, _ = await self.upstreams.kind_plan(
            "pattern",
            facts=common_pb2.FeedbackFacts(
                category=spike.category, sentiment="negative", store_id=spike.store_id,
                severity=given.feedback.severity, language=given.language,
            ),
            customer=actions_pb2.CustomerFacts(),
            store=given.store,
            language=given.language,
            fallback_roles=("store_manager",),
        )  # fmt: skip
        outcome, leased = await dbsync.write(
            self.database, self._raise, spike=spike, store=given.store, plan=plan, language=given.language
        )
        if outcome is None:
            return
        wake_relays()
        self._announce_pattern(outcome)
        alert = outcome.alert
        log.info("pattern alert %s %s: %s at %s, %d customers, %d pushes", alert.id,
                 "opened" if outcome.created else "updated", spike.category, spike.store_id, spike.customers,
                 outcome.deliveries)  # fmt: skip
        await self._send_first_pushes(NewAlert(alert, outcome.recipients, outcome.deliveries), leased)

    def _raise(
        self, reader: Reader, *, spike: Spike, store: Store, plan: Plan, language: str
    ) -> tuple[PatternOutcome | None, list[Any]]:
        assert self.watch is not None
        now = time.time()
        outcome = patterns.raise_pattern_sync(
            reader, spike=spike, store=store, plan=plan, language=language,
            repush_seconds=self.watch.repush_seconds, now=now,
        )  # fmt: skip
        if outcome is None or not outcome.deliveries:
            return outcome, []
        return outcome, lease_alert_deliveries(reader, alert_id=outcome.alert.id, now=now)

    def _announce(self, created: NewAlert, given: AlertInput) -> None:
        alert = created.alert
        self.broker.announce(
            "alert.updated" if created.merged else "alert.created", alert, views.alert_summary(alert)
        )
        log.info(
            "alert %s %s feedback %s: %d recipients, %d pushes%s",
            alert.id,
            "updated by" if created.merged else "for",
            given.feedback.id,
            len(created.recipients),
            created.deliveries,
            f" (degraded: {', '.join(given.degraded)})" if given.degraded else "",
        )

    async def _send_first_pushes(self, created: NewAlert, leased: list[Any]) -> None:
        if len(leased) < created.deliveries:
            self.delivery.wake()  # held for quiet hours: the worker sends them when they are due
        if leased:
            try:
                await self.delivery.send_leased(leased)
            except Exception:
                # The alert is committed; its leased pushes go out with the worker's retry
                # when the lease runs out. Redelivering the event would change nothing.
                log.exception("first pushes of alert %s failed; the worker retries them", created.alert.id)


class FollowUpConsumer:
    """`voc.feedback.follow_up_requested` → one follow-up message per case, due after the delay
    and out of quiet hours; the worker is woken for one due at once. (An erasure drops the
    customer's pending messages in `erasure`, with the rest of notify's copies.)"""

    def __init__(self, database: Database, wake: Callable[[], None]) -> None:
        self.database, self.wake = database, wake

    async def handle(self, msg: Msg) -> None:
        request = events_pb2.FollowUpRequested.FromString(msg.data)
        event_id = (msg.headers or {}).get("Nats-Msg-Id", f"follow-up-requested:{request.feedback_id}")
        now = time.time()
        async with self.database.transaction() as session:
            if not await mark_processed(
                session, processed_table, consumer=FOLLOW_UP_CONSUMER, event_id=event_id
            ):
                return
            row = await follow_ups.schedule(session, request=request, now=now)
        if row is not None and row.next_attempt_at <= now:
            self.wake()


class ArrivalConsumer:
    """`voc.profile.customer_arrived` → the heads-up plan from actions → one heads-up alert for
    the store's staff on duty (at most one per customer, store and day) → live event and pushes."""

    def __init__(
        self, database: Database, upstreams: Upstreams, broker: AlertBroker, delivery: DeliveryWorker
    ) -> None:
        self.database, self.upstreams, self.broker, self.delivery = database, upstreams, broker, delivery

    async def handle(self, msg: Msg) -> None:
        event = events_pb2.CustomerArrived.FromString(msg.data)
        arrival = arrivals.arrival_of(event)
        event_id = (msg.headers or {}).get("Nats-Msg-Id", f"arrived:{arrival.visit_id}")
        store = await dbsync.read(self.database, _store_of, arrival.store_id)
        store = store or Store(
            id=arrival.store_id, name=arrival.store_id, area_id=None, timezone="UTC", language="ko"
        )
        language = store.language or "ko"
        last = arrival.last_contact
        # The customer's story, as a complaint's alert has it: without it the app read empty
        # visits and contacts as "first contact" on a repeat complainer (apps review).
        context, profile_down = await self.upstreams.context_of(arrival.customer_id)
        plan, _ = await self.upstreams.kind_plan(
            "heads_up",
            facts=common_pb2.FeedbackFacts(
                category=arrival.category, sentiment=last.sentiment if last else "", store_id=store.id,
                channel=last.channel if last else "", language=language,
            ),
            customer=actions_pb2.CustomerFacts(
                tier=arrival.tier, known=True, name=arrival.name or arrival.masked_name,
                signals={
                    "vip": arrival.vip,
                    "churn_risk": arrival.churn_risk,
                    "repeat_issue": arrival.repeat_issue,
                },
            ),
            store=store,
            language=language,
            fallback_roles=("staff", "shift_lead"),
        )  # fmt: skip
        created, leased = await dbsync.write(
            self.database,
            self._write,
            arrival=arrival,
            store=store,
            plan=plan,
            language=language,
            event_id=event_id,
            customer=customer_from_proto(context) if context is not None and context.found else None,
            degraded=("profile_unavailable",) if profile_down else (),
        )
        if created is None:
            return
        wake_relays()
        alert = created.alert
        self.broker.announce("alert.created", alert, views.alert_summary(alert))
        log.info(
            "heads-up %s: customer %s at %s, %d pushes",
            alert.id,
            arrival.customer_id,
            store.id,
            created.deliveries,
        )
        if leased:
            try:
                await self.delivery.send_leased(leased)
            except Exception:
                log.exception("first pushes of heads-up %s failed; the worker retries them", alert.id)

    def _write(
        self,
        reader: Reader,
        *,
        arrival: arrivals.Arrival,
        store: Store,
        plan: Plan,
        language: str,
        event_id: str,
        customer: CustomerContext | None,
        degraded: tuple[str, ...],
    ) -> tuple[NewAlert | None, list[Any]]:
        if not mark_processed_sync(reader, processed_table, consumer=ARRIVALS_CONSUMER, event_id=event_id):
            return None, []
        if tombstones.erased_sync(reader, tombstones.customer_key(arrival.customer_id)):
            # Erased before this arrival reached us (a consumer that lagged): nobody to announce.
            log.info("heads-up of an erased customer's visit %s not made", arrival.visit_id)
            return None, []
        now = time.time()
        created = arrivals.heads_up_sync(
            reader, arrival=arrival, store=store, plan=plan, language=language, now=now,
            customer=customer, degraded=degraded,
        )  # fmt: skip
        if created is None or not created.deliveries:
            return created, []
        return created, lease_alert_deliveries(reader, alert_id=created.alert.id, now=now)


def consumers(
    database: Database,
    upstreams: Upstreams,
    broker: AlertBroker,
    delivery: DeliveryWorker,
    *,
    dedupe_window: float = alerts.DEFAULT_DEDUPE_WINDOW_SECONDS,
    wake_follow_ups: Callable[[], None] = lambda: None,
    watch: PatternWatch | None = None,
) -> list[ConsumerSpec]:
    consumer = AlertConsumer(database, upstreams, broker, delivery, dedupe_window=dedupe_window, watch=watch)
    follow_up = FollowUpConsumer(database, wake_follow_ups)
    arrivals_consumer = ArrivalConsumer(database, upstreams, broker, delivery)
    return [
        ConsumerSpec(durable=CONSUMER, subjects=["voc.feedback.received"], handler=consumer.handle),
        ConsumerSpec(
            durable=FOLLOW_UP_CONSUMER,
            subjects=["voc.feedback.follow_up_requested"],
            handler=follow_up.handle,
        ),
        ConsumerSpec(
            durable=ARRIVALS_CONSUMER,
            subjects=["voc.profile.customer_arrived"],
            handler=arrivals_consumer.handle,
        ),
    ]
