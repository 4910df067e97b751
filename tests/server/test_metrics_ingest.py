"""Metrics ingest in-process: OTLP decoding (protobuf and JSON alike), cumulative →
increases with reset detection, the cardinality guard, exponential → explicit buckets
and the remote-write decoder. Over a real socket: tests/e2e/test_metrics_e2e.py."""

from __future__ import annotations

import base64
import dataclasses
import json
import math

import cramjam
import pytest
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2 as m

from heron.server.errors import BadRequest
from heron.server.ingest.metrics import MetricLimits, SeriesGuard
from heron.server.ingest.otlp.common import DecodeError
from heron.server.ingest.otlp.metrics import (
    Expo,
    MetricsDecodeResult,
    decode_metrics_json,
    decode_metrics_protobuf,
    expo_to_explicit,
)
from heron.server.ingest.otlp.metrics_wire import decode_metrics_wire
from heron.server.ingest.remote_write import (
    MetricMetadata,
    WriteRequest,
    _Kinds,
    decode_write_request,
    snappy_block,
)

S = 1_000_000_000
T0 = 1_800_000_000 * S  # after the guard's start in these tests (started_ns below)
CUM = m.AGGREGATION_TEMPORALITY_CUMULATIVE
DELTA = m.AGGREGATION_TEMPORALITY_DELTA


def kv(k: str, v: object) -> KeyValue:
    if isinstance(v, bool):
        return KeyValue(key=k, value=AnyValue(bool_value=v))
    if isinstance(v, int):
        return KeyValue(key=k, value=AnyValue(int_value=v))
    return KeyValue(key=k, value=AnyValue(string_value=str(v)))


def request(*metrics: m.Metric, service: str = "shop") -> ExportMetricsServiceRequest:
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    rm.resource.attributes.extend(
        [
            kv("service.name", service),
            kv("host.name", "h1"),
            kv("process.pid", 42),
            kv("os.type", "linux"),
        ]
    )
    rm.scope_metrics.add().metrics.extend(metrics)
    return req


def counter(
    name: str,
    *points: tuple[int, int, float],
    temporality: int = CUM,
    monotonic: bool = True,
    attrs: dict[str, object] | None = None,
) -> m.Metric:
    met = m.Metric(name=name, unit="1")
    met.sum.aggregation_temporality = temporality
    met.sum.is_monotonic = monotonic
    for start, t, v in points:
        dp = met.sum.data_points.add(start_time_unix_nano=start, time_unix_nano=t, as_double=v)
        dp.attributes.extend(kv(k, x) for k, x in (attrs or {"route": "/a"}).items())
    return met


def otlp_json(doc: object) -> object:
    """Protobuf's JSON mapping made OTLP-JSON: trace and span ids in hex, not base64."""
    if isinstance(doc, list):
        return [otlp_json(x) for x in doc]
    if isinstance(doc, dict):
        return {
            k: base64.b64decode(v).hex() if k in ("traceId", "spanId") else otlp_json(v)
            for k, v in doc.items()
        }
    return doc


def rows(res: MetricsDecodeResult) -> list[dict[str, object]]:
    return [dataclasses.asdict(p) for p in res.points]


def both(req: ExportMetricsServiceRequest, now: int = T0) -> MetricsDecodeResult:
    """The wire, the upb and the OTLP-JSON decodings of one request (must agree)."""
    body = req.SerializeToString()
    wire = decode_metrics_wire(body, now)
    pb = decode_metrics_protobuf(body, now)
    doc = otlp_json(MessageToDict(req))
    js = decode_metrics_json(json.dumps(doc).encode(), now)
    assert rows(wire) == rows(pb) == rows(js)
    for other in (pb, js):
        assert (wire.rejected, wire.errors, wire.cumulative) == (
            other.rejected,
            other.errors,
            other.cumulative,
        )
        assert wire.expo == other.expo
    return wire


def guard(**limits: int) -> SeriesGuard:
    g = SeriesGuard(MetricLimits(**limits), None, clock=lambda: T0)
    g.started_ns = T0 - 3600 * S
    return g


def stored(g: SeriesGuard, req: ExportMetricsServiceRequest, project: int = 1):
    res = decode_metrics_wire(req.SerializeToString(), T0)
    write, _ = g.prepare(project, res)
    return write.points, res


