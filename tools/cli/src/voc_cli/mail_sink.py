"""A local SMTP server that keeps what it receives (aiosmtpd): `voc demo-inbox` prints the
follow-up mail notify sends, and the tests send to it over loopback.

    sink = MailSink(port=8025).start()   # its own thread and event loop
    ...
    sink.received()                      # the messages, parsed
    sink.stop()

`refuse` lists recipients answered `550 5.1.1` (a mailbox that does not exist: a permanent
failure). `bounce` lists recipients taken and bounced afterwards, as a relay does when the
recipient's own server refuses the mail later: the sink writes the delivery status notification
(RFC 3464, as Postfix words it) to the envelope sender and hands it to `on_bounce` (the raw mail,
as a bounce mailbox's pipe gets it) and keeps it (`bounces()`). `tls` (an `ssl.SSLContext`)
serves STARTTLS (`starttls=True`, required before MAIL) or TLS from the first byte
(`starttls=False`, smtps)."""

from __future__ import annotations

import email
import email.policy
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from voc_cli.supervisor import free_port


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage
    tls: bool  # the session was encrypted (STARTTLS or smtps)

    @property
    def subject(self) -> str:
        return str(self.message["Subject"] or "")

    def part(self, subtype: str) -> str:
        """The text/<subtype> part's content ("plain" or "html"), "" when absent."""
        body = self.message.get_body(preferencelist=(subtype,))
        return str(body.get_content()) if body is not None else ""


class _Handler:
    def __init__(self, sink: MailSink) -> None:
        self.sink = sink

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if address.lower() in self.sink.refuse:
            return f"550 5.1.1 <{address}>: mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data = envelope.original_content or envelope.content or b""
        raw = data if isinstance(data, bytes) else data.encode()
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        mail = ReceivedMail(
            mail_from=str(envelope.mail_from or ""),
            rcpt_tos=tuple(envelope.rcpt_tos),
            message=message,
            tls=session.ssl is not None or _encrypted(server),
        )
        with self.sink._lock:
            self.sink._received.append(mail)
        self.sink._arrived.set()
        for recipient in mail.rcpt_tos:
            if recipient.lower() in self.sink.bounce and mail.mail_from:
                self.sink._bounced(
                    delivery_status_notification(mail, recipient, reporting_mta=self.sink.host)
                )
        return "250 Message accepted for delivery"


def delivery_status_notification(
    mail: ReceivedMail,
    recipient: str,
    *,
    reporting_mta: str,
    status: str = "5.1.1",
    diagnostic: str = "550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown in virtual mailbox table",
) -> bytes:
    """The bounce a relay sends the envelope sender when `recipient`'s server refused `mail`:
    multipart/report with a human part, the machine-readable message/delivery-status (RFC 3464)
    and the original's headers (text/rfc822-headers), as Postfix writes it."""
    said = diagnostic.format(rcpt=recipient)
    domain = recipient.rpartition("@")[2]
    boundary = f"dsn.{time.monotonic_ns()}/{reporting_mta}"
    # The original's header section as it travelled (encoded words stay encoded).
    original = (
        mail.message.as_bytes(policy=email.policy.SMTP).decode("ascii", "replace").partition("\r\n\r\n")[0]
    )
    lines = [
        f"From: MAILER-DAEMON@{reporting_mta} (Mail Delivery System)",
        f"To: {mail.mail_from}",
        "Subject: Undelivered Mail Returned to Sender",
        f"Date: {formatdate(usegmt=True)}",
        f"Message-ID: {make_msgid(domain=reporting_mta)}",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"',
        "",
        "This is a MIME-encapsulated message.",
        "",
        f"--{boundary}",
        "Content-Description: Notification",
        "Content-Type: text/plain; charset=us-ascii",
        "",
        f"This is the mail system at host {reporting_mta}.",
        "",
        "I'm sorry to have to inform you that your message could not",
        "be delivered to one or more recipients.",
        "",
        f"<{recipient}>: host mx.{domain} said: {said}",
        "",
        f"--{boundary}",
        "Content-Description: Delivery report",
        "Content-Type: message/delivery-status",
        "",
        f"Reporting-MTA: dns; {reporting_mta}",
        f"Arrival-Date: {formatdate(usegmt=True)}",
        "",
        f"Final-Recipient: rfc822; {recipient}",
        f"Original-Recipient: rfc822;{recipient}",
        "Action: failed",
        f"Status: {status}",
        f"Remote-MTA: dns; mx.{domain}",
        f"Diagnostic-Code: smtp; {said}",
        "",
        f"--{boundary}",
        "Content-Description: Undelivered Message Headers",
        "Content-Type: text/rfc822-headers",
        "",
        original,
        "",
        f"--{boundary}--",
        "",
    ]
    return "\r\n".join(lines).encode()


def _encrypted(server: SMTP) -> bool:
    """TLS from the first byte (smtps): aiosmtpd sets `session.ssl` only for STARTTLS."""
    transport = server.transport
    return transport is not None and transport.get_extra_info("ssl_object") is not None


class MailSink:
    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: ssl.SSLContext | None = None,
        starttls: bool = True,
        refuse: tuple[str, ...] = (),
        bounce: tuple[str, ...] = (),
        on_bounce: Callable[[bytes], None] | None = None,
    ) -> None:
        self.host = host
        self.refuse = {r.lower() for r in refuse}
        self.bounce = {b.lower() for b in bounce}
        self.on_bounce = on_bounce
        self._bounces: list[bytes] = []
        self._received: list[ReceivedMail] = []
        self._lock = threading.Lock()
        self._arrived = threading.Event()
        kwargs: dict[str, Any] = {}
        if tls is not None and starttls:
            kwargs.update(tls_context=tls, require_starttls=True)
        elif tls is not None:
            kwargs.update(ssl_context=tls)
        # aiosmtpd checks readiness by connecting to the port it was given: a free one, not 0.
        self.port = port or free_port(host)
        self._kwargs = kwargs
        self._controller: Controller | None = None

    @property
    def url(self) -> str:
        """What `VOC_SMTP_URL` is set to for this mailbox (plain SMTP)."""
        return f"smtp://{self.host}:{self.port}"

    def start(self) -> MailSink:
        """Listen (again, after `stop`: the same port, what was received is kept)."""
        self._controller = Controller(
            _Handler(self),
            hostname=self.host,
            port=self.port,
            ready_timeout=10,
            server_hostname=self.host,
            **self._kwargs,
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        """Stop listening: a sender now finds no server (connection refused)."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def received(self) -> list[ReceivedMail]:
        with self._lock:
            return list(self._received)

    def bounces(self) -> list[bytes]:
        """The delivery status notifications written for `bounce` recipients, as sent."""
        with self._lock:
            return list(self._bounces)

    def _bounced(self, report: bytes) -> None:
        with self._lock:
            self._bounces.append(report)
        if self.on_bounce is not None:
            self.on_bounce(report)

    def wait(self, count: int = 1, timeout: float = 10.0) -> list[ReceivedMail]:
        """The messages once at least `count` arrived (AssertionError after `timeout`)."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.received()
            if len(got) >= count:
                return got
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{len(got)} of {count} mails arrived in {timeout}s")
            self._arrived.wait(min(left, 0.2))
            self._arrived.clear()

    def __enter__(self) -> MailSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
