"""Database pages: top queries, one query in depth, the slow query log, N+1 findings.

Statistics come from the database rollups (they trail ingest by the analysis job's
interval, ~10 s); samples and plans from raw spans. SQL text and plans are telemetry:
they reach HTML only through autoescaped expressions. JSON plans are parsed here into
an indented tree of nodes (PostgreSQL's "Node Type", "Relation Name", cost, rows) or
pretty-printed; text plans are shown as they are.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from heron.server import query
from heron.server.errors import NotFound
from heron.server.query import InvalidQuery
from heron.server.ui._kit import RENDERER, Kit, KitDep, UiRoute, sort_param
from heron.server.ui._state import UiState

CHART_POINTS = 120
TOP_LIMIT = 200
SLOW_LIMIT = 200
SAMPLES = 10
DEFAULT_SLOW_MS = 100.0
MAX_PLAN_NODES = 500
KINDS = ("any", "db", "http")
TRACED_CLIENTS = "psycopg, psycopg2, sqlite3, PyMySQL, mysqlclient, SQLAlchemy and redis"


# ------------------------------------------------------------------------ plans


@dataclass(frozen=True, slots=True)
class PlanNode:
    depth: int
    node_type: str
    relation: str
    details: list[str]


@dataclass(frozen=True, slots=True)
class PlanView:
    """A plan ready to show: ``nodes`` (a tree, when the plan has PostgreSQL's node
    shape), ``pretty`` (indented JSON) or the plan's text as recorded."""

    format: str
    text: str
    nodes: list[PlanNode] = field(default_factory=list)


_DETAIL_KEYS = (
    ("Index Name", "index {}"),
    ("Join Type", "{} join"),
    ("Index Cond", "index cond {}"),
    ("Hash Cond", "hash cond {}"),
    ("Filter", "filter {}"),
    ("Rows Removed by Filter", "{} rows removed by filter"),
)


def _node(plan: dict[str, Any], depth: int) -> PlanNode:
    details = []
    if "Startup Cost" in plan or "Total Cost" in plan:
        details.append(f"cost {plan.get('Startup Cost', '?')}..{plan.get('Total Cost', '?')}")
    if "Plan Rows" in plan:
        details.append(f"rows {plan['Plan Rows']}")
    if "Actual Total Time" in plan:
        details.append(
            f"actual {plan.get('Actual Startup Time', '?')}..{plan['Actual Total Time']} ms"
        )
    if "Actual Rows" in plan:
        details.append(f"actual rows {plan['Actual Rows']}")
    if "Actual Loops" in plan and plan["Actual Loops"] != 1:
        details.append(f"loops {plan['Actual Loops']}")
    for key, fmt in _DETAIL_KEYS:
        if key in plan:
            details.append(fmt.format(plan[key]))
    relation = str(plan.get("Relation Name", ""))
    if relation and plan.get("Alias") not in (None, relation):
        relation += f" {plan['Alias']}"
    return PlanNode(depth, str(plan.get("Node Type", "?")), relation, details)


