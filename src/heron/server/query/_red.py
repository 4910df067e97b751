"""RED metrics (rate, errors, duration) and Apdex per service, endpoint and minute.

Everything here reads the per-minute rollups only (``RedReader``), never raw spans, so a
30-day table costs the same as a one-hour one.
Percentiles and Apdex come from the latency buckets (see ``heron.server.histogram``).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from heron.server.histogram import NUM_BUCKETS, count_at_most, quantile_from_buckets
from heron.server.query._common import NS_PER_MS, InvalidQuery, TimeRange, filling_share, ms
from heron.server.store.base import Store
from heron.server.store.red import GroupRow, RollupFilter

MAX_POINTS = 20_000

SERVICE_SORTS = (
    "requests",
    "rpm",
    "errors",
    "error_rate",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "apdex",
    "avg_ms",
    "service",
)
ENDPOINT_SORTS = (*SERVICE_SORTS[:-1], "total_time_ms", "time_share", "endpoint")
# Name columns sort ascending by default, figures descending (biggest first).
NAME_SORTS = frozenset({"service", "endpoint"})


@dataclass(frozen=True, slots=True)
class ServiceStats:
    """RED figures of one service's entry spans over a time range."""

    service: str
    requests: int
    rpm: float
    errors: int
    error_rate: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    apdex: float | None
    avg_ms: float | None


@dataclass(frozen=True, slots=True)
class EndpointStats:
    """RED figures of one endpoint (``METHOD route`` or span name) of a service."""

    endpoint: str
    requests: int
    rpm: float
    errors: int
    error_rate: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    apdex: float | None
    avg_ms: float | None
    total_time_ms: float
    time_share: float
    """This endpoint's share (0..1) of the time the service spent in all its endpoints."""


@dataclass(frozen=True, slots=True)
class TimeseriesPoint:
    """Figures of one step starting at Unix second ``t``; empty steps have requests 0."""

    t: int
    requests: int
    rpm: float
    errors: int
    error_rate: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    apdex: float | None
    avg_ms: float | None
    partial: bool = False
    """The step is still filling (it holds "now"): ``rpm`` is over its elapsed part, and
    charts draw it dashed."""


@dataclass(frozen=True, slots=True)
class Timeseries:
    service: str
    endpoint: str | None
    step_s: int
    points: list[TimeseriesPoint]


class _Dist:
    """Counters and latency buckets of one group, summed from rollup rows."""

    __slots__ = ("counts", "errors", "first_s", "requests", "sum_ns")

    def __init__(
        self,
        requests: int = 0,
        errors: int = 0,
        sum_ns: float = 0.0,
        counts: dict[int, int] | None = None,
        first_s: int | None = None,
    ) -> None:
        self.requests = requests
        self.errors = errors
        self.sum_ns = sum_ns
        self.counts = counts or {}
        self.first_s = first_s  # the first minute with data (Unix s)

    def figures(self, minutes: float, apdex_t_ms: float) -> dict[str, Any]:
        n = self.requests
        return {
            "requests": n,
            "rpm": round(n / minutes, 3),
            "errors": self.errors,
            "error_rate": self.errors / n if n else 0.0,
            "p50_ms": ms(quantile_from_buckets(self.counts, 0.50)),
            "p95_ms": ms(quantile_from_buckets(self.counts, 0.95)),
            "p99_ms": ms(quantile_from_buckets(self.counts, 0.99)),
            "apdex": _apdex(self.counts, n, apdex_t_ms),
            "avg_ms": ms(self.sum_ns / n) if n else None,
        }


@functools.lru_cache(maxsize=64)
def _apdex_weights(t_ms: float) -> tuple[float, ...]:
    """Each bucket's Apdex credit per sample, interpolated exactly as ``histogram.apdex``.

    Apdex is linear in the bucket counts, so weighting each count by its bucket's credit
    gives the same score without re-walking the buckets for every group.
    """
    t_ns = t_ms * NS_PER_MS
    return tuple(
        (count_at_most({b: 1}, t_ns) + count_at_most({b: 1}, 4 * t_ns)) / 2.0
        for b in range(NUM_BUCKETS)
    )


def _apdex(counts: dict[int, int], total: int, t_ms: float) -> float | None:
    if not total:
        return None
    weights = _apdex_weights(t_ms)
    return sum(c * weights[b] for b, c in counts.items()) / total


def _dists(rows: Iterable[GroupRow]) -> dict[Any, _Dist]:
    return {
        g: _Dist(int(n), int(e), float(sum_ns), dict(zip(buckets, counts, strict=True)), first)
        for g, n, e, sum_ns, buckets, counts, first in rows
    }


