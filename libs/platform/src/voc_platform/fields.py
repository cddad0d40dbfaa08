"""Field types the services' request schemas share, so each rule has one home."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from pydantic import BeforeValidator, Field

from voc_platform.taxonomy import SENTIMENTS

#: Store, area and staff ids: what URLs, CSV cells and log lines carry without escaping.
DIRECTORY_ID_PATTERN = r"^[A-Za-z0-9_\-.]+$"

#: A store, area or staff id in a body.
DirectoryId = Annotated[str, Field(min_length=1, max_length=64, pattern=DIRECTORY_ID_PATTERN)]


def _blank_is_none(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


#: An optional store or area id in a body: "" (what a form or an export leaves) is none.
OptionalDirectoryId = Annotated[DirectoryId | None, BeforeValidator(_blank_is_none)]
#: An optional store or area id in a query (`?store_id=`).
DirectoryIdQuery = Annotated[str | None, Query(min_length=1, max_length=64, pattern=DIRECTORY_ID_PATTERN)]
#: A sentiment a correction sets: the enum documents the values, the taxonomy's check refuses others.
Sentiment = Annotated[str, Field(min_length=1, max_length=32, json_schema_extra={"enum": list(SENTIMENTS)})]

#: How staff may resolve a case: notify's REST resolve takes one, and feedback's gRPC
#: `RecordOutcome` (the case's timeline) refuses any other.
RESOLUTION_OUTCOMES = ("resolved", "compensated", "referred", "no_action_needed", "customer_unreachable")
#: The longest note a resolution carries, on either path.
MAX_RESOLUTION_NOTE_CHARS = 2000
