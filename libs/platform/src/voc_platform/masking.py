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


# Thirteen digits with at most three separators between each two: the least a card or resident
# number is. Bounded, so a text without one costs one linear scan (`.*?` between the digits
# backtracked through every way of choosing 12 of a text's digits).
_THIRTEEN_DIGITS = re.compile(rf"{_DIGIT}(?:{_SEPARATOR}{{0,3}}{_DIGIT}){{12}}")
_DIGIT_GROUP = re.compile(r"\d+")
# How card numbers are written: one unbroken run of 13-19 digits, or these groups (Visa,
# Mastercard, the Korean domestic cards 4-4-4-4; 19 digits 4-4-4-4-3; Amex 4-6-5; Diners 4-6-4).
_CARD_GROUPS = frozenset({(4, 4, 4, 4), (4, 4, 4, 4, 3), (4, 6, 5), (4, 6, 4)})
_CARD_FIRST_DIGITS = frozenset("2345689")  # the networks' ranges; 9: Korean domestic (BC) cards
_RESIDENT_GROUPS = frozenset({(6, 7), (13,)})
_LONGEST_SPAN = 5  # groups


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        total += d if i % 2 == 0 else (d * 2 - 9 if d > 4 else d * 2)
    return total % 10 == 0


def _resident_number(digits: str) -> bool:
    """YYMMDD, then the holder's digit (1-8) and six more: a real month and day."""
    if not _RESIDENT_NUMBER.fullmatch(digits):
        return False
    return 1 <= int(digits[2:4]) <= 12 and 1 <= int(digits[4:6]) <= 31


def _sensitive(shape: tuple[int, ...], digits: str, *, international: bool) -> str | None:
    """What a span of digit groups is cut to when it is a card or resident number, else None."""
    if shape in _RESIDENT_GROUPS and not international and _resident_number(digits):
        return "******-*******"
    card_shape = shape in _CARD_GROUPS or (len(shape) == 1 and 13 <= shape[0] <= 19)
    if card_shape and digits[0] in _CARD_FIRST_DIGITS and _luhn(digits):
        return "***" + digits[-4:]
    return None


_Group = tuple[int, int, str]  # start, end in the match, its digits (ASCII)


def _sensitive_span(groups: list[_Group], i: int, *, international: bool) -> tuple[int, str] | None:
    """(groups taken, what they are cut to) for the longest card or resident number starting at
    group `i`; None when none does. Only spans of 13-19 digits are looked at."""
    longest = min(_LONGEST_SPAN, len(groups) - i)
    total = sum(len(g[2]) for g in groups[i : i + longest])
    for size in range(longest, 0, -1):
        if size < longest:
            total -= len(groups[i + size][2])
        if total < 13:
            return None  # shorter spans hold fewer digits still
        if total > 19:
            continue
        span = groups[i : i + size]
        cut = _sensitive(
            tuple(len(g[2]) for g in span), "".join(g[2] for g in span), international=international
        )
        if cut is not None:
            return size, cut
    return None


def _redact_number(match: re.Match[str]) -> str:
    """A run of digit groups with the card and resident numbers in it cut out, the rest as
    written: a phone number beside a card stays."""
    raw = match.group(0)
    groups = [
        (g.start(), g.end(), "".join(str(int(ch)) for ch in g.group())) for g in _DIGIT_GROUP.finditer(raw)
    ]
    # A number written with a country code is a phone number, never a resident number.
    international = raw.lstrip("(\uff08").startswith(("+", "\uff0b"))
    out: list[str] = []
    cursor = i = 0
    while i < len(groups):
        found = _sensitive_span(groups, i, international=international)
        if found is None:
            i += 1
            continue
        size, cut = found
        out += [raw[cursor : groups[i][0]], cut]
        cursor, i = groups[i + size - 1][1], i + size
    return "".join(out) + raw[cursor:] if out else raw


def redact_card_and_resident_numbers(text: str) -> str:
    """A customer's text as it may be kept: payment card numbers (written as cards are, 13-19
    digits that pass the Luhn check) cut to their last four digits and Korean resident
    registration numbers (6-7 digits, a real birth date, then the holder's digit) removed whole,
    as no one handling feedback needs them and a store may not keep them (PCI DSS 3.3, PIPA art.
    24-2). Phone numbers, e-mails and account numbers stay: staff use them to call back or
    refund. An unbroken run of 13-19 digits that passes the Luhn check is taken for a card (one
    order number in ten would be)."""
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
