"""``POST /api/v1/write``: the Prometheus remote-write receiver (protocol 1.0: a
snappy-compressed protobuf ``prometheus.WriteRequest``).

There is no official Python package for Prometheus' protobuf messages, so the few this
route needs are declared here as a descriptor and built at runtime (upb parses them).

Mapping (docs/metrics.md, "Prometheus remote write"): ``__name__`` is the metric name;
the ``service_name`` label, else ``job``, is the service (and leaves the labels); the
other labels are attributes. The kind comes from the metadata Prometheus sends (every
minute, by default): counters, and a histogram's or summary's ``_bucket``/``_sum``/
``_count`` series, are cumulative counters, turned into increases by the same tracker
as OTLP (no start time: only a drop of the value is a reset, and a series' first sample
is its baseline); gauges and summary quantiles stay as they are. Before any metadata a
name ending in ``_total``, ``_bucket``, ``_sum`` or ``_count`` is taken as a counter,
any other as a gauge. Classic histograms stay separate series (``_bucket{le=...}``,
``_sum``, ``_count``). NaN samples (Prometheus' staleness markers) are dropped; ±Inf
samples and native histograms are rejected and counted.

Answers: 204 when stored (points over a cardinality limit are counted, not refused: a
4xx would make Prometheus drop the whole batch), 400 for a body that is not a snappy
WriteRequest (Prometheus does not retry 4xx), 401, 413, 415, and 503 with
``Retry-After`` while the write queue is full (Prometheus retries).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError as _PbDecodeError
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from heron.server.errors import (
    BadRequest,
    HeronHTTPError,
    PayloadTooLarge,
    ServiceUnavailable,
    UnsupportedMediaType,
)
from heron.server.ingest.http import authenticate, committed, read_raw
from heron.server.ingest.limits import MAX_TIME_NS
from heron.server.ingest.metrics import SeriesGuard, submit
from heron.server.ingest.otlp.metrics import (
    MAX_ATTRIBUTES,
    MAX_NAME_CHARS,
    MetricsDecodeResult,
    clip_label,
)
from heron.server.model.metric import MetricKind, MetricPoint
from heron.server.projects import Projects
from heron.server.store.base import QueueFull, Store

log = logging.getLogger("heron.ingest")

REMOTE_WRITE_VERSION = "0.1.0"
# Prometheus' metric types (prompb MetricMetadata.MetricType).
_COUNTER, _GAUGE, _HISTOGRAM, _GAUGEHISTOGRAM, _SUMMARY = 1, 2, 3, 4, 5
_COUNTER_SUFFIXES = ("_total", "_bucket", "_sum", "_count")
_MAX_METADATA = 10_000  # remembered metric types per project


def _build_messages() -> tuple[type[Any], type[Any]]:
    """``prometheus.WriteRequest`` (the fields remote write 1.0 sends), from a descriptor."""
    T = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(name="heron_prompb.proto", package="heron_prompb")
    fdp.syntax = "proto3"

    def msg(name: str, *fields: tuple[str, int, int, int, str]) -> None:
        m = fdp.message_type.add(name=name)
        for fname, number, ftype, label, tname in fields:
            f = m.field.add(name=fname, number=number, type=ftype, label=label)
            if tname:
                f.type_name = f".heron_prompb.{tname}"

    one, rep = T.LABEL_OPTIONAL, T.LABEL_REPEATED
    msg("Label", ("name", 1, T.TYPE_STRING, one, ""), ("value", 2, T.TYPE_STRING, one, ""))
    msg("Sample", ("value", 1, T.TYPE_DOUBLE, one, ""), ("timestamp", 2, T.TYPE_INT64, one, ""))
    msg(
        "Exemplar",
        ("labels", 1, T.TYPE_MESSAGE, rep, "Label"),
        ("value", 2, T.TYPE_DOUBLE, one, ""),
        ("timestamp", 3, T.TYPE_INT64, one, ""),
    )
    msg(
        "TimeSeries",
        ("labels", 1, T.TYPE_MESSAGE, rep, "Label"),
        ("samples", 2, T.TYPE_MESSAGE, rep, "Sample"),
        ("exemplars", 3, T.TYPE_MESSAGE, rep, "Exemplar"),
        # native histograms (field 4) are counted by presence only: bytes keep them opaque
        ("histograms", 4, T.TYPE_BYTES, rep, ""),
    )
    msg(
        "MetricMetadata",
        ("type", 1, T.TYPE_INT32, one, ""),
        ("metric_family_name", 2, T.TYPE_STRING, one, ""),
        ("help", 4, T.TYPE_STRING, one, ""),
        ("unit", 5, T.TYPE_STRING, one, ""),
    )
    msg(
        "WriteRequest",
        ("timeseries", 1, T.TYPE_MESSAGE, rep, "TimeSeries"),
        ("metadata", 3, T.TYPE_MESSAGE, rep, "MetricMetadata"),
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    write = message_factory.GetMessageClass(pool.FindMessageTypeByName("heron_prompb.WriteRequest"))
    meta = message_factory.GetMessageClass(
        pool.FindMessageTypeByName("heron_prompb.MetricMetadata")
    )
    return write, meta


WriteRequest, MetricMetadata = _build_messages()


def snappy_block(body: bytes, limit: int) -> bytes:
    """A snappy block (not framed) decompressed, never more than ``limit`` bytes."""
    size = shift = 0
    for i, b in enumerate(body[:10]):
        size |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            break
        if i == 9:
            raise BadRequest("request body is not valid snappy: bad length header")
    else:
        raise BadRequest("request body is not valid snappy: empty")
    if size > limit:
        raise PayloadTooLarge(
            f"decompressed request body of {size} bytes exceeds the limit of {limit} bytes"
        )
    import cramjam  # on the first remote-write request: most servers never get one

    try:
        return bytes(cramjam.snappy.decompress_raw(body))
    except Exception as e:  # cramjam raises its own DecompressionError
        raise BadRequest(f"request body is not valid snappy: {e}") from None


class _Kinds:
    """The metric types a project's Prometheus told us (bounded)."""

    def __init__(self) -> None:
        self.types: dict[str, int] = {}
        self.help: dict[str, tuple[str, str]] = {}

    def learn(self, metadata: Any) -> None:
        for md in metadata:
            name = md.metric_family_name
            if name and (name in self.types or len(self.types) < _MAX_METADATA):
                self.types[name] = md.type
                self.help[name] = (clip_label(md.help), md.unit[:64])

    def kind(self, name: str, has_le: bool) -> tuple[MetricKind, bool, str]:
        """(kind, cumulative, family) of a sample series."""
        t = self.types.get(name)
        family = name
        if t is None:
            for suffix in _COUNTER_SUFFIXES:
                if name.endswith(suffix):
                    base = name[: -len(suffix)]
                    bt = self.types.get(base)
                    if bt in (_HISTOGRAM, _SUMMARY, _GAUGEHISTOGRAM) or (
                        bt == _COUNTER and suffix == "_total"
                    ):
                        t, family = (_COUNTER if bt != _GAUGEHISTOGRAM else _GAUGE), base
                        break
        if t is None:
            if name.endswith(_COUNTER_SUFFIXES):
                return "counter", True, family
            return "gauge", False, family
        if t == _COUNTER:
            return "counter", True, family
        if t in (_HISTOGRAM, _SUMMARY) and (has_le or name.endswith(("_sum", "_count"))):
            return "counter", True, family
        return "gauge", False, family


