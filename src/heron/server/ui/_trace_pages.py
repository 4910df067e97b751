"""The trace explorer (search) and the trace view (waterfall).

The waterfall's data is embedded as one JSON document in the page: spans in tree order
(parents before children, siblings by start time) with each subtree's extent, so the
script can collapse a subtree by skipping an index range and draw only the rows in view.
Resources are shared by many spans and are sent once each.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from heron.server import query
from heron.server.errors import NotFound
from heron.server.query import InvalidQuery, TraceDetail, rum
from heron.server.ui._kit import KitDep, UiRoute
from heron.server.ui._render import color_index

STATUSES = ("any", "ok", "error")
LIMITS = (20, 50, 100, 200)
MAX_ATTR_FILTERS = 10
MAX_CRIT_PIECES = 8


def _float(request: Request, name: str) -> float | None:
    text = (request.query_params.get(name) or "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise InvalidQuery(f"{name} must be a number of milliseconds (got {text[:32]!r})") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise InvalidQuery(f"{name} must be a finite number")
    return value


def _search_form(request: Request) -> dict[str, Any]:
    q = request.query_params
    status = q.get("status") or "any"
    if status not in STATUSES:
        raise InvalidQuery(f"status must be one of {', '.join(STATUSES)}")
    try:
        limit = int(q.get("limit") or 50)
    except ValueError:
        raise InvalidQuery("limit must be a whole number") from None
    attrs = [a for a in q.getlist("attr") if a.strip()][:MAX_ATTR_FILTERS]
    return {
        "service": q.get("service") or None,
        "endpoint": (q.get("endpoint") or "").strip() or None,
        "min_ms": _float(request, "min_ms"),
        "max_ms": _float(request, "max_ms"),
        "status": status,
        "attrs": attrs,
        "limit": limit,
    }


def tree_order(trace: TraceDetail) -> list[tuple[int, query.SpanDetail]]:
    """Spans depth-first from each root (children by start time), with their depth."""
    by_id = {s.span_id: s for s in trace.spans}
    out: list[tuple[int, query.SpanDetail]] = []
    for root in trace.roots:
        stack = [(root, 0)]
        while stack:
            span_id, depth = stack.pop()
            span = by_id[span_id]
            out.append((depth, span))
            kids = sorted(span.children, key=lambda c: (by_id[c].start_ns, c), reverse=True)
            stack.extend((c, depth + 1) for c in kids)
    return out


def waterfall_doc(trace: TraceDetail) -> dict[str, Any]:
    """The trace view's data: compact rows plus details (see the module docstring)."""
    ordered = tree_order(trace)
    index = {span.span_id: i for i, (_, span) in enumerate(ordered)}
    services = trace.services
    service_index = {name: i for i, name in enumerate(services)}
    crit = query.critical_path(trace)
    resources: dict[str, int] = {}
    rows: list[list[Any]] = []
    for depth, s in ordered:
        res_key = orjson.dumps(s.resource, option=orjson.OPT_SORT_KEYS).decode()
        rows.append(
            [
                index.get(s.parent_id, -1) if s.parent_id else -1,
                depth,
                service_index[s.service],
                s.name,
                (s.start_ns - trace.start_ns) / 1000,  # µs since the trace's start
                s.duration_ns / 1000,
                s.status,
                s.kind,
                _crit(crit[s.span_id], trace.start_ns) if s.span_id in crit else None,
                {
                    "id": s.span_id,
                    "parent": s.parent_id,
                    "message": s.status_message,
                    "attributes": s.attributes,
                    "events": [_event(e, trace.start_ns) for e in s.events],
                    "links": s.links,
                    "res": resources.setdefault(res_key, len(resources)),
                    "env": s.environment,
                    "release": s.release,
                    "scope": s.scope,
                    "browser": s.browser,
                },
            ]
        )
    _subtree_ends(rows)
    return {
        "trace_id": trace.trace_id,
        "start_ns": str(trace.start_ns),
        "duration_us": trace.duration_ms * 1000,
        "services": [[name, color_index(name)] for name in services],
        "resources": [orjson.loads(k) for k in resources],
        "spans": rows,
    }


