"""Bad input over a real socket: the right 4xx with a message, nothing accepted is lost."""

from __future__ import annotations

import gzip
import json
import os
import time
from pathlib import Path

import httpx
import pytest
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from tests.conftest import HeronProcess, make_heron
from tests.e2e.otlp_util import make_request, stored_trace_counts

PB = {"content-type": "application/x-protobuf"}
JS = {"content-type": "application/json"}
LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> HeronProcess:
    h = make_heron(tmp_path_factory.mktemp("bad-input"), HERON_MAX_BODY_BYTES=str(LIMIT)).start()
    yield h  # type: ignore[misc]
    h.stop()


def post(
    h: HeronProcess, body: bytes, headers: dict[str, str], key: str | None = "default"
) -> httpx.Response:
    hdrs = dict(headers)
    if key is not None:
        hdrs["x-heron-key"] = h.key if key == "default" else key
    return httpx.post(f"{h.url}/v1/traces", content=body, headers=hdrs, timeout=30)


def pb_status(r: httpx.Response) -> str:
    assert r.headers["content-type"].startswith("application/x-protobuf")
    st = status_pb2.Status()
    st.ParseFromString(r.content)
    return st.message


def test_good_protobuf_then_bad_inputs_lose_nothing(server: HeronProcess, tmp_path: Path) -> None:
    accepted: list[bytes] = []
    body, tid = make_request(4)
    r = post(server, body, PB)
    assert r.status_code == 200, r.content
    ExportTraceServiceResponse().ParseFromString(r.content)
    accepted.append(tid)

    r = post(server, b"\x0a\xff\xff\xff\xff\x0f garbage", PB)
    assert r.status_code == 400 and "protobuf" in pb_status(r)

    r = post(server, b'{"resourceSpans": [', JS)
    assert r.status_code == 400
    assert "not valid JSON" in r.json()["message"]

    r = post(server, b"hello", {"content-type": "text/plain"})
    assert r.status_code == 415 and "Content-Type" in pb_status(r)

    r = post(server, b"x" * (LIMIT + 1), PB)
    assert r.status_code == 413 and "limit" in pb_status(r)

    bomb = gzip.compress(b"\0" * (50 * LIMIT))
    assert len(bomb) < LIMIT
    r = post(server, bomb, {**PB, "content-encoding": "gzip"})
    assert r.status_code == 413 and "decompressed" in pb_status(r)

    r = post(server, b"not gzip at all", {**PB, "content-encoding": "gzip"})
    assert r.status_code == 400 and "gzip" in pb_status(r)

    r = post(server, body, {**PB, "content-encoding": "zstd"})
    assert r.status_code == 415 and "Content-Encoding" in pb_status(r)

    r = post(server, body, PB, key=None)
    assert r.status_code == 401 and "missing ingest key" in pb_status(r)
    r = post(server, body, PB, key="hk_wrong")
    assert r.status_code == 401 and "unknown" in pb_status(r)
    r = post(server, body, {**PB, "authorization": f"Bearer {server.key}"}, key=None)
    assert r.status_code == 200  # Bearer works too
    accepted.append(tid)

    # invalid UTF-8 in a protobuf string field (span name): field 1 of Span is trace_id...
    bad_utf8 = _request_with_raw_span_name(b"\xff\xfe")
    r = post(server, bad_utf8, PB)
    assert r.status_code == 400, r.content
    r = post(server, b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": "\xff"}]}]}]}', JS)
    assert r.status_code == 400 and "UTF-8" in r.json()["message"]

    # wrong-length ids: 200 with partialSuccess naming the problem
    good = {
        "traceId": "ab" * 16,
        "spanId": "cd" * 8,
        "name": "ok",
        "kind": 2,
        "startTimeUnixNano": "1700000000000000000",
        "endTimeUnixNano": "1700000000001000000",
    }
    bad = {**good, "traceId": "ab" * 8}
    doc = {"resourceSpans": [{"scopeSpans": [{"spans": [good, bad]}]}]}
    r = post(server, json.dumps(doc).encode(), JS)
    assert r.status_code == 200
    ps = r.json()["partialSuccess"]
    assert ps["rejectedSpans"] == "1" and "traceId" in ps["errorMessage"]
    accepted.append(bytes.fromhex("ab" * 16))

    # gzip of a valid body still works, and the server is still serving
    body2, tid2 = make_request(2)
    r = post(server, gzip.compress(body2), {**PB, "content-encoding": "gzip"})
    assert r.status_code == 200
    accepted.append(tid2)
    assert httpx.get(f"{server.url}/healthz").status_code == 200

    server.stop()
    counts = stored_trace_counts(server.data_dir)
    assert counts[tid] == 8  # sent twice, both accepted
    assert counts[bytes.fromhex("ab" * 16)] == 1
    assert counts[tid2] == 2
    server.start()


def _request_with_raw_span_name(name: bytes) -> bytes:
    """Hand-encode a request whose span name holds invalid UTF-8 bytes."""

    def field(num: int, payload: bytes) -> bytes:
        return bytes([(num << 3) | 2]) + _varint(len(payload)) + payload

    span = field(1, b"\x01" * 16) + field(2, b"\x02" * 8) + field(5, name)
    scope_spans = field(2, span)
    resource_spans = field(2, scope_spans)
    return field(1, resource_spans)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def test_json_response_for_success(server: HeronProcess) -> None:
    good = {
        "traceId": "ef" * 16,
        "spanId": "12" * 8,
        "name": "x",
        "kind": 1,
        "startTimeUnixNano": 1700000000000000000,
        "endTimeUnixNano": 1700000000000000001,
    }
    r = post(
        server, json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [good]}]}]}).encode(), JS
    )
    assert r.status_code == 200 and r.json() == {}
    r = post(server, b"", PB)
    assert r.status_code == 200  # empty request is success


