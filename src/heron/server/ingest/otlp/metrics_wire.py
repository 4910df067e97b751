"""The fast protobuf decoder of ``POST /v1/metrics``: gauge, sum and histogram data
points read straight from the wire bytes.

upb parses (and so validates) the whole request first, then the raw bytes are walked,
because touching upb objects from Python costs about 1 µs per attribute. A data point's
run of attributes is looked up in a bounded cache of decoded runs, so the attribute sets
a process repeats every export are decoded once. Exemplars, resources, and metrics of the
other types (exponential histograms, summaries) are read from the upb objects by the
reference decoder's code (:mod:`.metrics`); both paths produce the same points through
the same builders (``tests/server/test_metrics_ingest.py`` compares them).
"""

from __future__ import annotations

import struct
from typing import Any

from google.protobuf.message import DecodeError as _PbDecodeError
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import HistogramDataPoint, NumberDataPoint

from heron.server.ingest.otlp.common import DecodeError, ResourceInfo, pb_attrs
from heron.server.ingest.otlp.metrics import (
    MAX_ATTRIBUTES,
    MetricsDecodeResult,
    _pb_exemplars,
    _pb_label,
    _pb_metric,
    identifying,
    metric_builder,
)
from heron.server.ingest.otlp.protowire import U64 as _U64
from heron.server.ingest.otlp.protowire import Unsupported as _Unsupported
from heron.server.ingest.otlp.protowire import skip as _skip
from heron.server.ingest.otlp.protowire import varint as _varint

_RUN_CACHE: dict[bytes, tuple[tuple[str, str], ...]] = {}
_RUN_CACHE_MAX_ENTRIES = 16_384
_RUN_CACHE_MAX_BYTES = 1_024
_I64 = struct.Struct("<q")
_F64 = struct.Struct("<d")


def _fields(buf: bytes, i: int, end: int) -> list[tuple[int, int, int]]:
    """(tag, start, end) of the length-delimited fields in buf[i:end] (others skipped,
    varints as (tag, value, -1))."""
    out = []
    while i < end:
        tag, i = _varint(buf, i)
        wt = tag & 7
        if wt == 2:
            n, i = _varint(buf, i)
            out.append((tag, i, i + n))
            i += n
        elif wt == 0:
            v, i = _varint(buf, i)
            out.append((tag, v, -1))
        else:
            i = _skip(buf, i, wt)
    return out


def _run(raw: bytes) -> tuple[tuple[str, str], ...] | None:
    """The (key, label) pairs of a run of attribute fields (cached); None when too many."""
    got = _RUN_CACHE.get(raw)
    if got is not None:
        return got
    pairs = []
    i, end = 0, len(raw)
    while i < end:
        tag, i = _varint(raw, i)
        if tag & 7 != 2:
            i = _skip(raw, i, tag & 7)
            continue
        n, i = _varint(raw, i)
        kv = KeyValue.FromString(raw[i : i + n])
        pairs.append((kv.key, _pb_label(kv.value)))
        i += n
    if len(pairs) > MAX_ATTRIBUTES:
        return None
    out = tuple(pairs)
    if len(raw) <= _RUN_CACHE_MAX_BYTES:
        if len(_RUN_CACHE) >= _RUN_CACHE_MAX_ENTRIES:
            _RUN_CACHE.clear()
        _RUN_CACHE[raw] = out
    return out


def decode_metrics_wire(body: bytes, received_ns: int) -> MetricsDecodeResult:
    """Decode an ``ExportMetricsServiceRequest`` in protobuf binary form (the same
    points as :func:`.metrics.decode_metrics_protobuf`)."""
    req = ExportMetricsServiceRequest()
    try:
        req.ParseFromString(body)
    except (_PbDecodeError, ValueError, RuntimeError) as e:
        raise DecodeError(
            f"request body is not a valid protobuf ExportMetricsServiceRequest: {e}"
        ) from None
    out = MetricsDecodeResult()
    try:
        _walk(out, body, req, received_ns)
    except (_Unsupported, IndexError, UnicodeDecodeError, struct.error):
        # a shape the walker does not take (upb accepted it): the reference path
        from heron.server.ingest.otlp.metrics import decode_metrics_protobuf

        return decode_metrics_protobuf(body, received_ns)
    return out


