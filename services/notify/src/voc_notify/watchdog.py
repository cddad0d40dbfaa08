"""The delivery watchdog (#23): an urgent push the push service accepted but no service worker
reported shown within `VOC_NOTIFY_WATCHDOG_SECONDS` makes its device suspect; the staff member's
other devices get the page, and when none of their devices can still show it, the fallback
channel (e-mail) carries it. A shown receipt clears the suspicion (`lifecycle.record_receipt`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from voc_notify import metrics
from voc_notify.alerts import delivery_rows
from voc_notify.fallback import FallbackChannel, FallbackFailed, FallbackPage
from voc_notify.masking import push_text
from voc_notify.models import Alert, Delivery, Device, EscalationTimer, Staff, Store
from voc_notify.models import FallbackPage as FallbackRow
from voc_notify.settings import Settings
from voc_platform.db import Database
from voc_platform.periodic import every

log = logging.getLogger(__name__)
PASS_SIZE = 200
# How far back a pass looks. A pass runs every second and claims what fell due since the last
# one, so older unshown pushes were either watched already or missed during an outage, when the
# alert's escalation has carried it on; without a bound each pass would walk every unshown push
# ever accepted (non-urgent ones are never claimed), a scan that grows for as long as notify runs.
HORIZON_SECONDS = 3600.0


@dataclass(frozen=True, slots=True)
class WatchdogPass:
    """What one pass did: deliveries found unshown, devices newly suspect, pushes added on the
    staff members' other devices, fallback pages sent (or failed)."""

    overdue: int = 0
    suspect: int = 0
    repushed: int = 0
    fallbacks: tuple[tuple[str, str, str], ...] = ()  # (alert id, staff id, status)


