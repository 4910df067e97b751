"""OTLP metrics: an ``ExportMetricsServiceRequest`` (protobuf via upb objects, or
OTLP-JSON) into :class:`~heron.server.model.metric.MetricPoint` s.

Both encodings go through one set of point builders (``_Metric.number``/``histogram``/
``exponential``/``summary``), so they accept and reject the same points. A request that
cannot be decoded raises :class:`DecodeError` (→ 400); an invalid data point is counted
as rejected with a message naming its metric (→ 200 + ``partialSuccess``).

Points come out as sent except that exponential histograms of delta temporality are
converted to explicit bounds here. Cumulative points (monotonic sums, histograms,
exponential histograms, summaries) keep their running totals and are listed in
``cumulative`` with their start time: ``ingest/metrics`` turns them into increases.

Rules (docs/metrics.md, "Sending metrics"): attribute values become strings; the
resource's ``IDENTIFYING_RESOURCE_KEYS`` join the point's attributes; a point flagged
"no recorded value" is skipped silently; NaN and ±Inf values, negative counts, bucket
counts that do not add up to ``count``, bounds not increasing and
``len(bucket_counts) != len(bounds) + 1`` reject the point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import orjson
from google.protobuf.message import DecodeError as _PbDecodeError
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

from heron.server.ingest.limits import MAX_TIME_NS
from heron.server.ingest.otlp.common import (
    DecodeError,
    ResourceInfo,
    hex_id,
    json_attrs,
    json_body,
    json_double,
    json_int,
    json_list,
    json_obj,
    json_resource,
    pb_attrs,
    pb_value,
)
from heron.server.model.metric import (
    IDENTIFYING_RESOURCE_KEYS,
    Exemplar,
    MetricKind,
    MetricPoint,
)

MAX_NAME_CHARS = 255
MAX_LABEL_CHARS = 1_024
MAX_ATTRIBUTES = 128
MAX_BUCKETS = 512
MAX_EXEMPLARS = 16
MAX_ERRORS = 5
NO_RECORDED_VALUE = 1  # DataPointFlags.FLAG_NO_RECORDED_VALUE
TEMPORALITY_DELTA, TEMPORALITY_CUMULATIVE = 1, 2
_TEMPORALITY_NAMES = {
    "AGGREGATION_TEMPORALITY_UNSPECIFIED": 0,
    "AGGREGATION_TEMPORALITY_DELTA": 1,
    "AGGREGATION_TEMPORALITY_CUMULATIVE": 2,
}


@dataclass(frozen=True, slots=True)
class Expo:
    """An exponential histogram's buckets as sent (cumulative ones are subtracted in
    this form, see ``ingest/metrics``, then converted with :func:`expo_to_explicit`)."""

    scale: int
    zero_count: int
    zero_threshold: float
    pos_offset: int
    pos: tuple[int, ...]
    neg_offset: int
    neg: tuple[int, ...]


@dataclass(slots=True)
class MetricsDecodeResult:
    points: list[MetricPoint] = field(default_factory=list)
    # (index in points, start time) of cumulative points, and the exponential buckets
    # of the cumulative exponential histograms among them (by index).
    cumulative: list[tuple[int, int]] = field(default_factory=list)
    expo: dict[int, Expo] = field(default_factory=dict)
    rejected: int = 0
    errors: list[str] = field(default_factory=list)

    def reject(self, message: str, n: int = 1) -> None:
        self.rejected += n
        if len(self.errors) < MAX_ERRORS and message not in self.errors:
            self.errors.append(message)


class _Invalid(ValueError):
    pass


# ------------------------------------------------------------------- attributes


def clip_label(s: str) -> str:
    return s if len(s) <= MAX_LABEL_CHARS else s[:MAX_LABEL_CHARS] + "…"


def label_text(v: Any) -> str:
    """An attribute value as label text: strings as they are, booleans lowercase,
    numbers as Python writes them, structured values as JSON."""
    if isinstance(v, str):
        return clip_label(v)
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return str(v)
    return clip_label(orjson.dumps(v, default=str).decode())


def _pb_label(v: Any) -> str:
    which = v.WhichOneof("value")
    if which == "string_value":
        s: str = v.string_value
        return s if len(s) <= MAX_LABEL_CHARS else clip_label(s)
    if which == "int_value":
        return str(v.int_value)
    return label_text(pb_value(v))


def identifying(resource: dict[str, Any]) -> dict[str, str]:
    """The resource attributes every series of the resource carries as labels."""
    return {k: label_text(resource[k]) for k in IDENTIFYING_RESOURCE_KEYS if k in resource}


# ------------------------------------------------------------------- conversion


def expo_to_explicit(e: Expo) -> tuple[tuple[float, ...], tuple[int, ...]]:
    """Explicit upper bounds and counts (``len(bounds) + 1``, the last for +Inf) of an
    exponential histogram: negative buckets, the zero bucket, positive buckets."""
    base_log = math.log(2.0) * 2.0 ** (-e.scale)

    def edge(i: int) -> float:
        try:
            return math.exp(i * base_log)
        except OverflowError:
            return math.inf

    pairs: list[tuple[float, int]] = []  # (upper bound, count), ascending
    for i in range(e.neg_offset + len(e.neg) - 1, e.neg_offset - 1, -1):
        pairs.append((-edge(i), e.neg[i - e.neg_offset]))
    pairs.append((max(e.zero_threshold, 0.0), e.zero_count))
    for j, c in enumerate(e.pos):
        pairs.append((edge(e.pos_offset + j + 1), c))
    bounds: list[float] = []
    counts: list[int] = []
    carry = overflow = 0
    for bound, c in pairs:
        if bound == -math.inf:  # an edge beyond float range: part of the next bucket
            carry += c
        elif bound == math.inf:
            overflow += c
        elif bounds and bound <= bounds[-1]:
            counts[-1] += c + carry
            carry = 0
        else:
            bounds.append(bound)
            counts.append(c + carry)
            carry = 0
    counts.append(overflow + carry)  # the +Inf bucket
    return tuple(bounds), tuple(counts)


def _check_count(v: int, what: str) -> int:
    if v < 0:
        raise _Invalid(f"negative {what} {v}")
    return v


def _check_finite(v: float, what: str) -> float:
    if not math.isfinite(v):
        raise _Invalid(f"{what} is {v} (NaN and ±Inf are rejected)")
    return v


def _check_time(t: int, received_ns: int) -> int:
    if t == 0:
        return received_ns
    if not 0 < t <= MAX_TIME_NS:
        raise _Invalid(f"timeUnixNano {t} is out of range")
    return t


class _Metric:
    """The builders of one metric's points (its name, kind and resource fixed)."""

    __slots__ = ("out", "name", "unit", "description", "kind", "cumulative", "service")

    def __init__(
        self,
        out: MetricsDecodeResult,
        res: ResourceInfo,
        name: str,
        unit: str,
        description: str,
        kind: MetricKind,
        cumulative: bool,
    ) -> None:
        self.out = out
        self.name = name
        self.unit = unit
        self.description = description
        self.kind = kind
        self.cumulative = cumulative
        self.service = res.service

    def reject(self, why: str) -> None:
        self.out.reject(f"metric {self.name[:64]!r}: {why}")

    def _emit(self, p: MetricPoint, start_ns: int, expo: Expo | None = None) -> None:
        out = self.out
        if self.cumulative:
            idx = len(out.points)
            out.cumulative.append((idx, start_ns))
            if expo is not None:
                out.expo[idx] = expo
        out.points.append(p)

    def number(
        self,
        attrs: dict[str, str],
        start_ns: int,
        time_ns: int,
        value: float,
        flags: int,
        exemplars: list[Exemplar],
        received_ns: int,
    ) -> None:
        if flags & NO_RECORDED_VALUE:
            return
        try:
            t = _check_time(time_ns, received_ns)
            _check_finite(value, "value")
            if self.kind == "counter" and value < 0 and self.cumulative:
                raise _Invalid(f"monotonic cumulative sum is negative ({value})")
        except _Invalid as e:
            self.reject(str(e))
            return
        p = MetricPoint(
            t,
            self.name,
            self.kind,
            self.service,
            attrs,
            value,
            unit=self.unit,
            description=self.description,
            exemplars=exemplars,
        )
        self._emit(p, start_ns)

    def histogram(
        self,
        attrs: dict[str, str],
        start_ns: int,
        time_ns: int,
        count: int,
        total: float | None,
        vmin: float | None,
        vmax: float | None,
        bounds: tuple[float, ...],
        buckets: tuple[int, ...],
        flags: int,
        exemplars: list[Exemplar],
        received_ns: int,
    ) -> None:
        if flags & NO_RECORDED_VALUE:
            return
        try:
            t = _check_time(time_ns, received_ns)
            _check_count(count, "count")
            s = _check_finite(total, "sum") if total is not None else 0.0
            for v in (vmin, vmax):
                if v is not None:
                    _check_finite(v, "min/max")
            if buckets or bounds:
                if len(buckets) != len(bounds) + 1:
                    raise _Invalid(
                        f"{len(buckets)} bucket counts for {len(bounds)} bounds "
                        "(must be one more than the bounds)"
                    )
                if len(buckets) > MAX_BUCKETS:
                    raise _Invalid(f"more than {MAX_BUCKETS} buckets")
                prev = -math.inf
                for b in bounds:
                    if not math.isfinite(b) or b <= prev:
                        raise _Invalid("explicit bounds must be finite and increasing")
                    prev = b
                n = 0
                for c in buckets:
                    n += _check_count(c, "bucket count")
                if n != count:
                    raise _Invalid(f"bucket counts add up to {n}, not count {count}")
        except _Invalid as e:
            self.reject(str(e))
            return
        p = MetricPoint(
            t,
            self.name,
            "histogram",
            self.service,
            attrs,
            s,
            count=count,
            min=vmin,
            max=vmax,
            bounds=bounds,
            bucket_counts=buckets,
            unit=self.unit,
            description=self.description,
            exemplars=exemplars,
        )
        self._emit(p, start_ns)

    def exponential(
        self,
        attrs: dict[str, str],
        start_ns: int,
        time_ns: int,
        count: int,
        total: float | None,
        vmin: float | None,
        vmax: float | None,
        e: Expo,
        flags: int,
        exemplars: list[Exemplar],
        received_ns: int,
    ) -> None:
        if flags & NO_RECORDED_VALUE:
            return
        try:
            t = _check_time(time_ns, received_ns)
            _check_count(count, "count")
            s = _check_finite(total, "sum") if total is not None else 0.0
            for v in (vmin, vmax):
                if v is not None:
                    _check_finite(v, "min/max")
            if not -10 <= e.scale <= 20:
                raise _Invalid(f"exponential histogram scale {e.scale} is out of range -10..20")
            if len(e.pos) + len(e.neg) > MAX_BUCKETS:
                raise _Invalid(f"more than {MAX_BUCKETS} buckets")
            if not math.isfinite(e.zero_threshold) or e.zero_threshold < 0:
                raise _Invalid("zeroThreshold must be finite and not negative")
            n = _check_count(e.zero_count, "zero count")
            for c in e.pos + e.neg:
                n += _check_count(c, "bucket count")
            if n != count:
                raise _Invalid(f"bucket counts add up to {n}, not count {count}")
        except _Invalid as err:
            self.reject(str(err))
            return
        p = MetricPoint(
            t,
            self.name,
            "histogram",
            self.service,
            attrs,
            s,
            count=count,
            min=vmin,
            max=vmax,
            unit=self.unit,
            description=self.description,
            exemplars=exemplars,
        )
        if self.cumulative:
            self._emit(p, start_ns, e)
        else:
            p.bounds, p.bucket_counts = expo_to_explicit(e)
            self._emit(p, start_ns)

    def summary(
        self,
        attrs: dict[str, str],
        start_ns: int,
        time_ns: int,
        count: int,
        total: float,
        quantiles: tuple[tuple[float, float], ...],
        flags: int,
        received_ns: int,
    ) -> None:
        if flags & NO_RECORDED_VALUE:
            return
        try:
            t = _check_time(time_ns, received_ns)
            _check_count(count, "count")
            _check_finite(total, "sum")
            for q, v in quantiles:
                if not 0.0 <= q <= 1.0:
                    raise _Invalid(f"quantile {q} is outside 0..1")
                _check_finite(v, "quantile value")
        except _Invalid as e:
            self.reject(str(e))
            return
        p = MetricPoint(
            t,
            self.name,
            "summary",
            self.service,
            attrs,
            total,
            count=count,
            quantiles=quantiles,
            unit=self.unit,
            description=self.description,
        )
        self._emit(p, start_ns)


