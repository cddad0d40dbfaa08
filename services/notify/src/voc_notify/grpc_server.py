"""gRPC NotifyService: GetAlert (for other services and tools)."""

from __future__ import annotations

from collections.abc import Callable

from grpc import aio

from voc.notify.v1 import notify_pb2, notify_pb2_grpc
from voc_notify.models import Alert
from voc_platform.db import Database
from voc_platform.errors import NotFound

SERVICE_NAME = notify_pb2.DESCRIPTOR.services_by_name["NotifyService"].full_name


def _ms(value: float | None) -> int:
    return int(value * 1000) if value else 0


class NotifyServicer(notify_pb2_grpc.NotifyServiceServicer):
    def __init__(self, database: Database) -> None:
        self.database = database

    async def GetAlert(
        self, request: notify_pb2.GetAlertRequest, context: aio.ServicerContext
    ) -> notify_pb2.GetAlertResponse:
        async with self.database.session() as session:
            alert = await session.get(Alert, request.alert_id)
        if alert is None:
            raise NotFound(f"no alert {request.alert_id}")
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


def register(database: Database) -> list[Callable[[aio.Server], None]]:
    servicer = NotifyServicer(database)
    return [lambda server: notify_pb2_grpc.add_NotifyServiceServicer_to_server(servicer, server)]
