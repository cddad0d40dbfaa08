"""Bounces: a delivery status notification (RFC 3464; RFC 6533's `global` forms for
internationalised mail) that a mail server sent back for a follow-up, read into what became of
that message. Our mail's `Message-ID` is `<follow-up.<feedback id>@domain>`
(`mail.MailSender.build`); a DSN quotes the message it reports on (`message/rfc822` or
`text/rfc822-headers`), so that id says which case it is (`X-Original-Message-ID` when a relay
replaced it).

Only a DSN counts: an out-of-office reply or any other mail that reaches the bounce address
says nothing about delivery and is passed over (`None`), as is a DSN that quotes no message id."""

from __future__ import annotations

import base64
import email
import email.policy
import re
from collections.abc import Iterator
from email.message import Message

from voc_notify.channels import DeliveryReport, ReportOutcome, server_said

#: A DSN's `Action` (RFC 3464 §2.3.3) → our outcome; `delayed`, `relayed` and `expanded` are no
#: final word on delivery and are passed over.
_OUTCOMES: dict[str, ReportOutcome] = {"failed": "undelivered", "delivered": "delivered"}
_STATUS_TYPES = ("message/delivery-status", "message/global-delivery-status")
_HEADERS_TYPES = ("text/rfc822-headers", "message/global-headers")
_ORIGINAL_TYPES = ("message/rfc822", "message/global")
_STATUS_CODE = re.compile(r"^[245]\.\d{1,3}\.\d{1,3}$")  # RFC 3463, kept as written
#: A report has two or three levels of parts (the report, a quoted multipart/alternative); the
#: parser recurses once per level, so a mail of thousands is refused before it is parsed.
MAX_MULTIPARTS = 20


class UnreadableMail(ValueError):
    """A mail too deeply nested to read as a report."""


def read_dsn(raw: bytes) -> DeliveryReport | None:
    """The report in `raw` (a whole mail as the MTA delivered it to the bounce address), or
    None when it is no delivery status notification or names no message to report on."""
    if raw.lower().count(b"multipart/") > MAX_MULTIPARTS:
        raise UnreadableMail(f"more than {MAX_MULTIPARTS} multipart parts: not a delivery report")
    try:
        return _read(email.message_from_bytes(raw, policy=email.policy.compat32))
    except RecursionError as exc:  # nesting through message/rfc822 parts, which the count misses
        raise UnreadableMail("parts nested too deeply to read") from exc


def _read(mail: Message) -> DeliveryReport | None:
    report = next((p for p in mail.walk() if p.get_content_type() in _STATUS_TYPES), None)
    if report is None:
        return None
    message_id = _reported_message_id(mail)
    if not message_id:
        return None
    for fields in _recipient_fields(report):
        action = str(fields.get("Action", "")).strip().split(" ", 1)[0].lower()  # "failed (…)"
        outcome = _OUTCOMES.get(action)
        if outcome is None:
            continue
        status = next(iter(str(fields.get("Status", "")).split()), "")
        diagnostic = str(fields.get("Diagnostic-Code", ""))
        said = [status] if _STATUS_CODE.match(status) else []
        said += [server_said(diagnostic)] if diagnostic.strip() else []
        return DeliveryReport(message_id, outcome, "; ".join(said)[:200], channel="email")
    return None


def _recipient_fields(report: Message) -> Iterator[Message]:
    """The blocks of a delivery-status part that say what became of a recipient (those with an
    `Action`; the per-message block has none). Python's parser gives a message/delivery-status
    part's blocks as messages; a global one, or one in base64, is read from its text, whose
    blocks are separated by blank lines."""
    payload = report.get_payload()
    blocks = [b for b in payload if isinstance(b, Message)] if isinstance(payload, list) else []
    if not any(b.get("Action") for b in blocks):
        text = "\n\n".join(b.as_string() for b in blocks) if blocks else str(payload or "")
        if str(report.get("Content-Transfer-Encoding", "")).strip().lower() == "base64":
            text = base64.b64decode("".join(text.split()) + "==", validate=False).decode("utf-8", "replace")
        blocks = [email.message_from_string(b) for b in re.split(r"\r?\n[ \t]*\r?\n", text) if b.strip()]
    yield from (b for b in blocks if b.get("Action"))


def _reported_message_id(mail: Message) -> str:
    for part in mail.walk():
        kind = part.get_content_type()
        if kind not in _ORIGINAL_TYPES and kind not in _HEADERS_TYPES:
            continue
        # Parsed as a message (message/*), or as text (text/rfc822-headers).
        inner = part.get_payload()
        if isinstance(inner, list):
            original = inner[0] if inner else None
        else:
            text = part.get_payload(decode=True)
            headers = text if isinstance(text, bytes) else b""
            original = email.message_from_bytes(headers, policy=email.policy.compat32) if headers else None
        if not isinstance(original, Message):
            continue
        for name in ("X-Original-Message-ID", "Message-ID"):  # a relay that replaced ours keeps it
            if value := " ".join(str(original.get(name, "")).split()):
                return value
    return ""
