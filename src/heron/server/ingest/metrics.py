"""``POST /v1/metrics`` (OTLP/HTTP metrics, protobuf or OTLP-JSON) and what every metrics
route shares: the cardinality guard and the cumulative → increase conversion.

Same auth, limits and answers as ``/v1/traces`` (google.rpc.Status in the request's
encoding on errors; ``partialSuccess.rejectedDataPoints`` with a message for invalid
points and points over a cardinality limit). The request is acknowledged after its
points committed.

**Series and the cardinality guard.** A series is (metric name, service, attributes).
Per project, a metric may have at most ``metric_max_series`` series, a project at most
``metric_max_names`` metric names and ``metric_max_series_total`` series in all; points
of a new series over a limit are rejected and counted (``stats()``). Series unseen for
an hour are forgotten, freeing their place. The counts are seeded at start from the
series the store saw in the last hour (``store.metrics.known_series``). A metric keeps
the kind it was first seen with; points of another kind are rejected.

**Cumulative → increases.** For monotonic sums, histograms (per bucket) and summaries
(count and sum) sent with cumulative temporality, each point's increase over the
previous point of its series is stored. A drop of the value (or count, or any bucket),
changed bounds or a changed start time mark a reset: the new value is the increase. The
first point of a series counts in full when its start time is after this server started
listening (the series began while we listened); otherwise it is only the baseline and is
not stored, so a Heron restart never shows as a spike. A point not newer than the last
one of its series (a retried request) is not stored again.
"""

from __future__ import annotations

import logging
import operator
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import orjson
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceResponse,
)
from starlette.requests import Request
from starlette.responses import Response

from heron.server.analyze.span_scrub import SpanScrubber
from heron.server.errors import BadRequest, HeronHTTPError, ServiceUnavailable
from heron.server.ingest.http import (
    JSON,
    PROTOBUF,
    committed,
    media_type,
    otlp_body,
    status_response,
)
from heron.server.ingest.otlp.common import DecodeError
from heron.server.ingest.otlp.metrics import (
    Expo,
    MetricsDecodeResult,
    decode_metrics_json,
    expo_to_explicit,
)
from heron.server.ingest.otlp.metrics_wire import decode_metrics_wire
from heron.server.model.metric import MetricKind, MetricPoint, MetricWrite, series_key
from heron.server.projects import Projects
from heron.server.store.base import QueueFull, Store

log = logging.getLogger("heron.ingest")

SERIES_TTL_S = 3600
SWEEP_EVERY_S = 300


@dataclass(frozen=True, slots=True)
class MetricLimits:
    max_series: int = 10_000  # per metric name, per project
    max_names: int = 1_000  # per project
    max_series_total: int = 100_000  # per project


class _Series:
    __slots__ = ("key", "name", "kind", "seen_s", "cum", "attributes")

    def __init__(
        self, key: int, name: str, kind: MetricKind, seen_s: int, attributes: dict[str, str]
    ) -> None:
        self.key = key
        self.name = name
        self.kind = kind
        self.seen_s = seen_s
        self.attributes = attributes  # scrubbed: what is stored and keyed
        self.cum: tuple[Any, ...] | None = None  # the last cumulative point's totals


class _Project:
    __slots__ = ("lookup", "by_name", "kinds", "total")

    def __init__(self) -> None:
        # (name, service, attribute items) → series; only admitted series
        self.lookup: dict[tuple[Any, ...], _Series] = {}
        # name → {series key: last seen (Unix s)}: the admitted series of each metric
        self.by_name: dict[str, dict[int, int]] = {}
        self.kinds: dict[str, MetricKind] = {}
        self.total = 0


