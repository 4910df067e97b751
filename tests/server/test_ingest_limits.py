"""Values out of range, in process: the JSON parser's limits, the decoders' range checks
(both protobuf paths agree), and Sentry timestamps. The same over HTTP is in
tests/e2e/test_ingest_bad_input.py and tests/e2e/test_ingest_extremes.py."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import orjson
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan

from heron.server.ingest.limits import MAX_TIME_NS, TRIMMED, parse_json, trimmed
from heron.server.ingest.logs import decode_logs_protobuf
from heron.server.ingest.otlp import decode_protobuf, decode_protobuf_batch
from heron.server.ingest.sentry import timestamp_ns
from heron.server.jobs import analyze_recent
from heron.server.model.span import SpanBatch
from tests.server.ingest_client import KEY, NOW_NS, TOKEN, running_heron
from tests.server.test_otlp_decode import kv, pb_request, pb_span

NOW = 1_700_000_000 * 10**9
JSON = "application/json"
BEARER = {"authorization": f"Bearer {TOKEN}"}
DAY = {"from": "2023-11-14T00:00:00Z", "to": "2023-11-15T00:00:00Z"}


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (rb'"\ud800"', "\ufffd"),
        (rb'"\udc00x\ud83d"', "\ufffdx\ufffd"),
        (rb'"\ud83d\ude00\ud800"', "\U0001f600\ufffd"),  # a pair stays one character
        (rb'"a\\ud800"', "a\\ud800"),  # an escaped backslash, then text
        (rb'"a\\\ud800"', "a\\\ufffd"),  # an escaped backslash, then an escape
        (rb'{"\uDBFF": ["\uDFFF"]}', {"\ufffd": ["\ufffd"]}),
        (b'"a\\u0000b"', "a\x00b"),
        (b"18446744073709551615", 2**64 - 1),
        (b"18446744073709551616", float(2**64)),
    ],
)
def test_parse_json_replaces_lone_surrogates(raw: bytes, value: object) -> None:
    assert parse_json(raw) == value


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"[" * 1025 + b"]" * 1025, "nested deeper than 1024 levels"),
        (b'{"a": ' + b"[" * 5000, "nested deeper than 1024 levels"),
        (b'"\xed\xa0\x80"', "not valid JSON: str is not valid UTF-8"),  # encoded surrogate
        (b'["\\ud800", 1e400]', "not valid JSON: number is infinity"),
        (b"NaN", "not valid JSON"),
    ],
)
def test_parse_json_errors(raw: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_json(raw)


def test_json_at_the_depth_limit_parses() -> None:
    assert parse_json(b"[" * 1024 + b"]" * 1024) is not None


def test_trimmed_replaces_containers_beyond_the_depth() -> None:
    deep: object = "leaf"
    for _ in range(40):
        deep = {"d": [deep]}
    out = trimmed({"a": 1, "deep": deep}, depth=4)
    assert out == {"a": 1, "deep": {"d": [{"d": TRIMMED}]}}


def _both_paths(spans: list[PbSpan]) -> tuple[int, list[str], int]:
    body = pb_request(spans)
    ref, fast = decode_protobuf(body), decode_protobuf_batch(body)
    assert SpanBatch.from_spans(ref.spans).rows == fast.spans.rows
    assert (ref.rejected, ref.errors) == (fast.rejected, fast.errors)
    return len(ref.spans), ref.errors, ref.rejected


def test_protobuf_times_beyond_int64_reject_the_span_on_both_paths() -> None:
    late = pb_span(start_time_unix_nano=MAX_TIME_NS + 1, end_time_unix_nano=2**64 - 1)
    last = pb_span(start_time_unix_nano=MAX_TIME_NS, end_time_unix_nano=MAX_TIME_NS)
    event = pb_span()
    event.events.add(name="e", time_unix_nano=2**64 - 1)
    stored, errors, rejected = _both_paths([pb_span(), late, last, event])
    assert (stored, rejected) == (2, 2)
    assert "endTimeUnixNano 18446744073709551615 is out of range" in errors[0]
    assert "events.timeUnixNano" in errors[1]


def test_protobuf_values_nested_deeper_than_32_are_trimmed() -> None:
    deep: object = "leaf"
    for _ in range(40):
        deep = [deep]
    span = pb_span(attributes={"deep": deep})
    _both_paths([span])
    (s,) = decode_protobuf(pb_request([span])).spans
    value, depth = s.attributes["deep"], 0
    while isinstance(value, list):
        value, depth = value[0], depth + 1
    assert (depth, value) == (32, TRIMMED)


def test_protobuf_log_times_beyond_int64_reject_the_record() -> None:
    records = [
        LogRecord(time_unix_nano=NOW, body=kv("", "ok").value),
        LogRecord(time_unix_nano=2**63, body=kv("", "late").value),
        LogRecord(observed_time_unix_nano=2**64 - 1, body=kv("", "late").value),
    ]
    req = ExportLogsServiceRequest(
        resource_logs=[ResourceLogs(scope_logs=[ScopeLogs(log_records=records)])]
    )
    result = decode_logs_protobuf(req.SerializeToString(), NOW)
    assert [r.body for r in result.records] == ["ok"] and result.rejected == 2
    assert "observedTimeUnixNano" in result.errors[1]


@pytest.mark.parametrize(
    "value",
    [1e30, -1e30, -1, 0, float("inf"), float("nan"), "1e400", "nan", "9999-12-31T00:00:00Z"]
    + ["0001-01-01T00:00:00+01:00", "soon", None, True, [1], 2**64],
)
def test_sentry_timestamp_out_of_range_is_the_default(value: object) -> None:
    assert timestamp_ns(value, 42) == 42


@pytest.mark.parametrize(
    ("value", "ns"),
    [
        (1_700_000_000.5, 1_700_000_000_500_000_000),
        ("1700000000", NOW),
        ("2023-11-14T22:13:20Z", NOW),
        (9_223_372_036, 9_223_372_036 * 10**9),
    ],
)
def test_sentry_timestamp_in_range(value: object, ns: int) -> None:
    assert timestamp_ns(value, 42) == ns


def test_spans_lasting_centuries_do_not_break_analysis(tmp_path: Path) -> None:
    """Valid spans whose durations sum beyond int64: the per-minute rollups, the query
    statistics and the repeat (N+1) detection saturate instead of failing."""
    parent = {"traceId": "ab" * 16, "spanId": "01" * 8, "kind": 2}
    db = [("db.system.name", "postgresql"), ("db.query.text", "SELECT * FROM t WHERE id = 1")]
    http = [("http.request.method", "GET"), ("url.full", "http://x/api/1")]
    spans = [{**parent, "name": "GET /x", **_times(0)}]
    spans += [_child(i, "SELECT", db) for i in range(2, 8)]
    spans += [_child(i, "GET", http) for i in range(10, 16)]
    body = orjson.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]})
    with running_heron(tmp_path) as h:
        r = h.post("/v1/traces", body, headers={"x-heron-key": KEY, "content-type": JSON})
        assert r.status_code == 200 and r.json() == {}, r.text
        assert analyze_recent(h.store, NOW_NS + 10**9) == 2
        for path in ("/api/v1/services", "/api/v1/db/queries", "/api/v1/n-plus-one"):
            r = h.portal.call(partial(h.client.get, path, params=DAY, headers=BEARER))
            assert r.status_code == 200, r.text
        (finding, _) = r.json()["findings"]
        assert finding["occurrences"] == 1


def _times(offset: int) -> dict[str, str]:
    return {"startTimeUnixNano": str(NOW_NS + offset), "endTimeUnixNano": str(MAX_TIME_NS)}


def _child(i: int, name: str, attrs: list[tuple[str, str]]) -> dict[str, object]:
    return {
        "traceId": "ab" * 16,
        "spanId": f"{i:016x}",
        "parentSpanId": "01" * 8,
        "name": name,
        "kind": 3,
        **_times(i),
        "attributes": [{"key": k, "value": {"stringValue": v}} for k, v in attrs],
    }
