"""What became of a follow-up after the mail server or SMS gateway took it: a bounce (a DSN
mail piped to notify) or a gateway's delivery report. "Sent" only says the relay took the
message; a report says whether it reached the customer, and lands on the case timeline as
`follow_up_delivered` or `follow_up_undelivered` (docs/NOTIFY.md, "Delivery reports").

A report names its message by the id we gave it (`follow-up.<feedback id>`: the e-mail's
Message-ID, the gateway's `message_id`). Reports come at least once and in any order, so each
is recorded once: sent → delivered → undelivered (a mail accepted by the recipient's server may
still bounce later), never back.

A bounced e-mail is not the end of the case's reply: when SMS is configured and the link still
works, the message is due again at once and the worker sends it by SMS if profile or the
feedback has a phone (`FollowUpMessage.undelivered_channel` keeps it off e-mail); a report of
the e-mail that comes after that (a pipe's retry) is a duplicate, not news of the SMS."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import update

from voc_notify import metrics
from voc_notify.follow_ups import Outcome, publish_outcome
from voc_notify.models import FollowUpMessage
from voc_platform.db import Database

log = logging.getLogger(__name__)

MESSAGE_ID_PREFIX = "follow-up."
#: The outcomes a report may move a message to, from the ones it may be in.
_MOVES = {"delivered": ("sent",), "undelivered": ("sent", "delivered")}


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    message_id: str  # "follow-up.<feedback id>", or the e-mail's whole "<…@domain>" Message-ID
    outcome: str  # delivered | undelivered
    reason: str = ""  # the server's or gateway's word, masked, one line
    channel: str = ""  # what it reports on (a bounce: email); "" when the report does not say


@dataclass(slots=True)
class Tally:
    """What became of a batch of reports: each counted once."""

    recorded: int = 0
    duplicates: int = 0  # this message already has this report (or a later one)
    unknown: int = 0  # no follow-up of ours by that id (pruned, or another system's message)
    not_sent: int = 0  # a message we never counted as sent (failed, not sent)
    sending: list[str] = field(default_factory=list)  # ids whose send is still being recorded


def feedback_id_of(message_id: str) -> str | None:
    """`follow-up.<id>` (as the gateway got it) or `<follow-up.<id>@domain>` (a Message-ID) →
    the feedback id; None for any other message."""
    local = message_id.strip().strip("<>").partition("@")[0]
    if not local.startswith(MESSAGE_ID_PREFIX):
        return None
    feedback_id = local.removeprefix(MESSAGE_ID_PREFIX)
    return feedback_id if 0 < len(feedback_id) <= 36 else None


async def record(
    database: Database, reports: Sequence[DeliveryReport], *, sms_fallback: bool, now: float | None = None
) -> Tally:
    """Each report in its own transaction, so one that cannot be taken yet (its send still
    being recorded: the gateway reported before we wrote "sent") leaves the others recorded
    and the caller can send the batch again. `sms_fallback`: SMS is configured, so a bounced
    e-mail is tried again by SMS."""
    tally = Tally()
    for report in reports:
        at = time.time() if now is None else now
        await _record_one(database, report, tally, sms_fallback=sms_fallback, now=at)
    return tally


async def _record_one(
    database: Database, report: DeliveryReport, tally: Tally, *, sms_fallback: bool, now: float
) -> None:
    feedback_id = feedback_id_of(report.message_id)
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
        if report.channel and report.channel != row.channel:
            tally.unknown += 1  # of a channel this message never went by
            return
        if row.status == "sending":
            tally.sending.append(report.message_id)
            return
        if row.status not in _MOVES[report.outcome]:
            if row.status in ("delivered", "undelivered"):
                tally.duplicates += 1
            else:
                tally.not_sent += 1
            return
        # Conditional on the status read: of two reports taken at once, one moves it.
        change: dict[str, Any] = {"status": report.outcome, "last_error": report.reason[:300] or None}
        again = (
            sms_fallback
            and report.outcome == "undelivered"
            and row.channel == "email"
            and row.undelivered_channel is None
            and row.expires_at > now
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
            tally.duplicates += 1
            return
        await session.refresh(row)
        outcome = Outcome(report.outcome, report.reason, row.channel or "", row.recipient or "")
        await publish_outcome(session, row, outcome, at=now)
    tally.recorded += 1
    metrics.follow_up(channel=row.channel or "", outcome=report.outcome)
    log.info(
        "follow-up of feedback %s: %s%s",
        feedback_id,
        report.outcome,
        f" ({report.reason})" if report.reason else "",
    )
