"""Per-request cost of the metrics: ``python -m voc_bench.metrics_overhead [--calls N]``.

Times the same requests through a minimal routed ASGI app with and without
`voc_platform.metrics.HttpMetricsMiddleware` (a route object in the scope, as FastAPI leaves
it), and through a whole service app (`voc_platform.http.create_app`, one FastAPI route, over
ASGI without a socket) with the middleware and with it taken out; plus the gRPC method
instrument's and the event-consumer instruments' cost per call. Prints microseconds per call
(best of `--repeat` runs, so scheduler noise on a shared machine counts less).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import grpc
from fastapi import FastAPI
from starlette.types import Message, Receive, Scope, Send

from voc_platform import metrics
from voc_platform.http import create_app

_START: Message = {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
_BODY: Message = {"type": "http.response.body", "body": b"{}"}


class _Route:
    path = "/v1/feedback"


_ROUTE = _Route()


async def routed(scope: Scope, receive: Receive, send: Send) -> None:
    """The cheapest app that routes: it sets the route as FastAPI's router does, and answers."""
    scope["route"] = _ROUTE
    await send(_START)
    await send(_BODY)


def _scope() -> Scope:
    return {
        "type": "http",
        "method": "POST",
        "path": "/v1/feedback",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"2")],
        "query_string": b"",
        "root_path": "",
        "http_version": "1.1",
        "scheme": "http",
        "server": ("127.0.0.1", 8010),
        "client": ("127.0.0.1", 50000),
    }


async def _receive() -> Message:
    return {"type": "http.request", "body": b"{}", "more_body": False}


async def _send(_message: Message) -> None:
    return None


async def _per_call(app: Callable[[Scope, Receive, Send], Awaitable[None]], calls: int, repeat: int) -> float:
    """Best microseconds per call over `repeat` runs of `calls` requests."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(calls):
            await app(_scope(), _receive, _send)
        best = min(best, (time.perf_counter() - start) / calls * 1e6)
    return best


def _service_app(with_metrics: bool) -> FastAPI:
    app = create_app(title="bench", service="bench")
    if not with_metrics:
        kept: list[Any] = [
            m for m in app.user_middleware if getattr(m, "cls", None) != metrics.HttpMetricsMiddleware
        ]
        app.user_middleware = kept

    @app.post("/v1/feedback", status_code=202)
    async def intake() -> dict[str, str]:
        return {"status": "received"}

    return app


def _timed(function: Callable[[], None], calls: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(calls):
            function()
        best = min(best, (time.perf_counter() - start) / calls * 1e6)
    return best


async def run(calls: int, repeat: int) -> dict[str, float]:
    options = metrics.HttpMetricsOptions()
    instrumented = metrics.HttpMetricsMiddleware(routed, templates=lambda: ["/v1/feedback"], options=options)
    with_access_log = metrics.HttpMetricsMiddleware(
        routed, templates=lambda: ["/v1/feedback"], options=metrics.HttpMetricsOptions(access_log=True)
    )
    for app in (routed, instrumented):  # warm: caches, label children
        await _per_call(app, 1000, 1)
    bare_us = await _per_call(routed, calls, repeat)
    middleware_us = await _per_call(instrumented, calls, repeat)
    results: dict[str, Any] = {
        "asgi_bare_us": bare_us,
        "asgi_with_metrics_us": middleware_us,
        "http_middleware_us": middleware_us - bare_us,
    }
    access = logging.getLogger("voc.access")
    was_disabled, access.disabled = access.disabled, True  # the formatting cost, not the terminal's
    try:
        results["http_middleware_access_log_on_us"] = (
            await _per_call(with_access_log, calls, repeat) - bare_us
        )
    finally:
        access.disabled = was_disabled
    service_calls = max(calls // 10, 1000)
    plain, measured = _service_app(False), _service_app(True)
    for app in (plain, measured):
        await _per_call(app, 200, 1)
    results["service_app_without_us"] = await _per_call(plain, service_calls, repeat)
    results["service_app_with_us"] = await _per_call(measured, service_calls, repeat)
    results["service_app_delta_us"] = results["service_app_with_us"] - results["service_app_without_us"]
    method = metrics.GrpcMethodMetrics("bench.v1.Bench/Call")
    results["grpc_observe_us"] = _timed(lambda: method.observe(grpc.StatusCode.OK, 0.001), calls, repeat)
    consumer = metrics.ConsumerMetrics("bench")

    def consumed() -> None:
        done, _errors, _redelivered, _dead = consumer.of("voc.feedback.received")
        consumer.handling.observe(0.001)
        done.inc()

    results["event_consumed_us"] = _timed(consumed, calls, repeat)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="per-request cost of the Prometheus metrics")
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    stats = asyncio.run(run(args.calls, args.repeat))
    width = max(len(k) for k in stats)
    for name, value in stats.items():
        print(f"{name:<{width}}  {value:8.2f} us")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
