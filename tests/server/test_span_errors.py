"""Exception span events from any OTLP SDK become error events (source ``otlp.span``).

The in-process ingest test runs on every backend (``tests/server/backends.py``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from opentelemetry.sdk.resources import Resource as SdkResource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from heron.server.ingest.otlp import decode_json, decode_protobuf, decode_protobuf_batch
from heron.server.ingest.span_errors import events_from_spans, parse_python_traceback
from heron.server.store.traces import SpanFilter
from tests.conftest import HeronProcess

from .backends import BACKENDS
from .ingest_client import EVERYTHING, KEY, NOW_NS, PROJECT, Heron, running_heron

CHAINED = """Traceback (most recent call last):
  File "/app/db.py", line 10, in fetch
    row = cur.fetchone()
KeyError: 'id'

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "/app/views.py", line 5, in show
    return fetch()
  File "<frozen importlib._bootstrap>", line 1, in _call
app.errors.NotFound: order 17 not found
"""
TRACE = bytes(range(1, 17))


def kv(key: str, value: str | int) -> KeyValue:
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def exc_event(exc_type: str, message: str, stack: str = CHAINED) -> Span.Event:
    return Span.Event(
        time_unix_nano=NOW_NS - 100,
        name="exception",
        attributes=[
            kv("exception.type", exc_type),
            kv("exception.message", message),
            kv("exception.stacktrace", stack),
            KeyValue(key="exception.escaped", value=AnyValue(bool_value=True)),
        ],
    )


def trace_request(
    with_exception: bool = True, distro: str | None = None, trace: bytes = TRACE
) -> bytes:
    root = Span(
        trace_id=trace,
        span_id=b"\x00" * 7 + b"\x01",
        name="GET /orders/{id}",
        kind=2,
        start_time_unix_nano=NOW_NS - 1000,
        end_time_unix_nano=NOW_NS,
        attributes=[kv("http.request.method", "GET"), kv("http.route", "/orders/{id}")],
    )
    child = Span(
        trace_id=trace,
        span_id=b"\x00" * 7 + b"\x02",
        parent_span_id=b"\x00" * 7 + b"\x01",
        name="load order",
        kind=1,
        start_time_unix_nano=NOW_NS - 900,
        end_time_unix_nano=NOW_NS - 100,
        events=[exc_event("app.errors.NotFound", "order 17 not found")] if with_exception else [],
    )
    resource = Resource(
        attributes=[
            kv("service.name", "orders"),
            kv("service.version", "4.2"),
            kv("telemetry.sdk.language", "python"),
            *([kv("telemetry.distro.name", distro)] if distro else []),
        ]
    )
    req = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(resource=resource, scope_spans=[ScopeSpans(spans=[root, child])])
        ]
    )
    return req.SerializeToString()


def test_python_traceback_chain() -> None:
    chain = parse_python_traceback(CHAINED)
    assert chain is not None
    assert [(e["type"], e["value"]) for e in chain] == [
        ("KeyError", "'id'"),
        ("app.errors.NotFound", "order 17 not found"),
    ]
    frames = chain[1]["frames"]
    assert [(f["function"], f["lineno"], f["in_app"], f.get("context_line")) for f in frames] == [
        ("show", 5, True, "return fetch()"),
        ("_call", 1, False, None),
    ]
    assert frames[0]["module"] == "views" and frames[0]["abs_path"] == "/app/views.py"
    assert (
        parse_python_traceback("java.lang.NullPointerException\n\tat com.x.Y.z(Y.java:1)") is None
    )


@pytest.mark.parametrize("decode", [decode_protobuf_batch, decode_protobuf])
def test_events_from_decoded_spans(decode) -> None:  # type: ignore[no-untyped-def]
    spans = decode(trace_request()).spans
    (ev,) = events_from_spans(spans, NOW_NS)
    assert ev.source == "otlp.span" and ev.exc_type == "app.errors.NotFound"
    assert ev.message == "order 17 not found" and ev.handled is False
    assert ev.transaction == "GET /orders/{id}"  # the service's entry span, same batch
    assert ev.trace_id == TRACE and ev.span_id == 2 and ev.time_ns == NOW_NS - 100
    assert (ev.service, ev.release, ev.platform) == ("orders", "4.2", "python")
    assert len(ev.exceptions) == 2 and ev.exceptions[-1]["frames"][0]["function"] == "show"
    assert events_from_spans(decode(trace_request(False)).spans, NOW_NS) == []


@pytest.mark.parametrize("decode", [decode_protobuf_batch, decode_protobuf])
def test_spans_from_herons_agent_are_not_events_twice(decode) -> None:  # type: ignore[no-untyped-def]
    """Heron's agent reports its errors itself (richer, as OTLP log events): the exception
    event on its spans must not make a second event. Another distro's spans still do."""
    assert events_from_spans(decode(trace_request(distro="heron")).spans, NOW_NS) == []
    assert len(events_from_spans(decode(trace_request(distro="other")).spans, NOW_NS)) == 1