class SeriesGuard:
    """The cardinality guard and the cumulative state of the series it admitted, for
    every project of one server. Used from the event loop only (no locks)."""

    def __init__(
        self,
        limits: MetricLimits,
        store: Store | None = None,
        clock: Callable[[], int] = time.time_ns,
        scrub_keys: Iterable[str] = (),
    ) -> None:
        self.limits = limits
        # Labels are scrubbed like span attributes (secret keys, URLs, text), once per
        # new series: an admitted series keeps its scrubbed labels for every point.
        self.scrubber = SpanScrubber(scrub_keys)
        self.store = store
        self.clock = clock
        self.started_ns = clock()
        self._projects: dict[int, _Project] = {}
        self._next_sweep_s = self.started_ns // 1_000_000_000 + SWEEP_EVERY_S
        self.counters = {
            "points_accepted": 0,
            "points_rejected_invalid": 0,
            "points_rejected_cardinality": 0,
            "points_not_stored": 0,  # cumulative baselines and repeated points
        }

    # --------------------------------------------------------------- admission

    def _project(self, project_id: int) -> _Project:
        ps = self._projects.get(project_id)
        if ps is None:
            ps = self._projects[project_id] = _Project()
            self._seed(project_id, ps)
        return ps

    def _seed(self, project_id: int, ps: _Project) -> None:
        """Count the series the store saw in the last hour against the limits."""
        if self.store is None:
            return
        now_s = self.clock() // 1_000_000_000
        try:
            rows = self.store.metrics.known_series(project_id, now_s - SERIES_TTL_S)
        except Exception as e:  # no metrics reader yet, storage down: start empty
            log.warning("metrics: could not seed series counts of project %d: %s", project_id, e)
            return
        for name, key in rows:
            keys = ps.by_name.setdefault(name, {})
            if key not in keys:
                keys[key] = now_s
                ps.total += 1

    def admit(
        self, project_id: int, points: list[MetricPoint], out: MetricsDecodeResult
    ) -> list[_Series | None]:
        """The series of each point (its ``series`` key set), or None for a point
        rejected by a limit or a kind conflict (counted in ``out``)."""
        ps = self._project(project_id)
        now_s = self.clock() // 1_000_000_000
        if now_s >= self._next_sweep_s:
            self.sweep(now_s)
        lookup = ps.lookup
        result: list[_Series | None] = []
        for p in points:
            ident = (p.name, p.service, tuple(p.attributes.items()))
            s = lookup.get(ident)
            if s is None:
                s = self._new_series(ps, ident, p, now_s, out)
                if s is None:
                    result.append(None)
                    continue
            elif s.kind != p.kind:
                out.reject(f"metric {p.name[:64]!r} is a {s.kind}; a {p.kind} point cannot join it")
                self.counters["points_rejected_invalid"] += 1
                result.append(None)
                continue
            s.seen_s = now_s
            p.series = s.key
            p.attributes = s.attributes
            result.append(s)
        return result

    def _new_series(
        self,
        ps: _Project,
        ident: tuple[Any, ...],
        p: MetricPoint,
        now_s: int,
        out: MetricsDecodeResult,
    ) -> _Series | None:
        lim = self.limits
        name = p.name
        kind = ps.kinds.get(name)
        if kind is not None and kind != p.kind:
            out.reject(f"metric {name[:64]!r} is a {kind}; a {p.kind} point cannot join it")
            self.counters["points_rejected_invalid"] += 1
            return None
        attributes = self.scrubber.attributes(p.attributes)
        key = series_key(name, p.service, attributes)
        keys = ps.by_name.get(name)
        if keys is None:
            if len(ps.by_name) >= lim.max_names:
                return self._over(
                    out,
                    f"the project has reached {lim.max_names} metric names; {name[:64]!r} is not accepted",
                )
            keys = ps.by_name[name] = {}
        if key not in keys:
            if len(keys) >= lim.max_series:
                return self._over(
                    out,
                    f"metric {name[:64]!r} has reached its limit of {lim.max_series} series (HERON_METRIC_MAX_SERIES)",
                )
            if ps.total >= lim.max_series_total:
                return self._over(
                    out,
                    f"the project has reached {lim.max_series_total} series in all (HERON_METRIC_MAX_SERIES_TOTAL); new series of {name[:64]!r} are not accepted",
                )
            ps.total += 1
        keys[key] = now_s
        ps.kinds[name] = p.kind
        s = _Series(key, name, p.kind, now_s, attributes)
        if len(ps.lookup) < 2 * lim.max_series_total:
            ps.lookup[ident] = s
        return s

    def _over(self, out: MetricsDecodeResult, message: str) -> _Series | None:
        out.reject(message)
        self.counters["points_rejected_cardinality"] += 1
        return None

    def sweep(self, now_s: int) -> None:
        """Forget series unseen for :data:`SERIES_TTL_S` (they free their place)."""
        self._next_sweep_s = now_s + SWEEP_EVERY_S
        cutoff = now_s - SERIES_TTL_S
        for ps in self._projects.values():
            for ident, s in list(ps.lookup.items()):
                if s.seen_s < cutoff:
                    del ps.lookup[ident]
                else:
                    keys = ps.by_name.get(s.name)
                    if keys is not None and s.key in keys:
                        keys[s.key] = max(keys[s.key], s.seen_s)
            for name, keys in list(ps.by_name.items()):
                for key, seen in list(keys.items()):
                    if seen < cutoff:
                        del keys[key]
                        ps.total -= 1
                if not keys:
                    del ps.by_name[name]
                    ps.kinds.pop(name, None)

    def stats(self) -> dict[str, int]:
        """Counters and gauges for ``GET /metrics`` (``heron_metric_*``)."""
        out = dict(self.counters)
        out["series_active"] = sum(ps.total for ps in self._projects.values())
        out["metric_names"] = sum(len(ps.by_name) for ps in self._projects.values())
        return out

    # --------------------------------------------------------------- conversion

    def prepare(
        self, project_id: int, result: MetricsDecodeResult
    ) -> tuple[MetricWrite, list[tuple[_Series, tuple[Any, ...] | None]]]:
        """Admit the decoded points and turn cumulative ones into increases. Returns the
        write and the cumulative states replaced (to restore if the write is refused)."""
        points = result.points
        series = self.admit(project_id, points, result)
        cumulative = dict(result.cumulative) if result.cumulative else {}
        keep: list[MetricPoint] = []
        undo: list[tuple[_Series, tuple[Any, ...] | None]] = []
        started = self.started_ns
        not_stored = 0
        for i, p in enumerate(points):
            s = series[i]
            if s is None:
                continue
            start = cumulative.get(i)
            if start is not None:
                undo.append((s, s.cum))
                if not to_increase(s, p, start, result.expo.get(i), started):
                    not_stored += 1
                    continue
            keep.append(p)
        self.counters["points_accepted"] += len(keep)
        self.counters["points_not_stored"] += not_stored
        return MetricWrite(project_id, keep), undo

    def count_invalid(self, n: int) -> None:
        self.counters["points_rejected_invalid"] += n

    @staticmethod
    def undo(changes: list[tuple[_Series, tuple[Any, ...] | None]]) -> None:
        for s, cum in reversed(changes):
            s.cum = cum


