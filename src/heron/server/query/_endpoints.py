"""One endpoint in depth: its latency distribution and example traces.

The histogram reads rollup buckets, so it costs the same for any number of spans.
Example traces read raw entry spans of the endpoint, but only in the minutes the rollups
point at, so the store skips nearly all other spans (on DuckDB, by zone maps on
``start_ns``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from heron.server.histogram import (
    BUCKETS_PER_DOUBLING,
    bucket_lower_ns,
    bucket_upper_ns,
    quantile_from_buckets,
)
from heron.server.query._common import NS_PER_S, InvalidQuery, TimeRange, ms
from heron.server.store.base import Store
from heron.server.store.red import EndpointGuide, RollupFilter
from heron.server.store.traces import EntryFilter

# Display bins: merge rollup buckets (8 per doubling) into 4 per doubling, ~19% wide.
_MERGE = BUCKETS_PER_DOUBLING // 4
MAX_EXAMPLES = 100
Order = Literal["slowest", "recent"]


@dataclass(frozen=True, slots=True)
class HistogramBin:
    lo_ms: float
    hi_ms: float
    count: int


@dataclass(frozen=True, slots=True)
class LatencyHistogram:
    """Request counts per latency bin (log scale), with the percentiles over all of them."""

    total: int
    bins: list[HistogramBin] = field(default_factory=list)
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None


@dataclass(frozen=True, slots=True)
class ExampleTrace:
    """One request to an endpoint: the trace it belongs to and its entry span."""

    trace_id: str
    span_id: str
    start_ns: int
    duration_ms: float
    error: bool
    http_status: int | None
    release: str


@dataclass(frozen=True, slots=True)
class EndpointTraces:
    slowest: list[ExampleTrace] = field(default_factory=list)
    recent: list[ExampleTrace] = field(default_factory=list)
    errors: list[ExampleTrace] = field(default_factory=list)


def _rollups(project_id: int, time_range: TimeRange, where: EntryFilter) -> RollupFilter:
    lo, hi = time_range.minute_bounds()
    return RollupFilter(
        project_id,
        lo,
        hi,
        service=where.service,
        environment=where.environment,
        release=where.release,
        endpoint=where.endpoint,
    )


def latency_histogram(
    store: Store,
    project_id: int,
    time_range: TimeRange,
    service: str,
    endpoint: str,
    *,
    environment: str | None = None,
    release: str | None = None,
) -> LatencyHistogram:
    """The endpoint's latency distribution in the range, empty bins between included."""
    where = EntryFilter(service, endpoint, environment, release)
    rows = store.red.latency_buckets(_rollups(project_id, time_range, where))
    counts = {int(b): int(n) for b, n in rows if n}
    if not counts:
        return LatencyHistogram(total=0)
    merged: dict[int, int] = {}
    for b, n in counts.items():
        merged[b // _MERGE] = merged.get(b // _MERGE, 0) + n
    bins = [
        HistogramBin(
            lo_ms=round(bucket_lower_ns(g * _MERGE) / 1e6, 4),
            hi_ms=round(bucket_upper_ns(g * _MERGE + _MERGE - 1) / 1e6, 4),
            count=merged.get(g, 0),
        )
        for g in range(min(merged), max(merged) + 1)
    ]
    return LatencyHistogram(
        total=sum(counts.values()),
        bins=bins,
        p50_ms=ms(quantile_from_buckets(counts, 0.50)),
        p95_ms=ms(quantile_from_buckets(counts, 0.95)),
        p99_ms=ms(quantile_from_buckets(counts, 0.99)),
    )


def endpoint_traces(
    store: Store,
    project_id: int,
    time_range: TimeRange,
    service: str,
    endpoint: str,
    *,
    environment: str | None = None,
    release: str | None = None,
    limit: int = 10,
) -> EndpointTraces:
    """The slowest, the most recent and the most recent failed requests to an endpoint.

    The endpoint's rollup rows say which minutes hold the answers (the newest minutes
    with ``limit`` requests or errors; the minutes with requests in the slowest latency
    buckets), so only those minutes of raw spans are read. Rollup rows are written in
    the same transaction as their spans; should a list come back short all the same
    (minutes cut by the range's ends, expired spans), it is read again over the range.
    """
    if not 1 <= limit <= MAX_EXAMPLES:
        raise InvalidQuery(f"limit must be between 1 and {MAX_EXAMPLES} (got {limit})")
    where = EntryFilter(service, endpoint, environment, release)
    guide = _Guide(store.red.endpoint_guide(_rollups(project_id, time_range, where)))
    if not guide.total:
        return EndpointTraces()
    finder = _Finder(store, project_id, time_range, where, limit)
    minutes, floor_ns = guide.slowest(limit)
    expected = min(limit, guide.total)
    return EndpointTraces(
        slowest=finder.find(minutes, "slowest", expected, floor_ns),
        recent=finder.find(guide.recent(limit), "recent", expected),
        errors=finder.find(
            guide.errors(limit),
            "recent",
            min(limit, guide.errors_total),
            errors_only=True,
        )
        if guide.errors_total
        else [],
    )


class _Guide:
    """An endpoint's requests and errors per minute and per latency bucket, from rollups."""

    def __init__(self, guide: EndpointGuide) -> None:
        self.per_minute: dict[int, int] = {}
        self.errors_by_minute: dict[int, int] = {}
        self.top_bucket: dict[int, int] = {}  # minute → its slowest bucket
        for minute, count, errors, top in guide.minutes:
            self.per_minute[minute] = count
            self.top_bucket[minute] = top
            if errors:
                self.errors_by_minute[minute] = errors
        self.per_bucket: dict[int, int] = dict(guide.buckets)
        self.total = sum(self.per_minute.values())
        self.errors_total = sum(self.errors_by_minute.values())

    def _newest(self, per_minute: dict[int, int], limit: int) -> list[int]:
        picked, seen = [], 0
        for minute in sorted(per_minute, reverse=True):
            picked.append(minute)
            seen += per_minute[minute]
            if seen >= limit:
                break
        return picked

    def recent(self, limit: int) -> list[int]:
        newest = self._newest(self.per_minute, limit)
        return list(range(min(newest), max(newest) + 60, 60))

    def errors(self, limit: int) -> list[int]:
        return self._newest(self.errors_by_minute, limit)

    def slowest(self, limit: int) -> tuple[list[int], int]:
        """Minutes holding the slowest requests, and a duration they all reach (ns)."""
        floor, seen = 0, 0
        for b in sorted(self.per_bucket, reverse=True):
            floor, seen = b, seen + self.per_bucket[b]
            if seen >= limit:
                break
        minutes = [m for m, top in self.top_bucket.items() if top >= floor]
        # One nanosecond of margin below the bucket's bound, against float rounding.
        return sorted(minutes), max(int(bucket_lower_ns(floor)) - 1, 0)


class _Finder:
    """Top-N over the endpoint's spans in some minutes, with a whole-range fallback."""

    _MAX_RUNS = 64

    def __init__(
        self,
        store: Store,
        project_id: int,
        time_range: TimeRange,
        where: EntryFilter,
        limit: int,
    ) -> None:
        self.traces, self.project_id, self.range = store.traces, project_id, time_range
        self.where, self.limit = where, limit

    def _runs(self, minutes: list[int]) -> list[tuple[int, int]]:
        runs: list[list[int]] = []
        for m in sorted(minutes):
            if runs and runs[-1][1] == m:
                runs[-1][1] = m + 60
            else:
                runs.append([m, m + 60])
        if len(runs) > self._MAX_RUNS:
            runs = [[runs[0][0], runs[-1][1]]]
        lo, hi = self.range.start_ns, self.range.end_ns
        return [(max(a * NS_PER_S, lo), min(b * NS_PER_S, hi)) for a, b in runs]

    def _read(
        self, runs: list[tuple[int, int]], order: Order, floor_ns: int, errors_only: bool
    ) -> list[ExampleTrace]:
        rows = self.traces.endpoint_examples(
            self.project_id,
            self.where,
            runs,
            min_duration_ns=floor_ns,
            errors_only=errors_only,
            order=order,
            limit=self.limit,
        )
        return [
            ExampleTrace(
                trace_id=trace_id.hex(),
                span_id=f"{span_id:016x}",
                start_ns=start_ns,
                duration_ms=ms(duration_ns) or 0.0,
                error=bool(error),
                http_status=status,
                release=release,
            )
            for trace_id, span_id, start_ns, duration_ns, status, release, error in rows
        ]

    def find(
        self,
        minutes: list[int],
        order: Order,
        expected: int,
        floor_ns: int = 0,
        *,
        errors_only: bool = False,
    ) -> list[ExampleTrace]:
        """Read the guide's minutes; if that finds too few, the whole range, unfloored."""
        found = self._read(self._runs(minutes), order, floor_ns, errors_only) if minutes else []
        if len(found) < expected:
            whole = [(self.range.start_ns, self.range.end_ns)]
            found = self._read(whole, order, 0, errors_only)
        return found
