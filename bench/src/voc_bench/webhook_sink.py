"""A webhook receiver for `make bench BENCH_ARGS=--webhook` (#19): one process on loopback that
answers every POST 204 at once and counts them; `GET /count` says how many arrived (JSON
`{"count": n}`), so the benchmark can report that the endpoint subscribed to "*" heard the run.

It shares the two cores with the system it measures, so it is a bare asyncio protocol with
httptools parsing (keep-alive HTTP/1.1, as the load generator is): 0.008 ms of CPU per request
against 0.105 ms for the FastAPI app it replaces, which had charged the system for the
receiver's framework."""

from __future__ import annotations

import asyncio
import sys
from typing import cast

import httptools
import uvloop

_NO_CONTENT = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"
_NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"


class Sink:
    def __init__(self) -> None:
        self.count = 0


class _Connection(asyncio.Protocol):
    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            assert self.transport is not None
            self.transport.write(
                b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
            )
            self.transport.close()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_message_complete(self) -> None:
        assert self.transport is not None
        method, url = self.parser.get_method(), self.url
        self.url = b""
        if method == b"POST":
            self.sink.count += 1
            answer = _NO_CONTENT
        elif method == b"GET" and url == b"/count":
            body = b'{"count": %d}' % self.sink.count
            answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
                len(body),
                body,
            )
        else:
            answer = _NOT_FOUND
        self.transport.write(answer)
        if not self.parser.should_keep_alive():
            self.transport.close()


async def serve(port: int) -> None:
    sink = Sink()
    server = await asyncio.get_running_loop().create_server(lambda: _Connection(sink), "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    uvloop.run(serve(int(sys.argv[1])))
