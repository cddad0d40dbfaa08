"""Follow-up messages to customers: a resolved case's survey link, sent once by e-mail or
SMS/Alimtalk after the delay feedback asked for, never in the store's quiet hours, never to a
customer who opted out or was erased. Every attempt and decision is published as
`voc.notify.follow_up_sent`, which feedback writes on the case timeline (docs/NOTIFY.md).

`schedule` records the request (one row per case); `FollowUpWorker` leases due rows, asks
profile for consent (true, false = opted out, or never stated) and contact points, sends
through a channel (`channels.mail`, `channels.sms`) and records the outcome with its event in
one transaction. A transient failure is tried again with the push deliveries' back-off
(`webpush.backoff_delay`, its own base and cap) until the link expires; a permanent one fails
once with its reason."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass, field
from datetime import date
from typing import Any, Protocol

from grpc import aio
from sqlalchemy import or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from voc.events.v1 import events_pb2
from voc.profile.v1 import profile_pb2
from voc_notify import duty, metrics, suppressions, tombstones
from voc_notify.channels import SendResult
from voc_notify.channels.mail import Mail, MailSender, mask_address
from voc_notify.channels.sms import SmsMessage, SmsProvider, mask_phone, normalize_phone
from voc_notify.channels.texts import UNNAMED_STORE, render
from voc_notify.models import FollowUpMessage, Store
from voc_notify.publishing import publish
from voc_notify.settings import Settings
from voc_notify.webpush import backoff_delay
from voc_notify.words import LANGUAGES
from voc_platform.db import Database
from voc_platform.records import copy_fields

log = logging.getLogger(__name__)

SUBJECT_SENT = "voc.notify.follow_up_sent"
LEASE_SECONDS = 60.0  # longer than one send's timeout: a crashed worker's rows come back after it
PASS_SIZE = 50
NO_CHANNEL = "no channel configured"
#: A send a worker began and never recorded (it stopped mid-send): by e-mail it may have gone, and
#: SMTP has no idempotency key, so it is not sent again; a gateway dedupes on its key: retried.
UNKNOWN = "the worker stopped while sending; not sent again (at most one message per case)"
OPTED_OUT = "the customer opted out of contact (contact_consent false)"
ERASED = "the customer was erased"
ATTEMPTED = ("sent", "retrying", "failed")
REPORTED = ("delivered", "undelivered")  # what delivery reports say (`delivery_reports`)
MESSAGE_ID_PREFIX = "follow-up."


class ContactLookup(Protocol):
    """Profile's answer on consent and contact points (`clients.Upstreams.contact_points`)."""

    async def contact_points(
        self, customer_id: str, *, email: str = "", phone: str = ""
    ) -> profile_pb2.GetContactPointsResponse: ...


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt (or decision) came to; `next_at` for a retry or a hold."""

    # sent | retrying | failed | not_sent | held; later delivered | undelivered (`delivery_reports`)
    outcome: str
    reason: str = ""
    channel: str = ""
    recipient: str = ""
    next_at: float | None = None
    #: The lease the row is held under when recorded (a claimed send's own; None: the pass's).
    lease: float | None = None
    #: A failed e-mail whose address the recipient's server refused for good (`hard_bounce`).
    undeliverable: bool = False

    @property
    def settled(self) -> bool:
        return self.outcome in ("sent", "failed", "not_sent", *REPORTED)


def message_id(feedback_id: str) -> str:
    """The id a follow-up is sent under: the e-mail's Message-ID (before "@domain"), the SMS
    gateway's `message_id` and idempotency key; reports name the message by it."""
    return f"{MESSAGE_ID_PREFIX}{feedback_id}"


def feedback_id_of(reported: str, *, mail_domain: str) -> str | None:
    """The feedback id of a message id a report names: `follow-up.<id>` (as the gateway got it)
    or `<follow-up.<id>@domain>` (the Message-ID a bounce quotes, whose domain must be ours:
    anyone can mail the bounce address). None for any other message."""
    local, at, domain = reported.strip().strip("<>").partition("@")
    if at and domain.lower() != mail_domain.lower():
        return None
    if not local.startswith(MESSAGE_ID_PREFIX):
        return None
    feedback_id = local.removeprefix(MESSAGE_ID_PREFIX)
    return feedback_id if 0 < len(feedback_id) <= 36 else None


