"""Real-user monitoring figures: web vitals at p75, their ratings, page views, sessions.

Vitals, page loads, views and error counts come from the per-minute RUM rollup
(``RumReader.rollup``: counts per metric, rating and log bucket), so an overview over
weeks never scans raw events; the p75 is read from the buckets
(``histogram.quantile_from_buckets``, ~5 % precision) and converted back with
``model.rum.from_bucket_ns``. The rating shown beside a p75 is the rating *of the p75*
(what web.dev reports); the good / needs-improvement / poor shares come from the rating
counts the server stored with each sample. Slowest resources, interactions, long frames,
renders, errors and sessions come from raw events. No SQL here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from heron.server.histogram import quantile_from_buckets
from heron.server.model.rum import (
    DEVICES,
    KIND_ERROR,
    KIND_FETCH,
    KIND_INTERACTION,
    KIND_LONG_TASK,
    KIND_RENDER,
    KIND_RESOURCE,
    KIND_VIEW,
    METRIC_ERRORS,
    METRIC_LOAD,
    METRIC_VIEWS,
    RATINGS,
    RUM_FIELDS,
    VITALS,
    from_bucket_ns,
    rate,
)
from heron.server.query._common import NS_PER_S, InvalidQuery, TimeRange
from heron.server.store.base import Store
from heron.server.store.rum import RUM_GROUPS, RumFilters, RumGroup

Row = Sequence[Any]
P75 = 0.75
MAX_SESSION_LIMIT = 500
MAX_GROUPS = 200
SESSION_EVENTS = 2000
DEVICE_SPLIT = ("desktop", "mobile")
_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
_FILTER_MAX = 2000


# ------------------------------------------------------------------------ pure math


@dataclass(frozen=True, slots=True)
class VitalSummary:
    """One vital over a range: ``p75`` (ms; CLS unitless) and its ``rating``, the
    shares (0..1) of samples rated good / needs-improvement / poor, the sample count."""

    name: str
    p75: float | None
    rating: str | None
    good: float
    needs_improvement: float
    poor: float
    count: int


def quantile_of(metric: str, buckets: dict[int, int], q: float) -> float | None:
    """The ``q`` quantile (0..1) of a metric's bucketed samples in its own unit (ms, CLS
    unitless), or None without samples."""
    ns = quantile_from_buckets(buckets, q)
    return None if ns is None else from_bucket_ns(metric, ns)


def p75_of(metric: str, buckets: dict[int, int]) -> float | None:
    """The 75th percentile of a metric's bucketed samples in its own unit (ms, CLS
    unitless), or None without samples."""
    return quantile_of(metric, buckets, P75)


def vital_summary(name: str, buckets: dict[int, int], ratings: dict[str, int]) -> VitalSummary:
    """A vital's p75, the rating of that p75, and the rating shares."""
    p75 = p75_of(name, buckets)
    total = sum(ratings.get(r, 0) for r in RATINGS)
    share = {r: ratings.get(r, 0) / total if total else 0.0 for r in RATINGS}
    return VitalSummary(
        name=name,
        p75=None if p75 is None else _round(name, p75),
        rating=None if p75 is None else rate(name, p75),
        good=share["good"],
        needs_improvement=share["needs-improvement"],
        poor=share["poor"],
        count=sum(buckets.values()),
    )


def _round(metric: str, value: float) -> float:
    return round(value, 4) if metric == "CLS" else round(value, 1)


@dataclass(slots=True)
class _Acc:
    """Rollup counts of one group (or step): buckets and ratings per metric."""

    buckets: dict[str, dict[int, int]] = field(default_factory=dict)
    ratings: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, metric: str, rating: str, bucket: int, count: int) -> None:
        b = self.buckets.setdefault(metric, {})
        b[bucket] = b.get(bucket, 0) + count
        if rating:
            r = self.ratings.setdefault(metric, {})
            r[rating] = r.get(rating, 0) + count

    def count(self, metric: str) -> int:
        return sum(self.buckets.get(metric, {}).values())

    def vitals(self) -> list[VitalSummary]:
        return [vital_summary(v, self.buckets.get(v, {}), self.ratings.get(v, {})) for v in VITALS]

    def load_p75_ms(self) -> float | None:
        p = p75_of(METRIC_LOAD, self.buckets.get(METRIC_LOAD, {}))
        return None if p is None else round(p, 1)


