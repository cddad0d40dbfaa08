"""Spans are recorded only when something exports them; unrecorded ones still carry the trace."""

from __future__ import annotations

import grpc
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind, StatusCode

from voc_platform import grpc as voc_grpc
from voc_platform import telemetry


def _span_under(provider: TracerProvider) -> tuple[trace.Span, trace.Span]:
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("parent") as parent:
        child = tracer.start_span("child", kind=SpanKind.SERVER)
        child.end()
    return parent, child


def test_without_an_exporter_spans_are_dropped_but_keep_the_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    provider = TracerProvider(sampler=telemetry._RecordWhenExported())
    monkeypatch.setattr(telemetry, "_exporting", False)
    parent, child = _span_under(provider)
    assert not parent.is_recording() and not child.is_recording()
    # Logs and downstream services still get a valid trace id, shared parent to child.
    assert child.get_span_context().is_valid
    assert child.get_span_context().trace_id == parent.get_span_context().trace_id

    monkeypatch.setattr(telemetry, "_exporting", True)
    parent, child = _span_under(provider)
    assert parent.get_span_context().trace_flags.sampled and child.get_span_context().trace_flags.sampled


def test_a_failing_block_marks_its_span_as_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    provider = TracerProvider()
    monkeypatch.setattr(telemetry, "_tracers", {"voc": provider.get_tracer("voc")})
    with pytest.raises(ValueError), telemetry.span("failing") as current:
        assert trace.get_current_span() is current
        raise ValueError("boom")
    assert current.status.status_code is StatusCode.ERROR  # type: ignore[attr-defined]
    assert trace.get_current_span() is not current  # the context is restored


def test_a_streaming_method_cannot_be_registered_without_a_guard() -> None:
    stream = grpc.unary_stream_rpc_method_handler(lambda request, context: iter(()))
    with pytest.raises(TypeError, match="only unary methods"):
        voc_grpc._guarded("/voc.test.v1.Test/Watch", stream, b"Bearer t")


def test_unknown_method_names_are_not_remembered_by_the_guard() -> None:
    inner = grpc.method_handlers_generic_handler(
        "voc.test.v1.Test", {"Get": grpc.unary_unary_rpc_method_handler(lambda request, context: request)}
    )
    guarded = voc_grpc._GuardedHandlers(inner, b"Bearer t")

    class Details(grpc.HandlerCallDetails):  # type: ignore[misc]
        def __init__(self, method: str) -> None:
            self.method = method
            self.invocation_metadata = ()

    for i in range(50):
        assert guarded.service(Details(f"/voc.test.v1.Test/Made{i}")) is None
    assert guarded.service(Details("/voc.test.v1.Test/Get")) is not None
    assert list(guarded._wrapped) == ["/voc.test.v1.Test/Get"]
