"""Bulk imports of customers and visits: a CSV or JSON Lines body, streamed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO, Annotated, Any, Protocol

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from voc_platform.db import Database
from voc_platform.errors import FieldError, Invalid, Unsupported
from voc_platform.http import DatabaseDep, problem_response, upload_body
from voc_platform.identity import Actor
from voc_profile import importer, uploads
from voc_profile.deps import CustomerAdmin, SettingsDep
from voc_profile.settings import Settings
from voc_profile.uploads import Format, ImportRejected

# The bulk imports stream their bodies and enforce their own, larger limit.
PATHS = frozenset({"/v1/customers:import", "/v1/visits:import"})
router = APIRouter(responses={401: {}, 403: {}})  # customers.admin (get_upload)


class _Import(Protocol):
    async def __call__(
        self, database: Database, *, spooled: IO[bytes], fmt: Format, settings: Settings, actor: Actor
    ) -> importer.ImportReport: ...


@dataclass(frozen=True, slots=True)
class Upload:
    """An import request: its body (streamed), its format and what the importer writes with."""

    request: Request
    fmt: str | None
    database: Database
    settings: Settings
    actor: Actor

    async def run(self, run: _Import) -> dict[str, Any]:
        """The body spooled (refused past the size limit), then imported by `run`: its report."""
        chosen = _format(self.request, self.fmt)
        limit = self.settings.max_import_bytes
        length = self.request.headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            raise ImportRejected(413, f"The file exceeds {limit} bytes; nothing was imported.")
        with await uploads.spool(self.request.stream(), max_bytes=limit) as spooled:
            report = await run(
                self.database, spooled=spooled, fmt=chosen, settings=self.settings, actor=self.actor
            )
        return report.to_dict()


async def get_upload(
    request: Request,
    database: DatabaseDep,
    settings: SettingsDep,
    caller: CustomerAdmin,
    format: Annotated[str | None, Query(json_schema_extra={"enum": ["csv", "jsonl"]})] = None,
) -> Upload:
    return Upload(request, format, database, settings, caller.actor)


UploadDep = Annotated[Upload, Depends(get_upload)]


UPLOAD = upload_body(
    "text/csv",
    "application/x-ndjson",
    "application/jsonl",
    description="CSV with a header row, or JSON Lines (`?format=csv|jsonl` when the type says neither)",
)


@router.post("/v1/customers:import", openapi_extra=UPLOAD, responses={413: {}, 415: {}, 422: {}})
async def import_customers(upload: UploadDep) -> dict[str, Any]:
    """CSV (header row) or JSON Lines of customers; per-row errors with line numbers."""
    return await upload.run(importer.import_customers)


@router.post("/v1/visits:import", openapi_extra=UPLOAD, responses={413: {}, 415: {}, 422: {}})
async def import_visits(upload: UploadDep) -> dict[str, Any]:
    """CSV or JSON Lines of POS visits (customer, store_id, visited_at, amount)."""
    return await upload.run(importer.import_visits)


def _format(request: Request, fmt: str | None) -> Format:
    """`?format=`, else the content type."""
    if fmt in ("csv", "jsonl"):
        return fmt  # type: ignore[return-value]
    if fmt is not None:
        raise Invalid("format must be csv or jsonl.", errors=[FieldError("format", "csv | jsonl")])
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in ("text/csv", "application/csv"):
        return "csv"
    if content_type in ("application/x-ndjson", "application/jsonl", "application/x-jsonlines"):
        return "jsonl"
    raise Unsupported(
        "Send text/csv or application/x-ndjson (JSON Lines), or say ?format=csv|jsonl.",
        errors=[FieldError("content-type", content_type or "missing")],
    )


async def on_rejected(request: Request, exc: Exception) -> Response:
    """A file refused as a whole, as problem+json; `line` (an RFC 9457 extension member) when
    the problem is on one line of the file."""
    assert isinstance(exc, ImportRejected)
    extra: dict[str, Any] = {} if exc.line is None else {"line": exc.line}
    return problem_response(exc.status, str(exc), errors=exc.errors, instance=request.url.path, **extra)