def test_attributes_are_strings_with_identifying_resource_keys() -> None:
    req = request(counter("c", (T0, T0 + S, 1.0), attrs={"route": "/a", "ok": True, "n": 3}))
    res = both(req)
    (p,) = res.points
    assert p.attributes == {
        "host.name": "h1",
        "process.pid": "42",
        "route": "/a",
        "ok": "true",
        "n": "3",
    }
    assert p.service == "shop" and p.kind == "counter" and p.unit == "1"


def test_cumulative_counter_increases_reset_and_restart() -> None:
    g = guard()
    start1, start2 = T0, T0 + 100 * S
    pts, _ = stored(g, request(counter("orders", (start1, T0 + 10 * S, 37.0))))
    assert [p.value for p in pts] == [37.0]  # began after the guard: counted in full
    pts, _ = stored(g, request(counter("orders", (start1, T0 + 20 * S, 42.0))))
    assert [p.value for p in pts] == [5.0]
    pts, _ = stored(g, request(counter("orders", (start1, T0 + 20 * S, 42.0))))
    assert pts == []  # the same point again (a retry): not stored twice
    pts, _ = stored(g, request(counter("orders", (start1, T0 + 30 * S, 2.0))))
    assert [p.value for p in pts] == [2.0]  # value dropped: a reset
    pts, _ = stored(g, request(counter("orders", (start2, T0 + 110 * S, 3.0))))
    assert [p.value for p in pts] == [3.0]  # start time changed: a reset
    pts, _ = stored(g, request(counter("orders", (start2, T0 + 120 * S, 10.0))))
    assert [p.value for p in pts] == [7.0]


def test_first_point_of_a_series_older_than_the_server_is_a_baseline() -> None:
    g = guard()
    old_start = g.started_ns - S
    pts, _ = stored(g, request(counter("orders", (old_start, T0, 1000.0))))
    assert pts == []
    pts, _ = stored(g, request(counter("orders", (old_start, T0 + S, 1004.0))))
    assert [p.value for p in pts] == [4.0]
    assert g.stats()["points_not_stored"] == 1


def test_updown_and_delta_sums_are_taken_as_sent() -> None:
    g = guard()
    ud = counter("inflight", (T0, T0 + S, 5.0), monotonic=False)
    ud2 = counter("inflight", (T0, T0 + 2 * S, 2.0), monotonic=False)
    delta = counter("bytes", (T0, T0 + S, 7.0), temporality=DELTA)
    pts, _ = stored(g, request(ud, delta))
    assert [(p.name, p.kind, p.value) for p in pts] == [
        ("inflight", "updown", 5.0),
        ("bytes", "counter", 7.0),
    ]
    pts, _ = stored(g, request(ud2))
    assert [(p.kind, p.value) for p in pts] == [("updown", 2.0)]


def histogram(
    name: str,
    start: int,
    t: int,
    counts: list[int],
    bounds: list[float],
    total: float,
    temporality: int = CUM,
) -> m.Metric:
    met = m.Metric(name=name, unit="s")
    met.histogram.aggregation_temporality = temporality
    met.histogram.data_points.add(
        start_time_unix_nano=start,
        time_unix_nano=t,
        count=sum(counts),
        sum=total,
        bucket_counts=counts,
        explicit_bounds=bounds,
        min=0.1,
        max=9.0,
    )
    return met


def test_cumulative_histogram_per_bucket_increases() -> None:
    g = guard()
    b = [1.0, 5.0]
    pts, _ = stored(g, request(histogram("lat", T0, T0 + S, [1, 2, 0], b, 6.0)))
    assert (pts[0].count, pts[0].bucket_counts, pts[0].value) == (3, (1, 2, 0), 6.0)
    assert pts[0].min == 0.1
    pts, _ = stored(g, request(histogram("lat", T0, T0 + 2 * S, [1, 5, 1], b, 20.0)))
    assert (pts[0].count, pts[0].bucket_counts, pts[0].value) == (4, (0, 3, 1), 14.0)
    assert pts[0].min is None and pts[0].max is None  # cumulative min/max: not the interval's
    pts, _ = stored(g, request(histogram("lat", T0, T0 + 3 * S, [0, 1, 0], b, 2.0)))
    assert (pts[0].count, pts[0].bucket_counts) == (1, (0, 1, 0))  # went down: a reset


