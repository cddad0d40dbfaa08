"""Mail suppression: an e-mail address a mail server said can never receive (a hard bounce,
`channels.hard_bounce`: refused at RCPT, or a bounce's delivery report) is not mailed a follow-up
again. Mailing it again would only bounce again, and senders whose mail bounces much lose their
standing with the big mailbox providers; the follow-up goes by SMS when it can instead, or the
case says why it went nowhere (`follow_ups.FollowUpWorker._send`).

An address is kept as an HMAC under VOC_JWT_SECRET (`address_key`, as failed logins are), beside
its masked form and whose it was, so the table names nobody and an erasure removes what was the
customer's. A suppression is lifted by an admin (`DELETE /v1/admin/mail-suppressions/{key}`: the
customer fixed their mailbox), by the customer's erasure, or after `SUPPRESSION_SECONDS` (a
closed mailbox may be opened again; one more bounce then suppresses it anew). A new JWT secret
makes every key new: the addresses are then mailed once more."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from voc_notify import tombstones
from voc_notify.models import FollowUpMessage, MailSuppression
from voc_platform.dbsync import Prepared, Reader
from voc_platform.errors import NotFound
from voc_platform.records import copy_fields

SUPPRESSION_SECONDS = 365 * 86400
#: Why a follow-up was not mailed to an address (said in its timeline reason).
BOUNCED_BEFORE = "the e-mail address bounced before"
_ENHANCED_CODE = re.compile(r"\b5\.\d{1,3}\.\d{1,3}\b", re.ASCII)
_PRUNE = Prepared(delete(MailSuppression).where(MailSuppression.suppressed_at < bindparam("before")))
#: How long a message keeps the key of the address it was mailed to: relays give up on a mail
#: after five days and bounce it; a month covers a slow report pipe's retries too.
KEY_SECONDS = 30 * 86400
_FORGET_KEYS = Prepared(
    update(FollowUpMessage)
    .where(
        FollowUpMessage.recipient_key.is_not(None),
        FollowUpMessage.status != "pending",  # two comparisons: a prepared statement has no IN list
        FollowUpMessage.status != "sending",
        FollowUpMessage.created_at < bindparam("before"),
    )
    .values(recipient_key=None)
)


def address_key(email: str, *, secret: str) -> str:
    """The key of an address: an HMAC, so the table holds no address a dictionary would give
    back. Case and surrounding blanks aside, as the mailbox providers read them."""
    return hmac.new(
        secret.encode(), b"mail-suppression:" + email.strip().lower().encode(), hashlib.sha256
    ).hexdigest()


@dataclass(frozen=True, slots=True)
class Suppression:
    address_key: str
    recipient: str  # masked
    customer_id: str | None
    feedback_id: str  # the follow-up whose mail bounced
    reason: str
    suppressed_at: float

    @property
    def code(self) -> str:
        """The enhanced status code the server gave ("5.1.1"), or ""."""
        found = _ENHANCED_CODE.search(self.reason)
        return found.group(0) if found else ""

    @property
    def expires_at(self) -> float:
        return self.suppressed_at + SUPPRESSION_SECONDS

    @classmethod
    def of(cls, row: MailSuppression) -> Suppression:
        return copy_fields(cls, row)


async def suppress(
    session: AsyncSession,
    *,
    key: str,
    recipient: str,
    customer_id: str | None,
    feedback_id: str,
    reason: str,
    now: float,
) -> None:
    """Suppress the address of `key` from `now` (again: the latest bounce is the one kept)."""
    values = {
        "address_key": key,
        "recipient": recipient[:300],
        "customer_id": customer_id,
        "feedback_id": feedback_id,
        "reason": reason[:300],
        "suppressed_at": now,
    }
    dialect = (await session.connection()).dialect.name
    insert = (pg_insert if dialect == "postgresql" else sqlite_insert)(MailSuppression).values(**values)
    changed = {name: value for name, value in values.items() if name != "address_key"}
    await session.execute(insert.on_conflict_do_update(index_elements=["address_key"], set_=changed))


async def suppressed(session: AsyncSession, key: str, *, now: float) -> Suppression | None:
    """The suppression in force for the address of `key`, if any."""
    row = await session.get(MailSuppression, key)
    if row is None or row.suppressed_at <= now - SUPPRESSION_SECONDS:
        return None
    return Suppression.of(row)


async def listing(session: AsyncSession, *, key: str | None, limit: int, now: float) -> list[Suppression]:
    """The suppressions in force, the latest first; only the address of `key` when given."""
    query = (
        select(MailSuppression)
        .where(MailSuppression.suppressed_at > now - SUPPRESSION_SECONDS)
        .order_by(MailSuppression.suppressed_at.desc(), MailSuppression.address_key)
        .limit(limit)
    )
    if key is not None:
        query = query.where(MailSuppression.address_key == key)
    return [Suppression.of(row) for row in await session.scalars(query)]


async def lift(session: AsyncSession, *, key: str) -> Suppression:
    """Mail the address again; `NotFound` when it is not suppressed (or another call lifted it
    first: one of two at once deletes the row, the other finds none)."""
    row = await session.get(MailSuppression, key)
    if row is None:
        raise NotFound(f"No suppressed address '{key[:64]}'.")
    lifted = Suppression.of(row)
    done = await session.execute(
        delete(MailSuppression)
        .where(MailSuppression.address_key == key)
        .execution_options(synchronize_session=False)
    )
    if not getattr(done, "rowcount", 0):
        raise NotFound(f"No suppressed address '{key[:64]}'.")
    return lifted


async def forget_customer(session: AsyncSession, *, customer_id: str, feedback_ids: Sequence[str]) -> int:
    """Erasure, before `follow_ups.forget_customer` drops the keys on their messages: the
    suppressions of the addresses their follow-ups went to, and those made by their follow-ups
    or under their customer id, go (a later bounce of another customer's at the same address
    may have taken the row over); how many."""
    messages = [FollowUpMessage.customer_id == customer_id] if customer_id else []
    messages += [FollowUpMessage.feedback_id.in_(list(feedback_ids))] if feedback_ids else []
    if not messages:
        return 0
    keys = select(FollowUpMessage.recipient_key).where(
        or_(*messages), FollowUpMessage.recipient_key.is_not(None)
    )
    whose: list[ColumnElement[bool]] = [MailSuppression.address_key.in_(keys)]
    whose += [MailSuppression.customer_id == customer_id] if customer_id else []
    whose += [MailSuppression.feedback_id.in_(list(feedback_ids))] if feedback_ids else []
    done = await session.execute(
        delete(MailSuppression).where(or_(*whose)).execution_options(synchronize_session=False)
    )
    return int(getattr(done, "rowcount", 0) or 0)


async def suppress_bounced(session: AsyncSession, row: FollowUpMessage, *, reason: str, now: float) -> None:
    """Suppress the address `row`'s mail went to, unless the customer was erased
    meanwhile (nothing of theirs is kept)."""
    if row.recipient_key is None or await tombstones.erased(
        session, tombstones.feedback_key(row.feedback_id)
    ):
        return
    await suppress(
        session,
        key=row.recipient_key,
        recipient=row.recipient or "",
        customer_id=row.customer_id,
        feedback_id=row.feedback_id,
        reason=reason,
        now=now,
    )


def prune_sync(reader: Reader, *, now: float) -> int:
    """Forget the suppressions past their year, and the address keys of messages settled past
    the time a bounce may still come (`KEY_SECONDS`); how many suppressions."""
    reader.execute(_FORGET_KEYS, {"before": now - KEY_SECONDS})
    return reader.execute(_PRUNE, {"before": now - SUPPRESSION_SECONDS})