def outside_quiet_hours(store: Store | None, at: float) -> float:
    """`at`, or the end of the store's quiet hours when `at` falls inside them."""
    if store is None:
        return at
    until = duty.quiet_until(
        quiet_start=store.quiet_start, quiet_end=store.quiet_end, timezone=store.timezone, now=at
    )
    return until if until is not None else at


async def schedule(
    session: AsyncSession, *, request: events_pb2.FollowUpRequested, now: float
) -> FollowUpMessage | None:
    """Record the request once per case (a second one for the same case changes nothing): due
    at `send_after`, moved to the end of the store's quiet hours. None when already recorded."""
    store = await session.get(Store, request.store_id)
    erased = await tombstones.erased(session, tombstones.feedback_key(request.feedback_id))
    due = max(now, request.send_after_ms / 1000)
    send_at = outside_quiet_hours(store, due)
    language, url = request.language, request.url
    if language not in LANGUAGES:
        # Feedback in no language of ours (a rating without words): the store's, and the survey
        # page is told so through its link.
        language = store.language if store is not None and store.language in LANGUAGES else "ko"
        url = f"{url}{'&' if '?' in url else '?'}lang={language}"
    values: dict[str, Any] = {
        "feedback_id": request.feedback_id,
        "store_id": request.store_id,
        "customer_id": request.customer_id or None,
        "url": url,
        "language": language,
        "again": request.again,
        # What cannot be an address or a number is not kept (profile's are asked at send time).
        "email": request.email if 0 < len(request.email) <= 254 and not erased else None,
        "phone": request.phone if 0 < len(request.phone) <= 32 and not erased else None,
        # Asked for after the customer's erasure (a request that waited on the bus): never sent.
        "status": "not_sent" if erased else "pending",
        "last_error": ERASED if erased else None,
        "attempts": 0,
        "next_attempt_at": send_at,
        "held_until": send_at if send_at > due else None,
        "expires_at": request.expires_at_ms / 1000 if request.expires_at_ms else now + 14 * 86400,
        "created_at": now,
    }
    dialect = (await session.connection()).dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    result = await session.execute(
        insert(FollowUpMessage).values(**values).on_conflict_do_nothing(index_elements=["feedback_id"])
    )
    if not getattr(result, "rowcount", 0):
        return None
    row = await session.get(FollowUpMessage, request.feedback_id)
    assert row is not None
    if erased:
        await publish_outcome(session, row, Outcome("not_sent", ERASED), at=now)
        return row
    if row.held_until is not None:
        held = Outcome("held", "store quiet hours", next_at=row.held_until)
        await publish_outcome(session, row, held, at=now)
    return row


def last_whole_day(expires_at: float, timezone: str | None) -> date:
    """The last whole day a link works, in the store's zone (the mail's "until"): it dies at the
    resolution's time of day, so the day it dies is not one to promise."""
    return duty.local_time(timezone, expires_at - 86400).date()


async def forget_customer(
    session: AsyncSession, *, customer_id: str, feedback_ids: Sequence[str] = (), now: float
) -> int:
    """Erasure (`voc.profile.customer_erased`): the customer's pending messages are not sent
    and the contact copied from their feedback is dropped at once. Theirs are those with their
    customer id and those of their feedback items (asked for before profile tied the item to
    them). How many were pending."""
    whose = [FollowUpMessage.customer_id == customer_id] if customer_id else []
    whose += [FollowUpMessage.feedback_id.in_(list(feedback_ids))] if feedback_ids else []
    if not whose:
        return 0
    # What a mail server said of a settled message's address (a bounce's diagnostic may name them).
    await session.execute(
        update(FollowUpMessage)
        .where(
            or_(*whose),
            FollowUpMessage.status.not_in(("pending", "sending")),
            FollowUpMessage.last_error.is_not(None),
        )
        .values(last_error=None)
        .execution_options(synchronize_session=False)
    )
    # The address's key: a bounce after the erasure suppresses nothing of theirs.
    await session.execute(
        update(FollowUpMessage)
        .where(or_(*whose), FollowUpMessage.recipient_key.is_not(None))
        .values(recipient_key=None)
        .execution_options(synchronize_session=False)
    )
    query = select(FollowUpMessage).where(or_(*whose), FollowUpMessage.status.in_(("pending", "sending")))
    if (await session.connection()).dialect.name == "postgresql":
        # A worker claiming or recording one of them waits, then finds it settled.
        query = query.with_for_update()
    rows = list(await session.scalars(query))
    pending = 0
    for row in rows:
        row.email, row.phone = None, None
        if customer_id and not row.customer_id:  # a retry asks profile by the erased customer
            row.customer_id = customer_id
        if row.status == "pending":
            row.status, row.last_error = "not_sent", ERASED
            await publish_outcome(session, row, Outcome("not_sent", ERASED), at=now)
            pending += 1
        # One being sent right now keeps its status (its record lands as it comes) but not the
        # contact. Settled ones keep no contact already; masked recipients stay (they name nobody).
    return pending


