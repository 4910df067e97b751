"""Read API routes for databases: top queries, one query, the slow query log, N+1 findings.

Included in the ``/api/v1`` router (``api/routes.py``), so they share its token check
and its 400 error mapping. No ``from __future__ import annotations``: FastAPI reads the
parameter annotations at runtime.
"""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import Field

from heron.server import query
from heron.server.analyze.n_plus_one import DEFAULT_MIN_COUNT, DEFAULT_MIN_TOTAL_MS
from heron.server.api._params import Project, WindowDep
from heron.server.api._route import ApiRoute
from heron.server.api._schemas import ErrorBody, _Ranged
from heron.server.context import Ctx
from heron.server.errors import NotFound

DEFAULT_SLOW_MS = 100.0


class QueriesResponse(_Ranged):
    service: str | None
    endpoint: str | None
    db_system: str | None
    queries: list[query.QueryStats]


class QueryDetailResponse(_Ranged):
    service: str | None
    fingerprint: str = Field(description="16 hex digits.")
    db_system: str
    display: str = Field(description="The query's shape: literals as ?, lists as (...).")
    step_s: int
    services: list[query.QueryStats]
    overall: query.QueryStats | None = Field(
        description="All services together (its `service` is empty); null when not seen "
        "in the window. Its p95 comes from the merged latency histograms."
    )
    endpoints: list[query.QueryEndpoint]
    timeseries: list[query.QueryPoint]
    slowest: list[query.QuerySample]


class SlowQueriesResponse(_Ranged):
    threshold_ms: float
    fingerprint: str | None
    queries: list[query.QuerySample]


class SlowQueryGroupsResponse(_Ranged):
    threshold_ms: float
    sort: str
    groups: list[query.SlowQueryGroup]


class NPlusOneResponse(_Ranged):
    min_count: int
    min_total_ms: float
    findings: list[query.NPlusOneFinding]


def _sort_param(allowed: tuple[str, ...], default: str) -> Any:
    return Query(
        description=f"Sort key, one of: {', '.join(allowed)}. Default: {default}.",
        json_schema_extra={"enum": list(allowed)},
    )


Service = Annotated[str | None, Query(description="Only queries issued by this service.")]
Endpoint = Annotated[
    str | None,
    Query(description="Only calls made while serving this endpoint (`METHOD route` or name)."),
]
DbSystem = Annotated[
    str | None, Query(description="Only this database system (db.system.name), e.g. postgresql.")
]
Order = Annotated[
    Literal["asc", "desc"] | None,
    Query(description="Sort direction; default descending."),
]
Threshold = Annotated[
    float,
    Query(ge=0, allow_inf_nan=False, description="Only calls at least this long (ms)."),
]
Fingerprint = Annotated[
    str, Path(description="The query's fingerprint: 16 hex digits, as listed by /db/queries.")
]


router = APIRouter(route_class=ApiRoute)


@router.get("/db/queries", response_model=QueriesResponse)
def db_queries(
    ctx: Ctx,
    project: Project,
    w: WindowDep,
    service: Service = None,
    endpoint: Endpoint = None,
    db_system: DbSystem = None,
    sort: Annotated[str, _sort_param(query.DB_QUERY_SORTS, "total_time_ms")] = "total_time_ms",
    order: Order = None,
    limit: Annotated[int, Query(ge=1, le=query.MAX_DB_LIMIT)] = 50,
) -> dict[str, Any]:
    """Top database queries (per fingerprint and service) by total time.

    Calls, total/mean/p95/max time, errors, rows per call (when spans report
    `db.response.returned_rows`) and share of database time; with `endpoint`, the
    endpoint's breakdown: the queries it spends its time in, with
    `endpoint_time_share`. From per-minute rollups written by the analysis job,
    which trail ingest by up to ~10 s."""
    rows = query.top_queries(
        ctx.store,
        project,
        w.time_range,
        service=service or None,
        endpoint=endpoint or None,
        db_system=db_system or None,
        environment=w.environment,
        sort=sort,
        descending=None if order is None else order == "desc",
        limit=limit,
    )
    return {
        **w.echo(),
        "service": service or None,
        "endpoint": endpoint or None,
        "db_system": db_system or None,
        "queries": rows,
    }


@router.get(
    "/db/queries/{fingerprint}",
    response_model=QueryDetailResponse,
    responses={404: {"model": ErrorBody, "description": "No query has this fingerprint."}},
)
def db_query(
    ctx: Ctx,
    project: Project,
    fingerprint: Fingerprint,
    w: WindowDep,
    service: Service = None,
    step_s: Annotated[int, Query(ge=60, description="Series step, a multiple of 60.")] = 60,
    samples: Annotated[int, Query(ge=1, le=query.MAX_SAMPLES)] = 10,
) -> dict[str, Any]:
    """One query: figures per service and per endpoint (share of each endpoint's time,
    calls per request), a time series, and its slowest executions with endpoint, trace
    id and EXPLAIN plan (when the agent recorded one)."""
    fp = query.parse_fingerprint(fingerprint)
    detail = query.query_detail(
        ctx.store,
        project,
        w.time_range,
        fp,
        service=service or None,
        environment=w.environment,
        step_s=step_s,
        samples=samples,
        now_ns=w.now_ns,
    )
    if detail is None:
        raise NotFound(f"no query with fingerprint {query.format_fingerprint(fp)}")
    return {
        **w.echo(),
        "service": service or None,
        "fingerprint": detail.fingerprint,
        "db_system": detail.db_system,
        "display": detail.display,
        "step_s": detail.step_s,
        "services": detail.services,
        "overall": detail.overall,
        "endpoints": detail.endpoints,
        "timeseries": detail.timeseries,
        "slowest": detail.slowest,
    }