def test_queue_full_answers_503_with_retry_after(tmp_path: Path) -> None:
    h = make_heron(tmp_path, HERON_QUEUE_MAX_SPANS="1").start()
    try:
        import concurrent.futures as cf

        body, _ = make_request(400)
        with cf.ThreadPoolExecutor(16) as pool:
            codes = list(pool.map(lambda _: post(h, body, PB), range(64)))
        statuses = {r.status_code for r in codes}
        assert statuses <= {200, 503}
        assert 503 in statuses, "a tiny queue under concurrent load must push back"
        full = next(r for r in codes if r.status_code == 503)
        assert full.headers["retry-after"] == "1" and "queue full" in pb_status(full)
        assert httpx.get(f"{h.url}/healthz").status_code == 200
    finally:
        h.stop()


# ------------------------------------------- out-of-range values: never a 5xx (issue 9)

NOW_NS = 1_700_000_000_000_000_000


def _span(trace: str, **fields: object) -> dict[str, object]:
    return {
        "traceId": trace,
        "spanId": "cd" * 8,
        "name": "ok",
        "kind": 2,
        "startTimeUnixNano": str(NOW_NS),
        "endTimeUnixNano": str(NOW_NS + 1000),
        **fields,
    }


def _traces(*spans: object, resource: object = None) -> bytes:
    rs: dict[str, object] = {"scopeSpans": [{"spans": list(spans)}]}
    if resource is not None:
        rs["resource"] = resource
    return json.dumps({"resourceSpans": [rs]}).encode()


def _logs(*records: object) -> bytes:
    return json.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": list(records)}]}]}).encode()


def _log(trace: str, **fields: object) -> dict[str, object]:
    return {"traceId": trace, "timeUnixNano": str(NOW_NS), "body": {"stringValue": "ok"}, **fields}


def _post_path(h: HeronProcess, path: str, body: bytes) -> httpx.Response:
    headers = {**JS, "x-heron-key": h.key}
    return httpx.post(f"{h.url}{path}", content=body, headers=headers, timeout=30)


def _no_tracebacks(h: HeronProcess) -> None:
    assert "Traceback" not in h.log(), h.log()[-3000:]


@pytest.mark.parametrize("path", ["/v1/traces", "/v1/logs"])
def test_json_nested_too_deep_is_400_before_recursion(server: HeronProcess, path: str) -> None:
    top = "resourceSpans" if path == "/v1/traces" else "resourceLogs"
    r = _post_path(server, path, f'{{"{top}": {"[" * 5000}{"]" * 5000}}}'.encode())
    assert r.status_code == 400
    assert r.json()["message"] == "request body is nested deeper than 1024 levels"
    assert httpx.get(f"{server.url}/healthz").status_code == 200
    _no_tracebacks(server)


def _deep(n: int) -> object:
    v: object = {"stringValue": "leaf"}
    for _ in range(n):
        v = {"arrayValue": {"values": [v]}}
    return v


