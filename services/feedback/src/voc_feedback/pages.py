"""The follow-up survey page: server-rendered, Korean and English, phone-first, no JavaScript
and no login (the signed one-time token in the URL is the credential)."""

from __future__ import annotations

from html import escape
from urllib.parse import quote

SCALE = {
    "ko": ("매우 불만족", "불만족", "보통", "만족", "매우 만족"),
    "en": ("Very unhappy", "Unhappy", "Neutral", "Happy", "Very happy"),
}
TEXT: dict[str, dict[str, str]] = {
    "ko": {
        "title": "방문은 어떠셨나요?",
        # Never how we filed it: a customer reads "'칭찬' 건을 처리했습니다" as a form letter.
        "intro": "{store}에 남겨 주신 말씀을 살펴 조치했습니다. 잘 해결되었는지 알려 주세요.",
        "csat": "처리 결과에 얼마나 만족하시나요?",
        "revisit": "다시 방문하실 의향이 있으신가요?",
        "yes": "예",
        "no": "아니요",
        "comment": "더 하실 말씀이 있으면 적어 주세요 (선택)",
        "submit": "보내기",
        "thanks": "소중한 의견 감사합니다.",
        "thanks_happy": "잘 해결되었다니 다행입니다. 다음에 또 뵙겠습니다.",
        "thanks_unhappy": "불편을 드려 죄송합니다. 매장 책임자가 곧 다시 연락드리겠습니다.",
        "thanks_neutral": "말씀해 주셔서 감사합니다. 더 나아지는 데 쓰겠습니다.",
        "gone": "이 설문은 이미 답변되었거나 기간이 지났습니다.",
        "invalid_link": "유효하지 않은 링크입니다.",
        "invalid": "만족도를 1~5 중에서 골라 주세요.",
        "switch": "English",
    },
    "en": {
        "title": "How did we do?",
        "intro": "We acted on what you told {store}. Please tell us whether it was put right.",
        "csat": "How satisfied are you with how it was handled?",
        "revisit": "Would you visit us again?",
        "yes": "Yes",
        "no": "No",
        "comment": "Anything else you would like to tell us? (optional)",
        "submit": "Send",
        "thanks": "Thank you for your answer.",
        "thanks_happy": "We are glad it was put right. See you next time.",
        "thanks_unhappy": "We are sorry. The store manager will get back to you shortly.",
        "thanks_neutral": "Thank you for telling us. We will use it to do better.",
        "gone": "This survey was already answered or has expired.",
        "invalid_link": "This link is not valid.",
        "invalid": "Please choose a satisfaction level from 1 to 5.",
        "switch": "한국어",
    },
}

LANGUAGES = ("ko", "en")
STYLESHEET = "/f/assets/follow-up.css"  # static/follow-up.css: no inline style under the CSP


def language_of(value: str | None, default: str = "ko") -> str:
    """A page language the pages speak: `value` when it is one of `LANGUAGES`, else `default`
    (a form field or query parameter is caller input and never reaches the page as such)."""
    return value if value in LANGUAGES else (default if default in LANGUAGES else "ko")


def _texts(language: str) -> dict[str, str]:
    """The page texts of `language`, escaped for HTML like every other value on the pages."""
    return {key: escape(value) for key, value in TEXT[language].items()}


def _page(language: str, title: str, body: str) -> str:
    """The whole document around `title` and `body` (both escaped markup already)."""
    return (
        f'<!doctype html><html lang="{language_of(language)}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta name="robots" content="noindex"><meta name="referrer" content="no-referrer">'
        f'<title>{title}</title><link rel="stylesheet" href="{STYLESHEET}">'
        '<link rel="icon" href="data:,"></head>'
        f"<body><main>{body}</main></body></html>"
    )


def follow_up_form(
    *,
    token: str,
    language: str,
    store_name: str,
    error: str = "",
    comment: str = "",
    revisit: bool | None = None,
) -> str:
    """The survey; `error` with what the customer had given (`comment`, `revisit`) when their
    answer was refused, so nothing they typed is lost."""
    language = language_of(language)
    t = _texts(language)
    other = "en" if language == "ko" else "ko"
    store = store_name or ("매장" if language == "ko" else "our store")
    intro = t["intro"].format(store=escape(store))
    scale = "".join(
        f'<label><input type="radio" name="csat" value="{i}" required>{i}<br>{escape(word)}</label>'
        for i, word in enumerate(SCALE[language], start=1)
    )
    action = escape(f"/f/{quote(token, safe='')}")
    return _page(
        language,
        t["title"],
        # The switch is written in the other language, and marked so (WCAG 3.1.2).
        f'<a class="lang" href="{action}?lang={other}" lang="{other}" hreflang="{other}">{t["switch"]}</a>'
        f"<h1>{t['title']}</h1><p>{intro}</p>"
        + (f'<p class="error" role="alert">{escape(error)}</p>' if error else "")
        + f'<form method="post" action="{action}"><input type="hidden" name="lang" value="{language}">'
        f'<fieldset><legend>{t["csat"]}</legend><div class="scale">{scale}</div></fieldset>'
        f'<fieldset><legend>{t["revisit"]}</legend><div class="yn">'
        f'<label><input type="radio" name="revisit_intent" value="yes"{checked(revisit is True)}>'
        f'{t["yes"]}</label><label><input type="radio" name="revisit_intent" value="no"'
        f"{checked(revisit is False)}>{t['no']}</label>"
        f'</div></fieldset><fieldset><legend id="comment-label">{t["comment"]}</legend>'
        '<textarea name="comment" maxlength="4000" aria-labelledby="comment-label">'
        f"{escape(comment)}</textarea></fieldset>"
        f'<button type="submit">{t["submit"]}</button></form>',
    )


def checked(on: bool) -> str:
    return " checked" if on else ""


def follow_up_thanks(language: str, *, satisfied: bool, reopened: bool) -> str:
    """Glad when satisfied; a promise to get back only when the answer reopened the case (the
    store is paged again); a neutral thanks otherwise (a 3 is not satisfied, nor reopened)."""
    language = language_of(language)
    t = _texts(language)
    message = t["thanks_happy"] if satisfied else t["thanks_unhappy"] if reopened else t["thanks_neutral"]
    return _page(language, t["thanks"], f'<h1>{t["thanks"]}</h1><p class="note">{message}</p>')


def follow_up_closed(status: int, language: str) -> str:
    language = language_of(language)
    t = _texts(language)
    message = t["gone"] if status == 410 else t["invalid_link"]
    return _page(language, t["title"], f'<h1>{t["title"]}</h1><p class="note">{message}</p>')
