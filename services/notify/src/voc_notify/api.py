"""REST API of the notify service: staff login, devices, alerts, live stream, directory."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from importlib.resources import files
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.responses import FileResponse, StreamingResponse
from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from voc_notify import directory, service
from voc_notify.auth import (
    Principal,
    TokenError,
    hash_password,
    issue_token,
    read_token,
    verify_password,
)
from voc_notify.models import Alert, Delivery, Device, Staff, Store
from voc_notify.schemas import (
    LoginIn,
    ReceiptIn,
    ResolveIn,
    StaffIn,
    StoreIn,
    SubscriptionIn,
    TokenOut,
)
from voc_notify.settings import Settings
from voc_notify.stream import AlertBroker, Listener
from voc_notify.webpush import InvalidSubscription, PushAllowlist, PushSubscription, VapidKeys
from voc_platform.db import Database
from voc_platform.http import (
    BearerDep,
    Problem,
    SessionDep,
    admin_guard,
    bearer_token,
    create_app,
    install_health_routes,
)
from voc_platform.ids import uuid7

STATIC = files("voc_notify").joinpath("static")


def principal_from(request: Request, token: str) -> Principal:
    try:
        return read_token(token, secret=request.app.state.settings.jwt_secret)
    except TokenError as exc:
        raise Problem(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from exc


async def current_staff(request: Request, credentials: BearerDep) -> Principal:
    return principal_from(request, bearer_token(credentials))


StaffDep = Annotated[Principal, Depends(current_staff)]


def build_app(
    settings: Settings,
    database: Database,
    *,
    vapid: VapidKeys,
    allowlist: PushAllowlist,
    broker: AlertBroker,
    wake_delivery: Any,
) -> FastAPI:
    app = create_app(title="Frontline VoC — notify", service="voc-notify")
    install_health_routes(app)
    require_admin = admin_guard(lambda: settings.admin_token)

    app.state.database = database
    app.state.settings = settings

    async def load_alert(session: AsyncSession, alert_id: str, principal: Principal) -> Alert:
        alert = await session.get(Alert, alert_id)
        if alert is None or not service.visible_to(principal, store_id=alert.store_id, area_id=alert.area_id):
            # Another store's alert is answered exactly like a missing one.
            raise Problem(404, f"No alert '{alert_id}'.")
        return alert

    @app.post("/v1/auth/login", response_model=TokenOut)
    async def login(body: LoginIn) -> TokenOut:
        now = time.time()
        async with database.transaction() as session:
            staff = await session.scalar(select(Staff).where(Staff.email == body.email.lower()))
            if staff is not None and staff.locked_until > now:
                wait = int(staff.locked_until - now) + 1
                raise Problem(
                    429, f"Too many failed logins; try again in {wait} s.", headers={"Retry-After": str(wait)}
                )
            ok = verify_password(staff.password_hash if staff else None, body.password)
            if staff is None or not ok or not staff.active:
                if staff is not None:
                    staff.failed_logins += 1
                    over = staff.failed_logins - settings.login_max_failures
                    if over >= 0:
                        staff.locked_until = now + settings.lockout_base_seconds * (2 ** min(over, 8))
                failed = True
            else:
                staff.failed_logins, staff.locked_until = 0, 0.0
                failed = False
                principal = Principal(staff.id, staff.role, tuple(staff.store_ids or ()), staff.area_id)
                profile = {
                    "id": staff.id,
                    "name": staff.name,
                    "role": staff.role,
                    "store_ids": staff.store_ids,
                    "area_id": staff.area_id,
                    "language": staff.language,
                }
        if failed:
            raise Problem(401, "E-mail or password is wrong.")
        token = issue_token(principal, secret=settings.jwt_secret, ttl=settings.token_ttl_seconds)
        return TokenOut(access_token=token, expires_in=settings.token_ttl_seconds, staff=profile)

    @app.get("/v1/push/vapid-public-key")
    async def vapid_public_key() -> dict[str, str]:
        return {"public_key": vapid.public_key_b64url}

    @app.post("/v1/devices", status_code=201)
    async def register_device(body: SubscriptionIn, principal: StaffDep, request: Request) -> dict[str, str]:
        try:
            sub = PushSubscription.from_json(body.model_dump())
            allowlist.check(sub.endpoint)
        except InvalidSubscription as exc:
            raise Problem(
                422, str(exc), errors=[{"field": f"body.{exc.field}", "message": str(exc)}]
            ) from exc
        digest = service.endpoint_hash(sub.endpoint)
        async with database.transaction() as session:
            device = await session.scalar(select(Device).where(Device.endpoint_hash == digest))
            if device is None:
                device = Device(
                    id=uuid7(),
                    staff_id=principal.staff_id,
                    endpoint=sub.endpoint,
                    endpoint_hash=digest,
                    p256dh=sub.p256dh,
                    auth=sub.auth,
                    user_agent=(request.headers.get("user-agent") or "")[:300],
                    created_at=time.time(),
                )
                session.add(device)
            else:  # the same browser re-subscribing (or handed to another staff member)
                device.staff_id, device.p256dh, device.auth = principal.staff_id, sub.p256dh, sub.auth
        return {"id": device.id}

    @app.delete("/v1/devices/{device_id}", status_code=204)
    async def remove_device(device_id: str, principal: StaffDep) -> Response:
        async with database.transaction() as session:
            device = await session.get(Device, device_id)
            if device is None or device.staff_id != principal.staff_id:
                raise Problem(404, f"No device '{device_id}'.")
            await session.delete(device)
        return Response(status_code=204)

    def scope_filter(principal: Principal) -> Any:
        if principal.role == "cx_admin":
            return True
        clauses: list[ColumnElement[bool]] = (
            [Alert.store_id.in_(principal.store_ids)] if principal.store_ids else []
        )
        if principal.role == "area_manager" and principal.area_id:
            clauses.append(Alert.area_id == principal.area_id)
        return or_(*clauses) if clauses else False

    @app.get("/v1/alerts")
    async def list_alerts(
        principal: StaffDep,
        session: SessionDep,
        status: Annotated[str | None, Query(pattern="^(open|acknowledged|resolved)$")] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        before: Annotated[str | None, Query(max_length=36)] = None,
    ) -> dict[str, Any]:
        query = select(Alert).where(scope_filter(principal))
        if status:
            query = query.where(Alert.status == status)
        if before:
            query = query.where(Alert.id < before)  # uuid7 ids sort by time
        rows = list(await session.scalars(query.order_by(Alert.id.desc()).limit(limit + 1)))
        page = rows[:limit]
        return {
            "alerts": [service.alert_summary(a) for a in page],
            "next_before": page[-1].id if len(rows) > limit else None,
        }

    @app.get("/v1/alerts/stream")
    async def stream(
        request: Request,
        credentials: BearerDep,
        access_token: Annotated[str | None, Query(max_length=2000)] = None,
    ) -> StreamingResponse:
        # EventSource cannot send headers, so the token may come as a query parameter.
        token = credentials.credentials if credentials else access_token
        if not token:
            raise Problem(401, "Send a bearer token or ?access_token=.")
        principal = principal_from(request, token)
        listener = Listener(
            staff_id=principal.staff_id,
            store_ids=frozenset(principal.store_ids),
            area_id=principal.area_id if principal.role == "area_manager" else None,
            all_stores=principal.role == "cx_admin",
        )
        broker.register(listener)

        async def events() -> AsyncIterator[bytes]:
            try:
                yield b"retry: 2000\n: connected\n\n"
                while True:
                    try:
                        event = await asyncio.wait_for(listener.queue.get(), 15.0)
                    except TimeoutError:
                        if await request.is_disconnected():
                            return
                        yield b": keep-alive\n\n"
                        continue
                    yield (f"event: {event['type']}\n".encode() + b"data: " + orjson.dumps(event) + b"\n\n")
            finally:
                broker.unregister(listener)

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    @app.get("/v1/alerts/{alert_id}")
    async def get_alert(alert_id: str, principal: StaffDep, session: SessionDep) -> dict[str, Any]:
        alert = await load_alert(session, alert_id, principal)
        return service.alert_detail(alert)

    @app.post("/v1/alerts/{alert_id}/ack")
    async def ack(alert_id: str, principal: StaffDep) -> dict[str, Any]:
        async with database.transaction() as session:
            alert = await load_alert(session, alert_id, principal)
            await service.acknowledge(session, alert=alert, principal=principal)
            summary = service.alert_summary(alert)
        broker.publish(
            {"type": "alert.acknowledged", "alert": summary}, store_id=alert.store_id, area_id=alert.area_id
        )
        return summary

    @app.post("/v1/alerts/{alert_id}/resolve")
    async def resolve(alert_id: str, body: ResolveIn, principal: StaffDep) -> dict[str, Any]:
        async with database.transaction() as session:
            alert = await load_alert(session, alert_id, principal)
            await service.resolve(
                session, alert=alert, principal=principal, outcome=body.outcome, note=body.note
            )
            summary = service.alert_summary(alert)
        broker.publish(
            {"type": "alert.resolved", "alert": summary}, store_id=alert.store_id, area_id=alert.area_id
        )
        return summary

    @app.post("/v1/alerts/{alert_id}/receipts", status_code=204)
    async def receipt(alert_id: str, body: ReceiptIn, principal: StaffDep) -> Response:
        """The service worker reports a notification shown; the app reports it opened."""
        now = time.time()
        async with database.transaction() as session:
            await load_alert(session, alert_id, principal)
            rows = await session.scalars(
                select(Delivery).where(Delivery.alert_id == alert_id, Delivery.staff_id == principal.staff_id)
            )
            for delivery in rows:
                if body.device_id and delivery.device_id != body.device_id:
                    continue
                if body.kind == "shown" and delivery.shown_at is None:
                    delivery.shown_at = now
                if body.kind == "opened" and delivery.opened_at is None:
                    delivery.opened_at = now
        return Response(status_code=204)

    # Directory administration (admin token).
    @app.put("/v1/admin/stores", dependencies=[Depends(require_admin)])
    async def upsert_stores(body: list[StoreIn]) -> dict[str, int]:
        async with database.transaction() as session:
            for item in body:
                await session.merge(Store(**item.model_dump()))
        return {"stores": len(body)}

    @app.get("/v1/admin/stores", dependencies=[Depends(require_admin)])
    async def list_stores(session: SessionDep) -> list[dict[str, Any]]:
        rows = await session.scalars(select(Store).order_by(Store.id))
        return [
            {
                "id": s.id,
                "name": s.name,
                "area_id": s.area_id,
                "format": s.format,
                "region": s.region,
                "timezone": s.timezone,
                "language": s.language,
                "quiet_start": s.quiet_start,
                "quiet_end": s.quiet_end,
            }
            for s in rows
        ]

    @app.put("/v1/admin/staff", dependencies=[Depends(require_admin)])
    async def upsert_staff(body: list[StaffIn]) -> dict[str, int]:
        async with database.transaction() as session:
            for item in body:
                data = item.model_dump(exclude={"password"})
                data["email"] = data["email"].lower()
                existing = await session.get(Staff, item.id)
                if existing is None:
                    session.add(
                        Staff(
                            **data,
                            password_hash=hash_password(item.password),
                            active=True,
                            failed_logins=0,
                            locked_until=0.0,
                        )
                    )
                else:
                    for key, value in data.items():
                        setattr(existing, key, value)
                    existing.password_hash = hash_password(item.password)
        return {"staff": len(body)}

    @app.get("/v1/alerts/{alert_id}/deliveries")
    async def alert_deliveries(alert_id: str, principal: StaffDep, session: SessionDep) -> dict[str, Any]:
        """Delivery receipts per device: accepted by the push service, shown, opened, acknowledged."""
        alert = await load_alert(session, alert_id, principal)
        if service.ROLE_LEVEL.get(principal.role, 0) < service.ROLE_LEVEL["store_manager"]:
            raise Problem(403, "Delivery receipts are for store managers and above.")
        rows = await session.scalars(
            select(Delivery).where(Delivery.alert_id == alert.id).order_by(Delivery.created_at, Delivery.id)
        )
        return {
            "alert_id": alert.id,
            "deliveries": [service.delivery_receipt(d, alert) for d in rows],
        }

    directory.install(app, database=database, require_admin=require_admin)

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(str(STATIC.joinpath("index.html")))

    @app.get("/sw.js", include_in_schema=False)
    async def service_worker() -> FileResponse:
        # Served from the root so its scope covers the whole app.
        return FileResponse(
            str(STATIC.joinpath("sw.js")),
            media_type="text/javascript",
            headers={"Service-Worker-Allowed": "/", "Cache-Control": "no-cache"},
        )

    @app.get("/manifest.webmanifest", include_in_schema=False)
    async def manifest() -> FileResponse:
        return FileResponse(
            str(STATIC.joinpath("manifest.webmanifest")), media_type="application/manifest+json"
        )

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> FileResponse:
        allowed = {"app.js", "app.css", "icon.svg"}
        if name not in allowed:
            raise Problem(404, "No such file.")
        return FileResponse(str(STATIC.joinpath(name)))

    return app