def _check_name(name: str) -> str | None:
    if not name:
        return "metric name is empty"
    if len(name) > MAX_NAME_CHARS:
        return f"metric name longer than {MAX_NAME_CHARS} characters"
    return None


# --------------------------------------------------------------------- protobuf


def _pb_exemplars(dp: Any) -> list[Exemplar]:
    if not dp.exemplars:
        return []
    out: list[Exemplar] = []
    for ex in dp.exemplars[:MAX_EXEMPLARS]:
        tid, sid = ex.trace_id, ex.span_id
        if len(tid) != 16 or len(sid) != 8 or not any(tid):
            continue
        v = ex.as_double if ex.WhichOneof("value") == "as_double" else float(ex.as_int)
        if math.isfinite(v) and 0 <= ex.time_unix_nano <= MAX_TIME_NS:
            out.append(Exemplar(ex.time_unix_nano, v, tid, int.from_bytes(sid, "big")))
    return out


def _pb_point_attrs(base: dict[str, str], dp: Any) -> dict[str, str] | None:
    attrs = dict(base)
    kvs = dp.attributes
    if len(kvs) > MAX_ATTRIBUTES:
        return None
    for kv in kvs:
        attrs[kv.key] = _pb_label(kv.value)
    return attrs


def _pb_expo(dp: Any) -> Expo:
    pos, neg = dp.positive, dp.negative
    return Expo(
        dp.scale,
        dp.zero_count,
        dp.zero_threshold,
        pos.offset,
        tuple(pos.bucket_counts),
        neg.offset,
        tuple(neg.bucket_counts),
    )