BAD_SPANS = [
    ({"startTimeUnixNano": str(2**63), "endTimeUnixNano": str(2**63 + 5)}, "endTimeUnixNano"),
    ({"endTimeUnixNano": str(2**64)}, "endTimeUnixNano 18446744073709551616 is out of range"),
    ({"startTimeUnixNano": "-5", "endTimeUnixNano": "-1"}, "startTimeUnixNano"),
    ({"events": [{"name": "e", "timeUnixNano": str(2**64 - 1)}]}, "events.timeUnixNano"),
    ({"events": [{"name": "e", "timeUnixNano": -1}]}, "events.timeUnixNano -1"),
    (
        {"attributes": [{"key": "n", "value": {"intValue": str(2**70)}}]},
        "attribute 'n': intValue 1180591620717411303424 is out of the int64 range",
    ),
    ({"attributes": [{"key": "n", "value": {"intValue": 2**63}}]}, "int64 range"),
    ({"attributes": [{"key": "d", "value": {"doubleValue": "many"}}]}, "not a number"),
    ({"attributes": [{"key": "b", "value": {"bytesValue": {"x": [1]}}}]}, "bytesValue must be"),
    ({"name": json.loads("[" * 900 + "]" * 900)}, "name must be a string"),
    ({"events": 5}, "'events' must be an array"),
    ({"status": "OK"}, "status must be an object"),
    ({"traceId": "ab" * 8}, "traceId"),
    ({"spanId": ""}, "spanId"),
]


@pytest.mark.parametrize(("fields", "message"), BAD_SPANS, ids=[m for _, m in BAD_SPANS])
def test_out_of_range_span_is_rejected_alone(
    server: HeronProcess, fields: dict[str, object], message: str
) -> None:
    trace = os.urandom(16).hex()
    good, bad = _span(trace), {**_span(trace), "spanId": "ef" * 8, **fields}
    r = _post_path(server, "/v1/traces", _traces(bad, good))
    assert r.status_code == 200, r.text
    ps = r.json()["partialSuccess"]
    assert ps["rejectedSpans"] == "1" and message in ps["errorMessage"]
    found = server.api(f"/api/v1/traces/{trace}").json()["spans"]
    assert [s["span_id"] for s in found] == ["cd" * 8]
    _no_tracebacks(server)


def test_invalid_resource_rejects_its_spans_only(server: HeronProcess) -> None:
    trace = os.urandom(16).hex()
    bad_res = {"attributes": [{"key": "n", "value": {"intValue": str(2**64)}}]}
    doc = json.loads(_traces(_span(trace, spanId="11" * 8), resource=bad_res))
    doc["resourceSpans"] += json.loads(_traces(_span(trace)))["resourceSpans"]
    r = _post_path(server, "/v1/traces", json.dumps(doc).encode())
    assert r.status_code == 200
    assert r.json()["partialSuccess"]["rejectedSpans"] == "1"
    assert "resource: attribute 'n'" in r.json()["partialSuccess"]["errorMessage"]
    spans = server.api(f"/api/v1/traces/{trace}").json()["spans"]
    assert [s["span_id"] for s in spans] == ["cd" * 8]


def test_lone_surrogates_become_replacement_characters(server: HeronProcess) -> None:
    trace = os.urandom(16).hex()
    attrs = [{"key": "k\ud800", "value": {"stringValue": "\udfffv"}}]
    span = _span(trace, name="GET \ud800/x", attributes=attrs)
    r = _post_path(server, "/v1/traces", _traces(span))
    assert r.status_code == 200 and r.json() == {}, r.text
    (stored,) = server.api(f"/api/v1/traces/{trace}").json()["spans"]
    assert stored["name"] == "GET \ufffd/x"
    assert stored["attributes"] == {"k\ufffd": "\ufffdv"}

    r = _post_path(server, "/v1/logs", _logs(_log(trace, body={"stringValue": "a\ud800b"})))
    assert r.status_code == 200 and r.json() == {}, r.text
    (line,) = server.api(f"/api/v1/traces/{trace}/logs").json()["logs"]
    assert line["body"] == "a\ufffdb"


def test_deep_values_are_trimmed_not_failed(server: HeronProcess) -> None:
    trace = os.urandom(16).hex()
    span = _span(trace, attributes=[{"key": "deep", "value": _deep(300)}])
    r = _post_path(server, "/v1/traces", _traces(span))
    assert r.status_code == 200 and r.json() == {}, r.text
    (stored,) = server.api(f"/api/v1/traces/{trace}").json()["spans"]
    assert _depth(stored["attributes"]["deep"]) <= 32  # span scrubbing caps it further

    r = _post_path(server, "/v1/logs", _logs(_log(trace, body=_deep(300))))
    assert r.status_code == 200 and r.json() == {}, r.text
    (line,) = server.api(f"/api/v1/traces/{trace}/logs").json()["logs"]
    assert _depth(json.loads(line["body"])) == 32 and "[…]" in line["body"]


def _depth(value: object) -> int:
    depth = 0
    while isinstance(value, list):
        value, depth = value[0], depth + 1
    return depth


