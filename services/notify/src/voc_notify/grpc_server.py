"""gRPC NotifyService: GetAlert (for other services and tools) and GetStaffMember (profile checks
an outreach assignee against the directory, #20)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from grpc import aio

from voc.notify.v1 import notify_pb2, notify_pb2_grpc
from voc_notify.auth import stores_of_area
from voc_notify.models import Alert, Staff
from voc_platform.db import Database
from voc_platform.errors import Invalid, NotFound

SERVICE_NAME = notify_pb2.DESCRIPTOR.services_by_name["NotifyService"].full_name
#: An alert id is a UUID (`Alert.id` holds 36 characters): a longer one names no alert.
MAX_ALERT_ID = 36


def _ms(value: float | None) -> int:
    return int(value * 1000) if value else 0


@dataclass(eq=False)
class NotifyServicer(notify_pb2_grpc.NotifyServiceServicer):
    database: Database

    async def GetAlert(
        self, request: notify_pb2.GetAlertRequest, context: aio.ServicerContext
    ) -> notify_pb2.GetAlertResponse:
        alert_id = request.alert_id
        # Refused before the lookup, never echoed: a NOT_FOUND repeating a 3 MB id was itself
        # over the message limit (RESOURCE_EXHAUSTED).
        if not alert_id or len(alert_id) > MAX_ALERT_ID:
            raise Invalid(
                f"alert_id: an alert id has 1 to {MAX_ALERT_ID} characters, not {len(alert_id)}",
                field="alert_id",
            )
        async with self.database.session() as session:
            alert = await session.get(Alert, alert_id)
        if alert is None:
            raise NotFound(f"no alert {alert_id!r}")
        return notify_pb2.GetAlertResponse(
            alert=notify_pb2.Alert(
                alert_id=alert.id,
                feedback_id=alert.feedback_id or "",
                store_id=alert.store_id,
                status=alert.status,
                priority=alert.priority,
                created_at_ms=_ms(alert.created_at),
                acknowledged_at_ms=_ms(alert.acknowledged_at),
                resolved_at_ms=_ms(alert.resolved_at),
                kind=alert.kind or "feedback",
            )
        )

    async def GetStaffMember(
        self, request: notify_pb2.GetStaffMemberRequest, context: aio.ServicerContext
    ) -> notify_pb2.GetStaffMemberResponse:
        async with self.database.session() as session:
            staff = await session.get(Staff, request.staff_id) if request.staff_id else None
            if staff is None:
                return notify_pb2.GetStaffMemberResponse(found=False)
            area = await stores_of_area(session, staff)
        return notify_pb2.GetStaffMemberResponse(
            found=True,
            active=bool(staff.active),
            staff_id=staff.id,
            name=staff.name,
            role=staff.role,
            store_ids=list(staff.store_ids or ()),
            area_id=staff.area_id or "",
            area_store_ids=list(area),
        )


def register(database: Database) -> list[Callable[[aio.Server], None]]:
    servicer = NotifyServicer(database)
    return [lambda server: notify_pb2_grpc.add_NotifyServiceServicer_to_server(servicer, server)]