def decode_metrics_protobuf(body: bytes, received_ns: int) -> MetricsDecodeResult:
    """Decode an ``ExportMetricsServiceRequest`` in protobuf binary form."""
    req = ExportMetricsServiceRequest()
    try:
        req.ParseFromString(body)
    except (_PbDecodeError, ValueError, RuntimeError) as e:
        raise DecodeError(
            f"request body is not a valid protobuf ExportMetricsServiceRequest: {e}"
        ) from None
    out = MetricsDecodeResult()
    for rm in req.resource_metrics:
        res = ResourceInfo(pb_attrs(rm.resource.attributes))
        base = identifying(res.attributes)
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                _pb_metric(out, res, base, m, received_ns)
    return out


def _pb_metric(
    out: MetricsDecodeResult, res: ResourceInfo, base: dict[str, str], m: Any, now: int
) -> None:
    which = m.WhichOneof("data")
    if which is None:
        return
    data = getattr(m, which)
    dps = data.data_points
    if not dps:
        return
    name = m.name
    problem = _check_name(name)
    if problem is None and which != "gauge" and which != "summary":
        t = data.aggregation_temporality
        if t not in (TEMPORALITY_DELTA, TEMPORALITY_CUMULATIVE):
            problem = (
                f"metric {name[:64]!r}: aggregation temporality {t} is not delta or cumulative"
            )
    if problem is not None:
        out.reject(problem, len(dps))
        return
    if which == "gauge":
        kind: MetricKind = "gauge"
        cumulative = False
    elif which == "sum":
        cumulative = data.aggregation_temporality == TEMPORALITY_CUMULATIVE
        if data.is_monotonic:
            kind = "counter"
        else:
            kind = "updown" if cumulative else "counter"
            cumulative = False  # an up-down value as is; delta changes add up as a counter
    elif which == "summary":
        kind, cumulative = "summary", True
    else:
        kind = "histogram"
        cumulative = data.aggregation_temporality == TEMPORALITY_CUMULATIVE
    b = _Metric(out, res, name, m.unit, m.description, kind, cumulative)
    if res.error:
        b.reject(res.error)
        return
    if which == "gauge" or which == "sum":
        for dp in dps:
            attrs = _pb_point_attrs(base, dp)
            if attrs is None:
                b.reject(f"more than {MAX_ATTRIBUTES} attributes")
                continue
            v = dp.as_double if dp.WhichOneof("value") == "as_double" else float(dp.as_int)
            ex = _pb_exemplars(dp) if dp.exemplars else []
            b.number(attrs, dp.start_time_unix_nano, dp.time_unix_nano, v, dp.flags, ex, now)
    elif which == "histogram":
        for dp in dps:
            attrs = _pb_point_attrs(base, dp)
            if attrs is None:
                b.reject(f"more than {MAX_ATTRIBUTES} attributes")
                continue
            b.histogram(
                attrs,
                dp.start_time_unix_nano,
                dp.time_unix_nano,
                dp.count,
                dp.sum if dp.HasField("sum") else None,
                dp.min if dp.HasField("min") else None,
                dp.max if dp.HasField("max") else None,
                tuple(dp.explicit_bounds),
                tuple(dp.bucket_counts),
                dp.flags,
                _pb_exemplars(dp),
                now,
            )
    elif which == "exponential_histogram":
        for dp in dps:
            attrs = _pb_point_attrs(base, dp)
            if attrs is None:
                b.reject(f"more than {MAX_ATTRIBUTES} attributes")
                continue
            b.exponential(
                attrs,
                dp.start_time_unix_nano,
                dp.time_unix_nano,
                dp.count,
                dp.sum if dp.HasField("sum") else None,
                dp.min if dp.HasField("min") else None,
                dp.max if dp.HasField("max") else None,
                _pb_expo(dp),
                dp.flags,
                _pb_exemplars(dp),
                now,
            )
    else:  # summary
        for dp in dps:
            attrs = _pb_point_attrs(base, dp)
            if attrs is None:
                b.reject(f"more than {MAX_ATTRIBUTES} attributes")
                continue
            qs = tuple((q.quantile, q.value) for q in dp.quantile_values)
            b.summary(
                attrs, dp.start_time_unix_nano, dp.time_unix_nano, dp.count, dp.sum, qs,
                dp.flags, now,
            )  # fmt: skip


