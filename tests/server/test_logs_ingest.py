"""``POST /v1/logs``: OTLP logs in protobuf and JSON, contract rule 3 (which records become
error events), and the real OpenTelemetry SDK's log exporter against ``heron serve``.

The in-process tests run on every backend (``tests/server/backends.py``) and read what
was stored through the store's public readers."""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest
from google.rpc import status_pb2
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource as SdkResource

from tests.conftest import HeronProcess

from .backends import BACKENDS
from .ingest_client import KEY, NOW_NS, Heron, running_heron

PB = {"content-type": "application/x-protobuf", "x-heron-key": KEY}
JS = {"content-type": "application/json", "x-heron-key": KEY}
TRACE = bytes(range(1, 17))
SPAN = bytes(range(1, 9))
TRACEBACK = """Traceback (most recent call last):
  File "/srv/shop/orders.py", line 41, in create_order
    total = price_of(items)
  File "/srv/shop/pricing.py", line 12, in price_of
    return sum(i.price for i in items) / len(items)
  File "/usr/lib/python3.11/site-packages/lib/x.py", line 3, in helper
    pass
ZeroDivisionError: division by zero
"""


@pytest.fixture(scope="module", params=BACKENDS)
def heron(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, chdb_dir: Path
) -> Iterator[Heron]:
    with running_heron(tmp_path_factory.mktemp("logs"), request.param, chdb_dir) as h:
        yield h


def kv(key: str, value: Any) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def request(*records: LogRecord, scope: str = "shop.orders") -> bytes:
    resource = Resource(
        attributes=[
            kv("service.name", "shop"),
            kv("deployment.environment.name", "prod"),
            kv("service.version", "3.1"),
            kv("telemetry.sdk.language", "python"),
        ]
    )
    req = ExportLogsServiceRequest(
        resource_logs=[
            ResourceLogs(
                resource=resource,
                scope_logs=[ScopeLogs(scope={"name": scope}, log_records=list(records))],
            )
        ]
    )
    return req.SerializeToString()


def record(body: str, severity: int = 9, attrs: dict[str, Any] | None = None) -> LogRecord:
    return LogRecord(
        time_unix_nano=NOW_NS - 5,
        observed_time_unix_nano=NOW_NS,
        severity_number=severity,  # type: ignore[arg-type]
        severity_text={9: "INFO", 17: "ERROR", 13: "WARN"}.get(severity, ""),
        body=AnyValue(string_value=body),
        trace_id=TRACE,
        span_id=SPAN,
        attributes=[kv(k, v) for k, v in (attrs or {}).items()],
    )


def logs_with(heron: Heron, body: str) -> dict[str, Any]:
    rows = heron.logs(body)
    assert len(rows) == 1, rows
    return rows[0]


def event(heron: Heron, event_id: str) -> dict[str, Any]:
    row = heron.event(event_id)
    assert row is not None, event_id
    return row


def test_plain_info_record_is_stored_and_is_no_event(heron: Heron) -> None:
    r = heron.post(
        "/v1/logs",
        request(record("user 7 signed in", attrs={"code.function.name": "login"})),
        headers=PB,
    )
    assert r.status_code == 200, r.content
    ExportLogsServiceResponse().ParseFromString(r.content)
    row = logs_with(heron, "user 7 signed in")
    assert bytes(row["trace_id"]) == TRACE and row["span_id"] == int.from_bytes(SPAN, "big")
    assert (row["service"], row["environment"], row["release"]) == ("shop", "prod", "3.1")
    assert row["logger"] == "shop.orders" and row["severity_number"] == 9
    assert row["time_ns"] == NOW_NS - 5 and row["event_id"] is None
    assert json.loads(row["attributes"]) == {"code.function.name": "login"}


