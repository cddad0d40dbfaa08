"""The HTTP/1.1 client of webhook attempts: one POST, its status and the first bytes of the
answer, over pooled keep-alive connections (TLS by the given context), every connection's
addresses from the given resolver (`targets.PublicResolver` refuses non-public ones).

Why not aiohttp, as Web Push: a webhook attempt is always the same exchange (POST a small JSON
body, read a status), and at one endpoint on "*" there are about three per feedback. aiohttp's
general request machinery cost 0.115 ms of CPU per attempt on loopback; this protocol with
httptools parsing costs 0.02–0.04 ms (`voc_bench.webhook_cost`, #19).

What it does not do, on purpose: follow redirects (the caller reports them), proxies, cookies,
compression, `Expect: 100-continue`. An answer's body is read up to `DRAIN_LIMIT` so the
connection can be used again; a longer one closes it."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, cast

import httptools
from yarl import URL

DRAIN_LIMIT: Final = 64 * 1024  # bytes of an answer read to keep its connection


class ProtocolError(OSError):
    """The receiver's answer was not HTTP/1.x, or the connection ended before it was whole."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    head: bytes  # the first `kept` bytes of the body


class _Exchange(asyncio.Protocol):
    """One connection: a request at a time, its answer parsed as it arrives."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._answer: asyncio.Future[Answer] | None = None
        self._parser: httptools.HttpResponseParser | None = None
        self._kept = 0
        self._head = bytearray()
        self._read = 0
        self._headers_done = False
        self._reusable = True

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        if self._parser is None:  # nothing asked: the server has no business talking
            self._close()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(ProtocolError("the receiver switched protocols"))
        except httptools.HttpParserError as exc:
            self._fail(ProtocolError(f"not an HTTP answer: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._answer is not None and not self._answer.done():
            if self._headers_done and self._parser is not None:
                # An answer without a length ends with its connection.
                self._reusable = False
                self._complete()
            else:
                self._answer.set_exception(ProtocolError("the connection closed before the answer"))

    # httptools callbacks
    def on_headers_complete(self) -> None:
        self._headers_done = True

    def on_body(self, body: bytes) -> None:
        room = self._kept - len(self._head)
        if room > 0:
            self._head += body[:room]
        self._read += len(body)
        if self._read > DRAIN_LIMIT:  # not worth reading on: close instead
            self._reusable = False
            self._complete()
            self._close()

    def on_message_complete(self) -> None:
        assert self._parser is not None
        if self._parser.get_status_code() < 200:  # 1xx: the real answer follows
            self._headers_done = False
            return
        self._reusable = self._reusable and self._parser.should_keep_alive()
        self._complete()

    # the client's side
    def send(self, request: bytes, *, kept: int) -> asyncio.Future[Answer]:
        assert self.transport is not None
        self._answer = asyncio.get_running_loop().create_future()
        self._parser = httptools.HttpResponseParser(self)
        self._kept, self._head, self._read = kept, bytearray(), 0
        self._headers_done, self._reusable = False, True
        self.transport.write(request)
        return self._answer

    def time_out(self) -> None:
        self._fail(TimeoutError())

    @property
    def reusable(self) -> bool:
        return self._reusable and not self.closed and self._answer is None

    def _complete(self) -> None:
        answer, parser = self._answer, self._parser
        if answer is None or parser is None or answer.done():
            return
        answer.set_result(Answer(parser.get_status_code(), bytes(self._head)))
        self._answer, self._parser = None, None
        if not self._reusable:
            self._close()

    def _fail(self, exc: Exception) -> None:
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(exc)
        self._close()

    def _close(self) -> None:
        self._reusable = False
        if self.transport is not None and not self.closed:
            self.closed = True
            self.transport.close()


Origin = tuple[str, str, int]  # scheme, host, port


@dataclass(slots=True)
class WebhookClient:
    """POSTs over pooled connections: at most `max_idle` idle ones kept, each for `keepalive`
    seconds. `resolver`: an aiohttp-style resolver (`resolve(host, port, family)` → dicts with
    `host`, `port`, `family`)."""

    resolver: Any
    ssl_context: ssl.SSLContext
    max_idle: int = 50
    keepalive: float = 5.0
    _idle: dict[Origin, list[_Exchange]] = field(default_factory=dict)

    async def post(
        self, url: URL, *, body: bytes, headers: Mapping[str, str], kept: int, timeout: float
    ) -> Answer:
        """The answer to one POST (its status and the first `kept` bytes of its body) within
        `timeout` seconds, resolving and connecting included. Raises TimeoutError, or OSError
        (refused address, connection, TLS, a broken answer)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        origin: Origin = (url.scheme, url.raw_host or "", url.port or (443 if url.scheme == "https" else 80))
        request = _request(url, body, headers)
        conn = self._take(origin)
        if conn is not None:
            try:
                return await self._exchange(origin, conn, request, kept, deadline)
            except ProtocolError:
                pass  # the server closed it while idle: once more, on a new connection
        async with asyncio.timeout_at(deadline):
            conn = await self._connect(origin)
        return await self._exchange(origin, conn, request, kept, deadline)

    async def _exchange(
        self, origin: Origin, conn: _Exchange, request: bytes, kept: int, deadline: float
    ) -> Answer:
        # One timer on the loop, not asyncio.timeout's task bookkeeping: this runs per attempt.
        timer = asyncio.get_running_loop().call_at(deadline, conn.time_out)
        try:
            answer = await conn.send(request, kept=kept)
        except BaseException:
            conn._close()  # timed out, cancelled or broken: never reused
            raise
        finally:
            timer.cancel()
        self._give_back(origin, conn)
        return answer

    def _take(self, origin: Origin) -> _Exchange | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if conn.reusable and now - conn.idle_since < self.keepalive:
                return conn
            conn._close()
        return None

    def _give_back(self, origin: Origin, conn: _Exchange) -> None:
        if not conn.reusable:
            conn._close()
            return
        if sum(map(len, self._idle.values())) >= self.max_idle:
            conn._close()
            return
        conn.idle_since = time.monotonic()
        self._idle.setdefault(origin, []).append(conn)

    async def _connect(self, origin: Origin) -> _Exchange:
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        found = await self.resolver.resolve(host, port, socket.AF_UNSPEC)
        error: OSError | None = None
        for address in found:
            try:
                _, conn = await loop.create_connection(
                    _Exchange,
                    address["host"],
                    address["port"],
                    family=address["family"],
                    ssl=self.ssl_context if scheme == "https" else None,
                    server_hostname=host if scheme == "https" else None,
                )
                return conn
            except OSError as exc:  # the next address (ssl.SSLError is an OSError too)
                error = exc
        raise error or OSError(f"{host} has no address")

    def close(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn._close()
        self._idle.clear()


def _request(url: URL, body: bytes, headers: Mapping[str, str]) -> bytes:
    lines = [f"POST {url.raw_path_qs} HTTP/1.1", f"Host: {url.host_port_subcomponent}"]
    for name, value in headers.items():
        if any(ch in name or ch in value for ch in "\r\n\0"):  # no header of the caller's making
            raise ValueError(f"header {name!r} holds a line break")
        lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
