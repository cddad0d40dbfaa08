"""Every service's gRPC port: the standard health service (what Kubernetes probes), reflection,
the service credential on every business call; and JSON logs that carry the trace id."""

from __future__ import annotations

import json

import grpc
import pytest
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.conftest import RunningSystem
from tests.support.system import post_feedback, wait_for
from voc.profile.v1 import profile_pb2, profile_pb2_grpc
from voc_cli.supervisor import SERVICES
from voc_platform.grpc import client_channel, create_server


@pytest.mark.parametrize("service", SERVICES)
def test_health_and_reflection(running_system: RunningSystem, service: str) -> None:
    with grpc.insecure_channel(running_system.system.grpc_target(service)) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        status = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status
        assert status == health_pb2.HealthCheckResponse.SERVING
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        responses = stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
        )
        names = {s.name for r in responses for s in r.list_services_response.service}
    assert f"voc.{service}.v1.{service.capitalize()}Service" in names
    assert "grpc.health.v1.Health" in names


def test_business_calls_need_the_service_credential(running_system: RunningSystem) -> None:
    target = running_system.system.grpc_target("profile")
    with grpc.insecure_channel(target) as channel:
        stub = profile_pb2_grpc.ProfileServiceStub(channel)
        with pytest.raises(grpc.RpcError) as err:
            stub.ResolveCustomer(profile_pb2.ResolveCustomerRequest(), timeout=5)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_client_channel_adds_credential_and_deadline(running_system: RunningSystem) -> None:
    channel = client_channel(
        running_system.system.grpc_target("profile"),
        token=running_system.system.secrets["internal_token"],
        timeout=2.0,
    )
    try:
        stub = profile_pb2_grpc.ProfileServiceStub(channel)
        response = await stub.ResolveCustomer(profile_pb2.ResolveCustomerRequest())
        assert response.anonymous
    finally:
        await channel.close()


def test_logs_are_json_with_the_trace_id(running_system: RunningSystem) -> None:
    r = post_feedback(
        running_system,
        {
            "store_id": "store-gangnam",
            "channel": "web",
            "text": "The table was sticky.",
            "ratings": {"csat": 2},
        },
    )
    assert r.status_code == 202
    feedback_id = r.json()["id"]
    log_path = running_system.system.log_path("notify")

    def alert_line() -> dict[str, object] | None:
        for line in log_path.read_text(errors="replace").splitlines():
            if feedback_id in line:
                entry: dict[str, object] = json.loads(line)
                return entry
        return None

    entry = wait_for(alert_line)
    assert entry["service"] == "notify" and entry["level"] == "INFO"
    assert isinstance(entry["trace_id"], str) and len(entry["trace_id"]) == 32


@pytest.mark.parametrize("host", ["::1", "127.0.0.1"])
async def test_a_server_binds_an_ipv6_host_too(host: str) -> None:
    """VOC_HOST=::1 made every gRPC server fail to start ("::1:9010" is no address)."""
    server, _, port = create_server(port=0, host=host, token="t", register=[], service_names=[])
    await server.start()
    try:
        assert port > 0
        target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        async with aio.insecure_channel(target) as channel:
            answer = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=5
            )
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        await server.stop(None)
