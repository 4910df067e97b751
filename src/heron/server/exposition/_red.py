"""The RED figures Heron computes, as Prometheus families: ``http_server_requests_total``,
``http_server_errors_total`` and the ``http_server_request_duration_seconds`` histogram
per service, environment, method and route, counted since the server started
(``query.RedCounters`` says how they stay monotonic).

Rollups keep each duration in a ~9%-wide log bucket (``heron.server.histogram``); each
``le`` bound's count is the requests at or below it, interpolated inside the one bucket
it falls in and rounded, so the counts are whole, cumulative and never above ``_count``.
Refreshed at most every ``cache_s`` seconds; a failed refresh serves the last figures.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from heron.server.context import AppContext
from heron.server.histogram import count_at_most
from heron.server.query import RedCounters, RedTotals

log = logging.getLogger("heron.metrics")

# ``le`` bounds (seconds): OpenTelemetry's default for http.server.request.duration,
# widened by 1 ms and 2.5 ms below and 30 s and 60 s above.
LE_BOUNDS_S = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25,
    0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 30.0, 60.0,
)  # fmt: skip
LABELS = ["service", "environment", "method", "route"]
CACHE_S = 5.0
_HTTP_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"}
)
LabelSet = tuple[str, str, str, str]


def labels_of(service: str, environment: str, endpoint: str) -> LabelSet:
    """An endpoint ``METHOD route`` splits into method and route; any other endpoint
    (a route without method, a span name) is the route, with no method."""
    method, sep, route = endpoint.partition(" ")
    if sep and route and method in _HTTP_METHODS:
        return service, environment, method, route
    return service, environment, "", endpoint


def le_samples(t: RedTotals) -> list[tuple[str, float]]:
    samples = [
        (floatToGoString(le), float(round(count_at_most(t.buckets, le * 1e9))))
        for le in LE_BOUNDS_S
    ]
    return [*samples, ("+Inf", float(t.requests))]


def red_families(totals: dict[tuple[str, str, str], RedTotals]) -> list[Metric]:
    by_labels: dict[LabelSet, RedTotals] = {}
    for key, t in totals.items():
        labels = labels_of(*key)
        by_labels[labels] = by_labels[labels].plus(t) if labels in by_labels else t
    requests = CounterMetricFamily(
        "http_server_requests",
        "Requests (entry spans) Heron received since it started, from its per-minute rollups.",
        labels=LABELS,
    )
    errors = CounterMetricFamily(
        "http_server_errors",
        "Requests that failed (span status ERROR or HTTP 5xx) since Heron started.",
        labels=LABELS,
    )
    duration = HistogramMetricFamily(
        "http_server_request_duration_seconds",
        "Duration of requests (entry spans) since Heron started, from its latency buckets.",
        labels=LABELS,
    )
    for labels, t in sorted(by_labels.items()):
        requests.add_metric(list(labels), t.requests)
        errors.add_metric(list(labels), t.errors)
        duration.add_metric(list(labels), le_samples(t), t.sum_ns / 1e9)
    return [requests, errors, duration]


class RedCollector(Collector):
    """The RED families of the server's project, cached for ``cache_s`` seconds."""

    def __init__(
        self,
        ctx: AppContext,
        start_ns: int,
        *,
        cache_s: float = CACHE_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ctx = ctx
        self.start_ns = start_ns
        self.cache_s = cache_s
        self.monotonic = monotonic
        self.failures = 0
        self._counters: RedCounters | None = None
        self._families: list[Metric] = []
        self._refreshed: float | None = None
        self._lock = threading.Lock()

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            now = self.monotonic()
            if self._refreshed is None or now - self._refreshed >= self.cache_s:
                self._refresh()
                self._refreshed = now
            families = list(self._families)
        yield from families
        yield CounterMetricFamily(
            "heron_red_refresh_failures",
            "Refreshes of the http_server_* figures that failed (the last ones were served).",
            value=self.failures,
        )

    def _refresh(self) -> None:
        if self._counters is None:  # the project is known once the app has started
            self._counters = RedCounters(self.ctx.store, self.ctx.project_id, self.start_ns)
        try:
            totals = self._counters.totals(self.ctx.clock())
        except Exception as e:
            self.failures += 1
            log.warning("metrics: RED figures not refreshed: %s", e)
            return
        self._families = red_families(totals)
