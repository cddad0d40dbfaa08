"""The delivery watchdog's fallback channel (#23): how a page reaches a staff member whose phones
did not show it. One small interface (`FallbackChannel`) and its e-mail implementation over SMTP
(`VOC_SMTP_URL`, `VOC_MAIL_FROM`); an SMS channel plugs in beside it."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Protocol
from urllib.parse import unquote, urlsplit

from voc_notify.settings import Settings


@dataclass(frozen=True, slots=True)
class FallbackPage:
    """What the fallback says: the push's masked title and body in the staff member's language,
    and the link to the alert in the app."""

    alert_id: str
    staff_id: str
    to_address: str
    language: str
    title: str
    body: str
    url: str


class FallbackFailed(Exception):
    """The channel could not take the page (its reason is kept, without the server's words)."""


class FallbackChannel(Protocol):
    name: str

    async def send(self, page: FallbackPage) -> None:
        """Hand the page over, or raise `FallbackFailed`."""


_LINES = {
    "ko": (
        "휴대폰에 이 긴급 알림이 표시되지 않아 이메일로 보냅니다.",
        "앱에서 열기: {url}",
        "휴대폰의 알림 권한과 앱 설치 상태를 확인해 주세요.",
    ),
    "en": (
        "Your phone did not show this urgent alert, so it comes by e-mail.",
        "Open it in the app: {url}",
        "Please check the phone's notification permission and the installed app.",
    ),
}


class MailChannel:
    """E-mail to the staff member's directory address."""

    name = "email"

    def __init__(self, *, smtp_url: str, mail_from: str) -> None:
        self.smtp_url = smtp_url
        self.mail_from = mail_from

    @classmethod
    def from_settings(cls, settings: Settings) -> MailChannel | None:
        return cls(smtp_url=settings.smtp_url, mail_from=settings.mail_from) if settings.smtp_url else None

    async def send(self, page: FallbackPage) -> None:
        intro, link, check = _LINES.get(page.language, _LINES["en"])
        text = "\n\n".join([intro, page.body, link.format(url=page.url), check]) + "\n"
        try:
            await asyncio.to_thread(
                send_mail,
                smtp_url=self.smtp_url,
                mail_from=self.mail_from,
                to=page.to_address,
                subject=page.title,
                text=text,
            )
        except (OSError, smtplib.SMTPException) as exc:
            raise FallbackFailed(f"SMTP: {type(exc).__name__}") from exc


def send_mail(
    *, smtp_url: str, mail_from: str, to: str, subject: str, text: str, timeout: float = 10.0
) -> None:
    """Send one plain-text e-mail through `smtp_url` (`smtp://[user:password@]host[:port]`, or
    `smtps://` for TLS from the start); blocking, so callers run it in a thread. The only SMTP code
    of notify, kept in one function so one mail sender can serve every service."""
    url = urlsplit(smtp_url)
    if url.scheme not in ("smtp", "smtps") or not url.hostname:
        raise ValueError("VOC_SMTP_URL must be smtp://host:port or smtps://host:port")
    message = EmailMessage()
    message["From"] = mail_from
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="frontline-voc")
    message.set_content(text)
    client: smtplib.SMTP
    if url.scheme == "smtps":
        client = smtplib.SMTP_SSL(
            url.hostname, url.port or 465, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        client = smtplib.SMTP(url.hostname, url.port or 25, timeout=timeout)
    with client:
        if url.username:
            client.login(unquote(url.username), unquote(url.password or ""))
        client.send_message(message)