def decode_write_request(raw: bytes, kinds: _Kinds) -> tuple[MetricsDecodeResult, int]:
    """Samples as points (cumulative ones listed, start time 0); also the count of
    staleness markers dropped."""
    req = WriteRequest()
    try:
        req.ParseFromString(raw)
    except (_PbDecodeError, ValueError, RuntimeError) as e:
        raise BadRequest(f"request body is not a valid prometheus.WriteRequest: {e}") from None
    kinds.learn(req.metadata)
    out = MetricsDecodeResult()
    stale = 0
    for ts in req.timeseries:
        labels: dict[str, str] = {}
        for lb in ts.labels:
            labels[lb.name] = clip_label(lb.value)
        name = labels.pop("__name__", "")
        n = len(ts.samples) + len(ts.histograms)
        if not n:
            continue
        if not name or len(name) > MAX_NAME_CHARS:
            out.reject(f"series without a valid __name__ ({n} samples)", n)
            continue
        if ts.histograms:
            out.reject(
                f"metric {name[:64]!r}: native histograms are not supported", len(ts.histograms)
            )
        if len(labels) > MAX_ATTRIBUTES:
            out.reject(f"metric {name[:64]!r}: more than {MAX_ATTRIBUTES} labels", len(ts.samples))
            continue
        service = labels.pop("service_name", "") or labels.pop("job", "") or "unknown_service"
        kind, cumulative, family = kinds.kind(name, "le" in labels)
        description, unit = kinds.help.get(family, ("", ""))
        for smp in ts.samples:
            v = smp.value
            if not math.isfinite(v):
                if math.isnan(v):
                    stale += 1
                else:
                    out.reject(f"metric {name[:64]!r}: sample value {v} rejected")
                continue
            t = smp.timestamp * 1_000_000
            if not 0 < t <= MAX_TIME_NS:
                out.reject(f"metric {name[:64]!r}: timestamp {smp.timestamp} ms out of range")
                continue
            if cumulative:
                if v < 0:
                    out.reject(f"metric {name[:64]!r}: counter value {v} is negative")
                    continue
                out.cumulative.append((len(out.points), 0))
            out.points.append(
                MetricPoint(
                    t, name, kind, service, dict(labels), v, unit=unit, description=description
                )
            )
    return out, stale