def accumulate(rows: Iterable[Row], key: int) -> dict[Any, _Acc]:
    """Rollup rows ``(step_start_s, group, metric, rating, bucket, count)`` summed per
    the value in column ``key`` (0: per step, 1: per group)."""
    out: dict[Any, _Acc] = {}
    for r in rows:
        out.setdefault(r[key], _Acc()).add(r[2], r[3] or "", int(r[4]), int(r[5]))
    return out


@dataclass(frozen=True, slots=True)
class MetricFigures:
    """One rollup metric (a vital or ``load``) of one group over a range: the sample
    ``count``, p50/p75/p95 (ms; CLS unitless; None without samples) and ``poor_pct``, the
    percent (0..100) of samples rated poor (vitals with samples only, else None)."""

    count: int
    p50: float | None
    p75: float | None
    p95: float | None
    poor_pct: float | None


def metric_figures(acc: _Acc, metric: str) -> MetricFigures:
    """Pure: the figures of one metric of an accumulated group."""
    buckets = acc.buckets.get(metric, {})

    def q(x: float) -> float | None:
        v = quantile_of(metric, buckets, x)
        return None if v is None else _round(metric, v)

    ratings = acc.ratings.get(metric, {})
    rated = sum(ratings.get(r, 0) for r in RATINGS)
    poor = round(100.0 * ratings.get("poor", 0) / rated, 2) if metric in VITALS and rated else None
    return MetricFigures(
        count=sum(buckets.values()), p50=q(0.5), p75=q(P75), p95=q(0.95), poor_pct=poor
    )


# ------------------------------------------------------------------------ filters


def rum_filters(
    *,
    app: str | None = None,
    environment: str | None = None,
    page: str | None = None,
    browser: str | None = None,
    device: str | None = None,
) -> RumFilters:
    """Checked filters (empty means any); InvalidQuery names a bad one."""
    values = {"app": app, "environment": environment, "page": page, "browser": browser}
    for name, value in values.items():
        if value is not None and len(value) > _FILTER_MAX:
            raise InvalidQuery(f"{name!r} is longer than {_FILTER_MAX} characters")
    if device and device not in DEVICES:
        raise InvalidQuery(f"device must be one of {', '.join(DEVICES)} (got {device[:32]!r})")
    return RumFilters(
        app=app or None,
        environment=environment or None,
        page=page or None,
        browser=browser or None,
        device=device or None,
    )


def check_session_id(text: str) -> str:
    """A session id as the SDK makes them (``[A-Za-z0-9_-]{8,64}``); InvalidQuery otherwise."""
    if not _SESSION_ID.fullmatch(text):
        raise InvalidQuery(
            f"session id must be 8-64 characters of A-Z, a-z, 0-9, _ and - (got {text[:80]!r})"
        )
    return text


def _seconds(tr: TimeRange) -> tuple[int, int]:
    return tr.minute_bounds()


# ------------------------------------------------------------------------ overview


@dataclass(frozen=True, slots=True)
class RumOverview:
    """The web-vitals overview: p75 and shares per vital, also per device class
    (``desktop`` and ``mobile``, as web.dev reports them), views, load p75, JS errors."""

    vitals: list[VitalSummary]
    by_device: dict[str, list[VitalSummary]]
    views: int
    load_p75_ms: float | None
    errors: int

    @property
    def has_data(self) -> bool:
        return self.views > 0 or self.errors > 0 or any(v.count for v in self.vitals)


def overview(store: Store, project_id: int, tr: TimeRange, filters: RumFilters) -> RumOverview:
    lo, hi = _seconds(tr)
    rows = store.rum.rollup(project_id, lo, hi, filters=filters, by="device")
    per_device = accumulate(rows, 1)
    total = _Acc()
    for acc in per_device.values():
        for metric, buckets in acc.buckets.items():
            for b, n in buckets.items():
                total.add(metric, "", b, n)
        for metric, ratings in acc.ratings.items():
            r = total.ratings.setdefault(metric, {})
            for rating, n in ratings.items():
                r[rating] = r.get(rating, 0) + n
    return RumOverview(
        vitals=total.vitals(),
        by_device={d: per_device.get(d, _Acc()).vitals() for d in DEVICE_SPLIT},
        views=total.count(METRIC_VIEWS),
        load_p75_ms=total.load_p75_ms(),
        errors=total.count(METRIC_ERRORS),
    )


