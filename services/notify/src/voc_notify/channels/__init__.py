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


#: An enhanced status code (RFC 3463) that says the recipient's address itself cannot receive,
#: after the leading diagnostic type and reply code `server_said` keeps: no such mailbox (5.1.1),
#: no such domain (5.1.2), a bad address (5.1.3), a mailbox moved away (5.1.6), no mail at the
#: domain (5.1.10, null MX), a disabled mailbox (5.2.1), no route to the domain (5.4.4). Not
#: 5.1.7/5.1.8 (our *sender* address: a refusal of our own setup would condemn every customer's
#: address), not the catch-all 5.1.0, nor policy (5.7.x), a full mailbox (5.2.2), 4.x.x.
_HARD_BOUNCE = re.compile(
    r"^(?:(?:smtp|x-[a-z][a-z-]{0,30})\s*;\s*)?(?:[245]\d\d[ -]+)?5\.(?:1\.(?:[1236]|10)|2\.1|4\.4)(?![.\d])",
    re.IGNORECASE | re.ASCII,
)
_SENDER = re.compile(r"\bsender\b", re.IGNORECASE)


def hard_bounce(answer: str) -> bool:
    """Whether a mail server's answer (a refusal at RCPT, a bounce's status and diagnostic, as
    `server_said` leaves them: "5.1.1; smtp; 550 …", "550 5.1.1 …") says the address can never
    receive mail. Only an enhanced code counts (a bare "550" is used for spam refusals too), and
    never one that speaks of the sender (a server that files a sender problem under 5.1.1)."""
    text = answer.strip()
    return bool(_HARD_BOUNCE.match(text)) and not _SENDER.search(text)


@dataclass(frozen=True, slots=True)
class SendResult:
    """`sent`: the server or gateway took the message; `retry`: a transient failure (down,
    busy, 4xx); `failed`: permanent (the recipient was refused, the address is invalid).
    `undeliverable`: the recipient's server refused the address itself (`hard_bounce`)."""

    status: SendStatus
    detail: str = ""
    retry_after: float | None = None
    undeliverable: bool = False


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """What a bounce or a gateway's report says became of a message after it was taken
    (`voc_notify.delivery_reports` records it)."""

    message_id: str  # as we gave it: "follow-up.<feedback id>", or the mail's "<…@domain>"
    outcome: ReportOutcome
    reason: str = ""  # `server_said`: one line, masked
    channel: Channel | None = None  # what it reports on (a bounce: email); None when unsaid
