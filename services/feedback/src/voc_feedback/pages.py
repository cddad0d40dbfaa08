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
        "thanks_happy_only": "잘 해결되었다니 다행입니다.",
        # Never a promise staff cannot keep: a manager sees the customer's contact masked.
        "thanks_unhappy": "불편을 드려 죄송합니다. 매장에 다시 알려 바로잡도록 하겠습니다.",
        "thanks_neutral": "말씀해 주셔서 감사합니다. 더 나아지는 데 쓰겠습니다.",
        "answered": "이미 답변해 주셨습니다. 감사합니다.",
        "answered_title": "이미 답변하셨습니다",
        "expired": "답변 기간이 지나 이 링크로는 더 이상 답변할 수 없습니다.",
        "expired_title": "답변 기간이 지났습니다",
        "kept": "적어 주신 내용은 전달되지 않았습니다. 아래에 그대로 남겨 둡니다.",
        "invalid_link": "유효하지 않은 링크입니다. 받으신 메시지의 링크를 그대로 열어 주세요.",
        "invalid_link_title": "링크를 열 수 없습니다",
        "invalid": "만족도를 1~5 중에서 골라 주세요.",
        "invalid_comment": "남기실 말씀은 4,000자까지 적을 수 있습니다.",
        "invalid_revisit": "재방문 의향은 예 또는 아니요로 골라 주세요.",
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
        "thanks_happy_only": "We are glad it was put right.",
        "thanks_unhappy": "We are sorry. We have told the store again so that they put it right.",
        "thanks_neutral": "Thank you for telling us. We will use it to do better.",
        "answered": "You already answered. Thank you!",
        "answered_title": "Already answered",
        "expired": "The time to answer has passed; this link no longer takes answers.",
        "expired_title": "The time to answer has passed",
        "kept": "What you wrote was not sent. It is kept below as you wrote it.",
        "invalid_link": "This link is not valid. Please open the link in the message you received as it is.",
        "invalid_link_title": "This link cannot be opened",
        "invalid": "Please choose a satisfaction level from 1 to 5.",
        "invalid_comment": "A comment can be up to 4,000 characters.",
        "invalid_revisit": "Please answer Yes or No about visiting again.",
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
    csat: int | None = None,
) -> str:
    """The survey; `error` with what the customer had given (`csat`, `comment`, `revisit`) when
    their answer was refused, so nothing they chose or typed is lost."""
    language = language_of(language)
    t = _texts(language)
    other = "en" if language == "ko" else "ko"
    store = store_name or ("매장" if language == "ko" else "our store")
    intro = t["intro"].format(store=escape(store))
    scale = "".join(
        f'<label><input type="radio" name="csat" value="{i}" required{checked(csat == i)}>{i}<br>'
        f"{escape(word)}</label>"
        for i, word in enumerate(SCALE[language], start=1)
    )
    action = escape(f"/f/{quote(token, safe='')}")
    described = ' aria-describedby="form-error"' if error else ""
    return _page(
        language,
        t["title"],
        # The switch is written in the other language, and marked so (WCAG 3.1.2).
        f'<a class="lang" href="{action}?lang={other}" lang="{other}" hreflang="{other}">{t["switch"]}</a>'
        f"<h1>{t['title']}</h1><p>{intro}</p>"
        + (f'<p class="error" id="form-error" role="alert">{escape(error)}</p>' if error else "")
        + f'<form method="post" action="{action}"><input type="hidden" name="lang" value="{language}">'
        # A refused answer's message is read with the form's first group (no script moves focus).
        f'<fieldset{described}><legend>{t["csat"]}</legend><div class="scale">{scale}</div></fieldset>'
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


def follow_up_thanks(language: str, *, satisfied: bool, reopened: bool, revisit: bool | None = None) -> str:
    """Glad when satisfied ("see you next time" unless they said they would not come back); that
    the store was told again when the answer reopened the case (it is paged again); a neutral
    thanks otherwise (a 3 is not satisfied, nor reopened)."""
    language = language_of(language)
    t = _texts(language)
    if satisfied:
        message = t["thanks_happy_only"] if revisit is False else t["thanks_happy"]
    else:
        message = t["thanks_unhappy"] if reopened else t["thanks_neutral"]
    return _page(language, t["thanks"], f'<h1>{t["thanks"]}</h1><p class="note">{message}</p>')


CLOSED_ANSWERED, CLOSED_EXPIRED, CLOSED_INVALID = "answered", "expired", "invalid_link"


def follow_up_closed(reason: str, language: str, *, comment: str = "") -> str:
    """A link that takes no answer, saying which it is (answered, expired, not valid); a comment
    the customer had written is shown back to them, since it was not sent."""
    language = language_of(language)
    t = _texts(language)
    title = t[f"{reason}_title"]
    kept = (
        f'<p class="note">{t["kept"]}</p><blockquote class="kept">{escape(comment)}</blockquote>'
        if comment and reason != CLOSED_ANSWERED
        else ""
    )
    return _page(language, title, f'<h1>{title}</h1><p class="note">{t[reason]}</p>{kept}')
