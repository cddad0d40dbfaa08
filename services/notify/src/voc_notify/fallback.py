"""The delivery watchdog's fallback channel (#23): how a page reaches a staff member whose phones
did not show it. One small interface (`FallbackChannel`) and its e-mail implementation on
notify's SMTP sender (`channels.mail`, `VOC_SMTP_URL`, `VOC_MAIL_FROM`); an SMS channel plugs in
beside it."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Protocol

from voc_notify.channels.mail import Mail, MailSender


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
    """E-mail to the staff member's directory address, through notify's one SMTP sender (the
    follow-up messages' `MailSender`)."""

    name = "email"

    def __init__(self, sender: MailSender) -> None:
        self.sender = sender

    async def send(self, page: FallbackPage) -> None:
        intro, link, check = _LINES.get(page.language, _LINES["en"])
        url = link.format(url=page.url)
        text = "\n\n".join([intro, page.body, url, check]) + "\n"
        html = (
            f'<!doctype html><html lang="{escape(page.language)}"><head><meta charset="utf-8"></head><body>'
            + "".join(f"<p>{escape(part)}</p>" for part in (intro, page.body))
            + f'<p><a href="{escape(page.url)}">{escape(url)}</a></p><p>{escape(check)}</p></body></html>'
        )
        result = await self.sender.send(
            Mail(
                to=page.to_address,
                subject=page.title,
                text=text,
                html=html,
                message_id=f"page.{page.alert_id}.{page.staff_id}",
            )
        )
        if result.status != "sent":
            raise FallbackFailed(f"SMTP: {result.detail}")
