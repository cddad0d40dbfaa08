"""The follow-up message in the customer's language (ko or en): the store's name, one short
question and the link; plain text, HTML (everything escaped) and the short SMS form."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from html import escape

_TEXTS = {
    "ko": {
        "subject": "{tag}방문해 주셔서 감사합니다. 문제는 잘 해결되었나요?",
        "greeting": "{store}에 방문해 주셔서 감사합니다.",
        "greeting_unnamed": "방문해 주셔서 감사합니다.",
        "question": "말씀해 주신 문제는 잘 해결되었나요?",
        "ask": "아래 링크에서 간단히 답해 주세요. 30초면 충분합니다.",
        "button": "답변하기",
        "sms": "{tag}말씀해 주신 문제는 잘 해결되었나요? 답변: {url}",
        # Asked again (the customer said it was not put right, and it was handled once more).
        "subject_again": "{tag}다시 알려 주셔서 감사합니다. 이번에는 잘 해결되었나요?",
        "greeting_again": "{store}에 다시 알려 주셔서 감사합니다.",
        "greeting_again_unnamed": "다시 알려 주셔서 감사합니다.",
        "question_again": "다시 말씀해 주신 문제는 이번에는 잘 해결되었나요?",
        "sms_again": "{tag}다시 말씀해 주신 문제는 이번에는 잘 해결되었나요? 답변: {url}",
        "footer": "이 메일은 고객님이 남기신 의견에 대한 안내입니다.",
        "until": "답변 링크는 {until}까지 열립니다.",
    },
    "en": {
        "subject": "{tag}Thank you for your visit. Did we put it right?",
        "greeting": "Thank you for visiting {store}.",
        "greeting_unnamed": "Thank you for your visit.",
        "question": "Did we put right what you told us about?",
        "ask": "Please answer once at the link below (it takes 30 seconds).",
        "button": "Answer",
        "sms": "{tag}Did we put right what you told us about? Answer: {url}",
        "subject_again": "{tag}Thank you for telling us again. Did we put it right this time?",
        "greeting_again": "Thank you for telling {store} again.",
        "greeting_again_unnamed": "Thank you for telling us again.",
        "question_again": "Did we put it right this time?",
        "sms_again": "{tag}Did we put it right this time? Answer: {url}",
        "footer": "This message is about the feedback you gave us.",
        "until": "The link works until {until}.",
    },
}


# An Alimtalk template's `#{store}` for a store missing from the directory: an approved template
# ("#{store}에 방문해 주셔서 …") must still read, and a provider may refuse an empty variable.
UNNAMED_STORE = {"ko": "매장", "en": "our store"}


@dataclass(frozen=True, slots=True)
class FollowUpText:
    subject: str
    text: str
    html: str
    sms: str
    question: str


def render(
    *,
    language: str,
    store_name: str,
    url: str,
    brand: str = "",
    again: bool = False,
    until: date | None = None,
) -> FollowUpText:
    """`brand` (VOC_BRAND_NAME) goes before the store's name: a branch name alone ("강남역점")
    does not say whose mail it is, and a customer wary of phishing does not answer it. With
    neither (a store missing from the directory, no brand set) the message names no one: its
    id ("store-0042") means nothing to a customer. `again`: the customer said it was not put
    right, and is asked about the second try, not sent the first message word for word.
    `until`: the link's last day (the store's), said in the mail so an answer is not lost to it."""
    lang = "ko" if language == "ko" else "en"
    t = _TEXTS[lang]
    suffix = "_again" if again else ""
    store = " ".join(f"{brand} {store_name}".split())[:80]
    tag = f"[{store}] " if store else ""
    greeting = t[f"greeting{suffix}"].format(store=store) if store else t[f"greeting{suffix}_unnamed"]
    question, ask = t[f"question{suffix}"], t["ask"]
    subject = t[f"subject{suffix}"].format(tag=tag)
    footer = t["footer"]
    if until is not None:
        day = f"{until.month}월 {until.day}일" if lang == "ko" else f"{until:%B} {until.day}"
        footer = f"{footer} {t['until'].format(until=day)}"
    text = f"{greeting}\n\n{question}\n{ask}\n\n{url}\n\n-- \n{footer}\n"
    html = (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        # A phone's mail app shows a page without it at about 40 %, the button a speck.
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(subject)}</title></head>"
        '<body style="font-family:sans-serif;font-size:16px;line-height:1.5;margin:0;padding:16px">'
        f"<p>{escape(greeting)}</p>"
        f"<p><strong>{escape(question)}</strong><br>{escape(ask)}</p>"
        f'<p><a href="{escape(url, quote=True)}" style="display:inline-block;padding:12px 24px;'
        'background:#2357d8;color:#ffffff;border-radius:8px;text-decoration:none;font-weight:600">'
        f"{escape(t['button'])}</a></p>"
        f'<p style="font-size:small;color:#555">{escape(url)}<br>{escape(footer)}</p>'
        "</body></html>"
    )
    return FollowUpText(
        subject=subject,
        text=text,
        html=html,
        sms=t[f"sms{suffix}"].format(tag=tag, url=url),
        question=question,
    )