@dataclass(eq=False)
class FollowUpWorker:
    """Sends due follow-up messages; state in the database (leases, attempts, the `sending`
    claim), so a restart or a second replica loses and duplicates nothing. A send cut off before
    its outcome was recorded is not sent again by e-mail (at most one per case) and is by SMS
    (the gateway deduplicates): `_settle_interrupted`."""

    database: Database
    settings: Settings
    _: KW_ONLY
    contacts: ContactLookup
    mail: MailSender | None
    sms: SmsProvider | None
    _wake: asyncio.Event = field(default_factory=asyncio.Event, init=False, repr=False)

    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(name for name, sender in (("email", self.mail), ("sms", self.sms)) if sender)

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.follow_up_poll_seconds)
            self._wake.clear()
            try:
                while await self.process_due() >= PASS_SIZE:
                    pass
            except Exception:
                log.exception("follow-up pass failed")
                await asyncio.sleep(0.5)

    async def process_due(self, *, now: float | None = None) -> int:
        """Lease the due messages (one transaction), then attempt each and record it."""
        now = now or time.time()
        await self._settle_interrupted(now)
        async with self.database.transaction() as session:
            query = (
                select(FollowUpMessage)
                .where(FollowUpMessage.status == "pending", FollowUpMessage.next_attempt_at <= now)
                .order_by(FollowUpMessage.next_attempt_at)
                .limit(PASS_SIZE)
            )
            if (await session.connection()).dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            rows = list(await session.scalars(query))
            for row in rows:
                row.next_attempt_at = now + LEASE_SECONDS
            leased = [(row.feedback_id, row.next_attempt_at) for row in rows]
        for feedback_id, lease in leased:
            try:
                await self.attempt(feedback_id, lease=lease)
            except Exception:
                log.exception("follow-up of feedback %s failed; tried again after its lease", feedback_id)
        return len(leased)

    async def _settle_interrupted(self, now: float) -> None:
        """Messages left `sending` past their lease: a worker stopped between the send and its
        record. E-mail: failed (`UNKNOWN`), never sent twice; SMS: pending again (the gateway's
        idempotency key makes a second request the same message)."""
        async with self.database.transaction() as session:
            rows = list(
                await session.scalars(
                    select(FollowUpMessage).where(
                        FollowUpMessage.status == "sending", FollowUpMessage.next_attempt_at <= now
                    )
                )
            )
            seen = [
                (row.feedback_id, row.next_attempt_at, row.channel or "", row.recipient or "") for row in rows
            ]
        for feedback_id, lease, channel, recipient in seen:
            # Conditional on the lease read: of two replicas settling one row, one does (and
            # publishes once); a send still recording under that lease settles it first.
            if channel == "sms":
                change: dict[str, Any] = {"status": "pending", "next_attempt_at": now}
            else:
                change = {"status": "failed", "email": None, "phone": None, "last_error": UNKNOWN}
            async with self.database.transaction() as session:
                done = await session.execute(
                    update(FollowUpMessage)
                    .where(
                        FollowUpMessage.feedback_id == feedback_id,
                        FollowUpMessage.status == "sending",
                        FollowUpMessage.next_attempt_at == lease,
                    )
                    .values(**change)
                    .execution_options(synchronize_session=False)
                )
                if not getattr(done, "rowcount", 0) or channel == "sms":
                    continue
                row = await session.get(FollowUpMessage, feedback_id)
                assert row is not None
                await publish_outcome(session, row, Outcome("failed", UNKNOWN, channel, recipient), at=now)
            metrics.follow_up(channel=channel, outcome="failed")
            log.warning("follow-up of feedback %s: %s", feedback_id, UNKNOWN)

    async def attempt(self, feedback_id: str, *, lease: float) -> Outcome | None:
        async with self.database.session() as session:
            row = await session.get(FollowUpMessage, feedback_id)
            if row is None or row.status != "pending" or row.next_attempt_at != lease:
                return None  # settled meanwhile, or leased again by another worker
            store = await session.get(Store, row.store_id)
            message = _Snapshot.of(row, store, lease=lease)
        outcome = await self._decide_and_send(message)
        if outcome is not None:
            await self._record(
                feedback_id, lease=outcome.lease or lease, outcome=outcome, expires_at=message.expires_at
            )
        return outcome

    async def _claim(
        self, m: _Snapshot, *, channel: str, recipient: str, recipient_key: str = ""
    ) -> _Snapshot | None:
        """Right before the network call: the leased row becomes `sending` under a lease of its
        own (a pass sends one message after another, so the pass's lease may be nearly gone), so
        a worker that stops now is not taken for one that never began. None when it was settled
        meanwhile (an erasure, another worker): then nothing is sent."""
        lease = time.time() + LEASE_SECONDS
        async with self.database.transaction() as session:
            claimed = await session.execute(
                update(FollowUpMessage)
                .where(
                    FollowUpMessage.feedback_id == m.feedback_id,
                    FollowUpMessage.status == "pending",
                    FollowUpMessage.next_attempt_at == m.lease,
                )
                .values(
                    status="sending",
                    channel=channel,
                    recipient=recipient,
                    recipient_key=recipient_key or None,
                    next_attempt_at=lease,
                )
                .execution_options(synchronize_session=False)
            )
        return dataclasses.replace(m, lease=lease) if getattr(claimed, "rowcount", 0) else None

    async def _decide_and_send(self, m: _Snapshot) -> Outcome | None:
        """The case's reply to the customer's own feedback goes unless they opted out (the CRM's
        `contact_consent: false`) or were erased; a consent never stated does not hold it back.
        Checked right before sending, as are the store's quiet hours (changed since scheduling,
        or a pass that ran late)."""
        now = time.time()
        if m.expires_at <= now:
            return Outcome("not_sent", "the link expired before it could be sent")
        if not self.channels:
            return Outcome("not_sent", NO_CHANNEL)
        if (quiet_until := outside_quiet_hours(m.store, now)) > now:
            return Outcome("held", "store quiet hours", next_at=quiet_until)
        points = profile_pb2.GetContactPointsResponse()
        if m.customer_id or m.email or m.phone:
            try:
                # Without a customer (feedback's link to the profile came after the case was
                # resolved), whoever is on file with the contact given: their opt-out holds too.
                points = await (
                    self.contacts.contact_points(m.customer_id)
                    if m.customer_id
                    else self.contacts.contact_points("", email=m.email or "", phone=m.phone or "")
                )
            except aio.AioRpcError as exc:
                return self._retry(m, f"profile unavailable ({exc.code().name})", None)
            if points.erased:
                return Outcome("not_sent", ERASED)
            if points.HasField("contact_consent") and not points.contact_consent:
                return Outcome("not_sent", OPTED_OUT)
        return await self._send(m, points)

    async def _send(self, m: _Snapshot, points: profile_pb2.GetContactPointsResponse) -> Outcome | None:
        """By the contact given with the feedback, else the one on record (none when the
        customer is anonymous or not on record)."""
        # An e-mail that bounced is not tried again: the message goes by SMS or not at all. Nor
        # is an address that bounced for another message (`suppressions`): the one on record with
        # profile is, when the one given with the feedback is suppressed.
        email, email_key, suppressed = "", "", None
        if m.undelivered_channel != "email":
            if self.mail is not None:
                email, email_key, suppressed = await self._first_mailable(m.email or "", points.email)
            else:
                email = m.email or points.email
        phone = m.phone or points.phone
        until = last_whole_day(m.expires_at, m.store.timezone if m.store else None)
        text = render(
            language=m.language,
            store_name=m.store_name,
            url=m.url,
            brand=self.settings.brand_name,
            again=m.again,
            until=until,
        )
        if email and self.mail is not None:
            channel, recipient = "email", mask_address(email)
            claimed = await self._claim(m, channel=channel, recipient=recipient, recipient_key=email_key)
            if claimed is None:
                return None
            m = claimed
            result = await self.mail.send(
                Mail(
                    to=email,
                    subject=text.subject,
                    text=text.text,
                    html=text.html,
                    message_id=message_id(m.feedback_id),
                )
            )
        elif phone and self.sms is not None:
            number = normalize_phone(phone)
            channel, recipient = "sms", mask_phone(number)
            if (claimed := await self._claim(m, channel=channel, recipient=recipient)) is None:
                return None
            m = claimed
            result = await self.sms.send(
                SmsMessage(
                    to=number,
                    text=text.sms,
                    template_id=self.settings.sms_template_id,
                    variables={
                        "store": m.store_name or UNNAMED_STORE["ko" if m.language == "ko" else "en"],
                        "brand": self.settings.brand_name,
                        "question": text.question,
                        "url": m.url,
                    },
                    message_id=message_id(m.feedback_id),
                )
            )
        else:
            known = (
                ", ".join(k for k, v in (("e-mail", email), ("phone", phone)) if v) or "no e-mail or phone"
            )
            if m.undelivered_channel == "email":
                known = "the e-mail bounced; " + (known if phone else "no phone")
            elif suppressed is not None:
                day = time.strftime("%Y-%m-%d", time.gmtime(suppressed.suppressed_at))
                bounced = f"{suppressions.BOUNCED_BEFORE} ({suppressed.code or 'refused'} on {day})"
                known = f"{bounced}; " + (known if phone else "no phone")
            configured = ", ".join(self.channels)
            reason = (
                f"no configured channel reaches the customer ({known} on record; {configured} configured)"
            )
            return Outcome("not_sent", reason)
        return self._of(m, result, channel=channel, recipient=recipient)

    async def _first_mailable(self, *addresses: str) -> tuple[str, str, suppressions.Suppression | None]:
        """The first of `addresses` not suppressed and its key, with the suppression met before
        it; ("", "", that suppression) when none may be mailed."""
        met: suppressions.Suppression | None = None
        now = time.time()
        async with self.database.session() as session:
            for address in dict.fromkeys(a for a in addresses if a):
                key = suppressions.address_key(address, secret=self.settings.jwt_secret)
                found = await suppressions.suppressed(session, key, now=now)
                if found is None:
                    return address, key, met
                met = met or found
        return "", "", met

    def _of(self, m: _Snapshot, result: SendResult, *, channel: str, recipient: str) -> Outcome:
        if result.status == "sent":
            return Outcome("sent", "", channel, recipient, lease=m.lease)
        if result.status == "failed":
            return Outcome(
                "failed", result.detail, channel, recipient, lease=m.lease, undeliverable=result.undeliverable
            )
        return self._retry(m, result.detail, result.retry_after, channel=channel, recipient=recipient)

    def _retry(
        self, m: _Snapshot, reason: str, retry_after: float | None, *, channel: str = "", recipient: str = ""
    ) -> Outcome:
        """Tried again after the back-off (out of quiet hours), or given up when the link
        would have expired by then."""
        delay = backoff_delay(
            m.attempts,
            retry_after,
            base=self.settings.follow_up_retry_base_seconds,
            cap=self.settings.follow_up_retry_cap_seconds,
        )
        next_at = outside_quiet_hours(m.store, time.time() + delay)
        if next_at >= m.expires_at:
            return Outcome(
                "failed",
                f"gave up, the link expires before another attempt: {reason}",
                channel,
                recipient,
                lease=m.lease,
            )
        return Outcome("retrying", reason, channel, recipient, next_at, lease=m.lease)

    async def _record(self, feedback_id: str, *, lease: float, outcome: Outcome, expires_at: float) -> None:
        now = time.time()
        # An address refused for good: suppressed, and the message goes on by SMS as after a
        # bounce (`delivery_reports`) when SMS is configured and the link still works.
        by_sms = outcome.undeliverable and self.sms is not None and expires_at > now
        async with self.database.transaction() as session:
            if by_sms and await tombstones.erased(session, tombstones.feedback_key(feedback_id)):
                by_sms = False  # erased while it was being sent: settled as it came
            change: dict[str, Any] = {
                # An attempt is a send or a try at one (profile unavailable counts: it backs off).
                "attempts": FollowUpMessage.attempts + (1 if outcome.outcome in ATTEMPTED else 0),
                "last_error": outcome.reason[:300] or None,
            }
            if outcome.channel:
                change.update(channel=outcome.channel, recipient=outcome.recipient)
            if by_sms:
                change.update(status="pending", next_attempt_at=now, undelivered_channel="email", email=None)
            elif outcome.settled:
                # Settled: the contact is not kept beyond what the timeline shows (masked).
                change.update(status=outcome.outcome, email=None, phone=None)
                if outcome.outcome == "sent":
                    change["sent_at"] = now
            else:
                assert outcome.next_at is not None
                change.update(status="pending", next_attempt_at=outcome.next_at)
            done = await session.execute(
                update(FollowUpMessage)
                .where(
                    FollowUpMessage.feedback_id == feedback_id,
                    FollowUpMessage.status.in_(("pending", "sending")),
                    FollowUpMessage.next_attempt_at == lease,
                )
                .values(**change)
                .execution_options(synchronize_session=False)
            )
            if not getattr(done, "rowcount", 0):
                return  # someone else settled it meanwhile
            row = await session.get(FollowUpMessage, feedback_id)
            assert row is not None
            if outcome.undeliverable:
                await suppressions.suppress_bounced(session, row, reason=outcome.reason, now=now)
            if outcome.outcome != "retrying" or _on_the_timeline(row.attempts):
                await publish_outcome(session, row, outcome, at=now)
        if by_sms:
            self.wake()
        metrics.follow_up(channel=outcome.channel, outcome=outcome.outcome)
        log.info(
            "follow-up of feedback %s: %s%s%s",
            feedback_id,
            outcome.outcome,
            f" by {outcome.channel}" if outcome.channel else "",
            f" ({outcome.reason})" if outcome.reason else "",
        )


