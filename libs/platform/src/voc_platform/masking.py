"""Masking free text before it leaves the place that keeps it whole: lock screens (notify),
a customer's recent contacts (profile) and anything else staff see at a glance."""

from __future__ import annotations

import re

# An address: a local part, @, and a domain of labels that may carry hyphens (`mail.my-shop.co.kr`),
# as people also write it: a full-width ＠ or ．, a space either side of the @, "(at)" and "(dot)".
_AT = r"(?:\s?[@\uff20]\s?|\s?[(\[]\s?at\s?[)\]]\s?)"
# A dot with a space on both sides ("example . com") is an address's too; "home. Then" is prose.
_DOT = r"(?:[.\uff0e]|\s[.\uff0e]\s|\s?[(\[]\s?dot\s?[)\]]\s?)"
_EMAIL = re.compile(rf"[\w.+%-]+{_AT}[\w-]+(?:{_DOT}[\w-]+)+", re.IGNORECASE)
# A number as people write phone, card, account and resident registration numbers: digits (ASCII
# or full-width) with up to three separators between them (spaces, dots, dashes, slashes,
# brackets, ASCII or full-width; and what Korean keyboards offer for a dash: the vowel ㅡ, the
# middle dots · and ・, tildes, stars, underscores), and an optional leading + or bracket.
_SEPARATOR = (
    r"[\s.\-\u2010-\u2015\u2212/()\uff0e\uff0d\uff08\uff09\uff0f"
    r"\u3161\u00b7\u2022\u2027\u30fb\uff65~\u301c\uff5e*\uff0a_\uff3f]"
)
# Digits as typed: ASCII, full-width (both \d) and the super- and subscript ones a phone's
# symbol keyboard offers (⁰¹²…, ₀₁₂…).
_DIGIT = r"[\d\u00b2\u00b3\u00b9\u2070\u2074-\u2079\u2080-\u2089]"
_NUMBER = re.compile(rf"[+\uff0b]?[(\uff08]?{_DIGIT}(?:{_SEPARATOR}{{0,3}}{_DIGIT})+")
# A Korean mobile number (01x, 3-4 digits, 4 digits) keeps its shape whatever is typed between
# the groups ("010:1234:5678", "010,1234,5678"): separators too common in prose (colons in
# times, commas in prices) for `_SEPARATOR` are taken here, in this one shape only.
_MOBILE = re.compile(rf"(?<!{_DIGIT})01[016789][^\w\n]{{1,3}}\d{{3,4}}[^\w\n]{{1,3}}\d{{4}}(?!{_DIGIT})")
_MIN_DIGITS = 7  # shorter runs are quantities, times, prices
# What a text needs before the patterns above can change it, found in one cheap scan each: the
# address patterns scan every word for an @ and most texts have none (#19: masking runs for
# every push, event and webhook, and the patterns had made it three times as dear).
_MAY_HOLD_EMAIL = re.compile(r"[@\uff20(\[]")
_SEVEN_DIGITS = re.compile(rf"{_DIGIT}(?:.*?{_DIGIT}){{{_MIN_DIGITS - 1}}}", re.DOTALL)
_RESIDENT_NUMBER = re.compile(r"\d{6}[1-8]\d{6}")  # Korean RRN / foreigner number: YYMMDD + 7


def _mask_number(match: re.Match[str]) -> str:
    digits = "".join(ch for ch in match.group(0) if ch.isdigit())
    if len(digits) < _MIN_DIGITS:
        return match.group(0)
    international = match.group(0).lstrip("(\uff08").startswith(("+", "\uff0b"))
    if not international and _RESIDENT_NUMBER.fullmatch(digits):
        return "******-*******"  # nothing of a resident registration number is shown
    return "***" + digits[-4:]  # phone, card, account: the last four digits


