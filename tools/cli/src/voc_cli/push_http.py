"""The push emulator's HTTP/1.1 server side: just enough of the protocol (keep-alive, pipelining,
Content-Length and chunked bodies) to answer a push service's requests fast."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

#: (method, target, headers with lower-case names, body or None when too large) ->
#: (status, detail text, extra response headers)
Handler = Callable[[str, str, dict[str, str], bytes | None], tuple[int, str, dict[str, str]]]

_REASONS = {
    200: "OK",
    201: "Created",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    410: "Gone",
    411: "Length Required",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
MAX_HEAD = 16 * 1024
MAX_READ_BODY = 1024 * 1024  # bodies up to this are read and answered 413; larger: close


class HttpProtocol(asyncio.Protocol):
    """Minimal HTTP/1.1 server side: keep-alive, pipelining, Content-Length and chunked
    request bodies. Requests are handled synchronously in ``data_received`` (decryption
    of one record takes ~0.15 ms), which keeps the per-request cost far below h11's.
    ``handle`` gets a body over ``max_body`` octets as None; ``connections`` holds the open
    ones (for closing them at shutdown)."""

    def __init__(self, handle: Handler, connections: set[HttpProtocol], *, max_body: int) -> None:
        self._handle = handle
        self._connections = connections
        self._max_body = max_body
        self._buf = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._connections.discard(self)
        self._transport = None

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def data_received(self, data: bytes) -> None:
        self._buf += data
        while self._transport is not None and not self._transport.is_closing():
            if not self._process_one():
                return

    def _process_one(self) -> bool:
        """Handle one complete request from the buffer; False if more data is needed."""
        buf = self._buf
        head_end = buf.find(b"\r\n\r\n")
        if head_end < 0:
            if len(buf) > MAX_HEAD:
                self._reply(431, "request head too large", {}, close=True)
            return False
        try:
            lines = bytes(buf[:head_end]).decode("latin-1").split("\r\n")
            method, target, version = lines[0].split(" ")
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, sep, value = line.partition(":")
                if not sep or not name or name != name.strip():
                    raise ValueError(f"bad header line {line!r}")
                key = name.lower()
                value = value.strip()
                headers[key] = f"{headers[key]}, {value}" if key in headers else value
            if not version.startswith("HTTP/1."):
                raise ValueError("unsupported HTTP version")
        except ValueError as exc:
            self._reply(400, f"malformed request: {exc}", {}, close=True)
            return False
        pos = head_end + 4
        body: bytes | None
        if "chunked" in headers.get("transfer-encoding", "").lower():
            parsed = _parse_chunked(buf, pos)
            if parsed is None:
                if len(buf) - pos > MAX_READ_BODY:
                    self._reply(413, "payload too large", {}, close=True)
                return False
            body, pos = parsed
        else:
            try:
                length = int(headers.get("content-length", "0"))
                if length < 0:
                    raise ValueError
            except ValueError:
                self._reply(400, "bad Content-Length", {}, close=True)
                return False
            if length > MAX_READ_BODY:
                self._reply(413, "payload too large", {}, close=True)
                return False
            if len(buf) - pos < length:
                return False
            body = bytes(buf[pos : pos + length])
            pos += length
        del buf[:pos]
        if len(body) > self._max_body:
            body = None
        keep_alive = headers.get("connection", "").lower() != "close" and version == "HTTP/1.1"
        status, detail, extra = self._handle(method, target, headers, body)
        self._reply(status, detail, extra, close=not keep_alive)
        return keep_alive

    def _reply(self, status: int, detail: str, extra: dict[str, str], *, close: bool) -> None:
        if self._transport is None:
            return
        body = detail.encode()
        out = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
        out.extend(f"{k}: {v}" for k, v in extra.items())
        out.append(f"content-length: {len(body)}")
        if body:
            out.append("content-type: text/plain; charset=utf-8")
        if close:
            out.append("connection: close")
        self._transport.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + body)
        if close:
            self._transport.close()


def _parse_chunked(buf: bytearray, pos: int) -> tuple[bytes, int] | None:
    """Decode a chunked body starting at ``pos``; None while incomplete."""
    chunks: list[bytes] = []
    while True:
        line_end = buf.find(b"\r\n", pos)
        if line_end < 0:
            return None
        size = int(bytes(buf[pos:line_end]).split(b";")[0].strip() or b"0", 16)
        pos = line_end + 2
        if size == 0:
            trailer_end = buf.find(b"\r\n\r\n", pos - 2)
            if trailer_end < 0:
                return None
            return b"".join(chunks), trailer_end + 4
        if len(buf) < pos + size + 2:
            return None
        chunks.append(bytes(buf[pos : pos + size]))
        pos += size + 2
