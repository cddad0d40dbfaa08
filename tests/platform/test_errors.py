"""Domain errors become problem+json at the REST edge and a gRPC status at the gRPC edge, from the
one table on each class."""

from __future__ import annotations

from typing import Annotated

import grpc
import httpx
import pytest
from fastapi import Depends, Request
from grpc import aio

from voc.common.v1 import common_pb2
from voc_platform.errors import Conflict, FieldError, Gone, Invalid, NotFound, RateLimited, Unauthenticated
from voc_platform.grpc import create_server, item_error
from voc_platform.http import RequiredBearerDep, create_app, reject_unknown_params


class Page:
    """A dependency that declares a query parameter of its own."""

    def __init__(self, limit: int = 50) -> None:
        self.limit = limit


PAGE = Page()


def _app() -> httpx.AsyncClient:
    app = create_app(title="t", service="t")

    @app.get("/invalid")
    async def invalid() -> None:
        raise Invalid("'to' must be after 'from'.", field="query.to")

    @app.get("/several")
    async def several() -> None:
        raise Invalid("2 fields", errors=[FieldError("body.a", "bad"), FieldError("body.b", "worse")])

    @app.get("/limited")
    async def limited() -> None:
        raise RateLimited("slow down", retry_after=1.2)

    @app.get("/missing")
    async def missing() -> None:
        raise NotFound("No feedback 'x'.")

    @app.get("/who")
    async def who() -> None:
        raise Unauthenticated()

    @app.get("/only-a")
    async def only_a(request: Request, a: str | None = None) -> dict[str, str]:
        reject_unknown_params(request, {"a"})
        return {"ok": "yes"}

    @app.get("/filtered")
    async def filtered(
        store_id: str | None = None, page: Annotated[Page, Depends()] = PAGE
    ) -> dict[str, str]:
        return {"store_id": store_id or "every store"}

    @app.get("/private")
    async def private(_: RequiredBearerDep, store_id: str | None = None) -> dict[str, str]:
        return {"ok": "yes"}

    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_domain_errors_answer_problem_json() -> None:
    async with _app() as client:
        r = await client.get("/invalid")
        assert r.status_code == 422
        assert r.headers["content-type"] == "application/problem+json"
        body = r.json()
        assert body["detail"] == "'to' must be after 'from'."
        assert body["errors"] == [{"field": "query.to", "message": "'to' must be after 'from'."}]
        assert body["instance"] == "/invalid"

        r = await client.get("/several")
        assert [e["field"] for e in r.json()["errors"]] == ["body.a", "body.b"]

        r = await client.get("/limited")
        assert (r.status_code, r.headers["retry-after"]) == (429, "2")

        r = await client.get("/missing")
        assert (r.status_code, r.json()["title"]) == (404, "Not found")

        r = await client.get("/who")
        assert (r.status_code, r.headers["www-authenticate"]) == (401, "Bearer")

        assert (await client.get("/only-a?a=1")).status_code == 200
        r = await client.get("/only-a?a=1&b=2&c=3")
        assert r.status_code == 422
        assert [e["field"] for e in r.json()["errors"]] == ["query.b", "query.c"]


async def test_every_route_refuses_query_parameters_it_does_not_declare() -> None:
    """`create_app` installs `reject_undeclared_query`: a typo (`stoer_id`) is a 422 naming it,
    not a filter silently dropped (an export of the caller's whole scope); what the route and
    its dependencies declare passes; a call without credentials is left to the route (401)."""
    token = {"Authorization": "Bearer t"}
    async with _app() as client:
        answer = await client.get("/filtered?store_id=s1&limit=5", headers=token)
        assert answer.json() == {"store_id": "s1"}
        r = await client.get("/filtered?stoer_id=s1", headers=token)
        assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
        assert [e["field"] for e in r.json()["errors"]] == ["query.stoer_id"]
        assert (await client.get("/private?stoer_id=s1")).status_code == 401
        assert (await client.get("/private?stoer_id=s1", headers=token)).status_code == 422
        assert (await client.get("/private?store_id=s1", headers=token)).status_code == 200


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (NotFound("no"), grpc.StatusCode.NOT_FOUND),
        (Invalid("bad", field="x"), grpc.StatusCode.INVALID_ARGUMENT),
        (Conflict("taken"), grpc.StatusCode.FAILED_PRECONDITION),
        (Gone("erased"), grpc.StatusCode.NOT_FOUND),
    ],
)
def test_batch_items_carry_the_domain_status(error: Exception, code: grpc.StatusCode) -> None:
    item = item_error(error)
    assert item == common_pb2.ItemError(code=code.value[0], message=str(error))


async def test_grpc_methods_abort_with_the_domain_status() -> None:
    """A business method that raises a domain error answers its status, not UNKNOWN."""

    async def health_like(request: bytes, context: aio.ServicerContext) -> bytes:
        raise NotFound("no customer 'c-1'")

    def register(server: aio.Server) -> None:
        server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(
                    "voc.test.v1.TestService",
                    {
                        "Get": grpc.unary_unary_rpc_method_handler(
                            health_like, request_deserializer=bytes, response_serializer=bytes
                        )
                    },
                ),
            )
        )

    server, _, port = create_server(
        port=0, host="127.0.0.1", token="secret", register=[register], service_names=[]
    )
    await server.start()
    try:
        async with aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = channel.unary_unary(
                "/voc.test.v1.TestService/Get", request_serializer=bytes, response_deserializer=bytes
            )
            with pytest.raises(aio.AioRpcError) as err:
                await call(b"", metadata=(("authorization", "Bearer secret"),), timeout=5)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        assert err.value.details() == "no customer 'c-1'"
    finally:
        await server.stop(0)


async def test_a_405_allows_every_method_of_the_path() -> None:
    """Starlette's 405 named only the first route whose path matched (`Allow: POST` where GET was
    there too); a path parameter that also matches a literal route's path counts both."""
    app = create_app(title="t", service="t")

    @app.get("/keys")
    async def list_keys() -> None: ...

    @app.post("/keys")
    async def create_key() -> None: ...

    @app.get("/models/{version}")
    async def model(version: str) -> None: ...

    @app.post("/models/{version}:promote")
    async def promote(version: str) -> None: ...

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        refused = await client.request("OPTIONS", "/keys")
        assert refused.status_code == 405 and refused.headers["allow"] == "GET, POST"
        assert refused.headers["content-type"].startswith("application/problem+json")
        promoted = await client.delete("/models/v1:promote")
        assert promoted.status_code == 405 and promoted.headers["allow"] == "GET, POST"