@router.get("/db/slow", response_model=SlowQueryGroupsResponse)
def db_slow(
    ctx: Ctx,
    project: Project,
    w: WindowDep,
    threshold_ms: Threshold = DEFAULT_SLOW_MS,
    service: Service = None,
    endpoint: Endpoint = None,
    db_system: DbSystem = None,
    sort: Annotated[str, _sort_param(query.SLOW_GROUP_SORTS, "total_time_ms")] = "total_time_ms",
    limit: Annotated[int, Query(ge=1, le=query.MAX_DB_LIMIT)] = 100,
) -> dict[str, Any]:
    """The slow query log, one row per query shape (fingerprint): how many calls took
    at least `threshold_ms`, their total, p95 and max duration, first and last seen,
    the services and endpoints that made them, the slowest call as example (trace and
    span id, obfuscated statement) and the newest EXPLAIN plan of any of them (when
    the agent recorded one). Each call: `/db/slow/calls`."""
    groups = query.slow_query_groups(
        ctx.store,
        project,
        w.time_range,
        threshold_ms=threshold_ms,
        service=service or None,
        endpoint=endpoint or None,
        db_system=db_system or None,
        environment=w.environment,
        sort=sort,
        limit=limit,
    )
    return {**w.echo(), "threshold_ms": threshold_ms, "sort": sort, "groups": groups}


@router.get("/db/slow/calls", response_model=SlowQueriesResponse)
def db_slow_calls(
    ctx: Ctx,
    project: Project,
    w: WindowDep,
    threshold_ms: Threshold = DEFAULT_SLOW_MS,
    fingerprint: Annotated[
        str | None, Query(description="Only this query shape (16 hex digits).")
    ] = None,
    service: Service = None,
    endpoint: Endpoint = None,
    db_system: DbSystem = None,
    limit: Annotated[int, Query(ge=1, le=query.MAX_DB_LIMIT)] = 100,
) -> dict[str, Any]:
    """The slow query log call by call: database calls above `threshold_ms`, newest
    first, with the obfuscated statement, EXPLAIN plan (when recorded), endpoint and
    trace id."""
    fp = query.parse_fingerprint(fingerprint) if fingerprint else None
    rows = query.slow_queries(
        ctx.store,
        project,
        w.time_range,
        threshold_ms=threshold_ms,
        fingerprint=fp,
        service=service or None,
        endpoint=endpoint or None,
        db_system=db_system or None,
        environment=w.environment,
        limit=limit,
    )
    shown = query.format_fingerprint(fp) if fp is not None else None
    return {**w.echo(), "threshold_ms": threshold_ms, "fingerprint": shown, "queries": rows}


@router.get("/n-plus-one", response_model=NPlusOneResponse)
def n_plus_one(
    ctx: Ctx,
    project: Project,
    w: WindowDep,
    service: Annotated[str | None, Query(description="Only this service.")] = None,
    endpoint: Annotated[str | None, Query(description="Only this endpoint.")] = None,
    kind: Annotated[
        Literal["any", "db", "http"],
        Query(description="db: repeated queries; http: repeated outgoing calls."),
    ] = "any",
    min_count: Annotated[
        int,
        Query(
            ge=2,
            description=f"Repeats under one parent span (groups of fewer than "
            f"{DEFAULT_MIN_COUNT} are not recorded).",
        ),
    ] = DEFAULT_MIN_COUNT,
    min_total_ms: Annotated[
        float,
        Query(ge=0, allow_inf_nan=False, description="Time the repeats took together."),
    ] = DEFAULT_MIN_TOTAL_MS,
    sort: Annotated[str, _sort_param(query.N_PLUS_ONE_SORTS, "wasted_time_ms")] = "wasted_time_ms",
    limit: Annotated[int, Query(ge=1, le=query.MAX_FINDINGS)] = 100,
) -> dict[str, Any]:
    """N+1 findings: within one trace, the same query (or outgoing HTTP call, by URL
    template) repeated at least `min_count` times under one parent span, taking at
    least `min_total_ms` in all. Grouped per endpoint and fingerprint, with
    occurrences, time wasted and the worst trace as example."""
    found = query.n_plus_one_findings(
        ctx.store,
        project,
        w.time_range,
        service=service or None,
        endpoint=endpoint or None,
        kind=kind,
        environment=w.environment,
        min_count=min_count,
        min_total_ms=min_total_ms,
        sort=sort,
        limit=limit,
    )
    return {
        **w.echo(),
        "min_count": min_count,
        "min_total_ms": min_total_ms,
        "findings": found,
    }
