"""The Web Push pool's idle-connection cap overrides aiohttp's private `TCPConnector._release`
(aiohttp has no public knob for it: `limit` counts busy connections too, `keepalive_timeout`
only expires idle ones by time). This guard fails loudly when an aiohttp upgrade changes what
the override relies on, instead of the cap silently stopping to work (#22 §3)."""

from __future__ import annotations

import asyncio
import inspect

import aiohttp
from aiohttp import web

from voc_notify.webpush.sender import _PushConnector

UPGRADE_HINT = (
    f"aiohttp {aiohttp.__version__} changed TCPConnector internals that "
    "voc_notify.webpush.sender._PushConnector overrides (the idle-connection cap); re-check it "
    "against this version and update services/notify/pyproject.toml's aiohttp pin"
)


def test_the_private_release_hook_still_has_the_shape_the_override_expects() -> None:
    release = inspect.signature(aiohttp.TCPConnector._release)
    params = [(p.name, p.kind) for p in release.parameters.values()]
    expected = [
        ("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        ("key", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        ("protocol", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        ("should_close", inspect.Parameter.KEYWORD_ONLY),
    ]
    assert params == expected, UPGRADE_HINT
    assert release.parameters["should_close"].default is False, UPGRADE_HINT
    assert aiohttp.__version__.split(".")[:2] == ["3", "14"], UPGRADE_HINT


async def test_no_more_than_max_keepalive_connections_stay_idle() -> None:
    """Six requests at once through a pool that keeps two idle: after them, two idle
    connections remain (aiohttp alone would keep all six)."""
    release, all_in = asyncio.Event(), asyncio.Event()
    arrived = 0

    async def slow(_: web.Request) -> web.Response:
        nonlocal arrived
        arrived += 1
        if arrived == 6:
            all_in.set()  # six connections busy at once
        await release.wait()
        return web.Response(status=201)

    app = web.Application()
    app.router.add_post("/push", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    connector = _PushConnector(max_keepalive=2, limit=10)
    try:
        async with aiohttp.ClientSession(connector=connector) as session:

            async def one() -> int:
                async with session.post(f"http://127.0.0.1:{port}/push", data=b"x") as response:
                    await response.read()
                    return response.status

            calls = [asyncio.create_task(one()) for _ in range(6)]
            await asyncio.wait_for(all_in.wait(), 10)
            release.set()
            assert await asyncio.gather(*calls) == [201] * 6
            idle = sum(map(len, connector._conns.values()))
            assert idle == 2, f"{idle} idle connections kept, cap 2: {UPGRADE_HINT}"
    finally:
        await runner.cleanup()
