"""Lists of customers by signal: a page (JSON, keyset cursor) or the whole list (CSV, for outreach)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse

from voc_platform.db import Database
from voc_platform.http import DatabaseDep, SessionDep, require_admin
from voc_profile import crm, lists
from voc_profile.deps import ActorDep, ListQueryDep, SettingsDep, TrailDep, encode_cursor
from voc_profile.settings import Settings

router = APIRouter(dependencies=[Depends(require_admin)])
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


@router.get("/v1/customers", response_model=None, responses={200: {"content": {"text/csv": {}}}})
async def list_customers(
    query: ListQueryDep,
    session: SessionDep,
    database: DatabaseDep,
    settings: SettingsDep,
    actor: ActorDep,
    trail: TrailDep,
) -> dict[str, Any] | StreamingResponse:
    """Customers with one signal set: a page (JSON) or the whole list (CSV, for outreach)."""
    signal = query.signal
    if query.format == "csv":
        trail.read(actor=actor, action="export_list", customer_id=None, detail={"signal": signal})
        return StreamingResponse(
            _csv(database, signal=signal, settings=settings, after=query.after),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="customers-{signal}.csv"'},
        )
    page = await lists.list_by_signal(
        session, signal=signal, settings=settings, limit=query.limit, after=query.after
    )
    trail.read(
        actor=actor, action="list", customer_id=None, detail={"signal": signal, "count": len(page.customers)}
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


async def _csv(
    database: Database, *, signal: str, settings: Settings, after: lists.After | None
) -> AsyncIterator[bytes]:
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


def _csv_safe(value: str) -> str:
    # A cell starting with = + - @ is a formula to spreadsheet programs (CSV injection).
    if value[:1] in ("=", "+", "-", "@") and not re.fullmatch(r"\+\d+", value):
        return "'" + value
    return value
