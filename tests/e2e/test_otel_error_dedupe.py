"""One error from an app using the plain OpenTelemetry SDK is one event, although the SDK
reports it twice (the span's exception event on ``/v1/traces`` and the ERROR log record on
``/v1/logs``), whichever request arrives first."""

from __future__ import annotations

import logging

import duckdb
import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from tests.conftest import HeronProcess


class PaymentDeclined(Exception):
    pass


def pay(tracer: trace.Tracer, logger: logging.Logger, order: int) -> None:
    """A request whose error propagates through two spans and is logged on the way."""
    with tracer.start_as_current_span("POST /pay", kind=trace.SpanKind.SERVER):
        try:
            with tracer.start_as_current_span("charge card"):
                raise PaymentDeclined(f"card declined for order {order}")
        except PaymentDeclined:
            logger.exception("payment failed")
            raise


@pytest.mark.parametrize("first", ["traces", "logs"])
def test_one_error_reported_by_span_and_log_is_one_event(
    heron_server: HeronProcess, first: str
) -> None:
    h = heron_server
    resource = Resource.create({"service.name": "payments"})
    tracer_provider = TracerProvider(resource=resource)
    headers = {"x-heron-key": h.key}
    tracer_provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{h.url}/v1/traces", headers=headers))
    )
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(
        BatchLogRecordProcessor(OTLPLogExporter(endpoint=f"{h.url}/v1/logs", headers=headers))
    )
    logger = logging.getLogger(f"tests.dedupe.{first}")
    logger.propagate = False
    handler = LoggingHandler(logger_provider=logger_provider)
    logger.addHandler(handler)
    tracer = tracer_provider.get_tracer("tests.dedupe")
    try:
        for order in (17, 18):  # two requests, two traces: two occurrences of the bug
            with pytest.raises(PaymentDeclined):
                pay(tracer, logger, order)
        providers = [tracer_provider, logger_provider]
        for provider in providers if first == "traces" else providers[::-1]:
            assert provider.force_flush(10_000)
    finally:
        logger.removeHandler(handler)
        tracer_provider.shutdown()
        logger_provider.shutdown()
    h.stop()
    con = duckdb.connect(str(h.data_dir / "heron.duckdb"), read_only=True)
    try:
        events = con.execute(
            "SELECT event_id, source, message, trace_id, exc_type FROM error_events"
        ).fetchall()
        logs = con.execute("SELECT event_id, trace_id FROM logs").fetchall()
        issues = con.execute("SELECT event_count FROM issues").fetchall()
        spans = con.execute("SELECT count(*) FROM spans").fetchone()
    finally:
        con.close()
    assert spans == (4,)
    # Without the dedupe: 6 events (each exception event on both spans, and the log).
    assert len(events) == 2 and {e[3] for e in events} == {t for _, t in logs}
    assert sorted(e[2] for e in events) == [
        "card declined for order 17",
        "card declined for order 18",
    ]
    assert {e[1] for e in events} == {"otlp.span" if first == "traces" else "otlp.log"}
    assert issues == [(2,)]
    # The same type, whichever report was kept: log records carry the bare class name,
    # their traceback the qualified one.
    assert {e[4] for e in events} == {f"{__name__}.PaymentDeclined"}
    # Each log record links to the one event of its trace.
    assert {(eid, tid) for eid, tid in logs} == {(e[0], e[3]) for e in events}