def test_exception_attributes_become_an_event_with_frames(heron: Heron) -> None:
    rec = record(
        "order failed",
        17,
        {
            "exception.type": "ZeroDivisionError",
            "exception.message": "division by zero",
            "exception.stacktrace": TRACEBACK,
        },
    )
    assert heron.post("/v1/logs", request(rec), headers=PB).status_code == 200
    row = logs_with(heron, "order failed")
    ev = event(heron, row["event_id"])
    assert ev["source"] == "otlp.log" and ev["exc_type"] == "ZeroDivisionError"
    assert ev["message"] == "division by zero" and ev["level"] == "error"
    assert bytes(ev["trace_id"]) == TRACE and ev["logger"] == "shop.orders"
    assert ev["platform"] == "python" and ev["culprit"] == "pricing in price_of"
    frames = json.loads(ev["exceptions"])[-1]["frames"]
    assert [(f["function"], f["lineno"], f["in_app"]) for f in frames] == [
        ("create_order", 41, True),
        ("price_of", 12, True),
        ("helper", 3, False),
    ]
    assert frames[1]["context_line"] == "return sum(i.price for i in items) / len(items)"


def test_error_severity_without_exception_is_an_event_from_the_body(heron: Heron) -> None:
    heron.post("/v1/logs", request(record("payment gateway timed out after 30s", 17)), headers=PB)
    ev = event(heron, logs_with(heron, "payment gateway timed out after 30s")["event_id"])
    assert ev["exc_type"] is None and ev["message"] == "payment gateway timed out after 30s"


def test_heron_event_attribute_is_the_event(heron: Heron) -> None:
    doc = {
        "event_id": "ab" * 16,
        "timestamp": 1_700_000_000.25,
        "level": "error",
        "platform": "python",
        "transaction": "GET /orders",
        "exception": {
            "values": [
                {
                    "type": "KeyError",
                    "value": "'sku'",
                    "stacktrace": {
                        "frames": [
                            {
                                "filename": "orders.py",
                                "module": "shop.orders",
                                "function": "get",
                                "lineno": 9,
                                "in_app": True,
                            }
                        ]
                    },
                }
            ]
        },
        "request": {"method": "GET", "url": "http://shop/orders?token=leaked", "headers": {}},
        "sdk": {"name": "heron", "version": "0.1.0"},
    }
    attrs = {"heron.event": orjson.dumps(doc).decode(), "exception.type": "KeyError"}
    rec = record("KeyError 'sku'", 17, attrs)
    assert heron.post("/v1/logs", request(rec), headers=PB).status_code == 200
    row = logs_with(heron, "KeyError 'sku'")
    assert row["event_id"] == "ab" * 16 and "heron.event" not in row["attributes"]
    ev = event(heron, "ab" * 16)
    assert ev["service"] == "shop" and ev["release"] == "3.1" and ev["environment"] == "prod"
    assert ev["transaction"] == "GET /orders" and ev["sdk"] == "heron/0.1.0"
    assert bytes(ev["trace_id"]) == TRACE  # from the record, the event had none
    assert "leaked" not in ev["request"]
    assert (
        len([e for e in heron.events() if (e["source"], e["exc_type"]) == ("otlp.log", "KeyError")])
        == 1
    )


def test_event_ref_only_links(heron: Heron) -> None:
    before = len(heron.events())
    attrs = {"heron.event_ref": "cd" * 16, "exception.type": "ValueError"}
    rec = record("handled elsewhere", 17, attrs)
    assert heron.post("/v1/logs", request(rec), headers=PB).status_code == 200
    assert logs_with(heron, "handled elsewhere")["event_id"] == "cd" * 16
    assert len(heron.events()) == before


def test_event_dropped_by_the_app_is_a_log_line_only(heron: Heron) -> None:
    """The agent's before_send/ignore_exceptions said no: no event, whatever the severity."""
    before = len(heron.events())
    attrs = {"heron.event_dropped": True, "exception.type": "ValueError"}
    rec = record("dropped by before_send", 17, attrs)
    assert heron.post("/v1/logs", request(rec), headers=PB).status_code == 200
    row = logs_with(heron, "dropped by before_send")
    assert row["event_id"] is None and row["severity_number"] == 17
    assert len(heron.events()) == before