# ------------------------------------------------------------------------- JSON


_JSON_KINDS = ("gauge", "sum", "histogram", "exponentialHistogram", "summary")


def decode_metrics_json(body: bytes, received_ns: int) -> MetricsDecodeResult:
    """Decode an ``ExportMetricsServiceRequest`` in OTLP-JSON form (hex ids, int64 as
    strings, enums as numbers or names)."""
    doc = json_body(body, "ExportMetricsServiceRequest")
    out = MetricsDecodeResult()
    for rm in json_list(doc, "resourceMetrics"):
        if not isinstance(rm, dict):
            raise DecodeError("resourceMetrics entries must be objects")
        res = json_resource(rm)
        base = identifying(res.attributes)
        for sm in json_list(rm, "scopeMetrics"):
            for m in json_list(sm, "metrics"):
                if not isinstance(m, dict):
                    raise DecodeError("metrics entries must be objects")
                _json_metric(out, res, base, m, received_ns)
    return out


def _json_text(m: dict[str, Any], key: str) -> str:
    v = m.get(key)
    return v if isinstance(v, str) else ""


def _json_temporality(v: Any) -> int:
    if isinstance(v, str) and v in _TEMPORALITY_NAMES:
        return _TEMPORALITY_NAMES[v]
    try:
        return json_int(v, "aggregationTemporality")
    except ValueError:
        return 0


