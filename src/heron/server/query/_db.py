"""Database query analytics: top queries, one query in depth, the slow query log.

Statistics read ``db_rollup_1m`` (written by the analysis job, so they trail ingest by
up to its interval, ~10 s) and never raw spans; samples and the slow query log read raw
database spans in the range, then find each one's endpoint from its trace's entry spans.
Fingerprints are unsigned 64-bit ids; they travel as 16 hex digits (JSON numbers lose
precision beyond 2**53).
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from heron.server.histogram import quantile_from_buckets
from heron.server.query._common import (
    NS_PER_MS,
    NS_PER_S,
    InvalidQuery,
    TimeRange,
    filling_share,
    ms,
)
from heron.server.query._red import MAX_POINTS, _sorted
from heron.server.store.base import Store

DB_QUERY_SORTS = (
    "total_time_ms",
    "calls",
    "mean_ms",
    "p95_ms",
    "max_ms",
    "errors",
    "error_rate",
    "rows_per_call",
    "db_time_share",
    "endpoint_time_share",
)
MAX_DB_LIMIT = 1000
MAX_SAMPLES = 100
# An entry span starts before the database spans under it: how far back to look for it.
_ENTRY_LOOKBACK_NS = 3600 * NS_PER_S
_HEX = frozenset(string.hexdigits)
# The agent explains a slow query after it finished, off the request path.
_PLAN_LAG_NS = 600 * NS_PER_S


def parse_fingerprint(text: str) -> int:
    """A fingerprint from its 16 hex digits (as the API shows it)."""
    if not 1 <= len(text) <= 16 or not set(text) <= _HEX:
        raise InvalidQuery(f"a fingerprint is 16 hex digits (got {text[:40]!r})")
    return int(text, 16)


def format_fingerprint(fingerprint: int) -> str:
    return f"{fingerprint:016x}"


@dataclass(frozen=True, slots=True)
class QueryStats:
    """One query shape (fingerprint) as issued by one service, over the range."""

    fingerprint: str
    service: str
    db_system: str
    display: str
    calls: int
    total_time_ms: float
    mean_ms: float | None
    p95_ms: float | None
    max_ms: float | None
    errors: int
    error_rate: float
    rows_per_call: float | None
    """Mean rows returned, over the calls that reported ``db.response.returned_rows``."""
    db_time_share: float
    """Share (0..1) of the database time of every query matching the same filters."""
    endpoint_time_share: float | None
    """With an ``endpoint`` filter: share (0..1) of that endpoint's request time."""


@dataclass(frozen=True, slots=True)
class QueryEndpoint:
    """How much of one endpoint's time goes to one query."""

    service: str
    endpoint: str
    calls: int
    total_time_ms: float
    mean_ms: float | None
    requests: int
    calls_per_request: float | None
    endpoint_time_share: float | None


@dataclass(frozen=True, slots=True)
class QueryPoint:
    """One step of a query's time series; ``t`` is the step's start in Unix seconds."""

    t: int
    calls: int
    errors: int
    total_time_ms: float
    mean_ms: float | None
    p95_ms: float | None
    max_ms: float | None
    calls_per_min: float = 0.0
    partial: bool = False
    """The step is still filling (it holds "now"): ``calls_per_min`` is over its elapsed
    part, and charts draw it dashed."""


@dataclass(frozen=True, slots=True)
class QuerySample:
    """One execution: its span, endpoint, obfuscated statement and plan (if recorded)."""

    trace_id: str
    span_id: str
    start_ns: int
    duration_ms: float
    service: str
    endpoint: str
    db_system: str | None
    fingerprint: str | None
    display: str | None
    statement: str | None
    rows: int | None
    error: bool
    plan: str | None
    plan_format: str | None


@dataclass(frozen=True, slots=True)
class QueryDetail:
    fingerprint: str
    db_system: str
    display: str
    step_s: int
    services: list[QueryStats] = field(default_factory=list)
    # Every service together (``service`` is empty): p95 from the merged latency buckets.
    overall: QueryStats | None = None
    endpoints: list[QueryEndpoint] = field(default_factory=list)
    timeseries: list[QueryPoint] = field(default_factory=list)
    slowest: list[QuerySample] = field(default_factory=list)


# ----------------------------------------------------------------------------- rollups