def figures_by_group(
    store: Store,
    project_id: int,
    tr: TimeRange,
    filters: RumFilters,
    metric: str,
    by: str | None = None,
) -> dict[str, MetricFigures]:
    """One metric's figures (:class:`MetricFigures`) over the range per value of ``by``
    (one of ``RUM_GROUPS``; ``""`` the only key without it), groups with samples only,
    at most ``MAX_GROUPS`` (most samples first). What alert rules on web vitals read."""
    if metric not in (*VITALS, METRIC_LOAD):
        raise InvalidQuery(f"metric must be one of {', '.join((*VITALS, METRIC_LOAD))}")
    if by is not None and by not in RUM_GROUPS:
        raise InvalidQuery(f"by must be one of {', '.join(RUM_GROUPS)} (got {by[:32]!r})")
    lo, hi = _seconds(tr)
    group: RumGroup | None = by  # type: ignore[assignment]  # checked against RUM_GROUPS
    rows = store.rum.rollup(project_id, lo, hi, filters=filters, metrics=[metric], by=group)
    figures = {str(g): metric_figures(acc, metric) for g, acc in accumulate(rows, 1).items()}
    kept = sorted(figures.items(), key=lambda kv: (-kv[1].count, kv[0]))[:MAX_GROUPS]
    return {g: f for g, f in kept if f.count}


# ------------------------------------------------------------------------ trend


@dataclass(frozen=True, slots=True)
class RumTrend:
    """Per-step p75 of each vital (None where a step has no sample), views and errors;
    ``t`` the steps' starts (Unix s), every step of the range present."""

    step_s: int
    t: list[int]
    p75: dict[str, list[float | None]]
    views: list[int]
    errors: list[int]