def to_increase(
    s: _Series, p: MetricPoint, start_ns: int, expo: Expo | None, started_ns: int
) -> bool:
    """Turn cumulative point ``p`` of series ``s`` into its increase, in place; False when
    it is not to be stored (a baseline, or not newer than the last point)."""
    prev = s.cum
    if prev is not None and p.time_ns <= prev[1]:
        return False
    kind = p.kind
    if kind == "histogram" and expo is not None:
        s.cum = (start_ns, p.time_ns, p.count, p.value, expo)
    elif kind == "histogram":
        s.cum = (start_ns, p.time_ns, p.count, p.value, p.bounds, p.bucket_counts)
    elif kind == "summary":
        s.cum = (start_ns, p.time_ns, p.count, p.value)
    else:
        s.cum = (start_ns, p.time_ns, p.value)
    if prev is None:
        if start_ns <= started_ns:
            return False  # began before we listened: a baseline only
        if expo is not None:
            p.bounds, p.bucket_counts = expo_to_explicit(expo)
        return True
    restarted = start_ns != prev[0] and start_ns and prev[0]
    if kind == "counter" or kind == "updown" or kind == "gauge":
        if not restarted and p.value >= prev[2]:
            p.value = p.value - prev[2]
        return True
    if p.count < prev[2]:
        restarted = True
    if kind == "summary":
        if not restarted:
            p.count -= prev[2]
            p.value -= prev[3]
        return True
    if expo is not None:
        delta = None if restarted else _expo_delta(expo, prev[4])
        if delta is not None:
            p.count -= prev[2]
            p.value -= prev[3]
            p.min = p.max = None
            expo = delta
        p.bounds, p.bucket_counts = expo_to_explicit(expo)
        return True
    if restarted or p.bounds != prev[4]:
        return True
    prev_counts = prev[5]
    counts = p.bucket_counts
    if prev_counts and counts:
        if len(counts) != len(prev_counts):  # equal bounds make this impossible
            raise ValueError("bucket counts do not match their bounds")
        diff = tuple(map(operator.sub, counts, prev_counts))
        if min(diff) < 0:
            return True  # a bucket went down: a reset
        p.bucket_counts = diff
    p.count -= prev[2]
    p.value -= prev[3]
    p.min = p.max = None  # cumulative min/max say nothing about the interval
    return True