def _pg_nodes(value: Any) -> list[PlanNode] | None:
    """PostgreSQL's ``EXPLAIN (FORMAT JSON)`` as (depth, node) in tree order, or None."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if not isinstance(value, dict) or not isinstance(value.get("Plan"), dict):
        return None
    out: list[PlanNode] = []
    stack: list[tuple[int, dict[str, Any]]] = [(0, value["Plan"])]
    while stack and len(out) < MAX_PLAN_NODES:
        depth, plan = stack.pop()
        out.append(_node(plan, depth))
        children = [p for p in plan.get("Plans") or () if isinstance(p, dict)]
        stack.extend((depth + 1, p) for p in reversed(children))
    return out


def plan_view(plan: str | None, fmt: str | None = None) -> PlanView | None:
    """How to show a recorded plan, or None without one."""
    if not plan:
        return None
    if fmt == "json" or plan.lstrip().startswith(("{", "[")):
        try:
            value = json.loads(plan)
        except ValueError:
            return PlanView("text", plan)
        pretty = json.dumps(value, indent=2, ensure_ascii=False)
        nodes = _pg_nodes(value)
        return PlanView("tree" if nodes else "json", pretty, nodes or [])
    return PlanView("text", plan)


# ------------------------------------------------------------------------ helpers


def _opt(request: Request, name: str) -> str | None:
    return (request.query_params.get(name) or "").strip() or None


def _threshold(request: Request) -> float:
    raw = _opt(request, "threshold")
    if raw is None:
        return DEFAULT_SLOW_MS
    try:
        value = float(raw)
    except ValueError:
        raise InvalidQuery(
            f"threshold must be a number of milliseconds (got {raw[:32]!r})"
        ) from None
    if not 0 <= value < 1e9:
        raise InvalidQuery("threshold must be between 0 and 1e9 ms")
    return value


def _series(points: list[query.QueryPoint], step_s: int, state: UiState) -> dict[str, Any]:
    """The query's time series in the shape the charts read (see heron.js): calls/min,
    error %, and latency lines (mean, p95, max), each with its legend label."""
    return {
        "rate_label": "calls/min",
        "partial": bool(points) and points[-1].partial,
        "step_s": step_s,
        "from": state.time_range.start_ns // 10**9,
        "to": state.time_range.end_ns // 10**9,
        "t": [p.t for p in points],
        "rpm": [p.calls_per_min for p in points],
        "error_rate": [p.errors / p.calls * 100 if p.calls else None for p in points],
        "latency": [
            {"label": "mean", "values": [p.mean_ms for p in points]},
            {"label": "p95", "values": [p.p95_ms for p in points]},
            {"label": "max", "values": [p.max_ms for p in points]},
        ],
    }


def _has_db_data(kit: Kit) -> bool:
    return kit.ctx.store.db.has_query_stats()


# ------------------------------------------------------------------------ routes


router = APIRouter(route_class=UiRoute)
RENDERER.env.filters["plan_view"] = plan_view
RENDERER.env.globals["traced_db_clients"] = TRACED_CLIENTS


@router.get("/db")
def db_queries(kit: KitDep, request: Request) -> Response:
    state = kit.state(request)
    service, endpoint = _opt(request, "service"), _opt(request, "endpoint")
    system = _opt(request, "db_system")
    sort, order = sort_param(request, query.DB_QUERY_SORTS, "total_time_ms")
    store, project, tr = kit.ctx.store, kit.project, state.time_range
    rows = query.top_queries(
        store,
        project,
        tr,
        service=service,
        endpoint=endpoint,
        db_system=system,
        environment=state.environment,
        sort=sort,
        descending=order == "desc",
        limit=TOP_LIMIT,
    )
    filtered = bool(service or endpoint or system)
    every = (
        query.top_queries(
            store, project, tr, environment=state.environment, limit=query.MAX_DB_LIMIT
        )
        if filtered
        else rows
    )
    return kit.render(
        request,
        "db.html",
        state,
        nav="db",
        page_params={
            "service": service,
            "endpoint": endpoint,
            "db_system": system,
            "sort": sort if sort != "total_time_ms" else None,
            "order": request.query_params.get("order") or None,
        },
        tab="queries",
        rows=rows,
        service=service,
        endpoint=endpoint,
        db_system=system,
        services=sorted({r.service for r in every} | ({service} if service else set())),
        systems=sorted({r.db_system for r in every} | ({system} if system else set())),
        filtered=filtered,
        has_data=bool(rows) or _has_db_data(kit),
        sort=sort,
        order=order,
    )


@router.get("/db/query")
def db_query(kit: KitDep, request: Request) -> Response:
    state = kit.state(request)
    raw = _opt(request, "fp")
    if raw is None:
        raise InvalidQuery("the 'fp' parameter (a query's fingerprint) is required")
    fp = query.parse_fingerprint(raw)
    service = _opt(request, "service")
    step = query.chart_step_s(state.time_range, CHART_POINTS)
    detail = query.query_detail(
        kit.ctx.store,
        kit.project,
        state.time_range,
        fp,
        service=service,
        environment=state.environment,
        step_s=step,
        samples=SAMPLES,
        now_ns=state.now_ns,
    )
    if detail is None:
        raise NotFound(f"no query with fingerprint {query.format_fingerprint(fp)}")
    planned = next((s for s in detail.slowest if s.plan), None)
    return kit.render(
        request,
        "db_query.html",
        state,
        nav="db",
        page_params={"fp": detail.fingerprint, "service": service},
        detail=detail,
        service=service,
        totals=detail.overall,
        series=_series(detail.timeseries, detail.step_s, state),
        planned=planned,
    )


@router.get("/db/slow")
def db_slow(kit: KitDep, request: Request) -> Response:
    state = kit.state(request)
    threshold = _threshold(request)
    service, endpoint = _opt(request, "service"), _opt(request, "endpoint")
    system, raw_fp = _opt(request, "db_system"), _opt(request, "fp")
    view = "calls" if raw_fp or _opt(request, "view") == "calls" else "groups"
    sort = _opt(request, "sort") or "total_time_ms"
    if sort not in query.SLOW_GROUP_SORTS:
        raise InvalidQuery(
            f"cannot sort by {sort[:32]!r}: use one of {', '.join(query.SLOW_GROUP_SORTS)}"
        )
    filters: dict[str, Any] = {
        "threshold_ms": threshold,
        "service": service,
        "endpoint": endpoint,
        "db_system": system,
        "environment": state.environment,
        "limit": SLOW_LIMIT,
    }
    store, project, tr = kit.ctx.store, kit.project, state.time_range
    if view == "calls":
        fp = query.parse_fingerprint(raw_fp) if raw_fp else None
        rows: list[Any] = query.slow_queries(store, project, tr, fingerprint=fp, **filters)
    else:
        rows = query.slow_query_groups(store, project, tr, sort=sort, **filters)
    params = {
        "threshold": _opt(request, "threshold"),
        "service": service,
        "endpoint": endpoint,
        "db_system": system,
    }
    return kit.render(
        request,
        "db_slow.html",
        state,
        nav="db",
        page_params={
            **params,
            "fp": raw_fp,
            "view": "calls" if view == "calls" and not raw_fp else None,
            "sort": sort if view == "groups" and sort != "total_time_ms" else None,
        },
        filter_params=params,
        tab="slow",
        view=view,
        fp=raw_fp,
        rows=rows,
        sort=sort,
        sorts=query.SLOW_GROUP_SORTS,
        threshold=threshold,
        service=service,
        endpoint=endpoint,
        db_system=system,
        limit=SLOW_LIMIT,
        has_data=bool(rows) or _has_db_data(kit),
    )


@router.get("/n-plus-one")
def n_plus_one(kit: KitDep, request: Request) -> Response:
    state = kit.state(request)
    service, endpoint = _opt(request, "service"), _opt(request, "endpoint")
    kind = _opt(request, "kind") or "any"
    if kind not in KINDS:
        raise InvalidQuery(f"kind must be any, db or http (got {kind[:32]!r})")
    sort = _opt(request, "sort") or "wasted_time_ms"
    if sort not in query.N_PLUS_ONE_SORTS:
        raise InvalidQuery(
            f"cannot sort by {sort[:32]!r}: use one of {', '.join(query.N_PLUS_ONE_SORTS)}"
        )
    rows = query.n_plus_one_findings(
        kit.ctx.store,
        kit.project,
        state.time_range,
        service=service,
        endpoint=endpoint,
        kind=kind,  # type: ignore[arg-type]  # checked above
        environment=state.environment,
        sort=sort,
    )
    return kit.render(
        request,
        "n_plus_one.html",
        state,
        nav="db",
        page_params={
            "service": service,
            "endpoint": endpoint,
            "kind": kind if kind != "any" else None,
            "sort": sort if sort != "wasted_time_ms" else None,
        },
        tab="n_plus_one",
        rows=rows,
        service=service,
        endpoint=endpoint,
        kind=kind,
        kinds=KINDS,
        sort=sort,
        sorts=query.N_PLUS_ONE_SORTS,
    )
