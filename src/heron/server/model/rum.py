"""Real-user monitoring records: what the browser SDK's beacons become (docs/rum.md).

One :class:`RumEvent` per thing a page reported — a page view, a web vital, a slow
resource, a slow interaction, a long animation frame, a JavaScript error, a traced
``fetch``/XHR call, a slow React render — flattened to one row shape every backend stores
in one table. The per-minute rollup (:func:`rollup_rum`) is what the web-vitals overview
reads: counts per page, browser, device class, metric, rating and value bucket, so a p75
over weeks never scans raw events.

Ratings follow web-vitals' thresholds (``shared/reference/protocols.md`` §5): a value at
or below the first is good, at or below the second needs improvement, above it poor. The
server rates every vital itself; a client's own rating is not trusted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from heron.server.histogram import bucket_of
from heron.server.model.event import stored_json

# Event kinds (the beacon's ``t``, see docs/rum.md "Beacon format").
KIND_VIEW = "view"  # a page view: a document load or an SPA route change
KIND_VITAL = "vital"  # LCP, INP, CLS, FCP, TTFB
KIND_RESOURCE = "resource"  # a resource slower than the SDK's threshold
KIND_INTERACTION = "interaction"  # an interaction slower than the SDK's threshold
KIND_LONG_TASK = "longtask"  # a long animation frame (or long task)
KIND_ERROR = "error"  # an uncaught error or unhandled rejection (also an ErrorEvent)
KIND_FETCH = "fetch"  # a fetch/XHR call that carried traceparent (also a client span)
KIND_RENDER = "render"  # a React render slower than the helper's threshold
RUM_KINDS = (
    KIND_VIEW,
    KIND_VITAL,
    KIND_RESOURCE,
    KIND_INTERACTION,
    KIND_LONG_TASK,
    KIND_ERROR,
    KIND_FETCH,
    KIND_RENDER,
)

# Web vitals and their (good ≤, poor >) thresholds; CLS is unitless, the rest milliseconds.
VITAL_THRESHOLDS: dict[str, tuple[float, float]] = {
    "LCP": (2500.0, 4000.0),
    "INP": (200.0, 500.0),
    "CLS": (0.1, 0.25),
    "FCP": (1800.0, 3000.0),
    "TTFB": (800.0, 1800.0),
}
VITALS = tuple(VITAL_THRESHOLDS)
RATINGS = ("good", "needs-improvement", "poor")

# Rollup metrics beside the vitals: page loads (value: the load event's end, ms, hard
# navigations only), page views (hard and soft, value 0) and JavaScript errors (value 0).
METRIC_LOAD = "load"
METRIC_VIEWS = "views"
METRIC_ERRORS = "errors"
ROLLUP_METRICS = (*VITALS, METRIC_LOAD, METRIC_VIEWS, METRIC_ERRORS)

# Device classes the UA parser maps to (``ingest/rum``).
DEVICES = ("desktop", "mobile", "tablet", "other")

# CLS has no unit; the rollup's log buckets take nanoseconds, so CLS is stored as if it
# were milliseconds × 1000 (0.1 → bucket of 100 ms). ``rollup_value_ns`` / ``from_bucket_ns``
# convert both ways.
CLS_SCALE = 1000.0


def rate(name: str, value: float) -> str:
    """The rating of one vital's value (``good``, ``needs-improvement`` or ``poor``)."""
    good, poor = VITAL_THRESHOLDS[name]
    if value <= good:
        return "good"
    return "needs-improvement" if value <= poor else "poor"


def rollup_value_ns(metric: str, value: float) -> int:
    """A metric's value in the rollup's bucket unit (nanoseconds; CLS scaled)."""
    ms = value * CLS_SCALE if metric == "CLS" else value
    return max(0, int(ms * 1_000_000))


def from_bucket_ns(metric: str, ns: float) -> float:
    """The inverse of :func:`rollup_value_ns`: milliseconds, or CLS's unitless score."""
    ms = ns / 1_000_000
    return ms / CLS_SCALE if metric == "CLS" else ms