def _walk(out: MetricsDecodeResult, buf: bytes, req: Any, now: int) -> None:
    ri = 0
    for tag, i, end in _fields(buf, 0, len(buf)):
        if tag != 0x0A:
            continue
        pb_rm = req.resource_metrics[ri]
        ri += 1
        res = ResourceInfo(pb_attrs(pb_rm.resource.attributes))
        base = identifying(res.attributes)
        si = 0
        for stag, si_start, si_end in _fields(buf, i, end):
            if stag != 0x12:
                continue
            pb_sm = pb_rm.scope_metrics[si]
            si += 1
            mi = 0
            for mtag, m_start, m_end in _fields(buf, si_start, si_end):
                if mtag != 0x12:
                    continue
                _metric(out, res, base, buf, m_start, m_end, pb_sm.metrics, mi, now)
                mi += 1


def _metric(
    out: MetricsDecodeResult,
    res: ResourceInfo,
    base: dict[str, str],
    buf: bytes,
    i: int,
    end: int,
    pb_metrics: Any,
    mi: int,
    now: int,
) -> None:
    name = unit = description = ""
    data: tuple[int, int, int] | None = None
    for tag, a, b in _fields(buf, i, end):
        if tag == 0x0A:
            name = buf[a:b].decode()
        elif tag == 0x12:
            description = buf[a:b].decode()
        elif tag == 0x1A:
            unit = buf[a:b].decode()
        elif tag in (0x2A, 0x3A, 0x4A, 0x52, 0x5A):
            data = (tag, a, b)  # the last one set wins, as in protobuf's oneof
    if data is None:
        return
    tag, a, b = data
    if tag not in (0x2A, 0x3A, 0x4A):  # exponential histogram, summary: the upb path
        _pb_metric(out, res, base, pb_metrics[mi], now)
        return
    temporality, monotonic = 0, False
    points = []
    for ftag, fa, fb in _fields(buf, a, b):
        if ftag == 0x0A:
            points.append((fa, fb))
        elif ftag == 0x10:
            temporality = fa
        elif ftag == 0x18:
            monotonic = fa != 0
    if not points:
        return
    which = {0x2A: "gauge", 0x3A: "sum", 0x4A: "histogram"}[tag]
    builder = metric_builder(
        out, res, name, unit, description, which, temporality, monotonic, len(points)
    )
    if builder is None:
        return
    if tag == 0x4A:
        for pa, pb in points:
            _histogram_point(builder, base, buf, pa, pb, now)
    else:
        for pa, pb in points:
            _number_point(builder, base, buf, pa, pb, now)


def _attrs(
    base: dict[str, str], buf: bytes, runs: list[tuple[int, int]], contiguous: bool
) -> dict[str, str] | None:
    attrs = dict(base)
    if not runs:
        return attrs
    if contiguous:
        pairs = _run(buf[runs[0][0] : runs[-1][1]])
        if pairs is None:
            return None
        attrs.update(pairs)
        return attrs
    n = 0
    for a, b in runs:
        pairs = _run(buf[a:b])
        if pairs is None:
            return None
        n += len(pairs)
        attrs.update(pairs)
    return attrs if n <= MAX_ATTRIBUTES else None


