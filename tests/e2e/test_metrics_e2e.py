"""Metrics ingest over a real socket into a real ``heron serve``: the official OpenTelemetry
Python metrics exporter (counter, histogram, exponential histogram, up-down counter,
delta temporality, a counter reset by a restarted MeterProvider, exemplars), bad input,
and a 1M-series cardinality bomb with the server's memory watched. Values are read back
through the store's query layer after the server stopped."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from google.rpc import status_pb2
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2 as m
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from tests.conftest import HeronProcess, make_heron

PB = {"content-type": "application/x-protobuf"}
PROJECT = 1


def provider(h: HeronProcess, *, delta: bool = False, service: str = "shop") -> MeterProvider:
    temporality = (
        {Counter: AggregationTemporality.DELTA, Histogram: AggregationTemporality.DELTA}
        if delta
        else {}
    )
    exporter = OTLPMetricExporter(
        endpoint=f"{h.url}/v1/metrics",
        headers={"x-heron-key": h.key},
        preferred_temporality=temporality,  # type: ignore[arg-type]
    )
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    return MeterProvider(
        metric_readers=[reader],
        resource=Resource.create({"service.name": service, "service.instance.id": "i-1"}),
        views=[
            View(
                instrument_name="latency.exp", aggregation=ExponentialBucketHistogramAggregation()
            ),
        ],
    )


def query(h: HeronProcess, metric: str, agg: str, by: str = "") -> dict[str, Any]:
    """``GET /api/v1/metrics/query`` over the last hour (the JSON API the UI uses)."""
    r = h.api("/api/v1/metrics/query", metric=metric, agg=agg, **({"by": by} if by else {}))
    assert r.status_code == 200, r.text
    doc: dict[str, Any] = r.json()
    return doc


def total(doc: dict[str, Any]) -> float:
    return sum(v for s in doc["series"] for _, v in s["points"] if v is not None)


def latest(doc: dict[str, Any]) -> float | None:
    """The value of the newest non-empty point of any series."""
    points = [(t, v) for s in doc["series"] for t, v in s["points"] if v is not None]
    return max(points)[1] if points else None


def eventually(h: HeronProcess, metric: str, agg: str, want: float, by: str = "") -> dict[str, Any]:
    """The query's answer once its total is ``want`` (a backend may fold rows later)."""
    deadline = time.monotonic() + 30
    while True:
        doc = query(h, metric, agg, by)
        if total(doc) == want or time.monotonic() > deadline:
            return doc
        time.sleep(0.25)


@pytest.mark.parametrize("backend", ["duckdb", "clickhouse"])
def test_otel_sdk_counter_histogram_reset_delta_and_exemplars(tmp_path: Path, backend: str) -> None:
    env = (
        {
            "HERON_STORAGE_BACKEND": "clickhouse",
            "HERON_CLICKHOUSE_URL": f"chdb://{tmp_path / 'chdb'}",
            "HERON_CLICKHOUSE_DATABASE": "heron_metrics_e2e",
        }
        if backend == "clickhouse"
        else {}
    )
    h = make_heron(tmp_path, **env).start()
    try:
        tracer = TracerProvider().get_tracer("t")
        mp = provider(h)
        meter = mp.get_meter("shop")
        orders = meter.create_counter("orders.placed")
        latency = meter.create_histogram("checkout.duration", unit="ms")
        exp = meter.create_histogram("latency.exp", unit="ms")
        inflight = meter.create_up_down_counter("orders.inflight")
        with tracer.start_as_current_span("checkout") as span:
            trace_id = span.get_span_context().trace_id
            for _ in range(37):
                orders.add(1, {"region": "eu"})
            for v in (5, 15, 25, 150):
                latency.record(v)
        for v in (1.5, 3.0, 3.5, 100.0, 1000.0):
            exp.record(v)
        inflight.add(4)
        assert mp.force_flush()
        for _ in range(5):
            orders.add(1, {"region": "eu"})
        latency.record(1000)
        inflight.add(-1)
        assert mp.force_flush()
        assert mp.force_flush()  # nothing new: same totals, later time → increases of 0
        mp.shutdown()
        # the app restarts: a new provider, a new start time, the counter from zero
        mp2 = provider(h)
        mp2.get_meter("shop").create_counter("orders.placed").add(3, {"region": "eu"})
        assert mp2.force_flush()
        mp2.shutdown()
        # another app exports delta temporality
        mp3 = provider(h, delta=True, service="billing")
        c3 = mp3.get_meter("billing").create_counter("orders.placed")
        c3.add(7, {"region": "us"})
        assert mp3.force_flush()
        c3.add(2, {"region": "us"})
        assert mp3.force_flush()
        mp3.shutdown()
        check_sdk_values(h, trace_id)
    finally:
        h.stop()


