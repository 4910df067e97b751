"""Heron's own health as Prometheus families: requests, ingest, the writers' queues and
commits, storage size and background jobs. Everything is read from counters the
components already keep (no query per scrape but the storage size, cached)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from heron._version import __version__
from heron.server.exposition._requests import REQUEST_BOUNDS_S, RequestStats
from heron.server.ingest.pipeline import Pipeline
from heron.server.jobs import Maintenance
from heron.server.store.base import Store
from heron.server.store.stats import COMMIT_BOUNDS_S

log = logging.getLogger("heron.metrics")

STORAGE_CACHE_S = 30.0


def bucket_samples(bounds: Sequence[float], counts: Sequence[float]) -> list[tuple[str, float]]:
    """Cumulative ``(le, count)`` pairs from per-bucket counts (the last one is +Inf)."""
    out, total = [], 0.0
    for le, n in zip([*map(floatToGoString, bounds), "+Inf"], counts, strict=True):
        total += n
        out.append((le, total))
    return out


class HealthCollector(Collector):
    """``heron_*`` families of one server process."""

    def __init__(
        self,
        store: Store,
        requests: RequestStats,
        pipeline: Pipeline | None,
        maintenance: Maintenance | None,
        role: str,
        clock: Callable[[], float] = time.monotonic,
        metric_stats: Callable[[], dict[str, int]] | None = None,
    ) -> None:
        self.store = store
        self.requests = requests
        self.pipeline = pipeline
        self.maintenance = maintenance
        self.role = role
        self.clock = clock
        self.metric_stats = metric_stats
        self._storage: tuple[float, dict[str, int]] | None = None
        self._storage_lock = threading.Lock()

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily(
            "heron_build_info",
            "Heron's version and this process's role.",
            labels=["version", "role"],
        )
        info.add_metric([__version__, self.role], 1)
        yield info
        yield from self._requests()
        yield from self._ingest()
        yield from self._metric_ingest()
        yield from self._store()
        yield from self._storage_bytes()
        yield from self._jobs()

    def _requests(self) -> Iterator[Metric]:
        counts = CounterMetricFamily(
            "heron_http_requests",
            "HTTP requests Heron answered, by method, route template and status code.",
            labels=["method", "route", "code"],
        )
        for (method, route, code), n in sorted(dict(self.requests.counts).items()):
            counts.add_metric([method, route, code], n)
        yield counts
        hist = HistogramMetricFamily(
            "heron_http_request_duration_seconds",
            "Time Heron took to answer HTTP requests, by route template.",
            labels=["route"],
        )
        for route, values in sorted(dict(self.requests.durations).items()):
            hist.add_metric([route], bucket_samples(REQUEST_BOUNDS_S, values[:-1]), values[-1])
        yield hist

    def _ingest(self) -> Iterator[Metric]:
        rejected = CounterMetricFamily(
            "heron_ingest_rejected_items",
            "Items refused at ingest, by signal and reason: invalid (left out of a partial "
            "success) or queue_full (answered 503 or 429).",
            labels=["signal", "reason"],
        )
        if self.pipeline is not None:
            for (signal, reason), n in sorted(dict(self.pipeline.rejected).items()):
                rejected.add_metric([signal, reason], n)
        yield rejected

    def _metric_ingest(self) -> Iterator[Metric]:
        """The metrics ingest's guard (``ingest/metrics.py SeriesGuard``): points by
        outcome, the series and names it tracks (per ingest process)."""
        if self.metric_stats is None:
            return
        stats = self.metric_stats()
        points = CounterMetricFamily(
            "heron_metric_points",
            "Metric data points received (OTLP and remote write), by outcome: accepted, "
            "rejected_invalid, rejected_cardinality (over a series or name cap), or "
            "not_stored (the first point of a cumulative series, its baseline).",
            labels=["outcome"],
        )
        for outcome in ("accepted", "rejected_invalid", "rejected_cardinality", "not_stored"):
            points.add_metric([outcome], stats.get(f"points_{outcome}", 0))
        yield points
        stale = CounterMetricFamily(
            "heron_metric_staleness_markers_dropped",
            "Prometheus staleness markers (NaN samples) left out of remote writes.",
        )
        stale.add_metric([], stats.get("staleness_markers_dropped", 0))
        yield stale
        series = GaugeMetricFamily(
            "heron_metric_series_active",
            "Metric series this ingest process tracks (cardinality guard; unseen for an "
            "hour, a series is forgotten).",
        )
        series.add_metric([], stats.get("series_active", 0))
        yield series
        names = GaugeMetricFamily("heron_metric_names", "Metric names this ingest process tracks.")
        names.add_metric([], stats.get("metric_names", 0))
        yield names

    def _store(self) -> Iterator[Metric]:
        stats = dict(self.store.stats)
        committed = CounterMetricFamily(
            "heron_store_committed_items",
            "Items committed (and acknowledged) by the store's writers, by kind.",
            labels=["kind"],
        )
        for key, n in sorted(stats.items()):
            if key.startswith("committed_"):
                committed.add_metric([key.removeprefix("committed_")], n)
        yield committed
        for key, name, doc in (
            ("commits", "heron_store_commits", "Group commits of spans."),
            ("failed_commits", "heron_store_failed_commits", "Commits that failed."),
            (
                "rejected_full",
                "heron_store_rejected_batches",
                "Write batches refused because the writer's queue was full.",
            ),
        ):
            yield CounterMetricFamily(name, doc, value=stats.get(key, 0))
        queued = GaugeMetricFamily(
            "heron_store_queued_items",
            "Items accepted but not yet committed, by queue.",
            labels=["queue"],
        )
        queued.add_metric(["spans"], self.store.queued_spans)
        queued.add_metric(["events"], self.store.queued_events)
        queued.add_metric(["points"], self.store.queued_points)
        queued.add_metric(["rum"], self.store.queued_rum)
        yield queued
        yield GaugeMetricFamily(
            "heron_store_up",
            "1 while the store's writes succeed, 0 while they fail (see /healthz).",
            value=1 if self.store.health() is None else 0,
        )
        commits = HistogramMetricFamily(
            "heron_store_commit_duration_seconds",
            "Time the store's writers took per commit, by writer.",
            labels=["writer"],
        )
        for writer, h in sorted(self.store.commit_times.snapshot().items()):
            commits.add_metric([writer], bucket_samples(COMMIT_BOUNDS_S, h.counts), h.sum_s)
        yield commits

    def _storage_bytes(self) -> Iterator[Metric]:
        sizes = self._sizes()
        if sizes is None:
            return
        family = GaugeMetricFamily(
            "heron_storage_bytes",
            "Bytes the telemetry store holds on disk, by file (DuckDB) or table (ClickHouse).",
            labels=["component"],
        )
        for component, n in sorted(sizes.items()):
            family.add_metric([component], n)
        yield family

    def _sizes(self) -> dict[str, int] | None:
        """The store's sizes, re-read at most every ``STORAGE_CACHE_S``."""
        with self._storage_lock:
            now = self.clock()
            if self._storage is None or now - self._storage[0] >= STORAGE_CACHE_S:
                try:
                    self._storage = (now, self.store.storage_bytes())
                except Exception as e:  # storage down: leave the family out this time
                    log.warning("metrics: storage size unavailable: %s", e)
                    return None
            return self._storage[1]

    def _jobs(self) -> Iterator[Metric]:
        runs = CounterMetricFamily(
            "heron_job_runs",
            "Runs of the background jobs, by job and outcome (success or failure).",
            labels=["job", "outcome"],
        )
        last = GaugeMetricFamily(
            "heron_job_last_duration_seconds",
            "How long the last run of each background job took.",
            labels=["job"],
        )
        ended = GaugeMetricFamily(
            "heron_job_last_run_timestamp_seconds",
            "Unix time the last run of each background job ended.",
            labels=["job"],
        )
        jobs = dict(self.maintenance.jobs) if self.maintenance is not None else {}
        for job, r in sorted(jobs.items()):
            runs.add_metric([job, "success"], r.succeeded)
            runs.add_metric([job, "failure"], r.failed)
            last.add_metric([job], r.last_duration_s)
            ended.add_metric([job], r.last_end_s)
        yield from (runs, last, ended)
