"""Bounces: a delivery status notification (RFC 3464) that a mail server sent back for a
follow-up, read into what became of that message. Our mail's `Message-ID` is
`<follow-up.<feedback id>@domain>` (`mail.MailSender.build`); a DSN quotes the message it
reports on (`message/rfc822` or `text/rfc822-headers`), so that id says which case it is.

Only a DSN counts: an out-of-office reply or any other mail that reaches the bounce address
says nothing about delivery and is passed over (`None`)."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message

from voc_platform.masking import mask_text

#: A DSN's `Action` (RFC 3464 §2.3.3) → our outcome; `delayed`, `relayed` and `expanded` are no
#: final word on delivery and are passed over.
_OUTCOMES = {"failed": "undelivered", "delivered": "delivered"}
#: A report has two or three levels of parts (the report, a quoted multipart/alternative); the
#: parser recurses once per level, so a mail of thousands is refused before it is parsed.
MAX_MULTIPARTS = 20


class UnreadableMail(ValueError):
    """A mail too deeply nested to read as a report."""


@dataclass(frozen=True, slots=True)
class Bounce:
    message_id: str  # the reported message's Message-ID, without the angle brackets
    outcome: str  # undelivered | delivered
    reason: str  # status and diagnostic, one line, addresses masked


def read_dsn(raw: bytes) -> Bounce | None:
    """The report in `raw` (a whole mail as the MTA delivered it to the bounce address), or
    None when it is no delivery status notification or names no message to report on."""
    if raw.lower().count(b"multipart/") > MAX_MULTIPARTS:
        raise UnreadableMail(f"more than {MAX_MULTIPARTS} multipart parts: not a delivery report")
    try:
        return _read(email.message_from_bytes(raw, policy=email.policy.compat32))
    except RecursionError as exc:  # nesting through message/rfc822 parts, which the count misses
        raise UnreadableMail("parts nested too deeply to read") from exc


def _read(mail: Message) -> Bounce | None:
    report = next((p for p in mail.walk() if p.get_content_type() == "message/delivery-status"), None)
    if report is None:
        return None
    message_id = _reported_message_id(mail)
    if not message_id:
        return None
    for fields in _recipient_blocks(report):
        outcome = _OUTCOMES.get(str(fields.get("Action", "")).strip().lower())
        if outcome is None:
            continue
        status = " ".join(str(fields.get("Status", "")).split())
        diagnostic = " ".join(str(fields.get("Diagnostic-Code", "")).split())
        said = "; ".join(part for part in (status, diagnostic) if part)
        reason = mask_text(said, limit=200) if said else ""
        return Bounce(message_id, outcome, reason)
    return None


def _recipient_blocks(report: Message) -> Iterator[Message]:
    """The per-recipient blocks of a `message/delivery-status` part: Python's parser gives its
    blocks as messages; the first is the per-message one, each later one a recipient's."""
    blocks = report.get_payload()
    if isinstance(blocks, list):
        yield from (b for b in blocks[1:] if isinstance(b, Message))


def _reported_message_id(mail: Message) -> str:
    for part in mail.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822":
            inner = part.get_payload()
            original = inner[0] if isinstance(inner, list) and inner else None
        elif kind == "text/rfc822-headers":
            text = part.get_payload(decode=True)
            headers = text if isinstance(text, bytes) else b""
            original = email.message_from_bytes(headers, policy=email.policy.compat32) if headers else None
        else:
            continue
        if isinstance(original, Message) and (value := str(original.get("Message-ID", "")).strip()):
            return value.strip("<>").strip()
    return ""