class _Agg:
    """Totals and latency buckets of one group of ``db_rollup_1m`` rows."""

    __slots__ = ("calls", "errors", "sum_ns", "max_ns", "rows_sum", "rows_count", "counts")

    def __init__(self, row: Sequence[Any]) -> None:
        calls, errors, sum_ns, max_ns, rows_sum, rows_count, buckets, counts = row
        self.calls, self.errors, self.sum_ns = int(calls), int(errors), float(sum_ns)
        self.max_ns, self.rows_sum, self.rows_count = max_ns, float(rows_sum), int(rows_count)
        self.counts = dict(zip(buckets, counts, strict=True))

    @classmethod
    def merged(cls, aggs: Sequence[_Agg]) -> _Agg:
        """The totals of several groups; percentiles come from their summed buckets."""
        counts: dict[int, int] = {}
        for a in aggs:
            for bucket, n in a.counts.items():
                counts[bucket] = counts.get(bucket, 0) + n
        maxes = [a.max_ns for a in aggs if a.max_ns is not None]
        return cls(
            (
                sum(a.calls for a in aggs),
                sum(a.errors for a in aggs),
                sum(a.sum_ns for a in aggs),
                max(maxes) if maxes else None,
                sum(a.rows_sum for a in aggs),
                sum(a.rows_count for a in aggs),
                list(counts),
                list(counts.values()),
            )
        )

    @property
    def mean_ms(self) -> float | None:
        return ms(self.sum_ns / self.calls) if self.calls else None

    @property
    def p95_ms(self) -> float | None:
        return ms(quantile_from_buckets(self.counts, 0.95))


def _grouped(
    store: Store, project_id: int, lo_s: int, hi_s: int, filters: dict[str, Any], by: str
) -> list[tuple[tuple[Any, ...], _Agg]]:
    """Query statistics matching ``filters`` summed per ``by`` (see ``DbReader``)."""
    rows = store.db.query_stat_groups(project_id, lo_s, hi_s, filters, by)
    return [(key, _Agg(agg)) for key, agg in rows]


def top_queries(
    store: Store,
    project_id: int,
    time_range: TimeRange,
    *,
    service: str | None = None,
    endpoint: str | None = None,
    db_system: str | None = None,
    environment: str | None = None,
    sort: str = "total_time_ms",
    descending: bool | None = None,
    limit: int = 50,
) -> list[QueryStats]:
    """Query shapes per service with calls, time, latency, errors and rows; top ``limit``.

    With ``endpoint``, only the calls made while serving that endpoint — the endpoint's
    breakdown — and ``endpoint_time_share`` says how much of its time each one takes.
    """
    if not 1 <= limit <= MAX_DB_LIMIT:
        raise InvalidQuery(f"limit must be between 1 and {MAX_DB_LIMIT} (got {limit})")
    if sort not in DB_QUERY_SORTS:  # checked before reading anything
        raise InvalidQuery(f"cannot sort by {sort!r}: use one of {', '.join(DB_QUERY_SORTS)}")
    lo, hi = time_range.minute_bounds()
    filters = {
        "service": service,
        "endpoint": endpoint,
        "db_system": db_system,
        "environment": environment,
    }
    groups = _grouped(store, project_id, lo, hi, filters, "query")
    total_db_ns = sum(a.sum_ns for _, a in groups)
    endpoint_ns: dict[str, float] = {}
    if endpoint is not None:
        for (svc, _), (_, t) in store.db.request_time(
            project_id, lo, hi, service=service, endpoint=endpoint, environment=environment
        ).items():
            endpoint_ns[svc] = endpoint_ns.get(svc, 0.0) + t
    names = store.db.fingerprint_names([fp for (_, fp, _), _ in groups])
    rows = [
        _stats(svc, fp, system, a, names, total_db_ns, endpoint_ns if endpoint else None)
        for (svc, fp, system), a in groups
    ]
    return _sorted(rows, sort, DB_QUERY_SORTS, descending)[:limit]