@dataclass(eq=False, slots=True)
class DeliveryWatchdog:
    database: Database
    settings: Settings
    channel: FallbackChannel | None
    on_new_deliveries: Callable[[], None]

    async def run(self) -> None:
        if self.settings.watchdog_seconds <= 0:
            return
        await every(self.settings.watchdog_poll_seconds, self.check, log=log, failed="watchdog pass failed")

    async def check(self, now: float | None = None) -> WatchdogPass:
        """One pass: overdue deliveries marked watched and their devices suspect, then per staff
        member and alert the other devices paged, or the fallback sent."""
        now = time.time() if now is None else now
        async with self.database.transaction() as session:
            overdue, suspect = await self._claim_overdue(session, now=now)
            repushed, pages = 0, []
            unpaged: list[str] = []
            for alert_id, staff_id in sorted({(d.alert_id, d.staff_id) for d in overdue}):
                added, page = await self._next_step(
                    session, alert_id=alert_id, staff_id=staff_id, now=now, unpaged=unpaged
                )
                repushed += added
                if page is not None:
                    pages.append(page)
        if repushed:
            self.on_new_deliveries()
        fallbacks = tuple([await self._send(page) for page in pages])
        metrics.watchdog_pass(
            overdue=len(overdue),
            suspect=suspect,
            repushed=repushed,
            fallbacks=[status for _, _, status in fallbacks] + unpaged,
        )
        return WatchdogPass(len(overdue), suspect, repushed, fallbacks)

    async def _claim_overdue(self, session: AsyncSession, *, now: float) -> tuple[list[Delivery], int]:
        """Deliveries of open urgent alerts that will not be shown: accepted and not shown for
        the watchdog's time, or for half the time left to the alert's next ack escalation when
        that is sooner (so the person's other phones and the fallback get the page before the
        alert climbs to the next roles), or failed; each is watched once.

        Two queries, each led by an index, because this runs every second beside the alert hop:
        one condition over every unshown delivery (an OR with a correlated timer look-up) made
        each pass scan all of them, and at 100 feedback/s the growing scan held SQLite's write
        lock long enough to stall intake (p95 1 s). The sooner case reads only the deliveries
        accepted within the watchdog's time (the others are the first query's), each with its
        alert's pending ack timer (`ix_timers_alert_kind_status`); a delivery accepted after
        `now - watchdog` can only be half-way to a timer due before `now + watchdog`."""
        watch = self.settings.watchdog_seconds
        candidates = (
            select(Delivery)
            .join(Alert, Alert.id == Delivery.alert_id)
            .where(
                Alert.priority == "urgent",
                Alert.status == "open",
                Delivery.watched_at.is_(None),
                Delivery.shown_at.is_(None),
            )
            .order_by(Delivery.accepted_at)
            .limit(PASS_SIZE)
        )
        overdue_query = candidates.where(
            or_(
                and_(
                    Delivery.status == "accepted",
                    Delivery.accepted_at <= now - watch,
                    Delivery.accepted_at > now - watch - HORIZON_SECONDS,
                ),
                Delivery.status.in_(("failed", "gone")),
            )
        )
        next_ack_is_near = (
            select(EscalationTimer.id)
            .where(
                EscalationTimer.alert_id == Delivery.alert_id,
                EscalationTimer.kind == "ack",
                EscalationTimer.status == "pending",
                EscalationTimer.fire_at < now + watch,
                (EscalationTimer.fire_at + Delivery.accepted_at) / 2 <= now,
            )
            .exists()
        )
        sooner_query = candidates.where(
            Delivery.status == "accepted", Delivery.accepted_at > now - watch, next_ack_is_near
        )
        if not self.database.sqlite:
            overdue_query = overdue_query.with_for_update(skip_locked=True, of=Delivery)
            sooner_query = sooner_query.with_for_update(skip_locked=True, of=Delivery)
        found = {d.id: d for d in await session.scalars(overdue_query)}
        if len(found) < PASS_SIZE:
            found.update((d.id, d) for d in await session.scalars(sooner_query))
        overdue = sorted(found.values(), key=lambda d: d.accepted_at or 0.0)[:PASS_SIZE]
        for delivery in overdue:
            delivery.watched_at = now
        unshown = sorted({d.device_id for d in overdue if d.status == "accepted"})
        suspect = 0
        if unshown:
            result = await session.execute(
                update(Device)
                .where(Device.id.in_(unshown), Device.suspect_since.is_(None))
                .values(suspect_since=now)
            )
            suspect = int(getattr(result, "rowcount", 0) or 0)
        return overdue, suspect

    async def _next_step(
        self, session: AsyncSession, *, alert_id: str, staff_id: str, now: float, unpaged: list[str]
    ) -> tuple[int, FallbackPage | None]:
        """The staff member's devices that have not had this alert get it; when none is left that
        could still show it, the fallback page (once per alert and staff member)."""
        deliveries = list(
            await session.scalars(
                select(Delivery).where(Delivery.alert_id == alert_id, Delivery.staff_id == staff_id)
            )
        )
        if any(d.shown_at is not None for d in deliveries):
            return 0, None  # another of their phones showed it: the person has the page
        paged = {d.device_id for d in deliveries}
        others = [
            device
            for device in await session.execute(
                select(Device.id, Device.staff_id).where(Device.staff_id == staff_id).order_by(Device.id)
            )
            if device.id not in paged
        ]
        if others:
            level = max((d.level for d in deliveries), default=0)
            rows = delivery_rows(alert_id, others, level=level, held=None, now=now)
            await session.execute(insert(Delivery), rows)
        in_flight = any(
            d.status == "pending" or (d.status == "accepted" and d.watched_at is None) for d in deliveries
        )
        if others or in_flight:
            return len(others), None
        return 0, await self._fallback_page(
            session, alert_id=alert_id, staff_id=staff_id, now=now, unpaged=unpaged
        )

    async def _fallback_page(
        self, session: AsyncSession, *, alert_id: str, staff_id: str, now: float, unpaged: list[str]
    ) -> FallbackPage | None:
        """The page to send through the fallback channel, recorded once per alert and staff
        member; None when it was recorded already, or when there is no channel (recorded as
        "unavailable" and appended to `unpaged` for the metrics)."""
        if await session.get(FallbackRow, (alert_id, staff_id)) is not None:
            return None
        alert = await session.get(Alert, alert_id)
        staff = await session.get(Staff, staff_id)
        if alert is None or staff is None or not staff.active:
            return None
        channel = self.channel.name if self.channel is not None else "none"
        session.add(
            FallbackRow(
                alert_id=alert_id,
                staff_id=staff_id,
                channel=channel,
                status="sending" if self.channel is not None else "unavailable",
                detail=None if self.channel is not None else "no fallback channel configured (VOC_SMTP_URL)",
                created_at=now,
            )
        )
        if self.channel is None:
            unpaged.append("unavailable")
            log.warning(
                "urgent alert %s not shown on any device of %s and no fallback channel", alert_id, staff_id
            )
            return None
        store = await session.get(Store, alert.store_id)
        title, body = push_text(alert, store=store, language=staff.language)
        return FallbackPage(
            alert_id=alert_id,
            staff_id=staff_id,
            to_address=staff.email,
            language=staff.language,
            title=title,
            body=body,
            url=f"{self.settings.public_url}/#/alerts/{alert_id}",
        )

    async def _send(self, page: FallbackPage) -> tuple[str, str, str]:
        """Send one fallback page after its row committed (a second replica finds the row and
        does not send it again) and record how it went."""
        assert self.channel is not None
        status, detail = "sent", None
        try:
            await self.channel.send(page)
        except FallbackFailed as exc:
            status, detail = "failed", str(exc)[:300]
            log.warning("fallback page for alert %s failed: %s", page.alert_id, detail)
        try:
            async with self.database.transaction() as session:
                await session.execute(
                    update(FallbackRow)
                    .where(FallbackRow.alert_id == page.alert_id, FallbackRow.staff_id == page.staff_id)
                    .values(status=status, detail=detail)
                )
        except IntegrityError:  # the alert was deleted meanwhile
            pass
        return page.alert_id, page.staff_id, status
