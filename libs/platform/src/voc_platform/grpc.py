"""gRPC server and client helpers shared by every service.

Server: health service (Kubernetes gRPC probes), reflection, a service-credential check, trace
context extraction. Client: one reused channel per target, a deadline on every call, retries on
UNAVAILABLE (service config), the credential and the trace context in metadata.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import grpc
from grpc import aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry.trace import SpanKind, Status, StatusCode

from voc_platform import telemetry

AUTH_METADATA_KEY = "authorization"
_OPEN_METHODS = ("/grpc.health.v1.Health/", "/grpc.reflection.")


class _ServerInterceptor(aio.ServerInterceptor):  # type: ignore[misc]
    """Checks the service credential and opens a server span under the caller's trace."""

    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}"

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        method: str = details.method
        if handler is None or method.startswith(_OPEN_METHODS):
            return handler
        metadata = {k: v for k, v in (details.invocation_metadata or ()) if isinstance(v, str)}
        authorized = hmac.compare_digest(
            metadata.get(AUTH_METADATA_KEY, "").encode(), self._expected.encode()
        )
        if handler.unary_unary is None:
            return handler
        inner = handler.unary_unary

        async def wrapped(request: Any, context: aio.ServicerContext) -> Any:
            if not authorized:
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing service credential")
            with telemetry.span(
                method.lstrip("/"),
                kind=SpanKind.SERVER,
                parent=telemetry.extract(metadata) if "traceparent" in metadata else None,
                attributes={"rpc.system": "grpc", "rpc.method": method},
            ):
                return await inner(request, context)

        return grpc.unary_unary_rpc_method_handler(
            wrapped,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def create_server(
    *,
    port: int,
    host: str,
    token: str,
    register: Sequence[Callable[[aio.Server], None]],
    service_names: Sequence[str],
) -> tuple[aio.Server, health.aio.HealthServicer, int]:
    """A grpc.aio server with health and reflection; returns (server, health, bound port)."""
    server = aio.server(
        interceptors=[_ServerInterceptor(token)],
        options=[("grpc.so_reuseport", 0), ("grpc.max_receive_message_length", 4 * 1024 * 1024)],
    )
    for add in register:
        add(server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [*service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], server
    )
    bound = server.add_insecure_port(f"{host}:{port}")
    return server, health_servicer, bound


async def set_serving(
    health_servicer: health.aio.HealthServicer, service_names: Sequence[str], serving: bool
) -> None:
    status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
    for name in ["", *service_names]:
        await health_servicer.set(name, status)


def _service_config(max_attempts: int = 4) -> str:
    return json.dumps(
        {
            # Spread calls over every address the target resolves to (headless Services).
            "loadBalancingConfig": [{"round_robin": {}}],
            "methodConfig": [
                {
                    "name": [{}],
                    "retryPolicy": {
                        "maxAttempts": max_attempts,
                        "initialBackoff": "0.05s",
                        "maxBackoff": "0.5s",
                        "backoffMultiplier": 2,
                        "retryableStatusCodes": ["UNAVAILABLE"],
                    },
                }
            ],
        }
    )


class _ClientInterceptor(aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    def __init__(self, token: str, timeout: float) -> None:
        self._token = token
        self._timeout = timeout

    async def intercept_unary_unary(
        self,
        continuation: Callable[[aio.ClientCallDetails, Any], Awaitable[Any]],
        details: aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        method = details.method.decode() if isinstance(details.method, bytes) else details.method
        with telemetry.span(
            method.lstrip("/"),
            kind=SpanKind.CLIENT,
            attributes={"rpc.system": "grpc", "rpc.method": method},
        ) as span:
            carrier: dict[str, str] = {}
            telemetry.inject(carrier)
            metadata = list(details.metadata or [])
            metadata.append((AUTH_METADATA_KEY, f"Bearer {self._token}"))
            metadata.extend(carrier.items())
            new_details = aio.ClientCallDetails(
                method=details.method,
                timeout=details.timeout if details.timeout is not None else self._timeout,
                metadata=aio.Metadata(*metadata),
                credentials=details.credentials,
                wait_for_ready=details.wait_for_ready,
            )
            call = await continuation(new_details, request)
            try:
                return await call
            except aio.AioRpcError as exc:
                span.set_status(Status(StatusCode.ERROR, exc.code().name))
                raise


def client_channel(target: str, *, token: str, timeout: float) -> aio.Channel:
    """One long-lived channel per target; every call gets `timeout` unless it sets its own."""
    return aio.insecure_channel(
        target,
        options=[
            ("grpc.enable_retries", 1),
            ("grpc.service_config", _service_config()),
            ("grpc.keepalive_time_ms", 30000),
        ],
        interceptors=[_ClientInterceptor(token, timeout)],
    )
