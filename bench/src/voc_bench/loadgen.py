"""The benchmark's HTTP/1.1 client: keep-alive connections, requests serialized before the run,
responses parsed by httptools (the C parser uvicorn uses).

The load generator shares the 2 cores with the system it measures, so every microsecond it
spends per request is taken from the services. aiohttp cost ~0.5 ms of CPU per POST here
(request building, headers, cookie jar, the response object); a pre-built request written to a
pooled connection and a C-parsed response cost a small fraction of that. Only what the bench
needs: POST/GET to one host over plain HTTP, Content-Length or chunked responses, a deadline
per request.
"""

from __future__ import annotations

import asyncio
import collections
from dataclasses import dataclass
from typing import cast

import httptools


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes


class _Connection(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._body: list[bytes] = []
        self._waiter: asyncio.Future[Response] | None = None
        self.reusable = True

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionError(f"bad response: {exc}"))
            self.abort()  # the stream is out of step: this socket cannot be used again

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        self._fail(ConnectionError(f"connection lost: {exc!r}" if exc else "connection closed"))

    # httptools callbacks
    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        waiter, self._waiter = self._waiter, None
        body = b"".join(self._body)
        self._body = []
        if not self._parser.should_keep_alive():
            self.reusable = False
            if self.transport is not None:
                self.transport.close()
        if waiter is not None and not waiter.done():
            waiter.set_result(Response(self._parser.get_status_code(), body))

    # use
    def send(self, request: bytes) -> asyncio.Future[Response]:
        assert self.transport is not None and self._waiter is None
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self._waiter

    def abort(self) -> None:
        self.reusable = False
        if self.transport is not None:
            self.transport.abort()

    def _fail(self, exc: Exception) -> None:
        self.reusable = False
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)


class Client:
    """At most `connections` keep-alive connections to one `host:port`; a request beyond them
    waits for a free one (the wait counts in its latency, as behind a gateway's pool)."""

    def __init__(self, host: str, port: int, *, connections: int = 64, timeout: float = 30.0) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self._limit = connections
        self._open = 0
        self._idle: list[_Connection] = []
        self._waiting: collections.deque[asyncio.Future[_Connection | None]] = collections.deque()

    def post(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> bytes:
        """The bytes of a POST with a JSON body, built once and sent as often as wanted."""
        lines = [f"POST {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}", "", ""]
        return "\r\n".join(lines).encode("latin-1") + body

    async def send(self, request: bytes) -> Response:
        """Send pre-built `request` bytes; raises ConnectionError or TimeoutError."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        connection = await self._acquire(deadline)
        answer = connection.send(request)
        timer = loop.call_at(deadline, _expire, answer)
        try:
            return await answer
        except BaseException:
            # Timed out, cancelled or broken: an answer may still be on its way, so the
            # connection is closed rather than reused (its slot opens a new one).
            connection.abort()
            raise
        finally:
            timer.cancel()
            self._release(connection)

    async def close(self) -> None:
        for connection in self._idle:
            if connection.transport is not None:
                connection.transport.close()
        self._idle.clear()
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_exception(ConnectionError("client closed"))

    async def _acquire(self, deadline: float) -> _Connection:
        while self._idle:
            connection = self._idle.pop()
            if connection.reusable:
                return connection
            self._open -= 1
        if self._open < self._limit:
            self._open += 1
            try:
                _, protocol = await asyncio.wait_for(
                    asyncio.get_running_loop().create_connection(_Connection, self.host, self.port),
                    max(0.0, deadline - asyncio.get_running_loop().time()),
                )
            except BaseException:
                self._open -= 1
                self._hand_over()
                raise
            return protocol
        waiter: asyncio.Future[_Connection | None] = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        handed: _Connection | None = await asyncio.wait_for(
            waiter, max(0.0, deadline - asyncio.get_running_loop().time())
        )
        if handed is None:  # a slot freed by a dead connection: open a new one
            return await self._acquire(deadline)
        return handed

    def _release(self, connection: _Connection) -> None:
        if not connection.reusable:
            self._open -= 1
            self._hand_over()
            return
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        self._idle.append(connection)

    def _hand_over(self) -> None:
        """A connection slot is free: the first waiter opens a new connection in it."""
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return


def _expire(answer: asyncio.Future[Response]) -> None:
    if not answer.done():
        answer.set_exception(TimeoutError("no response before the deadline"))
