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
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from voc_platform.db import Database
from voc_platform.http import (
    Problem,
    SessionDep,
    admin_guard,
    create_app,
    install_health_routes,
)
from voc_profile import importer, service
from voc_profile.audit import AuditTrail
from voc_profile.identity import InvalidIdentifier
from voc_profile.models import AuditEntry, Customer, Identifier
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
        raise Problem(
            400, "The cursor is not one this API issued.", errors=[{"field": "cursor", "message": "invalid"}]
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

    async def customer_or_problem(session: AsyncSession, customer_id: str) -> Customer:
        customer = await session.get(Customer, customer_id)
        if customer is None:
            raise Problem(404, f"No customer '{customer_id}'.")
        if customer.erased_at is not None:
            raise Problem(410, f"Customer '{customer_id}' was erased.", title="Gone")
        return customer

    @app.post("/v1/customers", dependencies=admin, response_model=list[UpsertResult])
    async def upsert(body: CustomersIn, request: Request) -> list[UpsertResult]:
        results: list[UpsertResult] = []
        for index, item in enumerate(body.customers):
            try:
                async with database.transaction() as session:
                    customer_id, created = await service.upsert_customer(
                        session,
                        data=item.model_dump(exclude_none=True),
                        region=settings.default_region,
                        actor=actor_of(request),
                    )
                results.append(UpsertResult(index=index, customer_id=customer_id, created=created))
            except (InvalidIdentifier, ValueError) as exc:
                results.append(UpsertResult(index=index, customer_id=None, created=False, error=str(exc)))
        return results

    def import_format(request: Request, fmt: str | None) -> importer.Format:
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
            spooled = await importer.spool(request.stream(), max_bytes=settings.max_import_bytes)
            with spooled:
                run = importer.import_customers if kind == "customers" else importer.import_visits
                report = await run(database, spooled, fmt=chosen, settings=settings, actor=actor_of(request))
        except importer.ImportRejected as exc:
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
        if signal not in service.SIGNALS:
            raise Problem(
                422,
                f"Unknown signal '{signal}'.",
                errors=[{"field": "signal", "message": f"one of {', '.join(service.SIGNALS)}"}],
            )
        after = decode_cursor(cursor) if cursor else None
        actor = actor_of(request)
        if format == "csv":
            audit_trail.read(actor=actor, action="export_list", customer_id=None, detail={"signal": signal})
            return StreamingResponse(
                _csv_pages(signal, after),
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="customers-{signal}.csv"'},
            )
        page, next_after = await service.list_by_signal(
            session, signal=signal, settings=settings, limit=limit, after=after
        )
        audit_trail.read(
            actor=actor, action="list", customer_id=None, detail={"signal": signal, "count": len(page)}
        )
        return {
            "signal": signal,
            "customers": [
                {
                    **service.customer_out(item.customer),
                    "complaint_count_90d": item.complaint_count_90d,
                    "chronic_rank": item.chronic_rank,
                    "reasons": item.reasons,
                }
                for item in page
            ],
            "next_cursor": encode_cursor(next_after) if next_after else None,
        }

    async def _csv_pages(signal: str, after: tuple[int, str] | None) -> AsyncIterator[bytes]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        yield ("\ufeff" + buffer.getvalue()).encode()  # the BOM makes spreadsheet apps read UTF-8 (Korean)
        while True:
            async with database.session() as session:
                page, after = await service.list_by_signal(
                    session, signal=signal, settings=settings, limit=500, after=after
                )
                contacts: dict[tuple[str, str], str] = {}
                ids = [item.customer.id for item in page]
                if ids:
                    for row in await session.execute(
                        select(Identifier.customer_id, Identifier.kind, Identifier.value).where(
                            Identifier.customer_id.in_(ids), Identifier.kind.in_(("phone", "email"))
                        )
                    ):
                        contacts.setdefault((row.customer_id, row.kind), row.value)
            buffer.seek(0)
            buffer.truncate()
            for item in page:
                c = item.customer
                writer.writerow(
                    [
                        c.id,
                        _csv_safe(c.name or ""),
                        contacts.get((c.id, "phone"), ""),
                        _csv_safe(contacts.get((c.id, "email"), "")),
                        c.tier,
                        c.preferred_language or "",
                        "yes" if c.contact_consent else "no",
                        item.complaint_count_90d,
                        item.chronic_rank,
                        "; ".join(r["reason"] for r in item.reasons),
                    ]
                )
            yield buffer.getvalue().encode()
            if after is None:
                return

    @app.get("/v1/customers/{customer_id}", dependencies=admin)
    async def read(customer_id: str, request: Request, session: SessionDep) -> dict[str, Any]:
        customer = await customer_or_problem(session, customer_id)
        audit_trail.read(actor=actor_of(request), action="read", customer_id=customer.id)
        return service.customer_out(customer)

    @app.get("/v1/customers/{customer_id}/context", dependencies=admin)
    async def context(customer_id: str, request: Request, session: SessionDep) -> dict[str, Any]:
        await customer_or_problem(session, customer_id)
        ctx = await service.customer_context(session, customer_id=customer_id, settings=settings)
        if ctx.customer is None:
            raise Problem(404, f"No customer '{customer_id}'.")
        audit_trail.read(actor=actor_of(request), action="read_context", customer_id=ctx.customer.id)
        return ctx.to_dict()

    @app.get("/v1/customers/{customer_id}/timeline", dependencies=admin)
    async def timeline(
        customer_id: str,
        request: Request,
        session: SessionDep,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> dict[str, Any]:
        customer = await customer_or_problem(session, customer_id)
        live = await service.live_customer(session, customer_id=customer.id)
        assert live is not None
        audit_trail.read(actor=actor_of(request), action="read_timeline", customer_id=live.id)
        entries = await service.timeline(session, customer_id=live.id, limit=limit)
        return {"customer_id": live.id, "entries": entries}

    @app.get("/v1/customers/{customer_id}/export", dependencies=admin)
    async def export(customer_id: str, request: Request) -> Response:
        """Subject access: everything held about the person, as one JSON document."""
        async with database.transaction() as session:
            await customer_or_problem(session, customer_id)
            await service.audit(
                session, actor=actor_of(request), action="subject_export", customer_id=customer_id
            )
        async with database.session() as session:
            body = await service.subject_export(session, customer_id=customer_id)
        return Response(
            orjson.dumps(body),
            media_type="application/json",
            headers={"Content-Disposition": f'attachment; filename="customer-{customer_id}.json"'},
        )

    @app.delete("/v1/customers/{customer_id}", dependencies=admin, status_code=200)
    async def erase(customer_id: str, request: Request) -> dict[str, Any]:
        """Erasure: personal data removed here; `customer.erased` redacts the copies elsewhere."""
        try:
            async with database.transaction() as session:
                erased = await service.erase_customer(
                    session, customer_id=customer_id, actor=actor_of(request)
                )
        except service.NotFound as exc:
            raise Problem(404, str(exc)) from None
        except service.Gone as exc:
            raise Problem(410, str(exc), title="Gone") from None
        return {"erased": erased}

    @app.get("/v1/customers/{customer_id}/merges", dependencies=admin)
    async def merges(customer_id: str, session: SessionDep) -> dict[str, Any]:
        await customer_or_problem(session, customer_id)
        return {
            "merges": [
                service.merge_out(m) for m in await service.merges_of(session, customer_id=customer_id)
            ]
        }

    @app.post("/v1/merges/{merge_id}:undo", dependencies=admin)
    async def undo_merge(merge_id: str, request: Request) -> dict[str, Any]:
        try:
            async with database.transaction() as session:
                record = await service.undo_merge(session, merge_id=merge_id, actor=actor_of(request))
                for customer_id in (record.survivor_id, record.merged_id):
                    await service.refresh_signals(session, customer_id=customer_id, settings=settings)
        except service.NotFound as exc:
            raise Problem(404, str(exc)) from None
        except service.Conflict as exc:
            raise Problem(409, str(exc)) from None
        return service.merge_out(record)

    @app.get("/v1/reports/revisit", dependencies=admin)
    async def revisit_report(
        session: SessionDep, lookback_days: Annotated[int, Query(ge=1, le=730)] = 180
    ) -> dict[str, Any]:
        """Per store: stated revisit intent vs actual revisit within the churn window."""
        stores = await service.revisit_report(session, settings=settings, lookback_days=lookback_days)
        return {"lookback_days": lookback_days, "window_days": settings.churn_window_days, "stores": stores}

    @app.get("/v1/audit", dependencies=admin)
    async def audit_log(
        session: SessionDep,
        customer_id: Annotated[str | None, Query(max_length=36)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> dict[str, Any]:
        await audit_trail.flush()
        query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
        if customer_id:
            query = query.where(AuditEntry.customer_id == customer_id)
        return {
            "entries": [
                {
                    "at": e.at,
                    "actor": e.actor,
                    "action": e.action,
                    "customer_id": e.customer_id,
                    "detail": e.detail,
                }
                for e in await session.scalars(query)
            ]
        }

    return app
