"""Metrics queries: the catalogue, label keys and values, and aggregated series.

Reads go through ``store.metrics`` (``store/metrics.py``), which answers per-minute
rollups merged per group and step; this module turns them into values per aggregation:

- gauge / updown: ``avg`` mean of the samples, ``min``/``max``, ``last`` (and ``sum``)
  the sum over the group's series of each one's last value in the step, ``count`` the
  samples;
- counter: ``sum``/``increase`` the total increase in the step, ``rate`` per second,
  ``count`` the data points;
- histogram: ``p50``..``p99`` from the merged buckets, interpolated linearly within the
  bucket (bounded by the observed min/max when known), ``avg`` sum/count, ``count`` the
  observations, ``rate`` observations per second, ``sum``, ``min``, ``max``;
- summary: ``avg``, ``count``, ``rate``, ``sum``.

A step without data is ``None``. Without a step one is chosen from the range: the
smallest of 1, 2, 5, 10, 20, 30 min, 1, 2, 3, 6, 12 h, 1 d giving at most 300 points.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from heron.server.query._common import NS_PER_S, InvalidQuery, TimeRange
from heron.server.store.base import Store
from heron.server.store.metrics import CatalogRow, ExemplarRow, MetricFilter, StepRow

Agg = Literal[
    "avg", "sum", "min", "max", "last", "count", "rate", "increase", "p50", "p90", "p95", "p99"
]
AGGS: tuple[str, ...] = get_args(Agg)
_GAUGE = ("avg", "sum", "min", "max", "last", "count")
AGGS_BY_KIND: dict[str, tuple[str, ...]] = {
    "gauge": _GAUGE,
    "updown": _GAUGE,
    "counter": ("sum", "increase", "rate", "count"),
    "histogram": ("p50", "p90", "p95", "p99", "avg", "count", "rate", "sum", "min", "max"),
    "summary": ("avg", "count", "rate", "sum"),
}
STEPS_S = (60, 120, 300, 600, 1200, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400)
TARGET_POINTS = 300
MAX_POINTS = 20_000  # 7 days at one minute is 10,080
MAX_GROUP_BY = 5
EXEMPLAR_LIMIT = 200
_QUANTILES = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}


class UnknownMetric(LookupError):
    """No series of this metric name exist in the project (the API answers 404)."""


@dataclass(frozen=True)
class SeriesQuery:
    metric: str
    agg: Agg = "avg"
    group_by: tuple[str, ...] = ()
    match: tuple[tuple[str, str], ...] = ()
    step_s: int | None = None  # None: chosen from the range (multiple of 60)


@dataclass(frozen=True)
class Series:
    labels: dict[str, str]
    points: list[tuple[int, float | None]]  # (step start, Unix s; value)


@dataclass(frozen=True)
class SeriesResult:
    metric: str
    kind: str
    unit: str
    agg: str
    step_s: int
    series: list[Series]
    exemplars: list[ExemplarRow]


def _bounds_s(tr: TimeRange, step_s: int = 60) -> tuple[int, int]:
    return tr.minute_bounds(step_s)


def list_metrics(
    store: Store, project_id: int, tr: TimeRange, service: str | None = None
) -> list[CatalogRow]:
    """Metrics with data in the range (optionally of one service), by name."""
    lo, hi = _bounds_s(tr)
    return store.metrics.catalog(project_id, lo, hi, service or None)


def _filter(
    project_id: int, metric: str, tr: TimeRange, match: tuple[tuple[str, str], ...]
) -> MetricFilter:
    if not metric:
        raise InvalidQuery("'metric' is required")
    for key, _ in match:
        if not key:
            raise InvalidQuery("a filter needs a label key: key=value")
    lo, hi = _bounds_s(tr)
    return MetricFilter(project_id, metric, lo, hi, tuple(match))


def label_keys(
    store: Store,
    project_id: int,
    metric: str,
    tr: TimeRange,
    match: tuple[tuple[str, str], ...] = (),
) -> list[str]:
    """The label keys of the metric's (filtered) series, ``service`` included."""
    return store.metrics.label_keys(_filter(project_id, metric, tr, match))


