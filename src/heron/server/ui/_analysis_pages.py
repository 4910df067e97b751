"""The performance analysis page (``/analysis``): the analyzer's report for the global
time range, for all services or one (docs/analyze.md)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from heron.server import query
from heron.server.analyze.grading import parse_thresholds
from heron.server.query.analysis import analysis_report, report_dict
from heron.server.ui._kit import KitDep, UiRoute

router = APIRouter(route_class=UiRoute)


@router.get("/analysis")
def analysis_page(kit: KitDep, request: Request) -> Response:
    state = kit.state(request)
    service = request.query_params.get("service") or None
    store, project, tr = kit.ctx.store, kit.project, state.time_range
    report = analysis_report(
        store,
        project,
        tr,
        service=service,
        environment=state.environment,
        apdex_t_ms=kit.ctx.config.apdex_t_ms,
        thresholds=parse_thresholds(kit.ctx.config.analyze_thresholds),
    )
    return kit.render(
        request,
        "analysis.html",
        state,
        nav="analysis",
        page_params={"service": service},
        service=service,
        services=query.list_services(store, project, tr, environment=state.environment),
        r=report_dict(report),
    )
