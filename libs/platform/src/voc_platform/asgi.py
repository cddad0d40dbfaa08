"""What the HTTP middlewares share at the ASGI level."""

from __future__ import annotations

from starlette.types import Message, Send


class ResponseStatus:
    """An ASGI `send` wrapped to keep the status of the response the app starts: pass `send`
    on to the app, read `code` after it ran (500 when it started no response)."""

    __slots__ = ("_send", "code")

    def __init__(self, send: Send) -> None:
        self._send = send
        self.code = 500

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.code = message["status"]
        await self._send(message)