def _number_point(b: Any, base: dict[str, str], buf: bytes, i: int, end: int, now: int) -> None:
    begin = i
    start = t = flags = 0
    value = 0.0
    a0 = a1 = -1  # the run of attribute fields, when they are contiguous (as SDKs send)
    split = has_exemplars = False
    unpack_u64, unpack_f64 = _U64.unpack_from, _F64.unpack_from
    while i < end:
        tag = buf[i]
        if tag == 0x3A:  # attributes first: most of a point's fields
            if a1 != i:
                if a0 >= 0:
                    split = True
                a0 = i
            n = buf[i + 1]
            if n < 0x80:
                i += 2 + n
            else:
                n, i = _varint(buf, i + 1)
                i += n
            a1 = i
        elif tag == 0x11:
            start = unpack_u64(buf, i + 1)[0]
            i += 9
        elif tag == 0x19:
            t = unpack_u64(buf, i + 1)[0]
            i += 9
        elif tag == 0x21:
            value = unpack_f64(buf, i + 1)[0]
            i += 9
        elif tag == 0x31:
            value = float(_I64.unpack_from(buf, i + 1)[0])
            i += 9
        elif tag == 0x2A:
            has_exemplars = True
            n, i = _varint(buf, i + 1)
            i += n
        elif tag == 0x40:
            flags, i = _varint(buf, i + 1)
        else:
            tag, i = _varint(buf, i)
            i = _skip(buf, i, tag & 7)
    if split:  # attributes interleaved with other fields: each on its own
        attrs = _attrs(base, buf, _attr_fields(buf, begin, end, 0x3A), False)
    elif a0 < 0:
        attrs = dict(base)
    else:
        pairs = _run(buf[a0:a1])
        attrs = None
        if pairs is not None:
            attrs = dict(base)
            attrs.update(pairs)
    if attrs is None:
        b.reject(f"more than {MAX_ATTRIBUTES} attributes")
        return
    ex = _pb_exemplars(NumberDataPoint.FromString(buf[begin:end])) if has_exemplars else []
    b.number(attrs, start, t, value, flags, ex, now)


def _attr_fields(buf: bytes, i: int, end: int, want: int) -> list[tuple[int, int]]:
    """(start, end) of each whole field with tag ``want`` (tag byte included)."""
    out = []
    while i < end:
        s = i
        tag, i = _varint(buf, i)
        i = _skip(buf, i, tag & 7)
        if tag == want:
            out.append((s, i))
    return out


def _histogram_point(b: Any, base: dict[str, str], buf: bytes, i: int, end: int, now: int) -> None:
    begin = i
    start = t = count = flags = 0
    total: float | None = None
    vmin: float | None = None
    vmax: float | None = None
    buckets: tuple[int, ...] = ()
    bounds: tuple[float, ...] = ()
    runs: list[tuple[int, int]] = []
    contiguous = True
    has_exemplars = False
    while i < end:
        tag = buf[i]
        if tag == 0x11:
            start = _U64.unpack_from(buf, i + 1)[0]
            i += 9
        elif tag == 0x19:
            t = _U64.unpack_from(buf, i + 1)[0]
            i += 9
        elif tag == 0x21:
            count = _U64.unpack_from(buf, i + 1)[0]
            i += 9
        elif tag == 0x29:
            total = _F64.unpack_from(buf, i + 1)[0]
            i += 9
        elif tag == 0x32:
            n, i = _varint(buf, i + 1)
            buckets += struct.unpack_from(f"<{n // 8}Q", buf, i)
            i += n
        elif tag == 0x31:
            buckets += (_U64.unpack_from(buf, i + 1)[0],)
            i += 9
        elif tag == 0x3A:
            n, i = _varint(buf, i + 1)
            bounds += struct.unpack_from(f"<{n // 8}d", buf, i)
            i += n
        elif tag == 0x39:
            bounds += (_F64.unpack_from(buf, i + 1)[0],)
            i += 9
        elif tag == 0x4A:
            s = i
            n = buf[i + 1]
            if n < 0x80:
                i += 2 + n
            else:
                n, i = _varint(buf, i + 1)
                i += n
            if runs and runs[-1][1] != s:
                contiguous = False
            runs.append((s, i))
        elif tag == 0x42:
            has_exemplars = True
            n, i = _varint(buf, i + 1)
            i += n
        elif tag == 0x50:
            flags, i = _varint(buf, i + 1)
        elif tag == 0x59:
            vmin = _F64.unpack_from(buf, i + 1)[0]
            i += 9
        elif tag == 0x61:
            vmax = _F64.unpack_from(buf, i + 1)[0]
            i += 9
        else:
            tag, i = _varint(buf, i)
            i = _skip(buf, i, tag & 7)
    attrs = _attrs(base, buf, runs, contiguous)
    if attrs is None:
        b.reject(f"more than {MAX_ATTRIBUTES} attributes")
        return
    ex = _pb_exemplars(HistogramDataPoint.FromString(buf[begin:end])) if has_exemplars else []
    b.histogram(
        attrs, start, t, count, total, vmin, vmax, bounds, buckets, flags, ex, now
    )  # fmt: skip
