"""The 64 KiB body limit answers 413 whether the body announces its length or streams in
chunks (#21 finding 13: a chunked body over the limit got 400, the limit's refusal swallowed by
the framework's body parsing). Against a real uvicorn server, as the services run."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from pydantic import BaseModel

from voc_cli.supervisor import free_port
from voc_platform.http import BULK_BODY_BYTES, MAX_BODY_BYTES, create_app


class Body(BaseModel):
    text: str


def build() -> FastAPI:
    app = create_app(title="limit", service="limit-test", binary_bodies=["/binary"], bulk_bodies=["/bulk"])

    @app.post("/json")
    async def json_body(body: Body) -> dict[str, int]:
        return {"chars": len(body.text)}

    @app.post("/raw")
    async def raw_body(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    @app.post("/bulk")
    async def bulk_body(body: Body) -> dict[str, int]:
        return {"chars": len(body.text)}

    @app.post("/binary")
    async def binary_body(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    return app


@pytest.fixture
async def server() -> AsyncIterator[str]:
    port = free_port()
    config = uvicorn.Config(
        build(), host="127.0.0.1", port=port, log_config=None, lifespan="off", http="httptools"
    )
    instance = uvicorn.Server(config)
    task = asyncio.create_task(instance.serve())
    while not instance.started:
        if task.done():
            task.result()  # it failed to start: say why
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        instance.should_exit = True
        await task


def chunks(total: int, size: int = 8192) -> Iterator[bytes]:
    body = b'{"text": "' + b"x" * (total - 12) + b'"}'
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def achunks(total: int) -> AsyncIterator[bytes]:
    for chunk in chunks(total):
        yield chunk


@pytest.mark.parametrize("path", ["/json", "/raw"])
async def test_a_chunked_body_over_the_limit_gets_413(server: str, path: str) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(
            server + path, content=achunks(MAX_BODY_BYTES * 2), headers={"content-type": "application/json"}
        )
    assert "content-length" not in response.request.headers  # it really was chunked
    assert response.status_code == 413, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == 413


async def test_a_declared_length_over_the_limit_gets_413_and_small_bodies_pass(server: str) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        big = b"x" * (MAX_BODY_BYTES + 1)
        declared = await client.post(
            server + "/json", content=big, headers={"content-type": "application/json"}
        )
        assert declared.status_code == 413
        small = await client.post(
            server + "/json", content=achunks(1024), headers={"content-type": "application/json"}
        )
        assert small.status_code == 200 and small.json() == {"chars": 1024 - 12}
        broken = await client.post(
            server + "/json", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert broken.status_code == 400  # malformed JSON is still the caller's 400


async def test_a_nul_in_the_path_the_query_or_the_body_gets_422(server: str) -> None:
    """PostgreSQL cannot store U+0000 (#21: each reached it as a 500); refused before any route
    runs, as the JSON escape, as a raw byte, in the path or in the query."""
    json = {"content-type": "application/json"}
    async with httpx.AsyncClient(timeout=10) as client:
        refused = {
            "escape": await client.post(server + "/json", content=b'{"text": "a\\u0000b"}', headers=json),
            "odd backslashes": await client.post(
                server + "/json", content=b'{"text": "\\\\\\u0000"}', headers=json
            ),
            "raw byte": await client.post(server + "/raw", content=b"name,x\x00y\n"),
            "path": await client.post(server + "/js%00on", content=b"{}", headers=json),
            "query": await client.post(server + "/raw?x=%00", content=b""),
        }
        for where, response in refused.items():
            assert response.status_code == 422, (where, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.json()["errors"][0]["message"] == "contains U+0000"
        # A binary path (an upload stored as bytes, feedback's model bundles) takes NUL bytes in
        # its body, still not in its query.
        binary = await client.post(server + "/binary", content=b"PK\x03\x04\x00\x00zip")
        assert binary.status_code == 200 and binary.json() == {"bytes": 9}
        assert (await client.post(server + "/binary?x=%00", content=b"")).status_code == 422
        # An escaped backslash before "u0000" is text: it passes.
        text = await client.post(server + "/json", content=b'{"text": "C:\\\\u0000"}', headers=json)
        assert text.status_code == 200 and text.json() == {"chars": len("C:\\u0000")}


async def test_a_nul_escape_split_between_two_body_messages_is_found() -> None:
    """The escape straddling two `http.request` messages (how a chunked body may arrive)."""
    app = build()
    parts = [b'{"text": "abc\\u00', b'00def"}']
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        body = parts.pop(0)
        return {"type": "http.request", "body": body, "more_body": bool(parts)}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/json",
        "raw_path": b"/json",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json")],
        "client": ("127.0.0.1", 4711),
        "server": ("127.0.0.1", 80),
    }
    await app(scope, receive, send)  # type: ignore[arg-type]
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 422, sent


async def test_a_bulk_path_takes_bodies_up_to_its_own_limit(server: str) -> None:
    """A bulk call (a chain's store list, a CRM batch, a playbook library) with credentials takes
    a body over the 64 KiB limit, up to `BULK_BODY_BYTES`, chunked or announced; beyond it, 413
    naming that limit."""
    async with httpx.AsyncClient(timeout=30) as client:
        json_type = {"content-type": "application/json", "authorization": "Bearer any"}
        # Without credentials the bulk path keeps the 64 KiB limit (an anonymous caller could
        # otherwise make the service parse 4 MiB before its 401).
        anonymous = await client.post(
            server + "/bulk",
            content=achunks(MAX_BODY_BYTES * 2),
            headers={"content-type": "application/json"},
        )
        assert anonymous.status_code == 413
        taken = await client.post(server + "/bulk", content=achunks(MAX_BODY_BYTES * 8), headers=json_type)
        assert taken.status_code == 200 and taken.json() == {"chars": MAX_BODY_BYTES * 8 - 12}
        announced = await client.post(
            server + "/bulk", content=b"".join(chunks(BULK_BODY_BYTES)), headers=json_type
        )
        assert announced.status_code == 200, announced.text
        over = await client.post(server + "/bulk", content=achunks(BULK_BODY_BYTES + 1), headers=json_type)
        assert (
            over.status_code == 413 and over.json()["detail"] == f"The body exceeds {BULK_BODY_BYTES} bytes."
        )
        other = await client.post(server + "/json", content=achunks(MAX_BODY_BYTES * 8), headers=json_type)
        assert (
            other.status_code == 413 and other.json()["detail"] == f"The body exceeds {MAX_BODY_BYTES} bytes."
        )


async def test_a_compressed_body_is_415_and_bytes_that_are_not_json_say_so(server: str) -> None:
    """The API review: a valid gzip body was refused as "Text must not contain NUL characters"
    (the scan read the compressed bytes), and bytes that are not UTF-8 got FastAPI's "There was
    an error parsing the body"."""
    async with httpx.AsyncClient(timeout=10) as client:
        zipped = await client.post(
            server + "/json",
            content=gzip.compress(b'{"text": "hi"}'),
            headers={"content-type": "application/json", "content-encoding": "gzip"},
        )
        assert zipped.status_code == 415, zipped.text
        assert zipped.headers["content-type"].startswith("application/problem+json")
        assert "Content-Encoding 'gzip'" in zipped.json()["detail"]
        plain = await client.post(
            server + "/json",
            content=b'{"text": "hi"}',
            headers={"content-type": "application/json", "content-encoding": "identity"},
        )
        assert plain.status_code == 200, plain.text
        latin = await client.post(
            server + "/json",
            content='{"text": "caf\u00e9"}'.encode("latin-1"),
            headers={"content-type": "application/json"},
        )
        assert latin.status_code == 400, latin.text
        assert latin.json()["detail"] == "The body is not valid JSON (UTF-8 text)."
