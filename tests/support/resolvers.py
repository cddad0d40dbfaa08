"""A resolver for tests that dial names on loopback (aiohttp's resolver interface, which the
Web Push connector and the webhook client both use)."""

from __future__ import annotations

import socket

from aiohttp.abc import AbstractResolver, ResolveResult


class LoopbackResolver(AbstractResolver):
    """Every name resolves to 127.0.0.1, on `port` if given, else on the port asked for."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(
                hostname=host,
                host="127.0.0.1",
                port=port if self.port is None else self.port,
                family=socket.AF_INET,
                proto=0,
                flags=0,
            )
        ]

    async def close(self) -> None:
        pass