def label_values(
    store: Store,
    project_id: int,
    metric: str,
    key: str,
    tr: TimeRange,
    match: tuple[tuple[str, str], ...] = (),
    limit: int = 100,
) -> list[tuple[str, int]]:
    """(value, series) of one label, most series first."""
    if not key:
        raise InvalidQuery("'key' is required")
    if not 1 <= limit <= 10_000:
        raise InvalidQuery("'limit' must be between 1 and 10000")
    return store.metrics.label_values(_filter(project_id, metric, tr, match), key, limit)


def metric_info(store: Store, project_id: int, metric: str) -> CatalogRow | None:
    """The metric's catalogue row over all time, or None when it has no series."""
    return store.metrics.describe(project_id, metric)


def choose_step(tr: TimeRange) -> int:
    """The smallest of ``STEPS_S`` giving at most ``TARGET_POINTS`` points."""
    span_s = (tr.end_ns - tr.start_ns) / NS_PER_S
    for step in STEPS_S:
        if span_s / step <= TARGET_POINTS:
            return step
    return -(-int(span_s) // (TARGET_POINTS * 86_400)) * 86_400


def percentile(
    q: float,
    bounds: tuple[float, ...],
    buckets: tuple[int, ...],
    lo: float | None = None,
    hi: float | None = None,
) -> float | None:
    """The ``q`` quantile of an explicit-bounds histogram, interpolated linearly within
    its bucket; the first bucket starts at ``lo`` (the observed minimum, else 0 or the
    first bound if that is negative) and the overflow bucket ends at ``hi`` (the observed
    maximum, else the last bound). None without observations."""
    total = sum(buckets)
    if total <= 0 or len(buckets) != len(bounds) + 1:
        return None
    rank = q * total
    seen = 0
    for i, n in enumerate(buckets):
        if n <= 0:
            continue
        if seen + n >= rank:
            low = (
                bounds[i - 1]
                if i > 0
                else (lo if lo is not None else min(0.0, bounds[0] if bounds else 0.0))
            )
            high = (
                bounds[i]
                if i < len(bounds)
                else (hi if hi is not None else (bounds[-1] if bounds else low))
            )
            if lo is not None:
                low = max(low, lo)
            if hi is not None:
                high = min(high, hi)
            if high < low:
                high = low
            return low + (high - low) * (rank - seen) / n
        seen += n
    return hi


def _value(agg: str, kind: str, row: StepRow, step_s: int) -> float | None:
    if agg in _QUANTILES:
        return percentile(_QUANTILES[agg], row.bounds, row.buckets, row.min, row.max)
    if agg == "count":
        return float(row.count)
    if agg == "min":
        return row.min
    if agg == "max":
        return row.max
    if agg == "rate":
        return (row.sum if kind == "counter" else row.count) / step_s
    if kind in ("gauge", "updown"):
        if agg == "avg":
            return row.sum / row.count if row.count else None
        return row.last  # last, sum: the group's total now
    if agg in ("sum", "increase"):
        return row.sum
    if agg == "avg":
        return row.sum / row.count if row.count else None
    return None


def query_series(store: Store, project_id: int, q: SeriesQuery, tr: TimeRange) -> SeriesResult:
    """One series per group (at most ``store.metrics.MAX_GROUPS``), a value per step.

    Raises ``UnknownMetric`` when the metric has no series, ``InvalidQuery`` for an
    aggregation the metric's kind has no meaning for, or a bad step.
    """
    if q.agg not in AGGS:
        raise InvalidQuery(f"unknown aggregation {q.agg!r}; one of: {', '.join(AGGS)}")
    if len(q.group_by) > MAX_GROUP_BY or any(not k for k in q.group_by):
        raise InvalidQuery(f"group by at most {MAX_GROUP_BY} non-empty label keys")
    where = _filter(project_id, q.metric, tr, q.match)
    info = metric_info(store, project_id, q.metric)
    if info is None:
        raise UnknownMetric(f"no metric named {q.metric!r}")
    allowed = AGGS_BY_KIND.get(info.kind, ())
    if q.agg not in allowed:
        raise InvalidQuery(
            f"{q.agg!r} does not apply to {q.metric!r} (a {info.kind}); use one of: "
            + ", ".join(allowed)
        )
    step = q.step_s if q.step_s is not None else choose_step(tr)
    if step <= 0 or step % 60:
        raise InvalidQuery("'step' must be a positive multiple of 60 seconds")
    lo, hi = _bounds_s(tr, step)
    if (hi - lo) // step > MAX_POINTS:
        raise InvalidQuery(f"too many steps: at most {MAX_POINTS} points per series")
    where = MetricFilter(project_id, q.metric, lo, hi, where.match)
    rows = store.metrics.step_rows(where, step, q.group_by)
    by_group: dict[tuple[str, ...], dict[int, float | None]] = {}
    for row in rows:
        by_group.setdefault(row.group, {})[row.step_s] = _value(q.agg, info.kind, row, step)
    grid = range(lo, hi, step)
    series = [
        Series(
            dict(zip(q.group_by, group, strict=True)),
            [(t, values.get(t)) for t in grid],
        )
        for group, values in by_group.items()
    ]
    exemplars = store.metrics.exemplars(where, EXEMPLAR_LIMIT)
    return SeriesResult(q.metric, info.kind, info.unit, q.agg, step, series, exemplars)


def window_values(
    store: Store, project_id: int, q: SeriesQuery, tr: TimeRange
) -> dict[tuple[str, ...], float | None]:
    """One value per group of ``q.group_by`` over the whole range (the alert evaluator's
    read): the per-minute rows of each group merged into one, then aggregated as
    :func:`query_series` aggregates a step (``rate`` per second of the range).

    Raises ``UnknownMetric`` and ``InvalidQuery`` as :func:`query_series` does.
    """
    if q.agg not in AGGS:
        raise InvalidQuery(f"unknown aggregation {q.agg!r}; one of: {', '.join(AGGS)}")
    info = metric_info(store, project_id, q.metric)
    if info is None:
        raise UnknownMetric(f"no metric named {q.metric!r}")
    if q.agg not in AGGS_BY_KIND.get(info.kind, ()):
        raise InvalidQuery(f"{q.agg!r} does not apply to {q.metric!r} (a {info.kind})")
    where = _filter(project_id, q.metric, tr, q.match)
    merged: dict[tuple[str, ...], StepRow] = {}
    for row in store.metrics.step_rows(where, 60, q.group_by):  # ordered by group, step
        prev = merged.get(row.group)
        merged[row.group] = row if prev is None else _merge(prev, row)
    span_s = max(where.hi_s - where.lo_s, 60)
    return {g: _value(q.agg, info.kind, row, span_s) for g, row in merged.items()}


def _merge(a: StepRow, b: StepRow) -> StepRow:
    """Two steps of one group as one (``b`` the later: its ``last`` wins)."""
    same = a.bounds == b.bounds
    return StepRow(
        group=a.group,
        step_s=a.step_s,
        samples=a.samples + b.samples,
        count=a.count + b.count,
        sum=a.sum + b.sum,
        min=b.min if a.min is None else a.min if b.min is None else min(a.min, b.min),
        max=b.max if a.max is None else a.max if b.max is None else max(a.max, b.max),
        last=b.last if b.last is not None else a.last,
        series=max(a.series, b.series),
        bounds=a.bounds or b.bounds,
        buckets=(
            tuple(x + y for x, y in zip(a.buckets, b.buckets, strict=True))
            if same and a.buckets and b.buckets
            else a.buckets or b.buckets
        ),
    )