def check_sdk_values(h: HeronProcess, trace_id: int) -> None:
    by_service = eventually(h, "orders.placed", "sum", 37 + 5 + 3 + 9, by="service")
    totals = {
        s["labels"]["service"]: sum(v or 0 for _, v in s["points"]) for s in by_service["series"]
    }
    assert totals == {"shop": 37 + 5 + 3, "billing": 9}
    assert by_service["kind"] == "counter"
    count = eventually(h, "checkout.duration", "count", 5)
    assert total(count) == 5
    assert total(eventually(h, "checkout.duration", "sum", 1195)) == 5 + 15 + 25 + 150 + 1000
    assert any(e["trace_id"] == f"{trace_id:032x}" for e in count["exemplars"]), count["exemplars"]
    assert total(eventually(h, "latency.exp", "count", 5)) == 5
    p50 = total(query(h, "latency.exp", "p50"))
    assert 2.0 <= p50 <= 4.0  # the 3rd of 1.5, 3, 3.5, 100, 1000: within its bucket
    # The newest point, not the sum over steps: the +4 and the -1 may be exported in two
    # different minutes (4 then 3), whose points would add up to 7.
    deadline = time.monotonic() + 30
    while latest(query(h, "orders.inflight", "last")) != 3 and time.monotonic() < deadline:
        time.sleep(0.25)
    assert latest(query(h, "orders.inflight", "last")) == 3


def post(h: HeronProcess, body: bytes, headers: dict[str, str] = PB) -> httpx.Response:
    return httpx.post(
        f"{h.url}/v1/metrics", content=body, headers={**headers, "x-heron-key": h.key}, timeout=60
    )


def kv(k: str, v: str) -> KeyValue:
    return KeyValue(key=k, value=AnyValue(string_value=v))


def gauge_request(
    name: str, values: list[float], attrs: list[dict[str, str]] | None = None
) -> ExportMetricsServiceRequest:
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    rm.resource.attributes.append(kv("service.name", "bad"))
    met = rm.scope_metrics.add().metrics.add(name=name)
    now = time.time_ns()
    for i, v in enumerate(values):
        dp = met.gauge.data_points.add(time_unix_nano=now, as_double=v)
        dp.attributes.extend(kv(k, x) for k, x in (attrs[i] if attrs else {"i": str(i)}).items())
    return req


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HeronProcess]:
    h = make_heron(
        tmp_path_factory.mktemp("metrics-bad"),
        HERON_MAX_BODY_BYTES=str(64 * 1024 * 1024),
        HERON_METRIC_MAX_SERIES="10000",
    ).start()
    yield h
    h.stop()


