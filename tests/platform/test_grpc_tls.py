"""gRPC over TLS and mTLS on loopback (#21 finding 5): `create_server` serves TLS with the
service's certificate; with client auth required, a client without a certificate from the
services' CA is refused during the handshake, before any credential or method is looked at."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.certs import make_certs
from voc_platform.grpc import GrpcTls, client_channel, create_server

TOKEN = "grpc-tls-test-token"
SERVICE = "voc.test.v1.TlsService"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("grpc-certs")
    make_certs().make_all(out)
    return out


def tls_of(certs: Path, name: str, *, require: bool = False, own_cert: bool = True) -> GrpcTls:
    return GrpcTls(
        cert_file=certs / name / "tls.crt" if own_cert else None,
        key_file=certs / name / "tls.key" if own_cert else None,
        ca_file=certs / name / "ca.crt",
        require_client_auth=require,
    )


def _register(server: Any) -> None:
    async def echo(request: bytes, context: aio.ServicerContext) -> bytes:
        return b"echo:" + request

    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                SERVICE,
                {
                    "Echo": grpc.unary_unary_rpc_method_handler(
                        echo, request_deserializer=bytes, response_serializer=bytes
                    )
                },
            ),
        )
    )


async def serve(tls: GrpcTls | None) -> tuple[aio.Server, str]:
    server, _, port = create_server(
        port=0, host="127.0.0.1", token=TOKEN, register=[_register], service_names=[SERVICE], tls=tls
    )
    await server.start()
    # The certificates name localhost (and 127.0.0.1): dial the name a deployment would use.
    return server, f"localhost:{port}"


async def echo(target: str, tls: GrpcTls | None) -> bytes:
    async with client_channel(target, token=TOKEN, timeout=3, tls=tls) as channel:  # type: ignore[attr-defined]
        call = channel.unary_unary(f"/{SERVICE}/Echo", request_serializer=bytes, response_deserializer=bytes)
        reply: bytes = await call(b"hi")
        return reply


@pytest.fixture
async def mtls_server(certs: Path) -> AsyncIterator[str]:
    server, target = await serve(tls_of(certs, "profile", require=True))
    try:
        yield target
    finally:
        await server.stop(0)


async def test_mtls_lets_a_service_with_its_certificate_in(mtls_server: str, certs: Path) -> None:
    assert await echo(mtls_server, tls_of(certs, "notify")) == b"echo:hi"


async def test_mtls_refuses_a_client_without_a_certificate(mtls_server: str, certs: Path) -> None:
    with pytest.raises(aio.AioRpcError) as refused:
        await echo(mtls_server, tls_of(certs, "notify", own_cert=False))
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_mtls_refuses_a_certificate_from_another_ca(
    mtls_server: str, certs: Path, tmp_path: Path
) -> None:
    stranger = make_certs().Authority("someone else's CA")
    stranger.write(tmp_path / "stranger", stranger.issue("stranger", ["localhost"]))
    foreign = GrpcTls(
        cert_file=tmp_path / "stranger" / "tls.crt",
        key_file=tmp_path / "stranger" / "tls.key",
        ca_file=certs / "notify" / "ca.crt",  # trusts the real server, shows a foreign cert
    )
    with pytest.raises(aio.AioRpcError) as refused:
        await echo(mtls_server, foreign)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_a_plaintext_client_gets_nothing_from_a_tls_server(mtls_server: str) -> None:
    with pytest.raises(aio.AioRpcError) as refused:
        await echo(mtls_server, None)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_tls_without_client_auth_and_the_credential_still_checked(certs: Path) -> None:
    server, target = await serve(tls_of(certs, "actions"))
    try:
        # Server-only TLS: a client that trusts the CA needs no certificate of its own.
        assert await echo(target, tls_of(certs, "notify", own_cert=False)) == b"echo:hi"
        # A client that does not trust the server's CA refuses it.
        with pytest.raises(aio.AioRpcError):
            await echo(target, GrpcTls())  # the system roots only
        # Inside TLS the service credential is still required.
        async with aio.secure_channel(target, tls_of(certs, "notify").channel_credentials()) as channel:
            call = channel.unary_unary(
                f"/{SERVICE}/Echo", request_serializer=bytes, response_deserializer=bytes
            )
            with pytest.raises(aio.AioRpcError) as refused:
                await call(b"hi", timeout=3)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
            # Health answers without the credential (the probes), over the same TLS.
            health = health_pb2_grpc.HealthStub(channel)
            reply = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=3)
            assert reply.status in (
                health_pb2.HealthCheckResponse.SERVING,
                health_pb2.HealthCheckResponse.UNKNOWN,
            )
    finally:
        await server.stop(0)


async def test_without_tls_nothing_changes() -> None:
    server, target = await serve(None)
    try:
        assert await echo(target, None) == b"echo:hi"
    finally:
        await server.stop(0)