@dataclass(slots=True)
class RumEvent:
    """One thing a page reported, scrubbed, with its page view's context.

    - ``kind``: one of :data:`RUM_KINDS`.
    - ``session_id`` / ``view_id``: the SDK's tab session and page-view ids (≤ 64 chars of
      ``[A-Za-z0-9_-]``).
    - ``page``: the low-cardinality page (the app's route when it set one, else the URL's
      path with ids replaced by ``:id``); ``url``: the full URL, query values of sensitive
      keys replaced.
    - ``name``: by kind — the vital (``LCP``…), the resource's URL, the interaction's type
      (``pointer``/``keyboard``), the error's type, ``METHOD url`` of a fetch, the React
      component; ``view``: the navigation type (``navigate``, ``reload``,
      ``back-forward``, ``back-forward-cache``, ``prerender``, ``restore``,
      ``soft-navigation``).
    - ``value``: the vital's value (ms; CLS unitless), else the duration in ms (the load
      time of a hard page view, 0 for a soft one and for errors).
    - ``rating``: vitals only (server-computed), else ``""``.
    - ``target``: a CSS selector (LCP element, interaction target, CLS's largest shift),
      a resource's initiator type, an error's message, a render's phase; else ``""``.
    - ``browser`` (family), ``browser_version`` (major), ``os`` (family), ``device`` (one of
      :data:`DEVICES`) from the User-Agent.
    - ``app``/``release``/``environment``: from the SDK's ``init``; ``user_id`` from
      ``setUser`` (``""`` when unset).
    - ``trace_id`` (16 bytes) / ``span_id``: the backend trace the view or fetch joined.
    - ``attributes``: everything else of the event (attribution, navigation phases,
      sizes, status), JSON-serialisable, scrubbed.
    """

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
    browser_version: str
    os: str
    device: str
    app: str
    release: str
    environment: str
    user_id: str = ""
    trace_id: bytes | None = None
    span_id: int = 0
    attributes: dict[str, Any] = field(default_factory=dict)


# The stored columns of a RUM event after ``project_id``: one declaration for every
# backend; ``rum_values`` gives them in this order. A RUM_ROW (what readers return) is
# these fields in this order, ``attributes`` as JSON text (or None).
RUM_FIELDS = (
    "time_ns",
    "kind",
    "session_id",
    "view_id",
    "page",
    "url",
    "name",
    "value",
    "rating",
    "target",
    "browser",
    "browser_version",
    "os",
    "device",
    "app",
    "release",
    "environment",
    "user_id",
    "trace_id",
    "span_id",
    "attributes",
)


def rum_values(e: RumEvent) -> tuple[Any, ...]:
    """The values of ``RUM_FIELDS`` for one event (attributes as JSON text)."""
    return (
        e.time_ns,
        e.kind,
        e.session_id,
        e.view_id,
        e.page,
        e.url,
        e.name,
        float(e.value),
        e.rating,
        e.target,
        e.browser,
        e.browser_version,
        e.os,
        e.device,
        e.app,
        e.release,
        e.environment,
        e.user_id,
        e.trace_id,
        e.span_id,
        stored_json(e.attributes),
    )


# The per-minute RUM rollup: key fields in order, then the count.
RUM_ROLLUP_KEY = (
    "project_id",
    "minute_s",
    "app",
    "environment",
    "page",
    "browser",
    "device",
    "metric",
    "rating",
    "bucket",
)
# key (RUM_ROLLUP_KEY) → count
RumRollups = dict[tuple[Any, ...], int]


def rollup_metric(e: RumEvent) -> tuple[str, float] | None:
    """The rollup metric and value an event counts under, or None (resources,
    interactions… are not rolled up)."""
    if e.kind == KIND_VITAL and e.name in VITAL_THRESHOLDS:
        return e.name, e.value
    if e.kind == KIND_ERROR:
        return METRIC_ERRORS, 0.0
    return None


def rollup_rum(project_id: int, events: Iterable[RumEvent], acc: RumRollups) -> None:
    """Add a batch's vitals, page views, page loads and errors to per-minute counters.

    A page view counts once under ``views`` and, when it was a document load with a load
    time, once more under ``load``.
    """
    for e in events:
        minute = e.time_ns // 60_000_000_000 * 60
        base = (project_id, minute, e.app, e.environment, e.page, e.browser, e.device)
        pairs: list[tuple[str, float]] = []
        if e.kind == KIND_VIEW:
            pairs.append((METRIC_VIEWS, 0.0))
            if e.name != "soft-navigation" and e.value > 0:
                pairs.append((METRIC_LOAD, e.value))
        else:
            found = rollup_metric(e)
            if found is not None:
                pairs.append(found)
        for metric, value in pairs:
            rating = e.rating if metric in VITAL_THRESHOLDS else ""
            key = (*base, metric, rating, bucket_of(rollup_value_ns(metric, value)))
            acc[key] = acc.get(key, 0) + 1


def merge_rum_rollups(accs: Sequence[RumRollups]) -> RumRollups:
    """The sum of several accumulators (the one itself when there is one)."""
    if len(accs) == 1:
        return accs[0]
    out: RumRollups = {}
    for acc in accs:
        for key, n in acc.items():
            out[key] = out.get(key, 0) + n
    return out


@dataclass(slots=True)
class RumWrite:
    """One beacon's (or one batch of beacons') scrubbed RUM events and their rollups."""

    project_id: int
    events: list[RumEvent]
    rollups: RumRollups = field(default_factory=dict)
    spans_follow: bool = False
    """A span write of the same beacons is submitted after this one (and their error
    events', if any, before it): DuckDB's writer waits for it (at most
    ``commit_interval_ms``) to commit them all together."""

    def __len__(self) -> int:
        return len(self.events)
