"""An application's OpenTelemetry SDK, set once for the process as an application would
(`set_tracer_provider` / `set_meter_provider` take the first provider only): spans go to an
in-memory exporter while a test holds the `telemetry` fixture, and nowhere otherwise."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


class _Gate(SimpleSpanProcessor):
    """Exports only while a test listens, so the rest of the run keeps nothing."""

    open = False

    def on_end(self, span: ReadableSpan) -> None:
        if self.open:
            super().on_end(span)


@dataclass
class Telemetry:
    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def named(self, operation: str) -> list[ReadableSpan]:
        return [s for s in self.spans() if s.attributes.get("tiermem.operation") == operation]

    def children(self, parent: ReadableSpan) -> list[ReadableSpan]:
        """Every span under `parent`, at any depth."""
        out, frontier = [], {parent.context.span_id}
        for span in sorted(self.spans(), key=lambda s: s.start_time):
            if span.parent is not None and span.parent.span_id in frontier:
                out.append(span)
                frontier.add(span.context.span_id)
        return out


_EXPORTER = InMemorySpanExporter()
_GATE = _Gate(_EXPORTER)
_READER = InMemoryMetricReader()


@pytest.fixture(scope="session")
def _providers() -> None:
    provider = TracerProvider()
    provider.add_span_processor(_GATE)
    trace.set_tracer_provider(provider)
    metrics.set_meter_provider(MeterProvider(metric_readers=[_READER]))


@pytest.fixture
def telemetry(_providers: None) -> Iterator[Telemetry]:
    _EXPORTER.clear()
    _GATE.open = True
    try:
        yield Telemetry(_EXPORTER, _READER)
    finally:
        _GATE.open = False
        _EXPORTER.clear()
