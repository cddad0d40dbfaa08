"""Normalising identifiers so the same person matches across channels."""

from __future__ import annotations

import re

import phonenumbers

from voc.common.v1 import common_pb2
from voc_platform.masking import mask_name as mask_name  # re-exported: profile masks names here

# Korean mobile numbers (010 + 8 digits) are most of what a KR chain sees and all of them are
# valid in the numbering plan: a fast path that gives phonenumbers' answer without the parse
# (it is half the cost of a bulk import otherwise).
_KR_MOBILE = re.compile(r"(?:\+82[- ]?|0)10[- .]?(\d{4})[- .]?(\d{4})")


class InvalidIdentifier(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def normalize_phone(raw: str, *, region: str) -> str:
    """E.164 ('+821012345678'); a national number is read in `region` (KR by default)."""
    fast = _KR_MOBILE.fullmatch(raw.strip())
    if fast and (region == "KR" or raw.lstrip().startswith("+")):
        return f"+8210{fast.group(1)}{fast.group(2)}"
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidIdentifier("phone", f"not a phone number: {exc}") from exc
    # Validity (number plan of the region), not mere possibility: '010-12' is "possible".
    if not phonenumbers.is_valid_number(number):
        raise InvalidIdentifier("phone", "not a valid phone number for its region")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_email(raw: str) -> str:
    value = raw.strip().lower()
    local, sep, domain = value.partition("@")
    if not sep or not local or "." not in domain:
        raise InvalidIdentifier("email", "not an e-mail address")
    return value


def normalize(
    *,
    loyalty_id: str = "",
    phone: str = "",
    email: str = "",
    channel_user_id: str = "",
    channel: str = "",
    region: str = "KR",
    dropped: list[str] | None = None,
) -> list[tuple[str, str]]:
    """(kind, value) pairs, strongest first: loyalty id, phone, e-mail, channel id.

    A malformed phone or e-mail raises `InvalidIdentifier`; given `dropped`, it is left out
    instead (its field name appended there) and the others still count: a typo in the phone
    must not make a known e-mail anonymous."""
    found: list[tuple[str, str]] = []
    if loyalty_id.strip():
        found.append(("loyalty", loyalty_id.strip()))
    if phone.strip():
        try:
            found.append(("phone", normalize_phone(phone, region=region)))
        except InvalidIdentifier as exc:
            _drop(exc, dropped)
    if email.strip():
        try:
            found.append(("email", normalize_email(email)))
        except InvalidIdentifier as exc:
            _drop(exc, dropped)
    if channel_user_id.strip():
        found.append(("channel", f"{channel or 'any'}:{channel_user_id.strip()}"))
    return found


def _drop(exc: InvalidIdentifier, dropped: list[str] | None) -> None:
    if dropped is None:
        raise exc
    dropped.append(exc.field)


def of_message(
    ids: common_pb2.CustomerIdentifiers, *, region: str, dropped: list[str] | None = None
) -> list[tuple[str, str]]:
    """`normalize` of the identifiers a message carries (the channel id with its channel). Every
    lookup and event passes `dropped`: a malformed identifier never fails them. The fields are
    passed by name; a dict unpacked into `normalize` cost half as much again."""
    return normalize(
        loyalty_id=ids.loyalty_id,
        phone=ids.phone,
        email=ids.email,
        channel_user_id=ids.channel_user_id,
        channel=ids.channel,
        region=region,
        dropped=dropped,
    )


def mask_phone(e164: str | None) -> str:
    return f"***-{e164[-4:]}" if e164 and len(e164) >= 4 else ""
