"""REST API of the profile service (admin token): customers, imports, lists by signal, timeline,
merges, reports, erasure, subject access export and the audit log."""

from __future__ import annotations

import base64
import binascii
import csv
import io
import re
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import orjson
from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import Response, StreamingResponse

from voc_platform import dbsync
from voc_platform.db import Database
from voc_platform.errors import BadRequest, FieldError
from voc_platform.http import (
    Problem,
    SessionDep,
    admin_guard,
    create_app,
    install_health_routes,
)
from voc_profile import audit, context, crm, importer, lists, merges, privacy, reports, timeline, uploads
from voc_profile.audit import AuditTrail
from voc_profile.schemas import CustomersIn, UpsertResult
from voc_profile.settings import Settings

IMPORT_PATHS = frozenset({"/v1/customers:import", "/v1/visits:import"})
_ACTOR_NAME = re.compile(r"^[\w.@+-]{1,64}$")
CSV_COLUMNS = (
    "customer_id",
    "name",
    "phone",
    "email",
    "tier",
    "preferred_language",
    "contact_consent",
    "complaint_count_90d",
    "chronic_rank",
    "reason",
)


def actor_of(request: Request) -> str:
    """'admin', or 'admin:<name>' when the caller says who is behind the token (X-Voc-Actor)."""
    name = request.headers.get("x-voc-actor", "")
    return f"admin:{name}" if _ACTOR_NAME.match(name) else "admin"


def encode_cursor(after: tuple[int, str]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(after))).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
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


def _csv_safe(value: Any) -> Any:
    # A cell starting with = + - @ is a formula to spreadsheet programs (CSV injection).
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@") and not re.fullmatch(r"\+\d+", value):
        return "'" + value
    return value