def _crit(segments: list[tuple[int, int]], start_ns: int) -> list[Any]:
    """``[µs of self time on the path, its longest pieces]``: enough to draw, bounded."""
    longest = sorted(segments, key=lambda g: g[0] - g[1])[:MAX_CRIT_PIECES]
    pieces = [[(a - start_ns) / 1000, (b - start_ns) / 1000] for a, b in longest]
    return [sum(b - a for a, b in segments) / 1000, pieces]


def _event(event: dict[str, Any], start_ns: int) -> dict[str, Any]:
    t = event.get("time_ns")
    offset = (t - start_ns) / 1000 if isinstance(t, int) else None
    return {"name": event.get("name", ""), "t": offset, "attributes": event.get("attributes", {})}


def _subtree_ends(rows: list[list[Any]]) -> None:
    """Append to each row the index just past its subtree (rows are in tree order)."""
    ends = list(range(1, len(rows) + 1))
    for i in range(len(rows) - 1, -1, -1):
        parent = rows[i][0]
        if parent >= 0:
            ends[parent] = max(ends[parent], ends[i])
    for row, end in zip(rows, ends, strict=True):
        row.append(end)


router = APIRouter(route_class=UiRoute)


@router.get("/traces")
def explorer(kit: KitDep, request: Request) -> Response:
    state = kit.state(request)
    form = _search_form(request)
    tq = query.TraceQuery(
        service=form["service"],
        endpoint=form["endpoint"],
        min_duration_ms=form["min_ms"],
        max_duration_ms=form["max_ms"],
        status=form["status"],
        attributes=[query.AttrFilter.parse(a) for a in form["attrs"]],
        environment=state.environment,
        limit=form["limit"],
    )
    found = query.search_traces(kit.ctx.store, kit.project, state.time_range, tq)
    store, project, tr = kit.ctx.store, kit.project, state.time_range
    services = query.list_services(store, project, tr, environment=state.environment)
    endpoints = (
        query.list_endpoints(store, project, tr, form["service"], environment=state.environment)
        if form["service"]
        else []
    )
    return kit.render(
        request,
        "traces.html",
        state,
        nav="traces",
        page_params={k: form[k] for k in ("service", "endpoint", "status")}
        | {"attr": form["attrs"], "min_ms": request.query_params.get("min_ms")}
        | {"max_ms": request.query_params.get("max_ms")},
        form=form,
        traces=found,
        longest=max((t.duration_ms for t in found), default=0.0),
        services=services,
        endpoints=endpoints,
        statuses=STATUSES,
        limits=LIMITS,
    )


@router.get("/traces/{trace_id}")
def trace_view(kit: KitDep, request: Request, trace_id: str) -> Response:
    state = kit.state(request)
    trace = query.get_trace(kit.ctx.store, kit.project, query.parse_trace_id(trace_id))
    if trace is None:
        raise NotFound(f"Trace {trace_id.lower()} was not found.")
    doc = waterfall_doc(trace)
    logs = query.trace_logs(kit.ctx.store, kit.project, bytes.fromhex(trace.trace_id))
    session = trace.rum_session
    if session == "":
        tid = bytes.fromhex(trace.trace_id)
        session = rum.session_of_trace(kit.ctx.store, kit.project, tid, trace.start_ns)
    root = doc["spans"][0] if doc["spans"] else None
    return kit.render(
        request,
        "trace.html",
        state,
        nav="traces",
        trace=trace,
        root_name=root[3] if root else "",
        root_service=trace.services[root[2]] if root else "",
        errors=sum(1 for s in trace.spans if s.status == "error"),
        doc=doc,
        logs=logs,
        rum_session=session,
    )
