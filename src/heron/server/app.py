"""ASGI app factory: wires config, store, ingest, the JSON API and background jobs.

``config.role`` picks what this process serves (docs/scale-out.md): ``ingest`` the OTLP
and Sentry ingest routes, ``query`` the UI, the JSON API and sign-in, ``jobs`` the
background jobs, ``all`` (the default) everything. Every role answers ``/healthz``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.routing import Route

from heron._version import __version__
from heron.server.alerting.engine import AlertEngine
from heron.server.api.routes import router as api_router
from heron.server.api_docs import add_api_docs
from heron.server.auth import install_auth
from heron.server.config import Config
from heron.server.context import AppContext
from heron.server.errors import install_error_handlers
from heron.server.exposition import install_metrics
from heron.server.http_guards import add_http_guards, trust_proxies
from heron.server.ingest.http import TraceIngest, lean_route
from heron.server.ingest.logs import LogIngest
from heron.server.ingest.metrics import MetricIngest, MetricLimits, SeriesGuard
from heron.server.ingest.pipeline import Pipeline
from heron.server.ingest.remote_write import RemoteWriteIngest
from heron.server.ingest.rum import RumIngest
from heron.server.ingest.rum_sdk import add_sdk_routes
from heron.server.ingest.sentry import SentryIngest
from heron.server.jobs import Maintenance
from heron.server.projects import Projects
from heron.server.store.base import StorageUnavailable, Store
from heron.server.store.open import open_store
from heron.server.ui import add_security_headers
from heron.server.ui import router as ui_router

log = logging.getLogger("heron.server")


def create_app(
    config: Config,
    *,
    store: Store | None = None,
    clock: Callable[[], int] = time.time_ns,
    maintenance_interval_s: float = 60.0,
) -> FastAPI:
    """Build the app for ``config.role``. The store starts (and bootstraps keys) in the
    lifespan; ``store`` defaults to the one the config names (``store.open``)."""
    if store is None:
        store = open_store(config)
    role = config.role
    serves_ui = role in ("all", "query")
    ctx = AppContext(config=config, store=store, projects=Projects(store), clock=clock)
    maintenance = (
        Maintenance(
            store,
            retention_days=config.retention_days,
            rollup_retention_days=config.rollup_retention_days,
            interval_s=maintenance_interval_s,
            clock=clock,
        )
        if role in ("all", "jobs")
        else None
    )
    alert_engine = (
        AlertEngine(store, config, clock, jobs=maintenance.jobs if maintenance else None)
        if role in ("all", "jobs") and config.alerts_enabled
        else None
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store.start()
        ctx.bootstrap = ctx.projects.bootstrap(
            config.ingest_key, config.api_token, config.rum_browser_key
        )
        for cb in ctx.on_bootstrap:
            cb(ctx.bootstrap)
        if maintenance is not None:
            maintenance.start()
        if alert_engine is not None:
            alert_engine.start()
        try:
            yield
        finally:
            if alert_engine is not None:
                alert_engine.stop()
            if maintenance is not None:
                maintenance.stop()
            store.close()

    app = FastAPI(
        title="Heron",
        version=__version__,
        description=(
            "Self-hosted APM. Read API: send `Authorization: Bearer <api token>` "
            "or sign in (session cookie)."
        ),
        lifespan=lifespan,
        docs_url=None,  # api_docs.py serves /docs under the CSP; ReDoc is not served
        redoc_url=None,
        openapi_url="/openapi.json" if serves_ui else None,
    )
    app.state.ctx = ctx
    app.state.maintenance = maintenance  # None unless this process runs the jobs
    app.state.alert_engine = alert_engine  # None unless it runs the jobs with alerting on

    install_error_handlers(app)
    pipeline = _add_ingest_routes(app, ctx) if role in ("all", "ingest") else None

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        """200 while the store can write; 503 with the reason while writes fail."""
        problem = store.health()
        body = {
            "status": "ok" if problem is None else "storage failing",
            "role": role,
            "storage_error": problem,
            "version": __version__,
            "queued_spans": store.queued_spans,
            "queued_events": store.queued_events,
            "queued_points": store.queued_points,
            "queued_rum": store.queued_rum,
        }
        if problem is None:
            return JSONResponse(body)
        retry = {"Retry-After": str(StorageUnavailable.retry_after_s)}
        return JSONResponse(body, 503, headers=retry)

    add_sdk_routes(app)  # GET /rum.js, /rum.mjs, /rum-react.mjs: public, on every role
    if serves_ui:
        add_api_docs(app)
        install_auth(app, ctx)
        app.include_router(api_router)
        app.include_router(ui_router)
    add_http_guards(app, body_timeout_s=config.body_timeout_s)
    # GET /metrics on every role; the RED figures where queries are served.
    install_metrics(app, ctx, pipeline=pipeline, maintenance=maintenance, red=serves_ui)
    add_security_headers(app)
    trust_proxies(app, config.trusted_proxy_list)
    return app


def _add_ingest_routes(app: FastAPI, ctx: AppContext) -> Pipeline:
    """Ingest routes: ingest keys only (no session, no API token), outside the schema."""
    config, store = ctx.config, ctx.store
    pipeline = Pipeline(store, config.scrub_key_list)
    traces = TraceIngest(pipeline, ctx.projects, config.max_body_bytes, ctx.clock)
    logs = LogIngest(pipeline, ctx.projects, config.max_body_bytes, ctx.clock)
    sentry = SentryIngest(pipeline, ctx.projects, config.max_body_bytes, ctx.clock)
    limits = MetricLimits(
        config.metric_max_series, config.metric_max_names, config.metric_max_series_total
    )
    guard = SeriesGuard(limits, store, ctx.clock, config.scrub_key_list)
    metrics = MetricIngest(store, guard, ctx.projects, config.max_body_bytes, ctx.clock)
    remote = RemoteWriteIngest(store, guard, ctx.projects, config.max_body_bytes, ctx.clock)
    # The OTLP/HTTP routes (the hot path): plain Starlette routes, first, so the router
    # calls each handler with its Request directly, without FastAPI's per-request
    # machinery (dependency solving, its exit stacks). The app's
    # middleware (security headers, request counting, body guard, errors) still wraps
    # them; the handlers build every answer, errors included, themselves.
    otlp = [
        lean_route("/v1/traces", traces.__call__),
        lean_route("/v1/logs", logs.__call__),
        lean_route("/v1/metrics", metrics.__call__),
    ]
    app.router.routes[0:0] = otlp
    app.add_api_route("/api/v1/write", remote, methods=["POST"], include_in_schema=False)

    def metric_ingest_stats() -> dict[str, int]:
        return {**guard.stats(), **remote.counters}

    # GET /metrics reads these counters (heron_metric_*); see SeriesGuard.stats.
    app.state.metric_ingest_stats = metric_ingest_stats
    if config.rum_enabled:  # browsers post RUM beacons (docs/rum.md, "Beacon endpoint")
        rum = RumIngest(pipeline, ctx.projects, config, ctx.clock)
        app.state.rum_ingest = rum
        # A plain route, first: the router dispatches straight to the endpoint's ASGI
        # app (RumIngest.__call__), without FastAPI's per-request machinery.
        rum.route = Route("/rum/v1/events", rum, include_in_schema=False)
        app.router.routes.insert(0, rum.route)
    # Sentry SDKs post to ".../envelope/"; accept the path without the slash too.
    for path, handler in (("envelope", sentry.envelope), ("store", sentry.store_event)):
        for suffix in ("/", ""):
            app.add_api_route(
                f"/api/{{project_id}}/{path}{suffix}",
                handler,
                methods=["POST"],
                include_in_schema=False,
            )
    return pipeline
