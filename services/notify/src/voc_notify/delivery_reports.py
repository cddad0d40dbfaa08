"""What became of a follow-up after the mail server or SMS gateway took it: a bounce (a DSN mail
piped to notify) or a gateway's delivery report. "Sent" only says the relay took the message;
a report says whether it reached the customer, and lands on the case timeline as
`follow_up_delivered` or `follow_up_undelivered` (docs/NOTIFY.md, "Delivery reports").

A report names its message by the id it was sent under (`follow_ups.message_id`). Reports come
at least once and in any order, so each is recorded once: sent → delivered → undelivered (a mail
accepted by the recipient's server may still bounce later), never back. A report is also proof
the relay took the message, so it settles a send whose outcome we did not know: an SMS waiting
to be tried again after its request timed out (the gateway took it after all), an e-mail failed
as unconfirmed (the connection dropped after its body went).

A bounced e-mail is not the end of the case's reply: when SMS is configured, the link still
works and no report said the mail was delivered, the message is due again at once and the
worker sends it by SMS if profile has a phone (`FollowUpMessage.undelivered_channel` keeps it
off e-mail); a bounce of the e-mail that comes after that (a pipe's retry) is a duplicate, not
news of the SMS. A hard bounce (the address cannot receive: `channels.hard_bounce`) also
suppresses the address for every later follow-up (`suppressions`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import update

from voc_notify import metrics, suppressions, tombstones
from voc_notify.channels import DeliveryReport, hard_bounce
from voc_notify.channels.mail import UNCONFIRMED
from voc_notify.follow_ups import UNKNOWN, Outcome, feedback_id_of, publish_outcome
from voc_notify.models import FollowUpMessage
from voc_platform.db import Database

log = logging.getLogger(__name__)

#: The reports a message may take, by the status it is in.
_MOVES = {"delivered": ("sent",), "undelivered": ("sent", "delivered")}
#: Why an e-mail failed without knowing whether it went: a report settles it.
_UNSURE = (UNCONFIRMED, UNKNOWN)


@dataclass(slots=True)
class Tally:
    """What became of a batch of reports: each counted once."""

    recorded: int = 0
    duplicates: int = 0  # this message already has this report (or a later one)
    unknown: int = 0  # no follow-up of ours by that id (another system's message, a forged one)
    not_sent: int = 0  # a message we never sent (not sent, failed before the relay took it)
    sending: list[str] = field(default_factory=list)  # ids whose send is still being recorded


async def record(
    database: Database,
    reports: Sequence[DeliveryReport],
    *,
    mail_domain: str,
    sms_fallback: bool,
    now: float | None = None,
) -> Tally:
    """Each report in its own transaction, so one that cannot be taken yet (its send still
    being recorded: the gateway reported before we wrote "sent") leaves the others recorded
    and the caller can send the batch again. `mail_domain`: our Message-IDs'; `sms_fallback`:
    SMS is configured, so a bounced e-mail is tried again by SMS."""
    tally = Tally()
    for report in reports:
        at = time.time() if now is None else now
        await _record_one(database, report, tally, mail_domain=mail_domain, sms_fallback=sms_fallback, now=at)
    return tally


async def _record_one(
    database: Database,
    report: DeliveryReport,
    tally: Tally,
    *,
    mail_domain: str,
    sms_fallback: bool,
    now: float,
) -> None:
    feedback_id = feedback_id_of(report.message_id, mail_domain=mail_domain)
    if feedback_id is None:
        tally.unknown += 1
        return
    async with database.transaction() as session:
        row = await session.get(FollowUpMessage, feedback_id)
        if row is None:
            tally.unknown += 1
            return
        if row.undelivered_channel and (report.channel or row.channel) == row.undelivered_channel:
            # Of the e-mail a bounce already moved on to SMS (a pipe's retry): taken before.
            tally.duplicates += 1
            return
        if report.channel and row.channel and report.channel != row.channel:
            tally.unknown += 1  # of a channel this message never went by
            return
        if row.status == "sending":
            tally.sending.append(report.message_id)
            return
        taken = _taken_after_all(row)
        if row.status not in _MOVES[report.outcome] and not taken:
            if row.status in _MOVES["undelivered"] or row.status == "undelivered":
                tally.duplicates += 1
            else:
                tally.not_sent += 1
            return
        channel, recipient, was = row.channel or "", row.recipient or "", row.status
        # A report that comes after the customer's erasure keeps no words of a server about them.
        erased = await tombstones.erased(session, tombstones.feedback_key(feedback_id))
        reason = "" if erased else report.reason
        change: dict[str, Any] = {"status": report.outcome, "last_error": reason or None}
        if taken:
            # The relay had it after all: no more tries, the contact is not kept (as when sent).
            change.update(email=None, phone=None, sent_at=now)
        # Only a mail never reported delivered: one that reached a mailbox and bounced further on
        # (a forwarding chain) may have been read, even answered.
        again = (
            sms_fallback
            and report.outcome == "undelivered"
            and channel == "email"
            and row.status in ("sent", "failed")
            and row.expires_at > now
            and not erased
        )
        if again:
            # Due again at once, off e-mail; quiet hours and consent are checked when it is sent.
            change.update(status="pending", undelivered_channel="email", next_attempt_at=now)
        moved = await session.execute(
            update(FollowUpMessage)
            .where(FollowUpMessage.feedback_id == feedback_id, FollowUpMessage.status == row.status)
            .values(**change)
            .execution_options(synchronize_session=False)
        )
        if not getattr(moved, "rowcount", 0):
            tally.duplicates += 1  # another report moved it first
            return
        await session.refresh(row)
        if (
            report.outcome == "undelivered"
            and channel == "email"
            and was != "delivered"
            and hard_bounce(reason)
        ):
            # Not mailed again; unless it was delivered first: then the bounce came from further down
            # a forwarding chain, and the customer's own mailbox works.
            await suppressions.suppress_bounced(session, row, reason=reason, now=now)
        if taken:
            took = (
                f"{'the mail server' if channel == 'email' else 'the gateway'} reported on it, so it took it"
            )
            await publish_outcome(session, row, Outcome("sent", took, channel, recipient), at=now)
        await publish_outcome(session, row, Outcome(report.outcome, reason, channel, recipient), at=now)
    tally.recorded += 1
    metrics.follow_up_report(channel=channel, outcome=report.outcome)
    log.info(
        "follow-up of feedback %s: %s%s",
        feedback_id,
        report.outcome,
        f" ({reason})" if reason else "",
    )


def _taken_after_all(row: FollowUpMessage) -> bool:
    """A send whose outcome was not known, which a report shows the relay took: an SMS waiting
    to be tried again after a request (one that timed out, or was cut off), an e-mail failed as
    unconfirmed or cut off."""
    if row.status == "pending":  # the channel is set once a request went to the gateway
        return row.channel == "sms"
    return row.status == "failed" and row.channel == "email" and (row.last_error or "").startswith(_UNSURE)
