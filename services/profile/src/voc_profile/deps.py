"""What the profile routes depend on: the settings, the caller and what it may do (the platform's
`require(permission)`: the admin token or a staff token, scoped to its stores), the audit log,
and the query of a list by signal (with its store and cursor)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Annotated, Literal

import orjson
from fastapi import Depends, Query

from voc_platform.audit import Audit
from voc_platform.errors import FieldError, Invalid
from voc_platform.fields import DirectoryIdQuery
from voc_platform.http import app_state, require
from voc_platform.identity import Caller, Permission
from voc_profile import lists
from voc_profile.settings import Settings
from voc_profile.signals import SIGNALS

SettingsDep = Annotated[Settings, Depends(app_state("settings"))]
AuditDep = Annotated[Audit, Depends(app_state("audit"))]  # the log, and its buffer of audited reads
CustomerReader = Annotated[Caller, Depends(require(Permission.CUSTOMER_READ))]
CustomerAdmin = Annotated[Caller, Depends(require(Permission.CUSTOMER_ADMIN))]


def encode_cursor(after: lists.After) -> str:
    """The cursor of a keyset position (url-safe base64 of a JSON pair)."""
    return base64.urlsafe_b64encode(orjson.dumps(list(after))).decode().rstrip("=")


def decode_cursor(cursor: str) -> lists.After:
    """The keyset position a cursor names; 422 naming `query.cursor` for one this API did not
    issue (as feedback's lists answer it; it was 400), before any row is read or streamed."""
    after = None
    try:
        value = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if isinstance(value, list) and len(value) == 2:
            after = lists.keyset_after(value[0], value[1])
    except (ValueError, binascii.Error):  # orjson.JSONDecodeError is a ValueError
        pass
    if after is None:
        raise Invalid(
            "The cursor is not one this API issued.", errors=[FieldError("query.cursor", "invalid")]
        )
    return after


@dataclass(frozen=True, slots=True)
class ListQuery:
    signal: str
    limit: int
    after: lists.After | None
    format: Literal["json", "csv"]
    store_id: str | None = None


StoreQuery = DirectoryIdQuery


def list_query(
    signal: Annotated[str, Query(json_schema_extra={"enum": list(SIGNALS)})],
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
    store_id: StoreQuery = None,
) -> ListQuery:
    """`?signal=&limit=&cursor=&format=&store_id=`: the signal checked first, then the cursor."""
    lists.check_signal(signal)
    return ListQuery(signal, limit, decode_cursor(cursor) if cursor else None, format, store_id)


ListQueryDep = Annotated[ListQuery, Depends(list_query)]
