"""CountingSpanExporter around the real OTLP/HTTP exporter: counts, logs once, never raises."""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from heron.agent.exporter import GATED_LOGGERS, CountingSpanExporter, ExportStats, OutageLogGate
from tests.agent.helpers import closed_port, wait_spans


def make_spans(n: int, service: str = "exporter-test") -> Sequence[ReadableSpan]:
    from opentelemetry.sdk.resources import Resource

    memory = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": service}), shutdown_on_exit=False
    )
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("test")
    for i in range(n):
        with tracer.start_as_current_span(f"span-{i}"):
            pass
    return memory.get_finished_spans()


def otlp(url: str, **kwargs: Any) -> CountingSpanExporter:
    endpoint = f"{url}/v1/traces"
    gate = OutageLogGate()
    for name in GATED_LOGGERS:
        logging.getLogger(name).addFilter(gate)
    return CountingSpanExporter(
        lambda: OTLPSpanExporter(endpoint=endpoint, timeout=0.5, **kwargs),
        destination=endpoint,
        gate=gate,
    )


@pytest.fixture
def remove_gates() -> Any:
    yield
    for name in GATED_LOGGERS:
        logger = logging.getLogger(name)
        for f in list(logger.filters):
            if isinstance(f, OutageLogGate):
                logger.removeFilter(f)


def test_delivered_spans_are_counted(heron_server: Any, remove_gates: None) -> None:
    exporter = otlp(heron_server.url, headers={"x-heron-key": heron_server.key})
    assert exporter.export(make_spans(3)) is SpanExportResult.SUCCESS
    assert exporter.stats == ExportStats(received=3, exported=3, dropped=0, failed_exports=0)
    wait_spans(heron_server, lambda s: len(s) == 3, service="exporter-test")


def test_failed_exports_drop_count_and_log_once_per_outage(
    heron_server: Any, caplog: pytest.LogCaptureFixture, remove_gates: None
) -> None:
    exporter = otlp(heron_server.url, headers={"x-heron-key": heron_server.key})
    heron_server.stop()
    for _ in range(3):
        assert exporter.export(make_spans(2)) is SpanExportResult.FAILURE
    assert exporter.stats == ExportStats(received=6, exported=0, dropped=6, failed_exports=3)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.name for r in warnings] == [GATED_LOGGERS[0], "heron.agent"]  # the reason, then ours
    assert "could not export 2 spans" in warnings[1].getMessage()

    heron_server.start()  # the outage ends: the next failure is news again
    caplog.clear()
    assert exporter.export(make_spans(1)) is SpanExportResult.SUCCESS
    assert "works again" in caplog.text
    heron_server.stop()
    caplog.clear()
    assert exporter.export(make_spans(1)) is SpanExportResult.FAILURE
    assert "could not export 1 spans" in caplog.text
    assert exporter.stats == ExportStats(received=8, exported=1, dropped=7, failed_exports=4)


def test_a_raising_exporter_is_contained(caplog: pytest.LogCaptureFixture) -> None:
    closed = io.StringIO()
    closed.close()
    exporter = CountingSpanExporter(lambda: ConsoleSpanExporter(out=closed), destination="console")
    assert exporter.export(make_spans(2)) is SpanExportResult.FAILURE
    assert exporter.stats.dropped == 2
    assert "I/O operation on closed file" in caplog.text


def test_after_shutdown_exports_are_dropped_and_counted(remove_gates: None) -> None:
    exporter = otlp(f"http://127.0.0.1:{closed_port()}")
    exporter.shutdown()
    exporter.shutdown()  # idempotent
    assert exporter.export(make_spans(4)) is SpanExportResult.FAILURE
    assert exporter.stats.dropped == 4


def test_spans_dropped_elsewhere_can_be_counted() -> None:
    exporter = CountingSpanExporter(InMemorySpanExporter)
    exporter.count_dropped(5)
    exporter.count_dropped(0)
    assert exporter.stats == ExportStats(dropped=5)