def test_exponential_histogram_to_explicit_bounds() -> None:
    e = Expo(
        scale=0, zero_count=1, zero_threshold=0.0, pos_offset=0, pos=(2, 3), neg_offset=0, neg=(4,)
    )
    bounds, counts = expo_to_explicit(e)
    # negative bucket 0 is [-2, -1): upper bound -1; zero bucket up to 0; then (1, 2], (2, 4]
    assert bounds == (-1.0, 0.0, 2.0, 4.0)
    assert counts == (4, 1, 2, 3, 0)
    assert sum(counts) == 10


def expo_metric(
    t: int, scale: int, offset: int, counts: list[int], temporality: int = CUM
) -> m.Metric:
    met = m.Metric(name="lat.exp", unit="ms")
    met.exponential_histogram.aggregation_temporality = temporality
    dp = met.exponential_histogram.data_points.add(
        start_time_unix_nano=T0,
        time_unix_nano=t,
        count=sum(counts),
        sum=float(sum(counts)),
        scale=scale,
    )
    dp.positive.offset = offset
    dp.positive.bucket_counts.extend(counts)
    return met


def test_cumulative_exponential_histogram_across_a_downscale() -> None:
    g = guard()
    pts, _ = stored(g, request(expo_metric(T0 + S, 1, 2, [1, 1])))  # indices 2, 3 at scale 1
    assert pts[0].count == 2
    # the SDK downscaled to 0: old indices 2,3 → 1; a new observation lands in index 1 too
    pts, _ = stored(g, request(expo_metric(T0 + 2 * S, 0, 1, [3])))
    (p,) = pts
    assert p.count == 1 and sum(p.bucket_counts) == 1
    assert p.bounds[p.bucket_counts.index(1)] == 4.0  # the (2, 4] bucket


@pytest.mark.parametrize(
    ("metric", "message"),
    [
        (counter("bad", (T0, T0 + S, math.nan)), "NaN"),
        (counter("bad", (T0, T0 + S, math.inf), temporality=DELTA), "inf"),
        (histogram("bad", T0, T0 + S, [1, 2, 0], [1.0, 5.0], 1.0), None),  # fine: control
        (histogram("bad", T0, T0 + S, [1, 2], [1.0, 5.0], 1.0), "must be one more than the bounds"),
        (histogram("bad", T0, T0 + S, [1, 2, 0], [5.0, 1.0], 1.0), "increasing"),
    ],
)
def test_invalid_points_are_rejected_with_the_metric_named(
    metric: m.Metric, message: str | None
) -> None:
    good = counter("good", (T0, T0 + S, 1.0), temporality=DELTA)
    res = both(request(good, metric))
    names = [p.name for p in res.points]
    if message is None:
        assert res.rejected == 0 and names == ["good", "bad"]
        return
    assert names == ["good"] and res.rejected == 1
    assert "'bad'" in res.errors[0] and message in res.errors[0]