def _json_metric(
    out: MetricsDecodeResult, res: ResourceInfo, base: dict[str, str], m: dict[str, Any], now: int
) -> None:
    which = next((k for k in _JSON_KINDS if k in m), None)
    if which is None:
        return
    data = m[which]
    if not isinstance(data, dict):
        raise DecodeError(f"field {which!r} must be an object")
    dps = json_list(data, "dataPoints")
    if not dps:
        return
    name = m.get("name")
    name = name if isinstance(name, str) else ""
    problem = _check_name(name)
    temporality = _json_temporality(data.get("aggregationTemporality"))
    if (
        problem is None
        and which not in ("gauge", "summary")
        and temporality not in (TEMPORALITY_DELTA, TEMPORALITY_CUMULATIVE)
    ):
        problem = (
            f"metric {name[:64]!r}: aggregation temporality {temporality} "
            "is not delta or cumulative"
        )
    if problem is not None:
        out.reject(problem, len(dps))
        return
    cumulative = temporality == TEMPORALITY_CUMULATIVE
    kind: MetricKind
    if which == "gauge":
        kind, cumulative = "gauge", False
    elif which == "sum":
        if data.get("isMonotonic") is True:
            kind = "counter"
        else:
            kind = "updown" if cumulative else "counter"
            cumulative = False
    elif which == "summary":
        kind, cumulative = "summary", True
    else:
        kind = "histogram"
    b = _Metric(
        out,
        res,
        name,
        _json_text(m, "unit"),
        _json_text(m, "description"),
        kind,
        cumulative,
    )
    if res.error:
        b.reject(res.error)
        return
    for dp in dps:
        try:
            if not isinstance(dp, dict):
                raise _Invalid("data point must be an object")
            _json_point(b, which, base, dp, now)
        except ValueError as e:
            b.reject(str(e))


