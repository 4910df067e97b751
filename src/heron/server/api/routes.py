"""JSON read API routes under ``/api/v1``, documented by the app's OpenAPI schema.

Every route requires ``Authorization: Bearer <api token>`` (one router-level dependency)
and answers bad parameters with ``400 {"error": ...}``. Handlers are plain ``def`` so
FastAPI runs the blocking DuckDB reads in its thread pool.

Routes are module level and take the app's context as a dependency (``ctx: Ctx``).
No ``from __future__ import annotations`` here: FastAPI reads parameter annotations at
runtime.
"""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query

from heron.server import query
from heron.server.api import (
    _alert_routes,
    _analysis_routes,
    _dashboard_routes,
    _db_routes,
    _error_routes,
    _loadtest_routes,
    _metric_routes,
    _rum_routes,
)
from heron.server.api._auth import require_api_token
from heron.server.api._params import Project, WindowDep
from heron.server.api._route import ApiRoute
from heron.server.api._schemas import (
    EndpointsResponse,
    ErrorBody,
    ServicesResponse,
    TimeseriesResponse,
    TracesResponse,
)
from heron.server.context import AppContext, Ctx
from heron.server.errors import NotFound

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "A parameter is malformed or out of range."},
    401: {"model": ErrorBody, "description": "Missing or invalid API token."},
    # Also keeps FastAPI from documenting a 422 this API never sends (see ApiRoute).
    "4XX": {"model": ErrorBody, "description": "Any client error: the body says what."},
}
Order = Annotated[
    Literal["asc", "desc"] | None,
    Query(description="Sort direction; default descending for figures, ascending for names."),
]


def _sort_param(allowed: tuple[str, ...], default: str) -> Any:
    return Query(
        description=f"Sort key, one of: {', '.join(allowed)}. Default: {default}.",
        json_schema_extra={"enum": list(allowed)},
    )


router = APIRouter(
    prefix="/api/v1",
    tags=["read API"],
    route_class=ApiRoute,
    dependencies=[Depends(require_api_token)],
    responses=_ERRORS,
)


def _known(ctx: AppContext, project: int, service: str, endpoint: str | None = None) -> None:
    if not query.service_known(ctx.store, project, service):
        raise NotFound(f"no service named {service!r} has reported requests")
    if endpoint is not None and not query.endpoint_known(ctx.store, project, service, endpoint):
        raise NotFound(f"service {service!r} has no endpoint {endpoint!r}")


@router.get("/services", response_model=ServicesResponse)
def services(
    ctx: Ctx,
    project: Project,
    w: WindowDep,
    release: Annotated[str | None, Query(description="Only this release.")] = None,
    sort: Annotated[str, _sort_param(query.SERVICE_SORTS, "requests")] = "requests",
    order: Order = None,
) -> dict[str, Any]:
    """Services with RED metrics (requests/min, error rate, p50/p95/p99, Apdex).

    Computed from per-minute rollups of entry spans (server/consumer spans and
    roots); minutes partly inside the range count whole. `rpm` is requests per
    minute over the time the service was seen: from its first minute with a request
    in the range to the range's end (at least one minute).
    """
    rows = query.service_table(
        ctx.store,
        project,
        w.time_range,
        environment=w.environment,
        release=release or None,
        apdex_t_ms=w.apdex_t_ms,
        sort=sort,
        descending=None if order is None else order == "desc",
    )
    return {
        **w.echo(),
        "apdex_t_ms": w.apdex_t_ms,
        "services": rows,
    }


unknown: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such service or endpoint."}
}


@router.get(
    "/services/{service:path}/endpoints", response_model=EndpointsResponse, responses=unknown
)
def endpoints(
    ctx: Ctx,
    project: Project,
    service: str,
    w: WindowDep,
    release: Annotated[str | None, Query(description="Only this release.")] = None,
    sort: Annotated[str, _sort_param(query.ENDPOINT_SORTS, "requests")] = "requests",
    order: Order = None,
) -> dict[str, Any]:
    """Endpoints of a service (`METHOD route`, else the span name) with RED metrics,
    Apdex, total time and share of the service's time. A service that never reported a
    request (in the retained data): 404."""
    _known(ctx, project, service)
    rows = query.endpoint_table(
        ctx.store,
        project,
        w.time_range,
        service,
        environment=w.environment,
        release=release or None,
        apdex_t_ms=w.apdex_t_ms,
        sort=sort,
        descending=None if order is None else order == "desc",
    )
    return {
        **w.echo(),
        "service": service,
        "release": release or None,
        "apdex_t_ms": w.apdex_t_ms,
        "endpoints": rows,
    }