def build_app(settings: Settings, database: Database, trail: AuditTrail | None = None) -> FastAPI:
    # The bulk imports stream their bodies and enforce their own, larger limit.
    app = create_app(title="Frontline VoC — profile", service="voc-profile", body_limit_exempt=IMPORT_PATHS)
    install_health_routes(app)
    require_admin = admin_guard(lambda: settings.admin_token)
    admin = [Depends(require_admin)]
    audit_trail = trail or AuditTrail(database, flush_seconds=settings.audit_flush_seconds)
    app.state.database = database
    app.state.audit_trail = audit_trail

    @app.post("/v1/customers", dependencies=admin, response_model=list[UpsertResult])
    async def upsert(body: CustomersIn, request: Request) -> list[UpsertResult]:
        return await crm.upsert_customers(
            database, customers=body.customers, region=settings.default_region, actor=actor_of(request)
        )

    def import_format(request: Request, fmt: str | None) -> uploads.Format:
        if fmt in ("csv", "jsonl"):
            return fmt  # type: ignore[return-value]
        if fmt is not None:
            raise Problem(
                422, "format must be csv or jsonl.", errors=[{"field": "format", "message": "csv | jsonl"}]
            )
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type in ("text/csv", "application/csv"):
            return "csv"
        if content_type in ("application/x-ndjson", "application/jsonl", "application/x-jsonlines"):
            return "jsonl"
        raise Problem(
            415,
            "Send text/csv or application/x-ndjson (JSON Lines), or say ?format=csv|jsonl.",
            errors=[{"field": "content-type", "message": content_type or "missing"}],
        )

    async def run_import(
        request: Request, fmt: str | None, kind: Literal["customers", "visits"]
    ) -> dict[str, Any]:
        chosen = import_format(request, fmt)
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > settings.max_import_bytes:
            raise Problem(413, f"The file exceeds {settings.max_import_bytes} bytes; nothing was imported.")
        try:
            spooled = await uploads.spool(request.stream(), max_bytes=settings.max_import_bytes)
            with spooled:
                run = importer.import_customers if kind == "customers" else importer.import_visits
                report = await run(database, spooled, fmt=chosen, settings=settings, actor=actor_of(request))
        except uploads.ImportRejected as exc:
            # `line` (an RFC 9457 extension member) when the problem is on one line of the file.
            extra: dict[str, Any] = {} if exc.line is None else {"line": exc.line}
            raise Problem(exc.status, str(exc), errors=exc.errors, **extra) from None
        return report.to_dict()

    @app.post("/v1/customers:import", dependencies=admin)
    async def import_customers(
        request: Request, format: Annotated[str | None, Query()] = None
    ) -> dict[str, Any]:
        """CSV (header row) or JSON Lines of customers; per-row errors with line numbers."""
        return await run_import(request, format, "customers")

    @app.post("/v1/visits:import", dependencies=admin)
    async def import_visits(
        request: Request, format: Annotated[str | None, Query()] = None
    ) -> dict[str, Any]:
        """CSV or JSON Lines of POS visits (customer, store_id, visited_at, amount)."""
        return await run_import(request, format, "visits")

    @app.get("/v1/customers", dependencies=admin, response_model=None)
    async def list_customers(
        request: Request,
        session: SessionDep,
        signal: Annotated[str, Query()],
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        cursor: Annotated[str | None, Query(max_length=200)] = None,
        format: Annotated[Literal["json", "csv"], Query()] = "json",
    ) -> dict[str, Any] | StreamingResponse:
        """Customers with one signal set: a page (JSON) or the whole list (CSV, for outreach)."""
        lists.check_signal(signal)
        after = decode_cursor(cursor) if cursor else None
        actor = actor_of(request)
        if format == "csv":
            audit_trail.read(actor=actor, action="export_list", customer_id=None, detail={"signal": signal})
            return StreamingResponse(
                _csv_pages(signal, after),
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="customers-{signal}.csv"'},
            )
        page = await lists.list_by_signal(session, signal=signal, settings=settings, limit=limit, after=after)
        audit_trail.read(
            actor=actor,
            action="list",
            customer_id=None,
            detail={"signal": signal, "count": len(page.customers)},
        )
        return {
            "signal": signal,
            "customers": [
                {
                    **crm.customer_out(item.customer),
                    "complaint_count_90d": item.complaint_count_90d,
                    "chronic_rank": item.chronic_rank,
                    "reasons": [r.to_dict() for r in item.reasons],
                }
                for item in page.customers
            ],
            "next_cursor": encode_cursor(page.next_after) if page.next_after else None,
        }

    async def _csv_pages(signal: str, after: tuple[int, str] | None) -> AsyncIterator[bytes]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        yield ("\ufeff" + buffer.getvalue()).encode()  # the BOM makes spreadsheet apps read UTF-8 (Korean)
        async for page in lists.export(database, signal=signal, settings=settings, after=after):
            buffer.seek(0)
            buffer.truncate()
            for item, contact in page:
                c = item.customer
                writer.writerow(
                    [
                        c.id,
                        _csv_safe(c.name or ""),
                        contact.phone,
                        _csv_safe(contact.email),
                        c.tier,
                        c.preferred_language or "",
                        "yes" if c.contact_consent else "no",
                        item.complaint_count_90d,
                        item.chronic_rank,
                        "; ".join(r.reason for r in item.reasons),
                    ]
                )
            yield buffer.getvalue().encode()

    @app.get("/v1/customers/{customer_id}", dependencies=admin)
    async def read(customer_id: str, request: Request, session: SessionDep) -> dict[str, Any]:
        customer = await crm.get_customer(session, customer_id=customer_id)
        audit_trail.read(actor=actor_of(request), action="read", customer_id=customer.id)
        return crm.customer_out(customer)

    @app.get("/v1/customers/{customer_id}/context", dependencies=admin)
    async def read_context(customer_id: str, request: Request) -> dict[str, Any]:
        ctx = await dbsync.read(
            database, context.customer_context, customer_id=customer_id, settings=settings
        )
        assert ctx.customer is not None
        audit_trail.read(actor=actor_of(request), action="read_context", customer_id=ctx.customer.id)
        return ctx.to_dict()

    @app.get("/v1/customers/{customer_id}/timeline", dependencies=admin)
    async def read_timeline(
        customer_id: str,
        request: Request,
        session: SessionDep,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> dict[str, Any]:
        found = await timeline.timeline_of(session, customer_id=customer_id, limit=limit)
        audit_trail.read(actor=actor_of(request), action="read_timeline", customer_id=found.customer_id)
        return {"customer_id": found.customer_id, "entries": found.entries}

    @app.get("/v1/customers/{customer_id}/export", dependencies=admin)
    async def export(customer_id: str, request: Request) -> Response:
        """Subject access: everything held about the person, as one JSON document."""
        body = await privacy.subject_access(database, customer_id=customer_id, actor=actor_of(request))
        return Response(
            orjson.dumps(body),
            media_type="application/json",
            headers={"Content-Disposition": f'attachment; filename="customer-{customer_id}.json"'},
        )

    @app.delete("/v1/customers/{customer_id}", dependencies=admin, status_code=200)
    async def erase(customer_id: str, request: Request) -> dict[str, Any]:
        """Erasure: personal data removed here; `customer.erased` redacts the copies elsewhere."""
        async with database.transaction() as session:
            erased = await privacy.erase_customer(session, customer_id=customer_id, actor=actor_of(request))
        return {"erased": erased}

    @app.get("/v1/customers/{customer_id}/merges", dependencies=admin)
    async def list_merges(customer_id: str, session: SessionDep) -> dict[str, Any]:
        await crm.get_customer(session, customer_id=customer_id)
        found = await merges.merges_of(session, customer_id=customer_id)
        return {"merges": [merges.merge_out(m) for m in found]}

    @app.post("/v1/merges/{merge_id}:undo", dependencies=admin)
    async def undo_merge(merge_id: str, request: Request) -> dict[str, Any]:
        async with database.transaction() as session:
            record = await merges.undo_merge(
                session, merge_id=merge_id, actor=actor_of(request), settings=settings
            )
        return merges.merge_out(record)

    @app.get("/v1/reports/revisit", dependencies=admin)
    async def revisit_report(
        session: SessionDep, lookback_days: Annotated[int, Query(ge=1, le=730)] = 180
    ) -> dict[str, Any]:
        """Per store: stated revisit intent vs actual revisit within the churn window."""
        stores = await reports.revisit_report(session, settings=settings, lookback_days=lookback_days)
        return {"lookback_days": lookback_days, "window_days": settings.churn_window_days, "stores": stores}

    @app.get("/v1/audit", dependencies=admin)
    async def audit_log(
        session: SessionDep,
        customer_id: Annotated[str | None, Query(max_length=36)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> dict[str, Any]:
        await audit_trail.flush()
        return {
            "entries": [
                {
                    "at": e.at,
                    "actor": e.actor,
                    "action": e.action,
                    "customer_id": e.customer_id,
                    "detail": e.detail,
                }
                for e in await audit.entries(session, customer_id=customer_id, limit=limit)
            ]
        }

    return app