def test_json_encoding_and_partial_success(heron: Heron) -> None:
    doc = {
        "resourceLogs": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "js"}}]
                },
                "scopeLogs": [
                    {
                        "scope": {"name": "web"},
                        "logRecords": [
                            {
                                "timeUnixNano": str(NOW_NS),
                                "severityNumber": 13,
                                "body": {"stringValue": "json log line"},
                                "traceId": TRACE.hex().upper(),
                                "spanId": SPAN.hex(),
                                "attributes": [{"key": "n", "value": {"intValue": "42"}}],
                            },
                            {"body": {"stringValue": "bad ids"}, "traceId": "abcd"},
                        ],
                    }
                ],
            }
        ]
    }
    r = heron.post("/v1/logs", json.dumps(doc).encode(), headers=JS)
    assert r.status_code == 200
    ps = r.json()["partialSuccess"]
    assert ps["rejectedLogRecords"] == "1" and "traceId" in ps["errorMessage"]
    row = logs_with(heron, "json log line")
    assert bytes(row["trace_id"]) == TRACE and json.loads(row["attributes"]) == {"n": 42}
    assert row["service"] == "js" and row["time_ns"] == NOW_NS


def test_gzip_auth_and_bad_input(heron: Heron) -> None:
    body = request(record("gzipped line"))
    r = heron.post("/v1/logs", gzip.compress(body), headers={**PB, "content-encoding": "gzip"})
    assert r.status_code == 200
    logs_with(heron, "gzipped line")
    r = heron.post("/v1/logs", body, headers={"content-type": "application/x-protobuf"})
    st = status_pb2.Status()
    st.ParseFromString(r.content)
    assert r.status_code == 401 and "missing ingest key" in st.message
    r = heron.post("/v1/logs", b"\x0a\xff\xff\xff\xff\x0f junk", headers=PB)
    st.ParseFromString(r.content)
    assert r.status_code == 400 and "ExportLogsServiceRequest" in st.message
    r = heron.post("/v1/logs", b'{"resourceLogs": [', headers=JS)
    assert r.status_code == 400 and "not valid JSON" in r.json()["message"]
    r = heron.post("/v1/logs", b"x", headers={**PB, "content-type": "text/plain"})
    assert r.status_code == 415


def test_real_sdk_logging_handler_against_heron_serve(heron_server: HeronProcess) -> None:
    """Python logging → OTel LoggingHandler → OTLPLogExporter (protobuf over HTTP).

    DuckDB only: ``heron serve`` cannot be configured for ClickHouse yet (issue 10), so
    the subprocess writes the DuckDB file this test opens."""
    provider = LoggerProvider(resource=SdkResource.create({"service.name": "otel-logs"}))
    exporter = OTLPLogExporter(
        endpoint=f"{heron_server.url}/v1/logs", headers={"x-heron-key": heron_server.key}
    )
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = logging.getLogger("tests.otel.logs")
    logger.propagate = False
    handler = LoggingHandler(logger_provider=provider)
    logger.addHandler(handler)
    try:
        logger.warning("disk at %d%%", 91)
        try:
            {}["missing"]
        except KeyError:
            logger.exception("lookup failed for order %s", 17)
    finally:
        logger.removeHandler(handler)
        provider.shutdown()
    heron_server.stop()
    con = duckdb.connect(str(heron_server.data_dir / "heron.duckdb"), read_only=True)
    try:
        logs = con.execute(
            "SELECT body, severity_number, logger, event_id FROM logs ORDER BY time_ns"
        ).fetchall()
        events = con.execute(
            "SELECT event_id, exc_type, exceptions, service FROM error_events"
        ).fetchall()
    finally:
        con.close()
    assert [(b, s, lg) for b, s, lg, _ in logs] == [
        ("disk at 91%", 13, "tests.otel.logs"),
        ("lookup failed for order 17", 17, "tests.otel.logs"),
    ]
    assert logs[0][3] is None and logs[1][3] == events[0][0]
    assert len(events) == 1 and events[0][1] == "KeyError" and events[0][3] == "otel-logs"
    frames = json.loads(events[0][2])[-1]["frames"]
    assert frames[-1]["function"] == "test_real_sdk_logging_handler_against_heron_serve"
    assert frames[-1]["context_line"] == '{}["missing"]'