@router.get(
    "/services/{service:path}/timeseries", response_model=TimeseriesResponse, responses=unknown
)
def timeseries(
    ctx: Ctx,
    project: Project,
    service: str,
    w: WindowDep,
    endpoint: Annotated[
        str | None,
        Query(description="Only this endpoint (as listed by /endpoints); default: whole service."),
    ] = None,
    step_s: Annotated[int, Query(ge=60, description="Step in seconds, a multiple of 60.")] = 60,
    release: Annotated[str | None, Query(description="Only this release.")] = None,
) -> dict[str, Any]:
    """Per-step series for a service or one endpoint; empty steps have requests 0.

    Steps are aligned to multiples of `step_s` since the epoch; `t` is the step's start
    in Unix seconds; the step still filling now is `partial`, its `rpm` over the part
    that has passed. A service or endpoint never seen (in the retained data): 404."""
    _known(ctx, project, service, endpoint or None)
    series = query.service_timeseries(
        ctx.store,
        project,
        w.time_range,
        service,
        endpoint=endpoint or None,
        step_s=step_s,
        environment=w.environment,
        release=release or None,
        apdex_t_ms=w.apdex_t_ms,
        now_ns=w.now_ns,
    )
    return {
        **w.echo(),
        "service": service,
        "endpoint": series.endpoint,
        "step_s": step_s,
        "apdex_t_ms": w.apdex_t_ms,
        "points": series.points,
    }


@router.get("/traces", response_model=TracesResponse)
def traces(
    ctx: Ctx,
    project: Project,
    w: WindowDep,
    service: Annotated[str | None, Query(description="A span of this service.")] = None,
    endpoint: Annotated[
        str | None, Query(description="A span whose `METHOD route`, route or name is this.")
    ] = None,
    min_duration_ms: Annotated[float | None, Query(ge=0, allow_inf_nan=False)] = None,
    max_duration_ms: Annotated[float | None, Query(ge=0, allow_inf_nan=False)] = None,
    status: Annotated[
        Literal["any", "ok", "error"],
        Query(description="error: ERROR status or HTTP status ≥ 500."),
    ] = "any",
    attr: Annotated[
        list[str] | None,
        Query(
            description=(
                "key=value on a span (or resource) attribute; repeatable, all must match. "
                "Old and current semantic-convention names both work (http.method / "
                "http.request.method, http.status_code / http.response.status_code, ...)."
            )
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=query.MAX_TRACE_LIMIT)] = 50,
) -> dict[str, Any]:
    """Traces, newest first, with one span (in the range) matching every filter."""
    q = query.TraceQuery(
        service=service or None,
        endpoint=endpoint or None,
        min_duration_ms=min_duration_ms,
        max_duration_ms=max_duration_ms,
        status=status,
        attributes=[query.AttrFilter.parse(a) for a in attr or ()],
        environment=w.environment,
        limit=limit,
    )
    found = query.search_traces(ctx.store, project, w.time_range, q)
    return {**w.echo(), "traces": found}


@router.get(
    "/traces/{trace_id}",
    response_model=query.TraceDetail,
    responses={404: {"model": ErrorBody, "description": "No span of this trace is stored."}},
)
def trace(ctx: Ctx, project: Project, trace_id: str) -> query.TraceDetail:
    """All spans of a trace, ordered by start, with parent/child structure."""
    detail = query.get_trace(ctx.store, project, query.parse_trace_id(trace_id))
    if detail is None:
        raise NotFound(f"trace {trace_id.lower()} not found")
    return detail


router.include_router(_db_routes.router)
router.include_router(_error_routes.router)
router.include_router(_metric_routes.router)
router.include_router(_dashboard_routes.router)
router.include_router(_alert_routes.router)
router.include_router(_rum_routes.router)
router.include_router(_analysis_routes.router)
router.include_router(_loadtest_routes.router)