BAD_LOGS = [
    ({"timeUnixNano": str(2**63)}, "timeUnixNano 9223372036854775808 is out of range"),
    ({"observedTimeUnixNano": str(2**64 + 1)}, "observedTimeUnixNano"),
    ({"timeUnixNano": "-1"}, "timeUnixNano -1"),
    ({"severityNumber": str(2**70)}, "severityNumber"),
    ({"severityText": {"a": 1}}, "severityText must be a string"),
    ({"attributes": [{"key": "n", "value": {"intValue": str(-(2**63) - 1)}}]}, "int64 range"),
]


@pytest.mark.parametrize(("fields", "message"), BAD_LOGS, ids=[m for _, m in BAD_LOGS])
def test_out_of_range_log_record_is_rejected_alone(
    server: HeronProcess, fields: dict[str, object], message: str
) -> None:
    trace = os.urandom(16).hex()
    good, bad = _log(trace), _log(trace, **fields)
    r = _post_path(server, "/v1/logs", _logs(good, bad))
    assert r.status_code == 200, r.text
    ps = r.json()["partialSuccess"]
    assert ps["rejectedLogRecords"] == "1" and message in ps["errorMessage"]
    (line,) = server.api(f"/api/v1/traces/{trace}/logs").json()["logs"]
    assert line["body"] == "ok" and line["time_ns"] == NOW_NS
    _no_tracebacks(server)


def _sentry(h: HeronProcess, path: str, body: bytes) -> httpx.Response:
    headers = {"x-sentry-auth": f"Sentry sentry_key={h.key}", **JS}
    return httpx.post(f"{h.url}/api/1/{path}/", content=body, headers=headers, timeout=30)


@pytest.mark.parametrize(
    "timestamp", [1e30, -1e30, "9999-12-31T00:00:00Z", "1e400", "0001-01-01T00:00:00+01:00", 0]
)
def test_sentry_invalid_timestamp_becomes_received_time(
    server: HeronProcess, timestamp: object
) -> None:
    before = time.time_ns()
    event = {"message": "m\ud800", "timestamp": timestamp, "breadcrumbs": [{"timestamp": 1e300}]}
    r = _sentry(server, "store", json.dumps(event).encode())
    assert r.status_code == 200, r.text
    stored = server.api(f"/api/v1/events/{r.json()['id']}").json()
    assert before <= stored["time_ns"] <= time.time_ns()
    assert stored["message"] == "m\ufffd"
    assert before / 1e9 <= stored["breadcrumbs"][0]["timestamp"] <= time.time()
    _no_tracebacks(server)


def test_sentry_envelope_items_with_extreme_values(server: HeronProcess) -> None:
    before = time.time_ns()
    deep: object = "leaf"
    for _ in range(200):
        deep = {"d": deep}
    event = {"timestamp": "9999999999999999999", "message": "env", "extra": {"deep": deep}}
    log = {"items": [{"timestamp": 1e30, "body": "sentry-log-extreme", "level": "info"}]}
    body = b"\n".join(
        [
            b"{}",
            b'{"type":"event"}',
            json.dumps(event).encode(),
            b'{"type":"log"}',
            json.dumps(log).encode(),
        ]
    )
    r = _sentry(server, "envelope", body)
    assert r.status_code == 200, r.text
    stored = server.api(f"/api/v1/events/{r.json()['id']}").json()
    assert before <= stored["time_ns"] <= time.time_ns()
    value, depth = stored["extra"]["deep"], 0
    while isinstance(value, dict):
        value, depth = value["d"], depth + 1
    assert value in ("[…]", "[Filtered]") and depth <= 32  # trimmed, then scrubbed
    logs = server.api("/api/v1/logs", text="sentry-log-extreme").json()["logs"]
    assert len(logs) == 1 and before <= logs[0]["time_ns"] <= time.time_ns()
    r = _sentry(server, "store", b'{"message":' + b"[" * 5000 + b"]" * 5000 + b"}")
    assert r.status_code == 400 and r.json()["error"] == "event is nested deeper than 1024 levels"
    _no_tracebacks(server)


def test_spans_lasting_centuries_are_stored(server: HeronProcess) -> None:
    """Valid, if absurd: their per-minute rollup sum exceeds int64 (saturated, not a 503)."""
    trace = os.urandom(16).hex()
    long = {"endTimeUnixNano": str(2**63 - 1)}
    spans = [_span(trace, spanId=f"{i:016x}", **long) for i in range(1, 4)]
    r = _post_path(server, "/v1/traces", _traces(*spans))
    assert r.status_code == 200 and r.json() == {}, r.text
    assert len(server.api(f"/api/v1/traces/{trace}").json()["spans"]) == 3
    _no_tracebacks(server)