def _stats(
    service: str,
    fp: int,
    system: str,
    a: _Agg,
    names: dict[int, tuple[str, str]],
    total_db_ns: float,
    endpoint_ns: dict[str, float] | None,
) -> QueryStats:
    share = None
    if endpoint_ns is not None:
        t = endpoint_ns.get(service)
        share = a.sum_ns / t if t else None
    return QueryStats(
        fingerprint=format_fingerprint(fp),
        service=service,
        db_system=system,
        display=names.get(fp, ("", ""))[1],
        calls=a.calls,
        total_time_ms=round(a.sum_ns / NS_PER_MS, 3),
        mean_ms=a.mean_ms,
        p95_ms=a.p95_ms,
        max_ms=ms(a.max_ns),
        errors=a.errors,
        error_rate=a.errors / a.calls if a.calls else 0.0,
        rows_per_call=round(a.rows_sum / a.rows_count, 3) if a.rows_count else None,
        db_time_share=a.sum_ns / total_db_ns if total_db_ns else 0.0,
        endpoint_time_share=share,
    )


# ------------------------------------------------------------------------ query detail


def query_detail(
    store: Store,
    project_id: int,
    time_range: TimeRange,
    fingerprint: int,
    *,
    service: str | None = None,
    environment: str | None = None,
    step_s: int = 60,
    samples: int = 10,
    now_ns: int | None = None,
) -> QueryDetail | None:
    """One query shape: figures per service, per endpoint, a time series and the slowest
    executions. None if the fingerprint was never seen. Given ``now_ns``, the series step
    still filling then is ``partial``."""
    if step_s <= 0 or step_s % 60:
        raise InvalidQuery(f"step_s must be a positive multiple of 60 (got {step_s})")
    if not 1 <= samples <= MAX_SAMPLES:
        raise InvalidQuery(f"samples must be between 1 and {MAX_SAMPLES} (got {samples})")
    name = store.db.fingerprint_names([fingerprint]).get(fingerprint)
    if name is None:
        return None
    filters = {"service": service, "environment": environment, "fingerprint": fingerprint}
    lo, hi = time_range.minute_bounds()
    per_service = _grouped(store, project_id, lo, hi, filters, "query")
    total_db_ns = sum(a.sum_ns for _, a in per_service)
    names = {fingerprint: name}
    return QueryDetail(
        fingerprint=format_fingerprint(fingerprint),
        db_system=name[0],
        display=name[1],
        step_s=step_s,
        services=[
            _stats(svc, fp, system, a, names, total_db_ns, None)
            for (svc, fp, system), a in per_service
        ],
        overall=_stats(
            "", fingerprint, name[0], _Agg.merged([a for _, a in per_service]), names, 0, None
        )
        if per_service
        else None,
        endpoints=_query_endpoints(store, project_id, lo, hi, filters, environment),
        timeseries=_timeseries(store, project_id, time_range, step_s, filters, now_ns),
        slowest=query_samples(
            store,
            project_id,
            time_range,
            fingerprint=fingerprint,
            service=service,
            environment=environment,
            order="slowest",
            limit=samples,
        ),
    )


def _query_endpoints(
    store: Store,
    project_id: int,
    lo: int,
    hi: int,
    filters: dict[str, Any],
    environment: str | None,
) -> list[QueryEndpoint]:
    groups = _grouped(store, project_id, lo, hi, filters, "endpoint")
    requests = store.db.request_time(
        project_id, lo, hi, service=None, endpoint=None, environment=environment
    )
    out = []
    for (svc, ep), a in groups:
        n, total_ns = requests.get((svc, ep), (0, 0.0))
        out.append(
            QueryEndpoint(
                service=svc,
                endpoint=ep,
                calls=a.calls,
                total_time_ms=round(a.sum_ns / NS_PER_MS, 3),
                mean_ms=a.mean_ms,
                requests=n,
                calls_per_request=round(a.calls / n, 3) if n else None,
                endpoint_time_share=a.sum_ns / total_ns if total_ns else None,
            )
        )
    out.sort(key=lambda e: (-e.total_time_ms, e.service, e.endpoint))
    return out


def _timeseries(
    store: Store,
    project_id: int,
    time_range: TimeRange,
    step_s: int,
    filters: dict[str, Any],
    now_ns: int | None,
) -> list[QueryPoint]:
    lo, hi = time_range.minute_bounds(step_s)
    if (hi - lo) // step_s > MAX_POINTS:
        raise InvalidQuery(
            f"too many points ({(hi - lo) // step_s}); use a larger step_s or a shorter range"
        )
    by_t = {
        key[0]: _Agg(a)
        for key, a in store.db.query_stat_series(project_id, lo, hi, filters, step_s)
    }
    return [_point(t, by_t.get(t), step_s, now_ns) for t in range(lo, hi, step_s)]


