"""The channels that reach customers (follow-up messages): e-mail over SMTP (`mail`) and SMS or
KakaoTalk Alimtalk through a provider adapter (`sms`). Each sends one message and classifies
the answer as a `SendResult`; the follow-up worker (`voc_notify.follow_ups`) owns scheduling,
retries and the record."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from voc_platform.masking import mask_text

SendStatus = Literal["sent", "retry", "failed"]
ReportOutcome = Literal["delivered", "undelivered"]
Channel = Literal["email", "sms"]
#: What leads a mail server's answer, kept as written (masking reads "550 5.1.10" as a phone
#: number): a DSN's diagnostic type (RFC 3464: "smtp", or an "X-" name), the reply code, the
#: enhanced status code (RFC 3463). Nothing else, so no number or name of the customer's stands
#: in front of the masked rest.
_REPLY_CODES = re.compile(
    r"^(?:(?:smtp|x-[a-z][a-z-]{0,30})\s*;\s*)?(?:[245]\d\d(?:[ -]+(?=[245]\.)|\s+(?=\D)))?"
    r"(?:[245]\.\d{1,3}\.\d{1,3}\b)?",
    re.IGNORECASE | re.ASCII,
)


def server_said(answer: str, *, limit: int = 200) -> str:
    """A mail server's or gateway's answer as one line for a timeline: whitespace collapsed, its
    leading codes kept, the rest masked (addresses, numbers), at most `limit` characters."""
    line = " ".join(answer.split())
    codes = _REPLY_CODES.match(line)
    lead = codes.group(0) if codes else ""
    return (lead + mask_text(line[len(lead) :], limit=max(limit - len(lead), 0)))[:limit]


@dataclass(frozen=True, slots=True)
class SendResult:
    """`sent`: the server or gateway took the message; `retry`: a transient failure (down,
    busy, 4xx); `failed`: permanent (the recipient was refused, the address is invalid)."""

    status: SendStatus
    detail: str = ""
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """What a bounce or a gateway's report says became of a message after it was taken
    (`voc_notify.delivery_reports` records it)."""

    message_id: str  # as we gave it: "follow-up.<feedback id>", or the mail's "<…@domain>"
    outcome: ReportOutcome
    reason: str = ""  # `server_said`: one line, masked
    channel: Channel | None = None  # what it reports on (a bounce: email); None when unsaid
