"""Prometheus metrics, one home for every service: the registry, the HTTP middleware, the gRPC
method instrument, the event-bus instruments, the scrape-time sources (JetStream consumer info,
outbox backlog, database pool) and `GET /metrics`.

Naming follows Prometheus conventions: `voc_` prefix, base units (`_seconds`), counters end in
`_total`. Labels are bounded: route templates (never raw paths), gRPC method names, event
subjects and durable consumer names, channels and reasons from fixed sets; never an id, a key
or a customer's data. A service registers its domain counters in its own `metrics` module with
`counter` / `histogram` / `gauge` from here, and its scrape-time gauges as `Source`s.

The hot path stays cheap: each (method, route, status) resolves once to its counter and
histogram children, cached; a request then costs two dictionary lookups, an increment and an
observation. Everything that needs I/O (JetStream, the database) is read at scrape time, each
source under a short timeout; a source or collector that raises or times out is skipped and
counted in `voc_metrics_collector_errors_total`, so `/metrics` answers 200 whatever breaks.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.core import Metric as Metric  # re-exported: what sources yield
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from starlette.routing import compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

from voc_platform.asgi import ResponseStatus

log = logging.getLogger(__name__)
access_log = logging.getLogger("voc.access")

#: Latency buckets (seconds) for requests, calls and handlers: intake answers in ~1-5 ms, a
#: push round trip takes tens of ms, a slow database or upstream seconds.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: How long one scrape-time source (a JetStream or database read) may take before it is skipped.
SOURCE_TIMEOUT_SECONDS = 1.0


class SafeRegistry(CollectorRegistry):
    """A registry whose exposition skips a collector that raises (and counts it), rather than
    failing the whole scrape."""

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            collectors = list(self._collector_to_names)
        for collector in collectors:
            try:
                found = list(collector.collect())
            except Exception:
                name = type(collector).__name__
                log.exception("metrics collector %s failed; skipped", name)
                COLLECTOR_ERRORS.labels(name).inc()
                continue
            yield from found


#: No `*_created` series beside each counter and histogram: they double a scrape for nothing
#: the dashboards use.
disable_created_metrics()  # type: ignore[no-untyped-call]
#: Every metric of the process. Not prometheus_client's global registry: ours skips failures.
REGISTRY = SafeRegistry()
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)


def counter(name: str, documentation: str, labelnames: Sequence[str] = ()) -> Counter:
    return Counter(name, documentation, labelnames, registry=REGISTRY)


def gauge(name: str, documentation: str, labelnames: Sequence[str] = ()) -> Gauge:
    return Gauge(name, documentation, labelnames, registry=REGISTRY)


def histogram(
    name: str,
    documentation: str,
    labelnames: Sequence[str] = (),
    buckets: Sequence[float] = LATENCY_BUCKETS,
) -> Histogram:
    return Histogram(name, documentation, labelnames, registry=REGISTRY, buckets=buckets)


COLLECTOR_ERRORS = counter(
    "voc_metrics_collector_errors_total",
    "Collectors and scrape-time sources that raised or timed out (skipped in that scrape).",
    ["collector"],
)
COLLECTOR_ERRORS.labels("exposition")
SERVICE_INFO = gauge("voc_service_info", "Always 1; the service and its version.", ["service", "version"])

# ------------------------------------------------------------------------------------ HTTP

HTTP_REQUESTS = counter(
    "voc_http_requests_total",
    "HTTP requests answered, by route template and status.",
    ["method", "route", "status"],
)
HTTP_DURATION = histogram(
    "voc_http_request_duration_seconds",
    "Time from a request's arrival to the end of its answer, by route template.",
    ["method", "route"],
)
#: Methods kept as they are in labels; anything else a client sends is counted as "other".
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE = "unmatched"

StatusHook = Callable[[int], None]


@dataclass
class HttpMetricsOptions:
    """What an app's `HttpMetricsMiddleware` reads per request (`app.state.http_metrics`): the
    status hooks of routes (`watch_status`) and whether to write access-log lines
    (`VOC_ACCESS_LOG`, set by the runtime)."""

    status_hooks: dict[tuple[str, str], StatusHook] = field(default_factory=dict)
    access_log: bool = False


def watch_status(app: Any, method: str, route: str, hook: StatusHook) -> None:
    """Call `hook(status)` after each answer of `method route` (a template, as declared); set it
    while building the app, before the route serves."""
    app.state.http_metrics.status_hooks[(method, route)] = hook


class _Instruments:
    __slots__ = ("duration", "hook", "requests", "route")

    def __init__(self, method: str, route: str, status: int, hook: StatusHook | None) -> None:
        self.route = route
        self.requests = HTTP_REQUESTS.labels(method, route, str(status))
        self.duration = HTTP_DURATION.labels(method, route)
        self.hook = hook


class HttpMetricsMiddleware:
    """Counts each answered request by method, route template and status, and observes its
    duration; optionally writes one structured access-log line per request. A pure ASGI
    middleware (Starlette's BaseHTTPMiddleware costs a task and a stream per request).

    The route template comes from the routing the app did (`scope["route"]`); a request refused
    before routing (413 by the body limit) or matching nothing is matched against the app's
    route templates here, and one matching no route is counted as `unmatched`, whatever its path.
    `options.status_hooks[(method, template)]` is called with the status of each answer of that route
    (feedback counts intake refusals by reason this way)."""

    def __init__(
        self, app: ASGIApp, *, templates: Callable[[], Sequence[str]], options: HttpMetricsOptions
    ) -> None:
        self.app = app
        self.templates = templates
        self.options = options
        self._cache: dict[tuple[str, int, int], _Instruments] = {}
        self._templates: list[tuple[re.Pattern[str], str]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        sent = ResponseStatus(send)
        try:
            await self.app(scope, receive, sent.send)
        finally:
            elapsed = time.perf_counter() - start
            status = sent.code
            method = scope["method"]
            if method not in _METHODS:
                method = "other"
            route = scope.get("route")
            found: _Instruments | None
            if route is None:  # refused before routing, or no route: rare, never cached
                found = self._instruments(method, self._match(scope), status)
            else:
                key = (method, id(route), status)
                found = self._cache.get(key)
                if found is None:
                    found = self._cache[key] = self._instruments(method, route.path, status)
            found.requests.inc()
            found.duration.observe(elapsed)
            if found.hook is not None:
                found.hook(status)
            if self.options.access_log:
                access_log.info(
                    "%s %s %d",
                    method,
                    found.route,
                    status,
                    extra={
                        "fields": {
                            "method": method,
                            "route": found.route,
                            "status": status,
                            "duration_ms": round(elapsed * 1000, 2),
                        }
                    },
                )

    def _instruments(self, method: str, template: str | None, status: int) -> _Instruments:
        template = template or UNMATCHED_ROUTE
        return _Instruments(method, template, status, self.options.status_hooks.get((method, template)))

    def _match(self, scope: Scope) -> str | None:
        """The template of the route this request would have reached (unrouted requests only)."""
        if self._templates is None:
            self._templates = [(compile_path(t)[0], t) for t in self.templates()]
        path = scope.get("path", "")
        return next((template for regex, template in self._templates if regex.match(path)), None)


def route_templates(app: Any) -> list[str]:
    """Every route template of a FastAPI app, fixed paths before those with parameters (so
    `/v1/feedback/export.csv` is not taken for `/v1/feedback/{id}`): the OpenAPI document's
    paths and the app's own top-level routes (routers included in an app are not flat lists)."""
    templates: set[str] = set()
    try:
        templates.update(app.openapi().get("paths", {}))
    except Exception:
        log.warning("metrics: no OpenAPI paths; requests refused before routing count as unmatched")
    templates.update(p for r in app.router.routes if isinstance(p := getattr(r, "path", None), str))
    return sorted(templates, key=lambda t: ("{" in t, -len(t), t))


# ------------------------------------------------------------------------------------ gRPC

GRPC_HANDLED = counter(
    "voc_grpc_server_handled_total", "gRPC calls served, by method and status code.", ["method", "code"]
)
GRPC_DURATION = histogram(
    "voc_grpc_server_handling_seconds", "Time to serve a gRPC call, by method.", ["method"]
)


GRPC_CLIENT_HANDLED = counter(
    "voc_grpc_client_handled_total",
    "gRPC calls made to other services, by method and status code (UNAVAILABLE, DEADLINE_EXCEEDED: "
    "the caller degrades).",
    ["method", "code"],
)
GRPC_CLIENT_DURATION = histogram(
    "voc_grpc_client_handling_seconds", "Time a gRPC call to another service took, by method.", ["method"]
)


class GrpcMethodMetrics:
    """The instruments of one gRPC method, served or called (made once per method or stub)."""

    __slots__ = ("_codes", "_duration", "_handled", "_method")

    def __init__(self, method: str, *, client: bool = False) -> None:
        self._method = method
        self._handled = GRPC_CLIENT_HANDLED if client else GRPC_HANDLED
        self._duration = (GRPC_CLIENT_DURATION if client else GRPC_DURATION).labels(method)
        self._codes: dict[Any, Any] = {}

    def observe(self, code: Any, seconds: float) -> None:
        """`code`: a `grpc.StatusCode` (its name is the label)."""
        child = self._codes.get(code)
        if child is None:
            child = self._codes[code] = self._handled.labels(self._method, getattr(code, "name", "UNKNOWN"))
        child.inc()
        self._duration.observe(seconds)


# ------------------------------------------------------------------------------------ events

EVENTS_PUBLISHED = counter(
    "voc_events_published_total",
    "Events JetStream acknowledged, by subject (one per event type).",
    ["subject"],
)
EVENTS_CONSUMED = counter(
    "voc_events_consumed_total",
    "Events a consumer handled and acknowledged, by durable consumer and subject.",
    ["consumer", "subject"],
)
EVENT_HANDLER_ERRORS = counter(
    "voc_event_handler_errors_total",
    "Event handler runs that raised (the event is redelivered or dead-lettered).",
    ["consumer", "subject"],
)
EVENT_REDELIVERIES = counter(
    "voc_event_redeliveries_total",
    "Events received again after an earlier delivery (handler error, ack lost, timeout).",
    ["consumer", "subject"],
)
EVENTS_DEAD_LETTERED = counter(
    "voc_events_dead_lettered_total",
    "Events given up after max_deliver attempts and copied to the dead-letter stream.",
    ["consumer", "subject"],
)
EVENT_HANDLING = histogram(
    "voc_event_handling_seconds", "Time an event handler ran, by durable consumer.", ["consumer"]
)


class ConsumerMetrics:
    """The instruments of one durable consumer, children cached per subject."""

    __slots__ = ("_by_subject", "consumer", "handling")

    def __init__(self, consumer: str) -> None:
        self.consumer = consumer
        self.handling = EVENT_HANDLING.labels(consumer)
        self._by_subject: dict[str, tuple[Any, Any, Any, Any]] = {}

    def of(self, subject: str) -> tuple[Any, Any, Any, Any]:
        """(consumed, errors, redeliveries, dead-lettered) children of `subject`."""
        found = self._by_subject.get(subject)
        if found is None:
            labels = (self.consumer, subject)
            found = self._by_subject[subject] = (
                EVENTS_CONSUMED.labels(*labels),
                EVENT_HANDLER_ERRORS.labels(*labels),
                EVENT_REDELIVERIES.labels(*labels),
                EVENTS_DEAD_LETTERED.labels(*labels),
            )
        return found


_published: dict[str, Any] = {}


def count_published(subject: str) -> None:
    child = _published.get(subject)
    if child is None:
        child = _published[subject] = EVENTS_PUBLISHED.labels(subject)
    child.inc()


# ------------------------------------------------------------------------------ scrape time


@dataclass(frozen=True)
class Source:
    """Gauges read at scrape time (I/O allowed), under `SOURCE_TIMEOUT_SECONDS`."""

    name: str
    collect: Callable[[], Awaitable[Iterable[Metric]]]

    def __post_init__(self) -> None:
        COLLECTOR_ERRORS.labels(self.name)  # exported as 0 until it fails: increase() sees the first


def gauge_family(name: str, documentation: str, labels: Sequence[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=list(labels))


def counter_family(name: str, documentation: str, labels: Sequence[str] = ()) -> CounterMetricFamily:
    """A count kept elsewhere since start, exported as `<name>_total` (`rate()` works on it)."""
    return CounterMetricFamily(name, documentation, labels=list(labels))


class _Fixed:
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


async def _gather(sources: Sequence[Source], timeout: float) -> list[Metric]:
    async def one(source: Source) -> list[Metric]:
        return list(await asyncio.wait_for(source.collect(), timeout))

    results = await asyncio.gather(*(one(s) for s in sources), return_exceptions=True)
    families: list[Metric] = []
    for source, result in zip(sources, results, strict=True):
        if isinstance(result, BaseException):
            log.warning("metrics source %s skipped: %r", source.name, result)
            COLLECTOR_ERRORS.labels(source.name).inc()
        else:
            families.extend(result)
    return families


async def exposition(sources: Sequence[Source] = (), *, timeout: float = SOURCE_TIMEOUT_SECONDS) -> bytes:
    """The Prometheus text of the registry and of `sources`; never raises."""
    try:
        families = await _gather(sources, timeout)
        extra = CollectorRegistry(auto_describe=False)
        extra.register(_Fixed(families))
        return generate_latest(REGISTRY) + generate_latest(extra)
    except Exception:
        log.exception("metrics exposition failed")
        COLLECTOR_ERRORS.labels("exposition").inc()
        fallback = CollectorRegistry(auto_describe=False)
        fallback.register(_Fixed([m for m in COLLECTOR_ERRORS.collect()]))
        return generate_latest(fallback)


router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics_endpoint(request: Request) -> Response:
    """Prometheus text format. Unauthenticated like `/healthz`: it carries counts by bounded
    labels only (no ids, tokens or customer data), and is meant to be scraped on the internal
    network (docs/OPERATIONS.md, "Metrics")."""
    runtime = getattr(request.app.state, "runtime", None)
    sources: Sequence[Source] = runtime.metric_sources() if runtime is not None else ()
    sources = [*sources, *getattr(request.app.state, "metric_sources", ())]
    return Response(await exposition(sources), media_type=CONTENT_TYPE_LATEST)