def _on_the_timeline(attempt: int) -> bool:
    """Retries told to the case: the 1st, 2nd, 4th, 8th, … (an outage of days retries hourly
    until the link expires; every attempt is still counted, logged and measured)."""
    return attempt > 0 and attempt & (attempt - 1) == 0


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """A leased message as read before the (slow) network calls, outside any transaction."""

    feedback_id: str
    customer_id: str | None
    url: str
    language: str
    again: bool
    email: str | None
    phone: str | None
    attempts: int
    expires_at: float
    undelivered_channel: str | None
    store: Store | None
    store_name: str
    lease: float

    @classmethod
    def of(cls, row: FollowUpMessage, store: Store | None, *, lease: float) -> _Snapshot:
        detached = (
            Store(
                id=store.id,
                name=store.name,
                timezone=store.timezone,
                quiet_start=store.quiet_start,
                quiet_end=store.quiet_end,
            )
            if store is not None
            else None
        )
        # A store missing from the directory goes unnamed: its id means nothing to a customer.
        store_name = store.name if store is not None else ""
        return copy_fields(cls, row, store=detached, store_name=store_name, lease=lease)


async def publish_outcome(
    session: AsyncSession, row: FollowUpMessage, outcome: Outcome, *, at: float
) -> None:
    """The attempt, decision or delivery report as `voc.notify.follow_up_sent`, in the session's
    transaction (feedback writes it on the case timeline)."""
    attempt = row.attempts
    sent = events_pb2.FollowUpSent(
        feedback_id=row.feedback_id,
        store_id=row.store_id,
        customer_id=row.customer_id or "",
        channel=outcome.channel or "none",
        outcome=outcome.outcome,
        reason=outcome.reason,
        attempt=attempt,
        at_ms=int(at * 1000),
        next_attempt_at_ms=int(outcome.next_at * 1000) if outcome.next_at else 0,
        recipient=outcome.recipient,
    )
    # One per attempt or decision, and one per report of an attempt (two reports may come in one
    # millisecond); within the 64 characters of an event id. Through `publishing`: a message
    # actually sent is also the `follow_up.sent` webhook, in the same transaction.
    if outcome.outcome in REPORTED:
        event_id = f"fu:{row.feedback_id}:{outcome.outcome}:{attempt}"
    else:
        event_id = f"fu:{row.feedback_id}:{attempt}:{int(at * 1000)}"
    await publish(session, [(SUBJECT_SENT, sent, event_id)], now=at)