def _downscale(offset: int, counts: tuple[int, ...], by: int) -> dict[int, int]:
    out: dict[int, int] = {}
    for j, c in enumerate(counts):
        if c:
            i = (offset + j) >> by
            out[i] = out.get(i, 0) + c
    return out


def _expo_delta(cur: Expo, prev: Expo) -> Expo | None:
    """``cur - prev`` in ``cur``'s scale, or None for a reset (a bucket went down, or
    the scale went up, which only a restarted histogram does)."""
    if prev.scale < cur.scale:
        return None
    by = prev.scale - cur.scale
    zero = cur.zero_count - prev.zero_count
    if zero < 0:
        return None
    sides = []
    for offset, counts, p_offset, p_counts in (
        (cur.pos_offset, cur.pos, prev.pos_offset, prev.pos),
        (cur.neg_offset, cur.neg, prev.neg_offset, prev.neg),
    ):
        before = _downscale(p_offset, p_counts, by)
        diff = list(counts)
        for i, c in before.items():
            j = i - offset
            if not 0 <= j < len(diff):
                return None
            diff[j] -= c
            if diff[j] < 0:
                return None
        sides.append(tuple(diff))
    return Expo(
        cur.scale, zero, cur.zero_threshold, cur.pos_offset, sides[0], cur.neg_offset, sides[1]
    )


# ---------------------------------------------------------------------- handler


def success_response(rejected: int, errors: list[str], as_json: bool) -> Response:
    message = "; ".join(errors)
    if as_json:
        doc: dict[str, Any] = {}
        if rejected:
            doc["partialSuccess"] = {"rejectedDataPoints": str(rejected), "errorMessage": message}
        return Response(orjson.dumps(doc), 200, media_type=JSON)
    resp = ExportMetricsServiceResponse()
    if rejected:
        resp.partial_success.rejected_data_points = rejected
        resp.partial_success.error_message = message
    return Response(resp.SerializeToString(), 200, media_type=PROTOBUF)


def submit(
    store: Store, guard: SeriesGuard, project: int, result: MetricsDecodeResult
) -> Future[int] | None:
    """Admit, convert and queue the decoded points; None when none is to be stored.
    QueueFull (→ 503) leaves the cumulative state as it was, so the retry counts."""
    invalid = result.rejected
    guard.count_invalid(invalid)
    write, undo = guard.prepare(project, result)
    if not write.points:
        return None
    try:
        return store.submit_metrics(write)
    except QueueFull:
        guard.undo(undo)
        guard.counters["points_accepted"] -= len(write.points)
        raise


class MetricIngest:
    """ASGI-facing handler for ``POST /v1/metrics``."""

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

    async def __call__(self, request: Request) -> Response:
        ctype = media_type(request)
        try:
            return await self._handle(request, ctype)
        except HeronHTTPError as err:
            return status_response(err, ctype == JSON)

    async def _handle(self, request: Request, ctype: str) -> Response:
        project, body = await otlp_body(request, ctype, self.projects, self.max_body_bytes)
        now = self.clock()
        try:
            if ctype == JSON:
                result = decode_metrics_json(body, now)
            else:
                result = decode_metrics_wire(body, now)
        except DecodeError as e:
            raise BadRequest(str(e)) from None
        try:
            fut = submit(self.store, self.guard, project, result)
        except QueueFull as e:
            raise ServiceUnavailable(f"{e}; retry later", {"Retry-After": "1"}) from None
        if fut is not None:
            await committed(fut, "data points")
        return success_response(result.rejected, result.errors, ctype == JSON)
