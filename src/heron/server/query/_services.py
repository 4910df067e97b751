"""Services at a glance besides the RED tables: sparklines, filter choices, known names.

Everything here reads the per-minute rollups only (``RedReader``; ``has_data`` aside),
so the cost does not grow with the number of stored spans.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from heron.server.histogram import quantile_from_buckets
from heron.server.query._common import NS_PER_S, InvalidQuery, TimeRange, filling_share, ms
from heron.server.store.base import Store
from heron.server.store.red import ChoiceColumn, RollupFilter

# Steps (seconds) a chart may use; the smallest giving at most the wanted points wins.
NICE_STEPS_S = (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


def chart_step_s(time_range: TimeRange, max_points: int) -> int:
    """The smallest nice step (a multiple of 60 s) giving at most ``max_points`` points."""
    if max_points < 1:
        raise InvalidQuery("max_points must be at least 1")
    span_s = (time_range.end_ns - time_range.start_ns) / NS_PER_S
    for step in NICE_STEPS_S:
        if span_s / step <= max_points:
            return step
    return -(-int(span_s) // max_points // 86400) * 86400


@dataclass(frozen=True, slots=True)
class Sparkline:
    """Per-step figures of one service: ``t`` (Unix s), requests/min, error rate, p95."""

    service: str
    step_s: int
    t: list[int] = field(default_factory=list)
    rpm: list[float] = field(default_factory=list)
    error_rate: list[float | None] = field(default_factory=list)
    p95_ms: list[float | None] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Choice:
    """A value offered by a filter (an environment or a release) and its request count."""

    value: str
    requests: int


def _rollup_filter(
    project_id: int,
    time_range: TimeRange,
    step_s: int = 60,
    *,
    service: str | None = None,
    environment: str | None = None,
) -> RollupFilter:
    lo, hi = time_range.minute_bounds(step_s)
    return RollupFilter(project_id, lo, hi, service=service, environment=environment)


def service_sparklines(
    store: Store,
    project_id: int,
    time_range: TimeRange,
    *,
    environment: str | None = None,
    max_points: int = 48,
    now_ns: int | None = None,
) -> dict[str, Sparkline]:
    """One small series per service with entry spans in the range; empty steps are zero.

    Given ``now_ns``, the step still filling then is left out: its few requests so far
    would read as a sudden drop."""
    step = chart_step_s(time_range, max_points)
    where = _rollup_filter(project_id, time_range, step, environment=environment)
    rows = store.red.service_step_buckets(where, step)
    steps: dict[str, dict[int, list[Any]]] = {}
    for service, t, bucket, count, errors in rows:
        acc = steps.setdefault(service, {}).setdefault(t, [0, 0, {}])
        acc[0] += count
        acc[1] += errors
        acc[2][bucket] = acc[2].get(bucket, 0) + count
    lo, hi = time_range.minute_bounds(step)
    if filling_share(hi - step, step, now_ns) is not None:
        hi -= step
    return {name: _sparkline(name, by_t, lo, hi, step) for name, by_t in steps.items()}


def _sparkline(name: str, by_t: dict[int, list[Any]], lo: int, hi: int, step: int) -> Sparkline:
    line = Sparkline(name, step)
    for t in range(lo, hi, step):
        requests, errors, buckets = by_t.get(t, (0, 0, {}))
        line.t.append(t)
        line.rpm.append(round(requests * 60 / step, 3))
        line.error_rate.append(errors / requests if requests else None)
        line.p95_ms.append(ms(quantile_from_buckets(buckets, 0.95)))
    return line


def _choices(store: Store, where: RollupFilter, column: ChoiceColumn) -> list[Choice]:
    return [Choice(value, n) for value, n in store.red.top_values(where, column)]


def list_environments(store: Store, project_id: int, time_range: TimeRange) -> list[Choice]:
    """Environments that reported entry spans in the range, busiest first."""
    return _choices(store, _rollup_filter(project_id, time_range), "environment")


def list_releases(
    store: Store,
    project_id: int,
    time_range: TimeRange,
    service: str,
    *,
    environment: str | None = None,
) -> list[Choice]:
    """Releases of a service in the range, busiest first ('' when none was reported)."""
    where = _rollup_filter(project_id, time_range, service=service, environment=environment)
    return _choices(store, where, "release")


def list_endpoints(
    store: Store,
    project_id: int,
    time_range: TimeRange,
    service: str,
    *,
    environment: str | None = None,
) -> list[Choice]:
    """Endpoint names of a service in the range, busiest first (at most 200)."""
    where = _rollup_filter(project_id, time_range, service=service, environment=environment)
    return _choices(store, where, "endpoint")


def list_services(
    store: Store, project_id: int, time_range: TimeRange, *, environment: str | None = None
) -> list[Choice]:
    """Services with entry spans in the range, busiest first (at most 200)."""
    where = _rollup_filter(project_id, time_range, environment=environment)
    return _choices(store, where, "service")


def has_data(store: Store, project_id: int) -> bool:
    """Whether the project has ever stored a span that is still retained."""
    return store.traces.has_spans(project_id)


def service_known(store: Store, project_id: int, service: str) -> bool:
    """Whether the service ever reported a request that is still retained."""
    return store.red.service_known(project_id, service)


def endpoint_known(store: Store, project_id: int, service: str, endpoint: str) -> bool:
    """Whether the service ever reported a request to the endpoint that is still retained."""
    return store.red.endpoint_known(project_id, service, endpoint)
