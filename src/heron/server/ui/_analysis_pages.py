"""The performance analysis page (``/analysis``): the analyzer's report for the global
time range, for all services or one, compared with ``baseline_from``/``baseline_to``
when the URL has them (docs/analyze.md)."""

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
    b_from = request.query_params.get("baseline_from") or None
    b_to = request.query_params.get("baseline_to") or None
    baseline = None
    if b_from or b_to:
        if not (b_from and b_to):
            raise query.InvalidQuery("give both baseline_from and baseline_to, or neither")
        now = kit.ctx.clock()
        baseline = query.TimeRange(
            query.parse_time("baseline_from", b_from, now),
            query.parse_time("baseline_to", b_to, now),
        )
    report = analysis_report(
        store,
        project,
        tr,
        service=service,
        environment=state.environment,
        apdex_t_ms=kit.ctx.config.apdex_t_ms,
        thresholds=parse_thresholds(kit.ctx.config.analyze_thresholds),
        baseline=baseline,
    )
    return kit.render(
        request,
        "analysis.html",
        state,
        nav="analysis",
        page_params={"service": service, "baseline_from": b_from, "baseline_to": b_to},
        service=service,
        baseline_from=b_from,
        baseline_to=b_to,
        services=query.list_services(store, project, tr, environment=state.environment),
        r=report_dict(report),
    )