def test_events_from_json_spans_and_non_python_stacks() -> None:
    doc = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "go-api"}}]
                },
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": TRACE.hex(),
                                "spanId": "00000000000000aa",
                                "name": "handler",
                                "kind": 2,
                                "startTimeUnixNano": str(NOW_NS - 10),
                                "endTimeUnixNano": str(NOW_NS),
                                "events": [
                                    {
                                        "name": "exception",
                                        "timeUnixNano": str(NOW_NS - 5),
                                        "attributes": [
                                            {
                                                "key": "exception.type",
                                                "value": {"stringValue": "*errors.errorString"},
                                            },
                                            {
                                                "key": "exception.message",
                                                "value": {"stringValue": "EOF"},
                                            },
                                            {
                                                "key": "exception.stacktrace",
                                                "value": {
                                                    "stringValue": "goroutine 1 [running]:\nmain.main()"
                                                },
                                            },
                                        ],
                                    }
                                ],
                            }
                        ]
                    }
                ],
            }
        ]
    }
    (ev,) = events_from_spans(decode_json(json.dumps(doc).encode()).spans, NOW_NS)
    assert ev.exc_type == "*errors.errorString" and ev.transaction == "handler"
    assert ev.exceptions == [{"type": "*errors.errorString", "value": "EOF", "frames": []}]
    assert ev.extra["exception.stacktrace"].startswith("goroutine 1")


@pytest.fixture(params=BACKENDS)
def heron(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, chdb_dir: Path
) -> Iterator[Heron]:
    with running_heron(tmp_path_factory.mktemp("span-errors"), request.param, chdb_dir) as h:
        yield h


def test_trace_ingest_stores_span_exception_events(heron: Heron) -> None:
    headers = {"content-type": "application/x-protobuf", "x-heron-key": KEY}
    # The same trace sent twice (a client's retry) is one error; another trace another.
    for trace in (TRACE, TRACE, bytes(range(17, 33))):
        body = trace_request(trace=trace)
        assert heron.post("/v1/traces", body, headers=headers).status_code == 200
    assert heron.post("/v1/traces", trace_request(False), headers=headers).status_code == 200
    rows = heron.events()
    assert len(rows) == 2 and rows[0]["issue_id"] == rows[1]["issue_id"]
    assert {r["trace_id"] for r in rows} == {TRACE, bytes(range(17, 33))}
    assert rows[0]["source"] == "otlp.span" and rows[0]["transaction"] == "GET /orders/{id}"
    assert rows[0]["culprit"] == "views in show"
    issue = heron.issue_rows()[0]
    assert issue["event_count"] == 2 and issue["title"] == "app.errors.NotFound: order 17 not found"
    spans = heron.store.traces.matching_spans(PROJECT, *EVERYTHING, SpanFilter(), 1000)
    assert len(spans) == 8


def test_real_otel_sdk_record_exception(heron_server: HeronProcess) -> None:
    # DuckDB only: ``heron serve`` cannot be configured for ClickHouse yet (issue 10).
    provider = TracerProvider(resource=SdkResource.create({"service.name": "otel-app"}))
    exporter = OTLPSpanExporter(
        endpoint=f"{heron_server.url}/v1/traces", headers={"x-heron-key": heron_server.key}
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("tests.span_errors")
    with tracer.start_as_current_span("GET /pay", kind=2):  # noqa: SIM117 - two spans
        with tracer.start_as_current_span("charge"):
            try:
                raise RuntimeError("gateway said no to card 17")
            except RuntimeError as e:
                from opentelemetry import trace

                trace.get_current_span().record_exception(e)
    provider.shutdown()
    heron_server.stop()
    con = duckdb.connect(str(heron_server.data_dir / "heron.duckdb"), read_only=True)
    try:
        rows = con.execute(
            "SELECT exc_type, message, service, exceptions, trace_id FROM error_events"
        ).fetchall()
    finally:
        con.close()
    assert len(rows) == 1
    exc_type, message, service, exceptions, trace_id = rows[0]
    assert (exc_type, message, service) == (
        "RuntimeError",
        "gateway said no to card 17",
        "otel-app",
    )
    frames = json.loads(exceptions)[-1]["frames"]
    assert frames[-1]["function"] == "test_real_otel_sdk_record_exception"
    assert trace_id is not None and len(trace_id) == 16