class RemoteWriteIngest:
    """ASGI-facing handler for ``POST /api/v1/write``."""

    def __init__(
        self,
        store: Store,
        guard: SeriesGuard,
        projects: Projects,
        max_body_bytes: int,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.store = store
        self.guard = guard
        self.projects = projects
        self.max_body_bytes = max_body_bytes
        self.clock = clock
        self._kinds: dict[int, _Kinds] = {}
        self.counters = {"samples_received": 0, "staleness_markers_dropped": 0}
        self._next_log = 0.0

    async def __call__(self, request: Request) -> Response:
        try:
            return await self._handle(request)
        except HeronHTTPError as err:
            return PlainTextResponse(err.message + "\n", err.status, headers=err.headers)

    async def _handle(self, request: Request) -> Response:
        # The key first: an anonymous request learns nothing about what is accepted.
        project = authenticate(request, self.projects)
        full = request.headers.get("content-type", "")
        ctype = full.split(";")[0].strip().lower()
        if ctype != "application/x-protobuf" or "io.prometheus.write.v2" in full:
            raise UnsupportedMediaType(
                f"unsupported Content-Type {full or '(none)'!r}: use application/x-protobuf"
                " (remote write 1.0, prometheus.WriteRequest)"
            )
        encoding = request.headers.get("content-encoding", "").strip().lower()
        if encoding != "snappy":
            raise UnsupportedMediaType(
                f"unsupported Content-Encoding {encoding or '(none)'!r}: use snappy"
            )
        body = await read_raw(request, self.max_body_bytes)
        raw = snappy_block(body, self.max_body_bytes)
        kinds = self._kinds.setdefault(project, _Kinds())
        result, stale = decode_write_request(raw, kinds)
        self.counters["samples_received"] += len(result.points) + result.rejected + stale
        self.counters["staleness_markers_dropped"] += stale
        try:
            fut = submit(self.store, self.guard, project, result)
        except QueueFull as e:
            raise ServiceUnavailable(f"{e}; retry later", {"Retry-After": "1"}) from None
        if fut is not None:
            await committed(fut, "samples")
        if result.rejected and time.monotonic() >= self._next_log:
            self._next_log = time.monotonic() + 60  # once a minute at most
            log.warning(
                "remote write: %d samples of a request rejected: %s",
                result.rejected,
                "; ".join(result.errors),
            )
        return Response(status_code=204)