def mask_text(text: str, limit: int = 120) -> str:
    """A lock-screen-safe excerpt: e-mails, and numbers of 7+ digits however written (phone
    numbers with dots or +82, cards with spaces or dashes) reduced to their last four digits,
    resident registration numbers masked whole."""
    if _MAY_HOLD_EMAIL.search(text):
        text = _EMAIL.sub("***@***", text)
    if _SEVEN_DIGITS.search(text):
        text = _MOBILE.sub(_mask_number, text)
        text = _NUMBER.sub(_mask_number, text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


_THIRTEEN_DIGITS = re.compile(rf"{_DIGIT}(?:.*?{_DIGIT}){{12}}", re.DOTALL)
_CARD_DIGITS = range(13, 20)
_CARD_LENGTHS = (16, 15, 19, 14, 13)  # the usual first: Visa and Mastercard 16, Amex 15


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        total += d if i % 2 == 0 else (d * 2 - 9 if d > 4 else d * 2)
    return total % 10 == 0


def _resident_number(digits: str) -> bool:
    """YYMMDD, then the holder's digit (1-8) and six more: a real month and day."""
    return (
        bool(_RESIDENT_NUMBER.fullmatch(digits))
        and 1 <= int(digits[2:4]) <= 12
        and 1 <= int(digits[4:6]) <= 31
    )


def _redact_number(match: re.Match[str]) -> str:
    raw = match.group(0)
    try:
        digits = "".join(str(int(ch)) for ch in raw if ch.isdigit())
    except ValueError:  # a super- or subscript digit: not how a card or resident number is typed
        return raw
    international = raw.lstrip("(\uff08").startswith(("+", "\uff0b"))
    if not international and _resident_number(digits):
        return "******-*******"
    if len(digits) in _CARD_DIGITS and _luhn(digits):
        return "***" + digits[-4:]
    # Run into a number next to it ("4111 1111 1111 1111 12/27"): a card at either end.
    for size in _CARD_LENGTHS if len(digits) > _CARD_DIGITS.stop - 1 else ():
        if _luhn(digits[:size]) or _luhn(digits[-size:]):
            return "***" + digits[-4:]
    return raw


def redact_card_and_resident_numbers(text: str) -> str:
    """A customer's text as it may be kept: payment card numbers (13-19 digits that pass the Luhn
    check, however separated) cut to their last four digits and Korean resident registration
    numbers (a real birth date, then the holder's digit) removed whole, as no one handling
    feedback needs them and a store may not keep them (PCI DSS 3.3, PIPA art. 24-2). Phone
    numbers, e-mails and account numbers stay: staff use them to call back or refund."""
    if not _THIRTEEN_DIGITS.search(text):
        return text
    return _NUMBER.sub(_redact_number, text)


def mask_name(name: str | None) -> str:
    """'김민수' -> '김**', 'Jane Doe' -> 'J*** D**'."""
    if not name:
        return ""
    parts = name.split()
    if len(parts) == 1:
        return name[0] + "*" * max(len(name) - 1, 1)
    return " ".join(p[0] + "*" * max(len(p) - 1, 1) for p in parts)


def mask_names(text: str, *names: str | None, replacement: str | None = None) -> str:
    """`text` with the customer's names masked as the context masks them: each name whole and
    each of its parts of two or more characters (the whole name before its parts), so
    "김민수입니다" becomes "김**입니다" and "Jane here" with "Jane Doe" on file "J*** here".
    With `replacement`, each becomes that word instead (erasure: nothing of the name stays)."""
    parts = {p for name in names if name for p in (name.strip(), *name.split()) if len(p) >= 2}
    for part in sorted(parts, key=len, reverse=True):
        text = text.replace(part, mask_name(part) if replacement is None else replacement)
    return text


_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")  # as actions' render replaces them: one space
#: The most of a customer's value a playbook's text takes (actions' render cuts each inserted
#: value there), so a long name stands in a plan cut short.
INSERTED_VALUE_LIMIT = 60


def mask_inserted_names(text: str, *names: str | None, replacement: str | None = None) -> str:
    """`mask_names` for a text a playbook was rendered into: each name also as the render cut it
    (its last word cut short is masked too)."""
    cut = [_CONTROL.sub(" ", name).strip()[:INSERTED_VALUE_LIMIT] for name in names if name]
    return mask_names(text, *names, *cut, replacement=replacement)
