"""The HTTP/1.1 client of webhook attempts: one POST, its status and the first bytes of the
answer, over pooled keep-alive connections (TLS by the given context), every connection's
addresses from the given resolver (`targets.PublicResolver` refuses non-public ones).

Why not aiohttp, as Web Push: a webhook attempt is always the same exchange (POST a small JSON
body, read a status), and at one endpoint on "*" there are about three per feedback. A send
(`sender.WebhookSender.send`, signing included, on loopback) cost 0.115 ms of CPU over aiohttp
and 0.061 ms over this protocol with httptools parsing (#19, docs/BENCHMARKS.md).

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

import aiohappyeyeballs
import httptools
from yarl import URL

DRAIN_LIMIT: Final = 64 * 1024  # bytes of an answer read to keep its connection
#: Bytes of an answer's status line and headers: past this (a receiver streaming one endless
#: header) the answer is refused at once, not parsed on until the attempt's timeout.
HEAD_LIMIT: Final = 16 * 1024


class ProtocolError(OSError):
    """The receiver's answer was not HTTP/1.x, or the connection ended before it was whole."""


class ClosedBeforeAnswer(ProtocolError):
    """The connection closed before any byte of the answer: a pooled one the server had
    dropped while idle, so the request may go once more on a new connection."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    head: bytes  # the first `kept` bytes of the body
    retry_after: float | None = None  # a 429's or 503's `Retry-After` in seconds (a date: None)


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
        self._head_bytes = 0  # bytes read while the headers were not complete
        self._heard = False  # any byte of the answer
        self._headers_done = False
        self._delimited = False  # a length or chunks, so the connection's end is not the body's
        self._reusable = True
        self._retry_after: float | None = None

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        if self._parser is None:  # nothing asked: the server has no business talking
            self._close()
            return
        self._heard = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(ProtocolError("the receiver switched protocols"))
        except httptools.HttpParserError as exc:
            # Also what follows a whole answer in the same read (a callback below refuses it).
            self._fail(ProtocolError(f"not an HTTP answer: {exc}"))
            return
        if not self._headers_done and self._answer is not None:
            self._head_bytes += len(data)
            if self._head_bytes > HEAD_LIMIT:
                self._fail(ProtocolError(f"the answer's headers exceed {HEAD_LIMIT // 1024} KiB"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._answer is None or self._answer.done():
            return
        if self._headers_done and not self._delimited:
            self._reusable = False
            self._complete()  # an answer without a length ends with its connection
        elif not self._heard:
            self._answer.set_exception(ClosedBeforeAnswer("the connection closed before the answer"))
        else:
            self._answer.set_exception(ProtocolError("the connection closed inside the answer"))

    # httptools callbacks: only while an answer is awaited (bytes after it end the connection)
    def _expected(self) -> None:
        if self._answer is None:
            raise ProtocolError("bytes after the answer")

    def on_message_begin(self) -> None:
        self._expected()

    def on_header(self, name: bytes, value: bytes) -> None:
        lowered = name.lower()
        if lowered in (b"content-length", b"transfer-encoding"):
            self._delimited = True
        elif lowered == b"retry-after" and value.strip().isdigit():
            self._retry_after = float(value.strip())

    def on_headers_complete(self) -> None:
        self._headers_done = True

    def on_body(self, body: bytes) -> None:
        self._expected()
        room = self._kept - len(self._head)
        if room > 0:
            self._head += body[:room]
        self._read += len(body)
        if self._read > DRAIN_LIMIT:  # not worth reading on: close instead
            self._reusable = False
            self._complete()

    def on_message_complete(self) -> None:
        self._expected()
        assert self._parser is not None
        if self._parser.get_status_code() < 200:  # 1xx: the real answer follows
            self._headers_done = self._delimited = False
            return
        self._reusable = self._reusable and self._parser.should_keep_alive()
        self._complete()

    # the client's side
    def send(self, request: bytes, *, kept: int) -> asyncio.Future[Answer]:
        assert self.transport is not None
        self._answer = asyncio.get_running_loop().create_future()
        self._parser = httptools.HttpResponseParser(self)
        self._kept, self._head, self._read, self._head_bytes = kept, bytearray(), 0, 0
        self._heard = self._headers_done = self._delimited = False
        self._reusable = True
        self._retry_after = None
        self.transport.write(request)
        return self._answer

    def time_out(self) -> None:
        if self._answer is not None:  # else the answer came first; the timer was late
            self._fail(TimeoutError())

    @property
    def reusable(self) -> bool:
        return self._reusable and not self.closed and self._answer is None

    def _complete(self) -> None:
        answer, parser = self._answer, self._parser
        if answer is None or parser is None or answer.done():
            return
        answer.set_result(Answer(parser.get_status_code(), bytes(self._head), self._retry_after))
        self._answer = None  # the parser stays: bytes after the answer reach `_expected`
        if not self._reusable:
            self._close()

    def _fail(self, exc: Exception) -> None:
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(exc)
        self._answer = None
        self._close()

    def _close(self) -> None:
        self._reusable = False
        if self.transport is not None and not self.closed:
            self.closed = True
            self.transport.close()


Origin = tuple[str, str, int]  # scheme, host, port


@dataclass(slots=True)
class WebhookClient:
    """POSTs over pooled connections: at most `max_idle` idle ones kept (the oldest closed
    first), each for `keepalive` seconds. `resolver`: an aiohttp-style resolver
    (`resolve(host, port, family)` → dicts with `host`, `port`); every new connection asks it,
    and it may refuse (`targets.PublicResolver`)."""

    resolver: Any
    ssl_context: ssl.SSLContext
    max_idle: int = 50
    keepalive: float = 5.0
    _idle: dict[Origin, list[_Exchange]] = field(default_factory=dict)
    _idle_count: int = 0
    _closed: bool = False

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
            except ClosedBeforeAnswer:
                pass  # dropped by the server while idle, nothing heard: once more, on a new one
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
            self._idle_count -= 1
            if conn.reusable and now - conn.idle_since < self.keepalive:
                if not idle:
                    del self._idle[origin]
                return conn
            conn._close()
        self._idle.pop(origin, None)
        return None

    def _give_back(self, origin: Origin, conn: _Exchange) -> None:
        if not conn.reusable or self._closed:
            conn._close()
            return
        now = time.monotonic()
        if self._idle_count >= self.max_idle:
            self._evict(now)
        conn.idle_since = now
        self._idle.setdefault(origin, []).append(conn)
        self._idle_count += 1

    def _evict(self, now: float) -> None:
        """Room for one: the closed and expired ones go, else the one idle longest."""
        for origin, idle in list(self._idle.items()):
            kept = [c for c in idle if c.reusable and now - c.idle_since < self.keepalive]
            for conn in idle:
                if conn not in kept:
                    conn._close()
            self._idle_count -= len(idle) - len(kept)
            if kept:
                self._idle[origin] = kept
            else:
                del self._idle[origin]
        if self._idle_count >= self.max_idle:
            origin, idle = min(self._idle.items(), key=lambda item: item[1][0].idle_since)
            idle.pop(0)._close()
            self._idle_count -= 1
            if not idle:
                del self._idle[origin]

    async def _connect(self, origin: Origin) -> _Exchange:
        scheme, host, port = origin
        found = await self.resolver.resolve(host, port, socket.AF_UNSPEC)
        addresses = [
            (socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (a["host"], a["port"], 0, 0))
            if ":" in a["host"]
            else (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (a["host"], a["port"]))
            for a in found
        ]
        if not addresses:
            raise OSError(f"{host} has no address")
        # The next address 250 ms after the last (RFC 8305), as aiohttp did: an address family
        # that drops packets costs a quarter second, not the attempt.
        sock = await aiohappyeyeballs.start_connection(addresses, happy_eyeballs_delay=0.25, interleave=1)
        _, conn = await asyncio.get_running_loop().create_connection(
            _Exchange,
            sock=sock,
            ssl=self.ssl_context if scheme == "https" else None,
            server_hostname=host if scheme == "https" else None,
        )
        return conn

    def close(self) -> None:
        """Closes the idle connections; those in use close when given back."""
        self._closed = True
        for idle in self._idle.values():
            for conn in idle:
                conn._close()
        self._idle.clear()
        self._idle_count = 0


def _request(url: URL, body: bytes, headers: Mapping[str, str]) -> bytes:
    lines = [f"POST {url.raw_path_qs} HTTP/1.1", f"Host: {url.host_port_subcomponent}"]
    for name, value in headers.items():
        if any(ch in name or ch in value for ch in "\r\n\0"):  # no header of the caller's making
            raise ValueError(f"header {name!r} holds a line break")
        lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