def test_buckets_not_adding_up_and_negative_counts_in_json() -> None:
    met = histogram("h", T0, T0 + S, [1, 2, 0], [1.0, 5.0], 1.0)
    met.histogram.data_points[0].count = 7
    res = both(request(met))
    assert res.rejected == 1 and "add up to 3, not count 7" in res.errors[0]
    doc = MessageToDict(request(histogram("h", T0, T0 + S, [1, 2, 0], [1.0, 5.0], 1.0)))
    dp = doc["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]["histogram"]["dataPoints"][0]
    dp["bucketCounts"] = ["-1", "4", "0"]
    res = decode_metrics_json(json.dumps(doc).encode(), T0)
    assert res.rejected == 1 and "negative bucket count" in res.errors[0]


def test_no_recorded_value_flag_skips_silently_and_unspecified_temporality_rejects() -> None:
    met = counter("c", (T0, T0 + S, math.nan), temporality=DELTA)
    met.sum.data_points[0].flags = 1
    bad = counter("u", (T0, T0 + S, 1.0), temporality=0)
    res = both(request(met, bad))
    assert res.points == [] and res.rejected == 1 and "temporality" in res.errors[0]


def test_malformed_bodies_raise() -> None:
    with pytest.raises(DecodeError, match="protobuf"):
        decode_metrics_protobuf(b"\x0a\xff\xff\xff\xff\x0f junk", T0)
    with pytest.raises(DecodeError, match="JSON"):
        decode_metrics_json(b'{"resourceMetrics": [', T0)


def test_guard_caps_series_per_metric_names_and_kinds() -> None:
    g = guard(max_series=3, max_names=2, max_series_total=100)
    pts = [counter("c", (T0, T0 + S, 1.0), temporality=DELTA, attrs={"i": i}) for i in range(5)]
    got, res = stored(g, request(*pts))
    assert len(got) == 3 and res.rejected == 2
    assert "metric 'c' has reached its limit of 3 series" in res.errors[0]
    got, res = stored(g, request(counter("d", (T0, T0 + S, 1.0), temporality=DELTA)))
    assert len(got) == 1
    got, res = stored(g, request(counter("e", (T0, T0 + S, 1.0), temporality=DELTA)))
    assert got == [] and "2 metric names" in res.errors[0]
    gauge = m.Metric(name="d")
    dp = gauge.gauge.data_points.add(time_unix_nano=T0 + S, as_double=1.0)
    dp.attributes.append(kv("route", "/a"))
    got, res = stored(g, request(gauge))
    assert got == [] and "is a counter" in res.errors[0]
    st = g.stats()
    assert st["points_rejected_cardinality"] == 3 and st["series_active"] == 4
    # the existing series keep being accepted, and a second project has its own counts
    got, _ = stored(g, request(*pts[:3]))
    assert len(got) == 3
    got, _ = stored(g, request(*pts), project=2)
    assert len(got) == 3


def test_guard_forgets_series_unseen_for_an_hour_and_seeds_from_the_store() -> None:
    now = [T0]
    g = SeriesGuard(MetricLimits(max_series=2), None, clock=lambda: now[0])
    pts = [counter("c", (T0, T0 + S, 1.0), temporality=DELTA, attrs={"i": i}) for i in range(3)]
    got, _ = stored(g, request(*pts[:2]))
    assert len(got) == 2
    got, _ = stored(g, request(pts[2]))
    assert got == []
    now[0] += 3700 * S
    got, _ = stored(g, request(pts[2]))
    assert len(got) == 1  # the first two were forgotten

    class Reader:
        def known_series(self, project_id: int, since_s: int) -> list[tuple[str, int]]:
            return [("c", 1), ("c", 2)]

    class Store:
        metrics = Reader()

    seeded = SeriesGuard(MetricLimits(max_series=2), Store(), clock=lambda: T0)  # type: ignore[arg-type]
    got, res = stored(seeded, request(pts[0]))
    assert got == [] and "limit of 2 series" in res.errors[0]


def test_undo_restores_cumulative_state() -> None:
    g = guard()
    stored(g, request(counter("orders", (T0, T0 + S, 10.0))))
    res = decode_metrics_protobuf(
        request(counter("orders", (T0, T0 + 2 * S, 15.0))).SerializeToString(), T0
    )
    _, undo = g.prepare(1, res)
    g.undo(undo)  # the write was refused (queue full): the retry must count again
    pts, _ = stored(g, request(counter("orders", (T0, T0 + 2 * S, 15.0))))
    assert [p.value for p in pts] == [5.0]


# ----------------------------------------------------------------- remote write


def write_request(
    series: list[tuple[dict[str, str], list[tuple[float, int]]]], meta: list[tuple[str, int]] = ()
) -> bytes:  # type: ignore[assignment]
    req = WriteRequest()
    for labels, samples in series:
        ts = req.timeseries.add()
        for k, v in labels.items():
            ts.labels.add(name=k, value=v)
        for v, t in samples:
            ts.samples.add(value=v, timestamp=t)
    for name, typ in meta:
        req.metadata.append(MetricMetadata(type=typ, metric_family_name=name, help="h"))
    return req.SerializeToString()


def test_remote_write_decoding_maps_labels_kinds_and_drops_staleness() -> None:
    stale = struct_nan()
    raw = write_request(
        [
            (
                {"__name__": "http_requests_total", "job": "api", "instance": "a:1"},
                [(10.0, 1_800_000_000_000), (stale, 1_800_000_001_000)],
            ),
            (
                {"__name__": "temperature", "job": "api", "service_name": "thermo"},
                [(21.5, 1_800_000_000_000)],
            ),
            ({"__name__": "weird", "job": "api"}, [(math.inf, 1_800_000_000_000)]),
            ({"job": "api"}, [(1.0, 1_800_000_000_000)]),
        ],
        meta=[("temperature", 2)],
    )
    res, dropped = decode_write_request(raw, _Kinds())
    assert dropped == 1 and res.rejected == 2
    a, b = res.points
    assert (a.name, a.kind, a.service, a.attributes, a.time_ns) == (
        "http_requests_total",
        "counter",
        "api",
        {"instance": "a:1"},
        1_800_000_000_000 * 1_000_000,
    )
    assert (b.name, b.kind, b.service, b.attributes, b.value) == (
        "temperature",
        "gauge",
        "thermo",
        {"job": "api"},
        21.5,
    )
    assert res.cumulative == [(0, 0)]


def struct_nan() -> float:
    import struct

    return struct.unpack("<d", (0x7FF0000000000002).to_bytes(8, "little"))[
        0
    ]  # Prometheus' StaleNaN


def test_snappy_block_checks_length_before_decompressing() -> None:
    raw = b"x" * 10_000
    assert snappy_block(bytes(cramjam.snappy.compress_raw(raw)), 20_000) == raw
    with pytest.raises(Exception, match="exceeds the limit"):
        snappy_block(bytes(cramjam.snappy.compress_raw(raw)), 5_000)
    with pytest.raises(BadRequest, match="snappy"):
        snappy_block(b"\x05abc", 20_000)


def test_wire_and_upb_decoders_agree_on_every_shape() -> None:
    """Several resources and scopes, int and double values, exemplars, unpacked fields,
    and the types the wire path hands to the upb path (exponential, summary)."""
    tid, sid = bytes(range(1, 17)), bytes(range(1, 9))
    num = counter("c", (T0, T0 + S, 1.0), (T0, T0 + 2 * S, 3.0), temporality=DELTA)
    num.sum.data_points[1].ClearField("as_double")
    num.sum.data_points[1].as_int = 5
    num.sum.data_points[0].exemplars.add(
        time_unix_nano=T0, as_double=0.5, trace_id=tid, span_id=sid
    )
    hist = histogram("h", T0, T0 + S, [1, 2, 0], [1.0, 5.0], 6.0)
    hist.histogram.data_points[0].exemplars.add(
        time_unix_nano=T0, as_int=3, trace_id=tid, span_id=sid
    )
    summary = m.Metric(name="s")
    dp = summary.summary.data_points.add(
        time_unix_nano=T0 + S, start_time_unix_nano=T0, count=3, sum=6.0
    )
    dp.quantile_values.add(quantile=0.5, value=2.0)
    req = request(num, hist, expo_metric(T0 + S, 1, 2, [1, 1]), summary)
    other = request(counter("c", (T0, T0 + S, 2.0)), service="billing")
    req.resource_metrics.extend(other.resource_metrics)
    req.resource_metrics[0].scope_metrics.add().metrics.append(counter("c2", (T0, T0 + S, 9.0)))
    res = both(req)
    assert [p.name for p in res.points] == ["c", "c", "h", "lat.exp", "s", "c2", "c"]
    assert (
        res.points[0].exemplars[0].trace_id == tid
        and res.points[0].exemplars[0].span_id == 0x0102030405060708
    )
    assert res.points[1].value == 5.0
    assert res.points[2].exemplars[0].value == 3.0


def _ld(field: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    n, size = len(payload), b""
    while True:
        byte = n & 0x7F
        n >>= 7
        size += bytes([byte | (0x80 if n else 0)])
        if not n:
            break
    return bytes([field << 3 | 2]) + size + payload


def test_wire_decoder_takes_attributes_interleaved_with_other_fields() -> None:
    """Fields in any order (not what SDKs send, valid protobuf): the same point."""
    a = m.NumberDataPoint(attributes=[kv("route", "/a")]).SerializeToString()
    mid = m.NumberDataPoint(time_unix_nano=T0 + S, as_double=2.5).SerializeToString()
    c = m.NumberDataPoint(attributes=[kv("code", "200")]).SerializeToString()
    metric = _ld(1, b"g") + _ld(5, _ld(1, a + mid + c))
    resource = request().resource_metrics[0].resource.SerializeToString()
    body = _ld(1, _ld(1, resource) + _ld(2, _ld(2, metric)))
    wire = decode_metrics_wire(body, T0)
    assert rows(wire) == rows(decode_metrics_protobuf(body, T0))
    (p,) = wire.points
    assert p.attributes == {"host.name": "h1", "process.pid": "42", "route": "/a", "code": "200"}
    assert p.value == 2.5
