"""OpenTelemetry traces and structured logs that carry the trace id.

One trace follows a feedback item: the REST request, the outbox row (its headers keep the W3C
trace context), the NATS hop, the consumer, both gRPC calls and the push send.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, MutableMapping, Sequence
from types import TracebackType
from typing import Any

import orjson
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import Attributes

_provider: TracerProvider | None = None
_exporting = False


class _RecordWhenExported(Sampler):
    """Records spans only once something exports them (OTLP, or a test's processor).

    Without an exporter a recorded span is built, filled and thrown away; a dropped one still
    carries a valid trace and span id, so logs keep their trace_id and the W3C context still
    flows over NATS and gRPC to a process that does export. On the gRPC hot path this is about
    a tenth of a call's CPU.
    """

    def should_sample(
        self,
        parent_context: otel_context.Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: trace.TraceState | None = None,
    ) -> SamplingResult:
        parent_state = trace.get_current_span(parent_context).get_span_context().trace_state
        if _exporting:
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, parent_state)
        return SamplingResult(Decision.DROP, None, parent_state)

    def get_description(self) -> str:
        return "RecordWhenExported"


def setup(
    service_name: str,
    *,
    otlp_endpoint: str | None = None,
    processors: list[SpanProcessor] | None = None,
) -> TracerProvider:
    """Install the global tracer provider once per process (tests may pass their processors)."""
    global _provider, _exporting
    if _provider is None:
        _provider = TracerProvider(
            resource=Resource.create({"service.name": service_name}), sampler=_RecordWhenExported()
        )
        trace.set_tracer_provider(_provider)
        if otlp_endpoint:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            endpoint = otlp_endpoint.rstrip("/")
            if not endpoint.endswith("/v1/traces"):
                endpoint += "/v1/traces"
            _provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
            _exporting = True
    for processor in processors or []:
        _provider.add_span_processor(processor)
        _exporting = True
    return _provider


def shutdown() -> None:
    if _provider is not None:
        _provider.force_flush(timeout_millis=2000)


_tracers: dict[str, trace.Tracer] = {}


def tracer(name: str) -> trace.Tracer:
    """One tracer per name: the SDK's get_tracer builds a scope and warning filters each call,
    which cost more than the span itself on the hot path. A tracer taken before `setup` is a
    proxy that follows the provider installed later."""
    found = _tracers.get(name)
    if found is None:
        found = _tracers[name] = trace.get_tracer(name)
    return found


def inject(carrier: MutableMapping[str, str]) -> None:
    """Write the current W3C trace context (traceparent) into headers or metadata."""
    propagate.inject(carrier)


def extract(carrier: Mapping[str, str]) -> otel_context.Context:
    return propagate.extract(carrier)


class span:  # noqa: N801 - used as a function: `with telemetry.span("name") as current:`
    """A span made current for the block; an exception marks it as an error.

    A plain class rather than a generator context manager: this runs several times per feedback
    (REST, outbox, consumer, each gRPC call on both ends) and the generator layers cost more than
    a dropped span itself. `attributes` is passed through, not copied (the SDK copies it).
    """

    __slots__ = ("_current", "_token")

    def __init__(
        self,
        name: str,
        *,
        kind: SpanKind = SpanKind.INTERNAL,
        parent: otel_context.Context | None = None,
        attributes: Mapping[str, Any] | None = None,
        service: str = "voc",
    ) -> None:
        self._current = tracer(service).start_span(name, context=parent, kind=kind, attributes=attributes)

    def __enter__(self) -> Span:
        self._token = otel_context.attach(trace.set_span_in_context(self._current))
        return self._current

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc is not None and self._current.is_recording():
                self._current.record_exception(exc)
                self._current.set_status(Status(StatusCode.ERROR, str(exc)))
        finally:
            otel_context.detach(self._token)
            self._current.end()


def current_trace_id() -> str | None:
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with trace_id/span_id when a span is active."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            entry["trace_id"] = format(ctx.trace_id, "032x")
            entry["span_id"] = format(ctx.span_id, "016x")
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            entry.update(extra)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__(f"%(asctime)s {service:<8} %(levelname)-5s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        trace_id = current_trace_id()
        return f"{line} trace={trace_id}" if trace_id else line


def setup_logging(service: str, *, level: str = "INFO", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service) if fmt == "json" else TextFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("uvicorn.access", "nats", "httpx", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
