"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives, for the tests of
anything that sends e-mail."""

from __future__ import annotations

import email
import threading
from dataclasses import dataclass
from email import policy
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller

from voc_cli.supervisor import free_port


@dataclass(frozen=True, slots=True)
class ReceivedMail:
    sender: str
    recipients: tuple[str, ...]
    message: Message

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def text(self) -> str:
        payload = self.message.get_payload(decode=True)
        assert isinstance(payload, bytes)
        return payload.decode(self.message.get_content_charset() or "utf-8")


class MailServer:
    """`with MailServer() as mail:` serves SMTP on 127.0.0.1 at `mail.url` from a thread;
    `mail.received` lists the messages in arrival order."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"smtp://127.0.0.1:{self.port}"
        self.received: list[ReceivedMail] = []
        self._lock = threading.Lock()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(
            envelope.original_content or envelope.content, policy=policy.default
        )
        with self._lock:
            self.received.append(ReceivedMail(envelope.mail_from, tuple(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    def __enter__(self) -> MailServer:
        self._controller.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._controller.stop()
