"""Alerts as staff work them: the inbox, one alert, acknowledge, resolve, receipts of its
pushes, and the live stream (server-sent events)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import StreamingResponse

from voc_notify import auth, checklists, lifecycle, metrics, views
from voc_notify.corrections import Labels
from voc_notify.deps import (
    AuditDep,
    BrokerDep,
    CorrectionsDep,
    CurrentStaff,
    IdentityDep,
    principal_from,
    staff_with,
)
from voc_notify.schemas import CorrectionIn, ReceiptIn, ResolveIn, StepIn
from voc_notify.stream import AlertBroker, Listener
from voc_platform.db import Database
from voc_platform.errors import Conflict, Unauthenticated
from voc_platform.http import BearerDep, DatabaseDep, SessionDep, bearer_token
from voc_platform.identity import Caller, Identity, Permission, Principal

router = APIRouter(prefix="/v1/alerts", tags=["alerts"])
#: An alert id (a lowercase UUIDv7, as `next_before` gives it). Checked, not merely compared:
#: ids compare as text, so "zzzz" listed every alert and "0" none, both with a 200.
ALERT_ID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


@router.get("")
async def list_alerts(
    principal: CurrentStaff,
    session: SessionDep,
    status: Annotated[str | None, Query(pattern="^(open|acknowledged|resolved)$")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[
        str | None,
        Query(
            max_length=36,
            pattern=ALERT_ID_PATTERN,
            description="The `next_before` of the page before (an alert id): the alerts older than it.",
        ),
    ] = None,
    kind: Annotated[str | None, Query(pattern="^(feedback|pattern|heads_up)$")] = None,
) -> dict[str, Any]:
    return await views.inbox(
        session, principal=principal, status=status, limit=limit, before=before, kind=kind
    )


@router.post("/stream-ticket")
async def stream_ticket(principal: CurrentStaff, database: DatabaseDep) -> dict[str, Any]:
    """A single-use ticket for `GET /v1/alerts/stream?ticket=` (EventSource sends no headers)."""
    ticket = await auth.issue_stream_ticket(database, principal=principal)
    return {"ticket": ticket, "expires_in": auth.STREAM_TICKET_SECONDS}


@router.get("/stream", responses={401: {}})
async def stream(
    request: Request,
    credentials: BearerDep,
    identity: IdentityDep,
    broker: BrokerDep,
    database: DatabaseDep,
    ticket: Annotated[str | None, Query(max_length=100)] = None,
) -> StreamingResponse:
    """Server-sent events for the caller's stores: the staff token in the Authorization header,
    or a ticket from `POST /v1/alerts/stream-ticket` (a token in the URL is not accepted: URLs
    end up in logs, proxies and history)."""
    if credentials is not None:
        principal = principal_from(credentials.credentials, identity)
    elif ticket:
        principal = await auth.redeem_stream_ticket(database, ticket=ticket)
        if identity.revocations.revoked(principal):
            raise Unauthenticated("The access token behind this ticket was revoked; log in again.")
    else:
        raise Unauthenticated(
            "Send 'Authorization: Bearer <token>' or ?ticket= from POST /v1/alerts/stream-ticket."
        )
    Caller(principal).require(Permission.ALERTS)
    listener = _listener(principal)
    async with database.session() as session:
        language = views.StreamLanguage(await views.staff_language(session, principal=principal))
    broker.register(listener)
    return StreamingResponse(
        _events(
            request,
            listener,
            broker,
            principal=principal,
            identity=identity,
            language=language,
            database=database,
        ),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _listener(principal: Principal) -> Listener:
    return Listener(
        staff_id=principal.staff_id,
        store_ids=frozenset(principal.store_ids),
        area_id=principal.area_id if principal.role == "area_manager" else None,
        all_stores=principal.role == "cx_admin",
    )


async def _events(
    request: Request,
    listener: Listener,
    broker: AlertBroker,
    *,
    principal: Principal,
    identity: Identity,
    language: views.StreamLanguage,
    database: Database,
) -> AsyncIterator[bytes]:
    """The listener's events as SSE, in the staff member's language, with a keep-alive comment
    every 15 s of silence; the stream ends once the staff member's tokens are revoked (checked
    at least that often)."""
    try:
        yield b"retry: 2000\n: connected\n\n"
        while True:
            try:
                event = await asyncio.wait_for(listener.queue.get(), 15.0)
            except TimeoutError:
                if await request.is_disconnected() or identity.revocations.revoked(principal):
                    return
                yield b": keep-alive\n\n"
                continue
            if identity.revocations.revoked(principal):
                return
            event = await language.event(database.session, event)
            yield (f"event: {event['type']}\n".encode() + b"data: " + orjson.dumps(event) + b"\n\n")
    finally:
        broker.unregister(listener)


@router.get("/{alert_id}")
async def get_alert(
    alert_id: str, principal: CurrentStaff, session: SessionDep, audit: AuditDep
) -> dict[str, Any]:
    """The alert with the customer's story (context.recent_contacts) and the plan, in the caller's
    language: a read of customer context, audited."""
    detail = await views.read_alert(session, alert_id=alert_id, principal=principal)
    audit.read(
        actor=Caller(principal).actor,
        action="alert.read",
        target=f"alert:{detail['id']}",
        # Whose story was read: the customer the alert was made for (a DPO's access log by them).
        detail={
            "customer_id": (detail.get("customer") or {}).get("customer_id"),
            "store_id": detail.get("store_id"),
        },
    )
    return detail


@router.put("/{alert_id}/steps/{index}", responses={401: {}, 403: {}, 404: {}})
async def mark_step(
    alert_id: str,
    index: Annotated[int, Path(ge=0, le=99)],
    body: StepIn,
    principal: CurrentStaff,
    database: DatabaseDep,
    broker: BrokerDep,
    audit: AuditDep,
) -> dict[str, Any]:
    """Tick a plan step done (or undone): kept server-side with who and when (#18), and in the
    service's audit log (`alert.step`) with the tick, in the same transaction."""
    async with database.transaction() as session:
        alert = await views.visible_alert(
            session, alert_id=alert_id, principal=principal, for_update=True, acting=True
        )
        states = await checklists.mark_step(
            session, alert=alert, principal=principal, index=index, done=body.done, now=time.time()
        )
        await audit.record(
            session,
            actor=Caller(principal).actor,
            action="alert.step",
            target=f"alert:{alert.id}",
            detail={"index": index, "done": body.done},
        )
        summary = views.alert_summary(alert)
    checklist = [s.as_json() for s in states]
    broker.announce("alert.checklist", alert, {**summary, "checklist": checklist})
    return {"alert_id": alert.id, "checklist": checklist}


@router.post("/{alert_id}/ack", responses={404: {}, 409: {}})
async def ack(
    alert_id: str,
    principal: CurrentStaff,
    database: DatabaseDep,
    broker: BrokerDep,
    via: Annotated[Literal["app", "notification", "offline_replay"], Query()] = "app",
    device_id: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    """Take the alert. The same staff member's ack again (an offline replay, a notification
    action) answers 200 with the original time; someone else's ack or resolve meanwhile: 409
    with `acknowledged_by`. `?via=notification` (the notification's Acknowledge action, on
    `device_id`) records the "acknowledged from the notification" receipt."""
    now = time.time()
    async with database.transaction() as session:
        alert = await views.visible_alert(
            session, alert_id=alert_id, principal=principal, for_update=True, acting=True
        )
        replay = lifecycle.done_by(alert, principal, step="ack")
        if not replay:
            await lifecycle.acknowledge(session, alert=alert, principal=principal, now=now)
        if via == "notification":
            await lifecycle.record_receipt(
                session,
                alert_id=alert.id,
                staff_id=principal.staff_id,
                kind="acknowledged",
                device_id=device_id,
                now=now,
            )
        summary = views.alert_summary(alert)
    if not replay:
        metrics.acknowledged(created_at=alert.created_at, acknowledged_at=alert.acknowledged_at)
        broker.announce("alert.acknowledged", alert, summary)
    return summary


@router.post("/{alert_id}/resolve", responses={404: {}, 409: {}})
async def resolve(
    alert_id: str, body: ResolveIn, principal: CurrentStaff, database: DatabaseDep, broker: BrokerDep
) -> dict[str, Any]:
    async with database.transaction() as session:
        alert = await views.visible_alert(
            session, alert_id=alert_id, principal=principal, for_update=True, acting=True
        )
        if lifecycle.done_by(alert, principal, step="resolve"):
            return views.alert_summary(alert)  # a replay: as resolved then, nothing changes
        was_open = alert.status == "open"
        await lifecycle.resolve(
            session, alert=alert, principal=principal, outcome=body.outcome, note=body.note
        )
        summary = views.alert_summary(alert)
    if was_open:  # a resolve implies the acknowledgement
        metrics.acknowledged(created_at=alert.created_at, acknowledged_at=alert.acknowledged_at)
    metrics.resolved()
    broker.announce("alert.resolved", alert, summary)
    return summary


@router.post("/{alert_id}/corrections", responses={401: {}, 403: {}, 404: {}, 409: {}, 422: {}, 503: {}})
async def correct(
    alert_id: str,
    body: CorrectionIn,
    principal: CurrentStaff,
    credentials: BearerDep,
    session: SessionDep,
    corrections: CorrectionsDep,
) -> dict[str, Any]:
    """Correct the sentiment and/or category of the alert's feedback in one tap (#17). Feedback
    decides (with this staff member's own token: their role and stores, the taxonomy) and keeps
    it; the alert shows the corrected labels once `voc.feedback.corrected` comes back."""
    alert = await views.visible_alert(session, alert_id=alert_id, principal=principal)
    if not alert.feedback_id:
        raise Conflict("A pattern or heads-up alert has no single feedback item to correct.")
    return await corrections.correct(
        feedback_id=alert.feedback_id,
        access_token=bearer_token(credentials),
        labels=Labels(sentiment=body.sentiment, category=body.category),
    )


@router.post("/{alert_id}/receipts", status_code=204)
async def receipt(alert_id: str, body: ReceiptIn, principal: CurrentStaff, database: DatabaseDep) -> Response:
    """The service worker reports a notification shown; the app reports it opened."""
    now = time.time()
    async with database.transaction() as session:
        await views.visible_alert(session, alert_id=alert_id, principal=principal)
        await lifecycle.record_receipt(
            session,
            alert_id=alert_id,
            staff_id=principal.staff_id,
            kind=body.kind,
            device_id=body.device_id,
            now=now,
        )
    return Response(status_code=204)


@router.get("/{alert_id}/deliveries")
async def alert_deliveries(
    alert_id: str,
    principal: Annotated[Principal, Depends(staff_with(Permission.ALERT_DELIVERIES))],
    session: SessionDep,
) -> dict[str, Any]:
    """Delivery receipts per device: accepted by the push service, shown, opened, acknowledged."""
    return await views.receipts(session, alert_id=alert_id, principal=principal)
