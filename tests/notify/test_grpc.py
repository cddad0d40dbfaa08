"""Notify's gRPC NotifyService on a real grpc.aio server on loopback (the platform's server and
client channel, a real database): GetAlert answers an alert, NOT_FOUND for an unknown id, and
INVALID_ARGUMENT, without echoing it, for an id no alert can have."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import grpc
import pytest
from grpc import aio

from tests.notify.conftest import new_alert
from voc.notify.v1 import notify_pb2, notify_pb2_grpc
from voc_notify import grpc_server
from voc_platform.db import Database
from voc_platform.grpc import client_channel, create_server

TOKEN = "notify-grpc-test-internal-token"


@pytest.fixture
async def stub(notify_db: Database) -> AsyncIterator[notify_pb2_grpc.NotifyServiceStub]:
    server, _, port = create_server(
        port=0,
        host="127.0.0.1",
        token=TOKEN,
        register=grpc_server.register(notify_db),
        service_names=[grpc_server.SERVICE_NAME],
    )
    await server.start()
    try:
        yield notify_pb2_grpc.NotifyServiceStub(client_channel(f"127.0.0.1:{port}", token=TOKEN, timeout=10))
    finally:
        await server.stop(None)


async def test_get_alert_refuses_an_id_no_alert_can_have_without_echoing_it(
    notify_db: Database, stub: notify_pb2_grpc.NotifyServiceStub
) -> None:
    """A 3 MB id was looked up and its NOT_FOUND repeated it whole: over the message limit, the
    caller saw RESOURCE_EXHAUSTED. Longer than an alert id is INVALID_ARGUMENT, the id not quoted."""
    created = await new_alert(notify_db, "fb-grpc-1", now=time.time())
    assert created is not None
    found = await stub.GetAlert(notify_pb2.GetAlertRequest(alert_id=created.alert.id))
    assert (found.alert.alert_id, found.alert.feedback_id) == (created.alert.id, "fb-grpc-1")

    with pytest.raises(aio.AioRpcError) as missing:
        await stub.GetAlert(notify_pb2.GetAlertRequest(alert_id="0" * 36))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND

    for alert_id in ("x" * 3 * 1024 * 1024, "y" * 37, ""):
        with pytest.raises(aio.AioRpcError) as refused:
            await stub.GetAlert(notify_pb2.GetAlertRequest(alert_id=alert_id))
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, refused.value.details()
        details = refused.value.details() or ""
        assert len(details) < 200 and "alert_id" in details
        assert "xxxx" not in details and "yyyy" not in details