def _point(t: int, a: _Agg | None, step_s: int, now_ns: int | None) -> QueryPoint:
    share = filling_share(t, step_s, now_ns)
    partial = share is not None
    if a is None:
        return QueryPoint(t, 0, 0, 0.0, None, None, None, partial=partial)
    return QueryPoint(
        t=t,
        calls=a.calls,
        errors=a.errors,
        total_time_ms=round(a.sum_ns / NS_PER_MS, 3),
        mean_ms=a.mean_ms,
        p95_ms=a.p95_ms,
        max_ms=ms(a.max_ns),
        calls_per_min=round(a.calls * 60 / (step_s * (share or 1.0)), 3),
        partial=partial,
    )


# --------------------------------------------------------------------- raw spans


def query_samples(
    store: Store,
    project_id: int,
    time_range: TimeRange,
    *,
    fingerprint: int | None = None,
    min_duration_ms: float | None = None,
    service: str | None = None,
    endpoint: str | None = None,
    db_system: str | None = None,
    environment: str | None = None,
    order: str = "slowest",
    limit: int = 10,
) -> list[QuerySample]:
    """Database spans in the range matching every filter, slowest or newest first."""
    if order not in ("slowest", "newest"):
        raise InvalidQuery(f"order must be slowest or newest (got {order!r})")
    rows = store.db.query_samples(
        project_id,
        time_range.start_ns,
        time_range.end_ns,
        entries_since_ns=time_range.start_ns - _ENTRY_LOOKBACK_NS,
        fingerprint=fingerprint,
        min_duration_ns=None if min_duration_ms is None else round(min_duration_ms * NS_PER_MS),
        service=service,
        endpoint=endpoint,
        db_system=db_system,
        environment=environment,
        newest_first=order == "newest",
        limit=limit,
    )
    found = [_sample(r) for r in rows]
    return _with_plans(store, project_id, time_range, found)


def _with_plans(
    store: Store, project_id: int, time_range: TimeRange, samples: list[QuerySample]
) -> list[QuerySample]:
    """Samples with the plan of a child span (where Heron's agent records it) if any."""
    wanted = [s for s in samples if s.plan is None]
    if not wanted:
        return samples
    traces = sorted({bytes.fromhex(s.trace_id) for s in wanted})
    rows = store.db.child_plans(
        project_id, min(s.start_ns for s in wanted), time_range.end_ns + _PLAN_LAG_NS, traces
    )
    plans = {(t.hex(), f"{p:016x}"): (plan, fmt) for t, p, plan, fmt in rows if plan}
    out = []
    for s in samples:
        plan = plans.get((s.trace_id, s.span_id)) if s.plan is None else None
        out.append(replace(s, plan=plan[0], plan_format=plan[1]) if plan else s)
    return out


def _sample(r: Sequence[Any]) -> QuerySample:
    trace_id, span_id, start, dur, svc, ep, system, fp, display, stmt, rows, err, plan, fmt = r
    return QuerySample(
        trace_id=trace_id.hex(),
        span_id=f"{span_id:016x}",
        start_ns=start,
        duration_ms=ms(dur) or 0.0,
        service=svc,
        endpoint=ep,
        db_system=system,
        fingerprint=format_fingerprint(fp) if fp is not None else None,
        display=display,
        statement=stmt,
        rows=rows,
        error=bool(err),
        plan=plan,
        plan_format=fmt if plan is not None else None,
    )


def slow_queries(
    store: Store,
    project_id: int,
    time_range: TimeRange,
    *,
    threshold_ms: float = 100.0,
    fingerprint: int | None = None,
    service: str | None = None,
    endpoint: str | None = None,
    db_system: str | None = None,
    environment: str | None = None,
    limit: int = 100,
) -> list[QuerySample]:
    """The slow query log call by call: database spans of at least ``threshold_ms``,
    newest first (grouped by query shape: :func:`slow_query_groups`)."""
    if threshold_ms < 0:
        raise InvalidQuery("threshold_ms must not be negative")
    if not 1 <= limit <= MAX_DB_LIMIT:
        raise InvalidQuery(f"limit must be between 1 and {MAX_DB_LIMIT} (got {limit})")
    return query_samples(
        store,
        project_id,
        time_range,
        fingerprint=fingerprint,
        min_duration_ms=threshold_ms,
        service=service,
        endpoint=endpoint,
        db_system=db_system,
        environment=environment,
        order="newest",
        limit=limit,
    )
