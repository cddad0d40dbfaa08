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


# The longest each identifier (stripped, as REST strips it) and a name may be: the REST schemas'
# limits (`voc_profile.schemas`), which `normalize` holds gRPC and events to as well.
LOYALTY_ID_MAX = 64
PHONE_MAX = 32
EMAIL_MAX = 254
CHANNEL_USER_ID_MAX = 128  # REST's app_user_id
CHANNEL_MAX = 32
NAME_MAX = 100


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

    A malformed phone or e-mail, or any identifier REST would refuse (too long, a NUL), raises
    `InvalidIdentifier`; given `dropped`, it is left out instead (its field name appended there)
    and the others still count: a typo in the phone must not make a known e-mail anonymous."""
    found: list[tuple[str, str]] = []
    if value := _usable(loyalty_id, "loyalty_id", LOYALTY_ID_MAX, dropped):
        found.append(("loyalty", value))
    if value := _usable(phone, "phone", PHONE_MAX, dropped):
        try:
            found.append(("phone", normalize_phone(value, region=region)))
        except InvalidIdentifier as exc:
            _drop(exc, dropped)
    if value := _usable(email, "email", EMAIL_MAX, dropped):
        try:
            found.append(("email", normalize_email(value)))
        except InvalidIdentifier as exc:
            _drop(exc, dropped)
    if value := _usable(channel_user_id, "channel_user_id", CHANNEL_USER_ID_MAX, dropped):
        try:
            kind = checked_text(channel, field="channel", limit=CHANNEL_MAX) or "any"
            found.append(("channel", f"{kind}:{value}"))
        except InvalidIdentifier as exc:
            _drop(exc, dropped)
    return found


def _usable(raw: str, field: str, limit: int, dropped: list[str] | None) -> str:
    """`raw` stripped when REST would take it (`checked_text`); "" for none, or (given
    `dropped`) for one it would refuse."""
    value = raw.strip()
    if value:
        try:
            checked_text(value, field=field, limit=limit)
        except InvalidIdentifier as exc:
            _drop(exc, dropped)
            return ""
    return value


def checked_text(value: str, *, field: str, limit: int) -> str:
    """`value` when REST would take it for `field` (at most `limit` characters, no NUL, which
    PostgreSQL cannot store and REST refuses); InvalidIdentifier naming `field` otherwise."""
    if len(value) > limit:
        raise InvalidIdentifier(field, f"at most {limit} characters")
    if "\x00" in value:
        raise InvalidIdentifier(field, "must not contain NUL characters (U+0000)")
    return value


def given_name(name: str, *, strict: bool) -> str | None:
    """The name a message gives (None for none), held to REST's rules (`checked_text`): refused
    (InvalidIdentifier) when `strict`, else left out, as a malformed identifier is on a lookup."""
    if not name:
        return None
    try:
        return checked_text(name, field="name", limit=NAME_MAX)
    except InvalidIdentifier:
        if strict:
            raise
        return None


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
