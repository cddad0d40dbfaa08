"""The follow-up message in the customer's language (ko or en): the store's name, one short
question and the link; plain text, HTML (everything escaped) and the short SMS form."""

from __future__ import annotations

from dataclasses import dataclass
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
        "footer": "이 메일은 고객님이 남기신 의견에 대한 1회성 안내입니다.",
    },
    "en": {
        "subject": "{tag}Thank you for your visit. Did we put it right?",
        "greeting": "Thank you for visiting {store}.",
        "greeting_unnamed": "Thank you for your visit.",
        "question": "Did we put right what you told us about?",
        "ask": "Please answer once at the link below (it takes 30 seconds).",
        "button": "Answer",
        "sms": "{tag}Did we put right what you told us about? Answer: {url}",
        "footer": "This is a one-time message about the feedback you gave us.",
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


def render(*, language: str, store_name: str, url: str, brand: str = "") -> FollowUpText:
    """`brand` (VOC_BRAND_NAME) goes before the store's name: a branch name alone ("강남역점")
    does not say whose mail it is, and a customer wary of phishing does not answer it. With
    neither (a store missing from the directory, no brand set) the message names no one: its
    id ("store-0042") means nothing to a customer."""
    t = _TEXTS["ko" if language == "ko" else "en"]
    store = " ".join(f"{brand} {store_name}".split())[:80]
    tag = f"[{store}] " if store else ""
    greeting = t["greeting"].format(store=store) if store else t["greeting_unnamed"]
    question, ask = t["question"], t["ask"]
    text = f"{greeting}\n\n{question}\n{ask}\n\n{url}\n\n-- \n{t['footer']}\n"
    lang = "ko" if language == "ko" else "en"
    html = (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        f"<title>{escape(t['subject'].format(tag=tag))}</title></head>"
        '<body style="font-family:sans-serif;line-height:1.5">'
        f"<p>{escape(greeting)}</p>"
        f"<p><strong>{escape(question)}</strong><br>{escape(ask)}</p>"
        f'<p><a href="{escape(url, quote=True)}">{escape(t["button"])}</a></p>'
        f'<p style="font-size:small;color:#666">{escape(url)}<br>{escape(t["footer"])}</p>'
        "</body></html>"
    )
    return FollowUpText(
        subject=t["subject"].format(tag=tag),
        text=text,
        html=html,
        sms=t["sms"].format(tag=tag, url=url),
        question=question,
    )
