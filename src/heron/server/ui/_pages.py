"""The services overview, a service's page and an endpoint's page.

Tables are rendered on the server (sorting and filtering are links, so they work without
JavaScript); chart data is embedded as JSON for the page's small script to draw.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from heron._version import __version__
from heron.server import query
from heron.server.errors import NotFound
from heron.server.query import TimeRange
from heron.server.ui._kit import RENDERER, Kit, KitDep, UiRoute, sort_param
from heron.server.ui._state import UiState

CHART_POINTS = 120
RPM_TITLE = (
    "Requests per minute from the first request in the range to its end "
    "(a service that started 3 minutes ago is not averaged over the whole hour)"
)
SPARK_W, SPARK_H = 100.0, 24.0


def sparkline_points(values: list[float | None]) -> str:
    """SVG polyline points (viewBox 100×24) of a series; gaps (None) count as zero."""
    if not values:
        return ""
    ys = [v or 0.0 for v in values]
    top = max(ys) or 1.0
    step = SPARK_W / max(len(ys) - 1, 1)
    return " ".join(
        f"{i * step:.1f},{SPARK_H - 1 - (y / top) * (SPARK_H - 2):.1f}" for i, y in enumerate(ys)
    )


def _series(kit: Kit, state: UiState, service: str, **filters: Any) -> dict[str, Any]:
    """Chart data: columns of the time series (times in Unix seconds); ``partial``: the
    last step is still filling (drawn dashed)."""
    step = query.chart_step_s(state.time_range, CHART_POINTS)
    ts = query.service_timeseries(
        kit.ctx.store,
        kit.project,
        state.time_range,
        service,
        step_s=step,
        environment=state.environment,
        apdex_t_ms=kit.ctx.config.apdex_t_ms,
        now_ns=state.now_ns,
        **filters,
    )
    pts = ts.points
    return {
        "rate_label": "req/min",
        "partial": bool(pts) and pts[-1].partial,
        "step_s": step,
        "from": state.time_range.start_ns // 10**9,
        "to": state.time_range.end_ns // 10**9,
        "t": [p.t for p in pts],
        "rpm": [p.rpm for p in pts],
        "error_rate": [p.error_rate * 100 if p.requests else None for p in pts],
        "latency": [
            {"label": "p50", "values": [p.p50_ms for p in pts]},
            {"label": "p95", "values": [p.p95_ms for p in pts]},
            {"label": "p99", "values": [p.p99_ms for p in pts]},
        ],
    }


def _one(rows: list[Any], attr: str, name: str) -> Any:
    return next((r for r in rows if getattr(r, attr) == name), None)


def _known(kit: Kit, service: str, endpoint: str | None = None) -> None:
    """Raise NotFound (a 404 page) for a service or endpoint never seen."""
    store, project = kit.ctx.store, kit.project
    if not query.service_known(store, project, service):
        raise NotFound(f"no service named {service!r} has reported requests")
    if endpoint is not None and not query.endpoint_known(store, project, service, endpoint):
        raise NotFound(f"service {service!r} has no endpoint {endpoint!r}")


def _required(request: Request, name: str) -> str:
    value = request.query_params.get(name)
    if not value:
        raise query.InvalidQuery(f"the {name!r} parameter is required")
    return value


router = APIRouter(route_class=UiRoute)
RENDERER.env.globals["rpm_title"] = RPM_TITLE


@router.get("/")
def overview(kit: KitDep, request: Request) -> Response:
    state = kit.state(request)
    sort, order = sort_param(request, query.SERVICE_SORTS, "requests")
    store, project = kit.ctx.store, kit.project
    rows = query.service_table(
        store,
        project,
        state.time_range,
        environment=state.environment,
        apdex_t_ms=kit.ctx.config.apdex_t_ms,
        sort=sort,
        descending=order == "desc",
    )
    lines = query.service_sparklines(
        store, project, state.time_range, environment=state.environment, now_ns=state.now_ns
    )
    sparks = {
        name: {
            "rpm": sparkline_points(list(line.rpm)),
            "p95": sparkline_points(line.p95_ms),
            "errors": sparkline_points(line.error_rate),
        }
        for name, line in lines.items()
    }
    return kit.render(
        request,
        "overview.html",
        state,
        nav="services",
        page_params={"sort": sort if sort != "requests" else None, "order": _order(request)},
        rows=rows,
        sparks=sparks,
        sort=sort,
        order=order,
        has_data=bool(rows) or query.has_data(store, project),
        setup=_setup(kit, request),
    )


@router.get("/service")
def service_page(kit: KitDep, request: Request) -> Response:
    state = kit.state(request)
    service = _required(request, "service")
    _known(kit, service)
    release = request.query_params.get("release") or None
    needle = (request.query_params.get("q") or "").strip()
    sort, order = sort_param(request, query.ENDPOINT_SORTS, "requests")
    store, project, tr = kit.ctx.store, kit.project, state.time_range
    env = state.environment
    rows = query.endpoint_table(
        store,
        project,
        tr,
        service,
        environment=env,
        release=release,
        apdex_t_ms=kit.ctx.config.apdex_t_ms,
        sort=sort,
        descending=order == "desc",
    )
    shown = [r for r in rows if needle.casefold() in r.endpoint.casefold()] if needle else rows
    return kit.render(
        request,
        "service.html",
        state,
        nav="services",
        page_params={
            "service": service,
            "release": release,
            "q": needle or None,
            "sort": sort if sort != "requests" else None,
            "order": _order(request),
        },
        service=service,
        release=release,
        releases=query.list_releases(store, project, tr, service, environment=env),
        summary=_summary(kit, tr, state, service, release),
        series=_series(kit, state, service, release=release),
        rows=shown,
        total_rows=len(rows),
        needle=needle,
        sort=sort,
        order=order,
    )


@router.get("/endpoint")
def endpoint_page(kit: KitDep, request: Request) -> Response:
    state = kit.state(request)
    service = _required(request, "service")
    endpoint = _required(request, "endpoint")
    _known(kit, service, endpoint)
    release = request.query_params.get("release") or None
    store, project, tr = kit.ctx.store, kit.project, state.time_range
    env = state.environment
    stats = query.endpoint_table(
        store,
        project,
        tr,
        service,
        environment=env,
        release=release,
        apdex_t_ms=kit.ctx.config.apdex_t_ms,
    )
    histogram = query.latency_histogram(
        store, project, tr, service, endpoint, environment=env, release=release
    )
    examples = query.endpoint_traces(
        store, project, tr, service, endpoint, environment=env, release=release
    )
    return kit.render(
        request,
        "endpoint.html",
        state,
        nav="services",
        page_params={"service": service, "endpoint": endpoint, "release": release},
        service=service,
        endpoint=endpoint,
        release=release,
        releases=query.list_releases(store, project, tr, service, environment=env),
        summary=_one(stats, "endpoint", endpoint),
        series=_series(kit, state, service, endpoint=endpoint, release=release),
        histogram=histogram,
        examples=examples,
        n_plus_one=query.n_plus_one_findings(
            store, project, tr, service=service, endpoint=endpoint, environment=env, limit=20
        ),
    )


def _order(request: Request) -> str | None:
    return request.query_params.get("order") or None


def _summary(
    kit: Kit, tr: TimeRange, state: UiState, service: str, release: str | None
) -> query.ServiceStats | None:
    rows = query.service_table(
        kit.ctx.store,
        kit.project,
        tr,
        environment=state.environment,
        release=release,
        apdex_t_ms=kit.ctx.config.apdex_t_ms,
    )
    return _one(rows, "service", service)


def _setup(kit: Kit, request: Request) -> dict[str, str]:
    """How to send data here: endpoint and ingest key, for the empty state."""
    boot = kit.ctx.bootstrap
    return {
        "endpoint": str(request.base_url).rstrip("/"),
        "key": boot.ingest_key if boot else "hk_…",
        "version": __version__,
    }