def test_bad_input_answers_4xx_or_partial_success_and_keeps_serving(server: HeronProcess) -> None:
    r = post(server, b"\x0a\xff\xff\xff\xff\x0f garbage")
    assert r.status_code == 400
    st = status_pb2.Status()
    st.ParseFromString(r.content)
    assert "ExportMetricsServiceRequest" in st.message
    r = post(server, b'{"resourceMetrics": [', {"content-type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["message"]
    r = post(server, b"x", {"content-type": "text/plain"})
    assert r.status_code == 415
    r = httpx.post(f"{server.url}/v1/metrics", content=b"", headers=PB)
    assert r.status_code == 401

    r = post(
        server,
        gauge_request("temp", [21.5, math.nan, math.inf, -math.inf, 3.0]).SerializeToString(),
    )
    assert r.status_code == 200
    resp = ExportMetricsServiceResponse()
    resp.ParseFromString(r.content)
    assert resp.partial_success.rejected_data_points == 3
    assert (
        "'temp'" in resp.partial_success.error_message
        and "NaN" in resp.partial_success.error_message
    )

    # a histogram whose buckets do not add up, and a negative bucket count (JSON only)
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    rm.resource.attributes.append(kv("service.name", "bad"))
    met = rm.scope_metrics.add().metrics.add(name="sizes")
    met.histogram.aggregation_temporality = m.AGGREGATION_TEMPORALITY_DELTA
    now = time.time_ns()
    met.histogram.data_points.add(
        time_unix_nano=now, count=9, sum=1.0, bucket_counts=[1, 1], explicit_bounds=[1.0]
    )
    met.histogram.data_points.add(
        time_unix_nano=now, count=2, sum=1.0, bucket_counts=[1, 1], explicit_bounds=[1.0]
    )
    r = post(server, req.SerializeToString())
    resp.ParseFromString(r.content)
    assert r.status_code == 200 and resp.partial_success.rejected_data_points == 1
    assert "add up to 2, not count 9" in resp.partial_success.error_message
    doc = {
        "resourceMetrics": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "bad"}}]
                },
                "scopeMetrics": [
                    {
                        "metrics": [
                            {
                                "name": "sizes",
                                "histogram": {
                                    "aggregationTemporality": 1,
                                    "dataPoints": [
                                        {
                                            "timeUnixNano": str(now),
                                            "count": "0",
                                            "bucketCounts": ["-1", "1"],
                                            "explicitBounds": [1.0],
                                        },
                                        {
                                            "timeUnixNano": str(now),
                                            "count": "1",
                                            "bucketCounts": ["0", "1"],
                                            "explicitBounds": [2.0],
                                        },
                                    ],
                                },
                            }
                        ]
                    }
                ],
            }
        ]
    }
    r = post(server, json.dumps(doc).encode(), {"content-type": "application/json"})
    assert r.status_code == 200
    body = r.json()
    assert body["partialSuccess"]["rejectedDataPoints"] == "1"
    assert "negative bucket count" in body["partialSuccess"]["errorMessage"]
    assert httpx.get(f"{server.url}/healthz").status_code == 200


def test_cardinality_bomb_is_refused_with_bounded_memory(server: HeronProcess) -> None:
    assert server.proc is not None
    proc = psutil.Process(server.proc.pid)
    warm = gauge_request("warmup", [1.0] * 1000).SerializeToString()
    assert post(server, warm).status_code == 200
    rss_before = proc.memory_info().rss
    n, per_request = 1_000_000, 50_000
    accepted = rejected = 0
    messages = set()
    for start in range(0, n, per_request):
        attrs = [{"user_id": str(i)} for i in range(start, start + per_request)]
        r = post(server, gauge_request("bomb", [1.0] * per_request, attrs).SerializeToString())
        assert r.status_code == 200, r.content[:200]
        resp = ExportMetricsServiceResponse()
        resp.ParseFromString(r.content)
        rejected += resp.partial_success.rejected_data_points
        accepted += per_request - resp.partial_success.rejected_data_points
        messages.add(resp.partial_success.error_message)
    assert accepted == 10_000 and rejected == n - 10_000
    assert any("metric 'bomb' has reached its limit of 10000 series" in s for s in messages)
    growth = proc.memory_info().rss - rss_before
    print(
        f"1M-series bomb: server RSS {rss_before / 2**20:.0f} → {(rss_before + growth) / 2**20:.0f} MiB"
    )
    assert growth < 200 * 2**20, f"server RSS grew {growth / 2**20:.0f} MiB"
    # the admitted series keep working
    r = post(server, gauge_request("bomb", [2.0], [{"user_id": "5"}]).SerializeToString())
    resp = ExportMetricsServiceResponse()
    resp.ParseFromString(r.content)
    assert r.status_code == 200 and resp.partial_success.rejected_data_points == 0
