"""Metrics pages: a service's Runtime tab, the Host view and the metrics explorer.

Each page is a grid of panels (``model/dashboard.Panel``) that ``static/js/panels.js``
fills from the JSON API (``/api/v1/metrics/query`` and the RED timeseries), so these
pages, dashboards and a service's default dashboard draw the same way. The explorer's
whole state (metric, aggregation, grouping, filters, step) is in its URL.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from heron.server import query
from heron.server.model.dashboard import AGGS, DashboardSpec, MetricQuery, Panel
from heron.server.query import runtime
from heron.server.ui._kit import KitDep, UiRoute
from heron.server.ui._state import UiState

router = APIRouter(route_class=UiRoute)
STEPS = (60, 300, 900, 3600, 21600, 86400)
EXPLORER_FILTERS = 3


def panels_data(state: UiState, panels: list[Panel], **extra: Any) -> dict[str, Any]:
    """What panels.js reads: the shared time range and the panels to draw."""
    return {
        "from": state.from_iso,
        "to": state.to_iso,
        "from_s": state.time_range.start_ns // 10**9,
        "to_s": state.time_range.end_ns // 10**9,
        "environment": state.environment,
        "panels": [p.model_dump(mode="json") for p in panels],
        **extra,
    }


@router.get("/service/runtime")
def runtime_page(kit: KitDep, request: Request) -> Response:
    state = kit.state(request)
    service = request.query_params.get("service")
    if not service:
        raise query.InvalidQuery("the 'service' parameter is required")
    red = runtime.red_panels(service)
    lined_up = [p for p in red if p.type != "stat"]  # throughput and latency, same axis
    return kit.render(
        request,
        "runtime.html",
        state,
        nav="services",
        page_params={"service": service},
        service=service,
        panels=panels_data(state, [*lined_up, *runtime.runtime_panels(service)]),
    )


@router.get("/hosts")
def host_page(kit: KitDep, request: Request) -> Response:
    state = kit.state(request)
    host = request.query_params.get("host") or None
    panels = runtime.host_panels(host) if host else []
    return kit.render(
        request,
        "host.html",
        state,
        nav="hosts",
        page_params={"host": host},
        host=host,
        host_metric=runtime.SYSTEM_CPU,
        host_label=runtime.HOST,
        panels=panels_data(state, panels),
    )


def explorer_query(request: Request) -> tuple[MetricQuery | None, dict[str, Any]]:
    """The explorer's query from the URL (None until a metric is picked) and the form's
    values, as typed."""
    q = request.query_params
    form: dict[str, Any] = {
        "metric": (q.get("metric") or "").strip(),
        "agg": q.get("agg") or "avg",
        "by": (q.get("by") or "").strip(),
        "filters": [f for f in q.getlist("filter") if f.strip()],
        "step": q.get("step") or "",
        "type": q.get("type") or "line",
    }
    if not form["metric"]:
        return None, form
    filters: dict[str, str] = {}
    for f in form["filters"]:
        key, sep, value = f.partition("=")
        if not sep or not key.strip():
            raise query.InvalidQuery(f"a filter is label=value (got {f[:64]!r})")
        filters[key.strip()] = value.strip()
    try:
        parsed = MetricQuery.model_validate(
            {
                "metric": form["metric"],
                "agg": form["agg"],
                "by": [b.strip() for b in form["by"].split(",") if b.strip()],
                "filter": filters,
                "step": int(form["step"]) if form["step"].isdigit() else None,
            }
        )
    except ValidationError as err:
        first = err.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise query.InvalidQuery(f"{where}: {first['msg']}") from None
    return parsed, form


@router.get("/explore")
def explorer(kit: KitDep, request: Request) -> Response:
    state = kit.state(request)
    parsed, form = explorer_query(request)
    kind = form["type"] if form["type"] in ("line", "area", "bar", "table") else "line"
    panels = (
        [Panel.model_validate({"title": parsed.metric, "type": kind, "query": parsed, "width": 12})]
        if parsed
        else []
    )
    padded = form["filters"] + [""] * max(EXPLORER_FILTERS - len(form["filters"]), 1)
    return kit.render(
        request,
        "explorer.html",
        state,
        nav="metrics",
        page_params={
            "metric": form["metric"] or None,
            "agg": form["agg"] if parsed else None,
            "by": form["by"] or None,
            "filter": form["filters"] or None,
            "step": form["step"] or None,
            "type": form["type"] if form["type"] != "line" else None,
        },
        form=form,
        filter_fields=padded,
        aggs=AGGS,
        steps=STEPS,
        panels=panels_data(state, panels, explorer=True),
        as_dashboard=(
            DashboardSpec(title=parsed.metric, panels=panels).to_json() if parsed else ""
        ),
    )