def _json_float(v: Any, what: str) -> float:
    f = json_double(v)
    if f is None:
        raise _Invalid(f"{what} must be a number")
    return f


def _json_opt_float(dp: dict[str, Any], key: str) -> float | None:
    return _json_float(dp[key], key) if dp.get(key) is not None else None


def _json_exemplars(dp: dict[str, Any]) -> list[Exemplar]:
    out: list[Exemplar] = []
    raw = dp.get("exemplars")
    if not isinstance(raw, list):
        return out
    for ex in raw[:MAX_EXEMPLARS]:
        if not isinstance(ex, dict):
            continue
        try:
            tid = hex_id(ex.get("traceId"), "traceId", 16)
            sid = hex_id(ex.get("spanId"), "spanId", 8)
            if "asDouble" in ex:
                v = _json_float(ex["asDouble"], "asDouble")
            else:
                v = float(json_int(ex.get("asInt"), "asInt"))
            t = json_int(ex.get("timeUnixNano"), "timeUnixNano")
        except ValueError:
            continue
        ok = len(tid) == 16 and any(tid) and len(sid) == 8
        if ok and math.isfinite(v) and 0 <= t <= MAX_TIME_NS:
            out.append(Exemplar(t, v, tid, int.from_bytes(sid, "big")))
    return out


def _json_point(b: _Metric, which: str, base: dict[str, str], dp: dict[str, Any], now: int) -> None:
    raw_attrs = dp.get("attributes")
    if isinstance(raw_attrs, list) and len(raw_attrs) > MAX_ATTRIBUTES:
        raise _Invalid(f"more than {MAX_ATTRIBUTES} attributes")
    attrs = dict(base)
    for k, v in json_attrs(raw_attrs).items():
        attrs[k] = label_text(v)
    start = json_int(dp.get("startTimeUnixNano"), "startTimeUnixNano")
    t = json_int(dp.get("timeUnixNano"), "timeUnixNano")
    flags = json_int(dp.get("flags"), "flags")
    if which in ("gauge", "sum"):
        if "asDouble" in dp:
            v = _json_float(dp["asDouble"], "asDouble")
        elif "asInt" in dp:
            v = float(json_int(dp["asInt"], "asInt"))
        elif flags & NO_RECORDED_VALUE:
            return
        else:
            raise _Invalid("data point has neither asDouble nor asInt")
        b.number(attrs, start, t, v, flags, _json_exemplars(dp), now)
        return
    count = json_int(dp.get("count"), "count")
    if which == "summary":
        qs = []
        for q in json_list(dp, "quantileValues"):
            q = json_obj(q, "quantileValues")
            qs.append(
                (
                    _json_float(q.get("quantile", 0), "quantile"),
                    _json_float(q.get("value", 0), "value"),
                )
            )
        b.summary(
            attrs, start, t, count, _json_float(dp.get("sum", 0), "sum"), tuple(qs), flags, now
        )
        return
    total = _json_opt_float(dp, "sum")
    vmin, vmax = _json_opt_float(dp, "min"), _json_opt_float(dp, "max")
    if which == "histogram":
        bounds = tuple(_json_float(x, "explicitBounds") for x in json_list(dp, "explicitBounds"))
        buckets = tuple(json_int(x, "bucketCounts") for x in json_list(dp, "bucketCounts"))
        b.histogram(
            attrs, start, t, count, total, vmin, vmax, bounds, buckets, flags,
            _json_exemplars(dp), now,
        )  # fmt: skip
        return
    pos = json_obj(dp.get("positive"), "positive")
    neg = json_obj(dp.get("negative"), "negative")
    e = Expo(
        json_int(dp.get("scale"), "scale"),
        json_int(dp.get("zeroCount"), "zeroCount"),
        _json_float(dp.get("zeroThreshold", 0), "zeroThreshold"),
        json_int(pos.get("offset"), "positive.offset"),
        tuple(json_int(x, "bucketCounts") for x in json_list(pos, "bucketCounts")),
        json_int(neg.get("offset"), "negative.offset"),
        tuple(json_int(x, "bucketCounts") for x in json_list(neg, "bucketCounts")),
    )
    b.exponential(attrs, start, t, count, total, vmin, vmax, e, flags, _json_exemplars(dp), now)
