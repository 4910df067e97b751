"""``GET /metrics``: Heron's own health and the RED figures it computes, in Prometheus
text format (docs/prometheus.md), so a team's Prometheus can scrape Heron.

Each app has its own registry (no global state): ``heron_*`` families of this process
(``_health.py``), the ``http_server_*`` RED families of the project (``_red.py``, on the
roles that serve queries) and prometheus_client's process, platform and GC collectors.
The route asks for the API token (or a signed-in session) unless ``metrics_public``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Depends, FastAPI
from prometheus_client import (
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.registry import CollectorRegistry
from starlette.responses import Response

from heron.server.api import require_api_token
from heron.server.context import AppContext
from heron.server.exposition._health import HealthCollector, bucket_samples
from heron.server.exposition._red import LE_BOUNDS_S, RedCollector, labels_of
from heron.server.exposition._requests import CountRequests, RequestStats
from heron.server.ingest.pipeline import Pipeline
from heron.server.jobs import Maintenance

# The text format every Prometheus reads (what ``generate_latest`` writes).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

__all__ = [
    "LE_BOUNDS_S",
    "CountRequests",
    "RedCollector",
    "RequestStats",
    "bucket_samples",
    "install_metrics",
    "labels_of",
    "metrics_registry",
]


def metrics_registry(
    ctx: AppContext,
    requests: RequestStats,
    *,
    pipeline: Pipeline | None,
    maintenance: Maintenance | None,
    red: bool,
    metric_stats: Callable[[], dict[str, int]] | None = None,
) -> CollectorRegistry:
    """A registry of everything ``GET /metrics`` shows; ``red``: include the RED figures;
    ``metric_stats``: the metrics ingest's counters (on roles that ingest)."""
    registry = CollectorRegistry(auto_describe=False)
    health = HealthCollector(
        ctx.store, requests, pipeline, maintenance, ctx.config.role, metric_stats=metric_stats
    )
    registry.register(health)
    if red:
        registry.register(RedCollector(ctx, start_ns=ctx.clock()))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


def install_metrics(
    app: FastAPI,
    ctx: AppContext,
    *,
    pipeline: Pipeline | None,
    maintenance: Maintenance | None,
    red: bool,
) -> CollectorRegistry:
    """Count the app's requests and serve ``GET /metrics``; returns the registry."""
    requests = RequestStats()
    registry = metrics_registry(
        ctx,
        requests,
        pipeline=pipeline,
        maintenance=maintenance,
        red=red,
        metric_stats=getattr(app.state, "metric_ingest_stats", None),
    )
    app.add_middleware(CountRequests, stats=requests)

    def metrics() -> Response:
        """Prometheus text format 0.0.4 (a plain ``def``: a refresh may read the store)."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE)

    dependencies: list[Any] = [] if ctx.config.metrics_public else [Depends(require_api_token)]
    app.add_api_route(
        "/metrics", metrics, methods=["GET"], dependencies=dependencies, include_in_schema=False
    )
    return registry
