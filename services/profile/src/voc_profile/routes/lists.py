"""Lists of customers by signal: a page (JSON, keyset cursor; customers.lists; each customer with
its latest outreach assignment and last contact, #20) or the whole list
(CSV with contact details, for outreach; customers.export), limited in the query to the reader's
stores (or to `store_id`, 403 outside them). Every list and export is audited."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse

from voc_platform.db import Database
from voc_platform.http import CallerDep, DatabaseDep, SessionDep
from voc_platform.identity import Caller, Permission
from voc_profile import crm, lists, outreach
from voc_profile.deps import AuditDep, ListQuery, ListQueryDep, SettingsDep, encode_cursor
from voc_profile.settings import Settings

router = APIRouter()
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
    # The work on the customer (#20 §4): their latest outreach assignment in the reader's stores
    # and its last contact, blank when none. The contact's note (free text that may carry phone
    # numbers or names) stays out of the file.
    "assignee_id",
    "assignee_name",
    "assigned_at",
    "outreach_status",
    "last_contact_channel",
    "last_contact_outcome",
    "last_contact_at",
)


def _when(epoch: float | None) -> str:
    """An epoch as ISO 8601 in UTC (what a spreadsheet reads), blank for none."""
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="seconds") if epoch else ""


def _work_cells(work: dict[str, Any] | None) -> list[str]:
    if work is None:
        return [""] * 7
    last = work.get("last_contact") or {}
    return [
        work["assignee_id"],
        _csv_safe(work.get("assignee_name") or ""),
        _when(work.get("assigned_at")),
        work["status"],
        last.get("channel", ""),
        last.get("outcome", ""),
        _when(last.get("at")),
    ]


def stores_of(caller: Caller, query: ListQuery) -> lists.Stores:
    """The stores a list covers: the caller's (or every store), narrowed to `store_id` when one
    is asked for; 403 for a store outside the caller's."""
    caller.require(Permission.OUTREACH_EXPORT if query.format == "csv" else Permission.OUTREACH)
    caller.check_store(query.store_id)
    return (query.store_id,) if query.store_id else caller.scope


async def list_scope(caller: CallerDep, query: ListQueryDep) -> lists.Stores:
    """The caller first (401 for none, before the query is read), then the query (422), then
    the caller's permission and stores (403)."""
    return stores_of(caller, query)


@router.get(
    "/v1/customers",
    response_model=None,
    responses={200: {"content": {"text/csv": {}}}, 401: {}, 403: {}, 422: {}},
)
async def list_customers(
    caller: CallerDep,
    query: ListQueryDep,
    stores: Annotated[lists.Stores, Depends(list_scope)],
    session: SessionDep,
    database: DatabaseDep,
    settings: SettingsDep,
    audit: AuditDep,
) -> dict[str, Any] | StreamingResponse:
    """Customers with one signal set: a page (JSON) or the whole list (CSV, for outreach)."""
    signal = query.signal
    scope = {"signal": signal, "stores": list(stores) if stores is not None else "all"}
    if query.format == "csv":
        audit.read(actor=caller.actor, action="export_list", detail=scope)
        return StreamingResponse(
            _csv(database, signal=signal, settings=settings, after=query.after, stores=stores),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="customers-{signal}.csv"'},
        )
    page = await lists.list_by_signal(
        session, signal=signal, settings=settings, limit=query.limit, after=query.after, stores=stores
    )
    audit.read(actor=caller.actor, action="list", detail={**scope, "count": len(page.customers)})
    work = await outreach.latest_of_customers(
        session, customer_ids=[item.customer.id for item in page.customers], stores=stores
    )
    return {
        "signal": signal,
        "customers": [
            {
                **crm.customer_out(item.customer),
                "complaint_count_90d": item.complaint_count_90d,
                "chronic_rank": item.chronic_rank,
                "reasons": [r.to_dict() for r in item.reasons],
                # The latest outreach assignment in the reader's stores and its last contact.
                "outreach": work.get(item.customer.id),
            }
            for item in page.customers
        ],
        "next_cursor": encode_cursor(page.next_after) if page.next_after else None,
    }


async def _csv(
    database: Database, *, signal: str, settings: Settings, after: lists.After | None, stores: lists.Stores
) -> AsyncIterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    yield ("\ufeff" + buffer.getvalue()).encode()  # the BOM makes spreadsheet apps read UTF-8 (Korean)
    async for page in lists.export(database, signal=signal, settings=settings, after=after, stores=stores):
        buffer.seek(0)
        buffer.truncate()
        async with database.session() as session:
            work = await outreach.latest_of_customers(
                session, customer_ids=[item.customer.id for item, _ in page], stores=stores
            )
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
                    "" if c.contact_consent is None else "yes" if c.contact_consent else "no",
                    item.complaint_count_90d,
                    item.chronic_rank,
                    "; ".join(r.reason for r in item.reasons),
                    *_work_cells(work.get(c.id)),
                ]
            )
        yield buffer.getvalue().encode()


def _csv_safe(value: str) -> str:
    # A cell starting with = + - @ is a formula to spreadsheet programs (CSV injection).
    if value[:1] in ("=", "+", "-", "@") and not re.fullmatch(r"\+\d+", value):
        return "'" + value
    return value