T = TypeVar("T")


def _sorted(
    rows: Iterable[T], sort: str, allowed: Sequence[str], descending: bool | None
) -> list[T]:
    if sort not in allowed:
        raise InvalidQuery(f"cannot sort by {sort!r}: use one of {', '.join(allowed)}")
    if descending is None:
        descending = sort not in NAME_SORTS
    name = "endpoint" if "endpoint" in allowed else "service"
    by_name = sorted(rows, key=lambda r: getattr(r, name))
    present = [r for r in by_name if getattr(r, sort) is not None]
    missing = [r for r in by_name if getattr(r, sort) is None]
    return sorted(present, key=lambda r: getattr(r, sort), reverse=descending) + missing


def service_table(
    store: Store,
    project_id: int,
    time_range: TimeRange,
    *,
    environment: str | None = None,
    release: str | None = None,
    apdex_t_ms: float = 500.0,
    sort: str = "requests",
    descending: bool | None = None,
) -> list[ServiceStats]:
    """Every service with entry spans in the range, with its RED figures and Apdex."""
    lo, hi = time_range.minute_bounds()
    where = RollupFilter(project_id, lo, hi, environment=environment, release=release)
    dists = _dists(store.red.group_totals(where, "service"))
    rows = [
        ServiceStats(service=name, **d.figures(time_range.covered_minutes(d.first_s), apdex_t_ms))
        for name, d in dists.items()
    ]
    return _sorted(rows, sort, SERVICE_SORTS, descending)


def endpoint_table(
    store: Store,
    project_id: int,
    time_range: TimeRange,
    service: str,
    *,
    environment: str | None = None,
    release: str | None = None,
    apdex_t_ms: float = 500.0,
    sort: str = "requests",
    descending: bool | None = None,
) -> list[EndpointStats]:
    """The endpoints of one service with RED figures, Apdex and share of total time."""
    lo, hi = time_range.minute_bounds()
    where = RollupFilter(
        project_id, lo, hi, service=service, environment=environment, release=release
    )
    dists = _dists(store.red.group_totals(where, "endpoint"))
    total_ns = sum(d.sum_ns for d in dists.values())
    rows = [
        EndpointStats(
            endpoint=name,
            **d.figures(time_range.covered_minutes(d.first_s), apdex_t_ms),
            total_time_ms=round(d.sum_ns / NS_PER_MS, 3),
            time_share=d.sum_ns / total_ns if total_ns else 0.0,
        )
        for name, d in dists.items()
    ]
    return _sorted(rows, sort, ENDPOINT_SORTS, descending)


def service_timeseries(
    store: Store,
    project_id: int,
    time_range: TimeRange,
    service: str,
    *,
    endpoint: str | None = None,
    step_s: int = 60,
    environment: str | None = None,
    release: str | None = None,
    apdex_t_ms: float = 500.0,
    now_ns: int | None = None,
) -> Timeseries:
    """One point per ``step_s`` (a multiple of 60) for a service or one of its endpoints.

    Steps are aligned to multiples of ``step_s`` since the epoch; every step overlapping
    the range has a point, empty ones included. Given ``now_ns``, the step still filling
    then is ``partial`` and its rate is over the part that has elapsed.
    """
    if step_s <= 0 or step_s % 60:
        raise InvalidQuery(f"step_s must be a positive multiple of 60 (got {step_s})")
    lo, hi = time_range.minute_bounds(step_s)
    if (hi - lo) // step_s > MAX_POINTS:
        raise InvalidQuery(
            f"too many points ({(hi - lo) // step_s}); use a larger step_s or a shorter range "
            f"(at most {MAX_POINTS} points)"
        )
    where = RollupFilter(
        project_id,
        lo,
        hi,
        service=service,
        environment=environment,
        release=release,
        endpoint=endpoint,
    )
    dists = _dists(store.red.step_totals(where, step_s))
    points = [
        _point(t, dists.get(t, _Dist()), step_s, now_ns, apdex_t_ms) for t in range(lo, hi, step_s)
    ]
    return Timeseries(service=service, endpoint=endpoint, step_s=step_s, points=points)


def _point(
    t: int, dist: _Dist, step_s: int, now_ns: int | None, apdex_t_ms: float
) -> TimeseriesPoint:
    share = filling_share(t, step_s, now_ns)
    minutes = step_s / 60 * (share or 1.0)
    return TimeseriesPoint(t=t, **dist.figures(minutes, apdex_t_ms), partial=share is not None)
