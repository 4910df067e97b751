"""Bad input over a real socket: the right 4xx with a message, nothing accepted is lost."""

from __future__ import annotations

import gzip
import json
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
