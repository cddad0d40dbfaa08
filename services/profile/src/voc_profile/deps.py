"""What the profile routes depend on: the settings, who is behind the admin token (the guard is
the platform's `require_admin`), the audit trail of reads, and the query of a list by signal
(with its cursor)."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Annotated, Literal

import orjson
from fastapi import Depends, Query, Request

from voc_platform.errors import BadRequest, FieldError
from voc_platform.http import app_state
from voc_profile import lists
from voc_profile.audit import AuditTrail
from voc_profile.settings import Settings
from voc_profile.signals import SIGNALS

_ACTOR_NAME = re.compile(r"^[\w.@+-]{1,64}$")

SettingsDep = Annotated[Settings, Depends(app_state("settings"))]
TrailDep = Annotated[AuditTrail, Depends(app_state("audit_trail"))]  # the buffer of audited reads


def actor_of(request: Request) -> str:
    """'admin', or 'admin:<name>' when the caller says who is behind the token (X-Voc-Actor)."""
    name = request.headers.get("x-voc-actor", "")
    return f"admin:{name}" if _ACTOR_NAME.match(name) else "admin"


ActorDep = Annotated[str, Depends(actor_of)]


def encode_cursor(after: lists.After) -> str:
    """The cursor of a keyset position (url-safe base64 of a JSON pair)."""
    return base64.urlsafe_b64encode(orjson.dumps(list(after))).decode().rstrip("=")


def decode_cursor(cursor: str) -> lists.After:
    """The keyset position a cursor names; BadRequest for one this API did not issue."""
    try:
        value = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        count, customer_id = value
        if not isinstance(count, int) or not isinstance(customer_id, str):
            raise ValueError
        return count, customer_id
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise BadRequest(
            "The cursor is not one this API issued.", errors=[FieldError("cursor", "invalid")]
        ) from None


@dataclass(frozen=True, slots=True)
class ListQuery:
    signal: str
    limit: int
    after: lists.After | None
    format: Literal["json", "csv"]


def list_query(
    signal: Annotated[str, Query(json_schema_extra={"enum": list(SIGNALS)})],
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> ListQuery:
    """`?signal=&limit=&cursor=&format=`: the signal checked first, then the cursor."""
    lists.check_signal(signal)
    return ListQuery(signal, limit, decode_cursor(cursor) if cursor else None, format)


ListQueryDep = Annotated[ListQuery, Depends(list_query)]