def trend_from_rows(rows: Iterable[Row], lo: int, hi: int, step_s: int) -> RumTrend:
    """Pure: the trend of rollup rows grouped by step, steps ``lo..hi`` (Unix s)."""
    per_step = accumulate(rows, 0)
    ts = list(range(lo // step_s * step_s, hi, step_s))
    p75: dict[str, list[float | None]] = {v: [] for v in VITALS}
    for t in ts:
        acc = per_step.get(t, _Acc())
        for v in VITALS:
            p = p75_of(v, acc.buckets.get(v, {}))
            p75[v].append(None if p is None else _round(v, p))
    empty = _Acc()
    return RumTrend(
        step_s=step_s,
        t=ts,
        p75=p75,
        views=[per_step.get(t, empty).count(METRIC_VIEWS) for t in ts],
        errors=[per_step.get(t, empty).count(METRIC_ERRORS) for t in ts],
    )


def trend(
    store: Store, project_id: int, tr: TimeRange, filters: RumFilters, step_s: int
) -> RumTrend:
    if step_s < 60 or step_s % 60:
        raise InvalidQuery("step_s must be a positive multiple of 60")
    lo, hi = tr.minute_bounds(step_s)
    rows = store.rum.rollup(project_id, lo, hi, filters=filters, step_s=step_s)
    return trend_from_rows(rows, lo, hi, step_s)


# ------------------------------------------------------------------------ breakdown


@dataclass(frozen=True, slots=True)
class RumGroupStats:
    """One page, browser or device class: views, load p75, errors and each vital."""

    value: str
    views: int
    load_p75_ms: float | None
    errors: int
    vitals: list[VitalSummary]


def breakdown_from_rows(rows: Iterable[Row], limit: int = MAX_GROUPS) -> list[RumGroupStats]:
    """Pure: per-group stats of rollup rows grouped by a column, most views first."""
    out = [
        RumGroupStats(
            value=str(group),
            views=acc.count(METRIC_VIEWS),
            load_p75_ms=acc.load_p75_ms(),
            errors=acc.count(METRIC_ERRORS),
            vitals=acc.vitals(),
        )
        for group, acc in accumulate(rows, 1).items()
    ]
    out.sort(key=lambda g: (-g.views, -sum(v.count for v in g.vitals), g.value))
    return out[:limit]


def breakdown(
    store: Store,
    project_id: int,
    tr: TimeRange,
    filters: RumFilters,
    by: str,
    limit: int = MAX_GROUPS,
) -> list[RumGroupStats]:
    if by not in RUM_GROUPS:
        raise InvalidQuery(f"by must be one of {', '.join(RUM_GROUPS)} (got {by[:32]!r})")
    lo, hi = _seconds(tr)
    group: RumGroup = by  # type: ignore[assignment]  # checked against RUM_GROUPS above
    rows = store.rum.rollup(project_id, lo, hi, filters=filters, by=group)
    return breakdown_from_rows(rows, limit)


def choices(store: Store, project_id: int, tr: TimeRange) -> dict[str, list[str]]:
    """Values the filters can take (pages, browsers, devices, apps, environments)."""
    lo, hi = _seconds(tr)
    return store.rum.choices(project_id, lo, hi)


# ------------------------------------------------------------------------ raw events


@dataclass(frozen=True, slots=True)
class RumRecord:
    """One raw RUM event as the UI and API show it (ids in hex)."""

    time_ns: int
    kind: str
    session_id: str
    view_id: str
    page: str
    url: str
    name: str
    value: float
    rating: str
    target: str
    browser: str
    os: str
    device: str
    app: str
    user_id: str
    trace_id: str | None
    span_id: str | None
    attributes: dict[str, Any]


def record(row: Row) -> RumRecord:
    """A RUM_ROW (``model.rum.RUM_FIELDS`` in order) as a record."""
    r = dict(zip(RUM_FIELDS, row, strict=True))
    attrs = r["attributes"]
    parsed = orjson.loads(attrs) if attrs else {}
    trace: bytes | None = r["trace_id"]
    return RumRecord(
        time_ns=int(r["time_ns"]),
        kind=r["kind"],
        session_id=r["session_id"],
        view_id=r["view_id"],
        page=r["page"],
        url=r["url"],
        name=r["name"],
        value=float(r["value"]),
        rating=r["rating"] or "",
        target=r["target"] or "",
        browser=" ".join(x for x in (r["browser"], r["browser_version"]) if x),
        os=r["os"],
        device=r["device"],
        app=r["app"],
        user_id=r["user_id"] or "",
        trace_id=bytes(trace).hex() if trace else None,
        span_id=f"{int(r['span_id']):016x}" if r["span_id"] else None,
        attributes=parsed if isinstance(parsed, dict) else {},
    )


@dataclass(frozen=True, slots=True)
class RumTop:
    """Events of one kind grouped by ``(name, target)``: slowest resources, long
    interactions, long frames, slow renders, frequent errors."""

    name: str
    target: str
    count: int
    p75: float
    max: float
    last_ns: int
    trace_id: str | None


def _top(row: Row) -> RumTop:
    name, target, count, p75, mx, last, trace = row[:7]
    return RumTop(
        name=name,
        target=target or "",
        count=int(count),
        p75=round(float(p75 or 0.0), 1),
        max=round(float(mx or 0.0), 1),
        last_ns=int(last or 0),
        trace_id=bytes(trace).hex() if trace else None,
    )


# ------------------------------------------------------------------------ sessions


@dataclass(frozen=True, slots=True)
class SessionSummary:
    session_id: str
    user_id: str
    first_ns: int
    last_ns: int
    duration_s: float
    views: int
    errors: int
    app: str
    browser: str
    os: str
    device: str
    entry_page: str


def _session_row(row: Row) -> SessionSummary:
    sid, user, first, last, views, errors, app, browser, os_, device, entry = row[:11]
    return SessionSummary(
        session_id=sid,
        user_id=user or "",
        first_ns=int(first),
        last_ns=int(last),
        duration_s=round((int(last) - int(first)) / NS_PER_S, 1),
        views=int(views),
        errors=int(errors),
        app=app or "",
        browser=browser or "",
        os=os_ or "",
        device=device or "",
        entry_page=entry or "",
    )


def sessions(
    store: Store,
    project_id: int,
    tr: TimeRange,
    filters: RumFilters,
    *,
    user_id: str | None = None,
    limit: int = 100,
) -> list[SessionSummary]:
    if not 1 <= limit <= MAX_SESSION_LIMIT:
        raise InvalidQuery(f"limit must be between 1 and {MAX_SESSION_LIMIT}")
    rows = store.rum.sessions(
        project_id, tr.start_ns, tr.end_ns, filters=filters, user_id=user_id or None, limit=limit
    )
    return [_session_row(r) for r in rows]


@dataclass(frozen=True, slots=True)
class SessionTimeline:
    """A session's events oldest first: views, vitals, interactions, errors, fetches…,
    each with its backend trace id when it joined one."""

    session_id: str
    user_id: str
    browser: str
    os: str
    device: str
    app: str
    first_ns: int
    last_ns: int
    views: int
    errors: int
    events: list[RumRecord]
    truncated: bool


def timeline_from_rows(session_id: str, rows: Iterable[Row], limit: int) -> SessionTimeline | None:
    """Pure: a session's timeline from its RUM_ROWs (any order), or None without rows."""
    events = sorted((record(r) for r in rows), key=lambda e: (e.time_ns, e.kind != KIND_VIEW))
    if not events:
        return None
    users = [e.user_id for e in events if e.user_id]
    first = events[0]
    return SessionTimeline(
        session_id=session_id,
        user_id=users[-1] if users else "",
        browser=first.browser,
        os=first.os,
        device=first.device,
        app=first.app,
        first_ns=events[0].time_ns,
        last_ns=events[-1].time_ns,
        views=sum(e.kind == KIND_VIEW for e in events),
        errors=sum(e.kind == KIND_ERROR for e in events),
        events=events,
        truncated=len(events) >= limit,
    )


def session_timeline(
    store: Store, project_id: int, session_id: str, limit: int = SESSION_EVENTS
) -> SessionTimeline | None:
    check_session_id(session_id)
    rows = store.rum.session(project_id, session_id, limit)
    return timeline_from_rows(session_id, rows, limit)


def session_of_trace(store: Store, project_id: int, trace_id: bytes, around_ns: int) -> str | None:
    """The browser session of the page view or fetch that joined a backend trace (RUM
    events within an hour of ``around_ns``), or None."""
    hour = 3600 * NS_PER_S
    rows = store.rum.events(
        project_id,
        around_ns - hour,
        around_ns + hour,
        kinds=[KIND_VIEW, KIND_FETCH],
        filters=RumFilters(),
        trace_id=trace_id,
        limit=1,
    )
    return str(rows[0][RUM_FIELDS.index("session_id")]) if rows else None


# ------------------------------------------------------------------------ page detail


@dataclass(frozen=True, slots=True)
class PageDetail:
    """One page: its vitals (overview and trend), slowest resources, long interactions
    (with their targets), long animation frames, slow renders, JS errors, sample
    sessions, and the views' slowest loads."""

    page: str
    overview: RumOverview
    trend: RumTrend
    resources: list[RumTop]
    interactions: list[RumTop]
    long_frames: list[RumTop]
    renders: list[RumTop]
    errors: list[RumTop]
    sessions: list[SessionSummary]
    slowest_views: list[RumRecord]


def page_detail(
    store: Store,
    project_id: int,
    tr: TimeRange,
    filters: RumFilters,
    *,
    step_s: int,
    limit: int = 20,
) -> PageDetail:
    if not filters.page:
        raise InvalidQuery("the 'page' parameter is required")
    s, e = tr.start_ns, tr.end_ns

    def top(kind: str) -> list[RumTop]:
        rows = store.rum.top(project_id, s, e, kind=kind, filters=filters, limit=limit)
        return [_top(r) for r in rows]

    views = store.rum.events(
        project_id, s, e, kinds=[KIND_VIEW], filters=filters, order="value", limit=limit
    )
    return PageDetail(
        page=filters.page,
        overview=overview(store, project_id, tr, filters),
        trend=trend(store, project_id, tr, filters, step_s),
        resources=top(KIND_RESOURCE),
        interactions=top(KIND_INTERACTION),
        long_frames=top(KIND_LONG_TASK),
        renders=top(KIND_RENDER),
        errors=top(KIND_ERROR),
        sessions=sessions(store, project_id, tr, filters, limit=limit),
        slowest_views=[record(r) for r in views],
    )


__all__ = [
    "MAX_SESSION_LIMIT",
    "MetricFigures",
    "PageDetail",
    "RumGroupStats",
    "RumOverview",
    "RumRecord",
    "RumTop",
    "RumTrend",
    "SessionSummary",
    "SessionTimeline",
    "VitalSummary",
    "accumulate",
    "breakdown",
    "breakdown_from_rows",
    "check_session_id",
    "choices",
    "figures_by_group",
    "metric_figures",
    "overview",
    "p75_of",
    "quantile_of",
    "page_detail",
    "record",
    "rum_filters",
    "session_of_trace",
    "session_timeline",
    "sessions",
    "timeline_from_rows",
    "trend",
    "trend_from_rows",
    "vital_summary",
]
