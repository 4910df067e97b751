"""``GET /api/v1/analysis``: the performance analyzer's graded report (docs/analyze.md).

Included in the ``/api/v1`` router (``api/routes.py``), so it shares its token check and
its 400 error mapping. No ``from __future__ import annotations``: FastAPI reads the
parameter annotations at runtime.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import Field

from heron.server.analyze.grading import Change, Finding, parse_thresholds
from heron.server.api._params import Project, WindowDep
from heron.server.api._route import ApiRoute
from heron.server.api._schemas import _Ranged
from heron.server.context import Ctx
from heron.server.query import TIME_HELP, InvalidQuery, TimeRange, parse_time
from heron.server.query.analysis import ServiceReport, analysis_report, report_dict


class AnalysisResponse(_Ranged):
    service: str | None
    apdex_t_ms: float
    score: float | None = Field(description="0–10, the services' scores weighted by requests.")
    grade: str | None = Field(description="A–F from the score; null without data.")
    services: list[ServiceReport]
    findings: list[Finding] = Field(description="Ranked by user time wasted per minute.")
    not_covered: list[str] = Field(description="Checks the analyzer cannot make yet, and why.")
    baseline_from: str | None
    baseline_to: str | None
    comparison: list[Change] | None = Field(
        description="With baseline_from/baseline_to: every endpoint of either window against "
        "the baseline, regressions first."
    )


router = APIRouter(route_class=ApiRoute)


@router.get("/analysis", response_model=AnalysisResponse)
def analysis(
    ctx: Ctx,
    project: Project,
    w: WindowDep,
    service: Annotated[str | None, Query(description="Only this service.")] = None,
    baseline_from: Annotated[
        str | None, Query(description=f"Start of a baseline window to compare with. {TIME_HELP}")
    ] = None,
    baseline_to: Annotated[
        str | None, Query(description="End of the baseline window (with baseline_from).")
    ] = None,
) -> dict[str, Any]:
    """The performance report of the range: a score 0–10 and a grade A–F per area,
    service and endpoint with the reasoning, and findings (N+1, sequential scans, database
    time, tail latency, Apdex, errors, new and regressed issues, memory growth, CPU,
    event-loop lag), each with evidence, a UI link and a recommendation. Thresholds from
    the server's `analyze_thresholds` (docs/analyze.md)."""
    baseline = None
    if baseline_from or baseline_to:
        if not (baseline_from and baseline_to):
            raise InvalidQuery("give both baseline_from and baseline_to, or neither")
        now = ctx.clock()
        baseline = TimeRange(
            parse_time("baseline_from", baseline_from, now),
            parse_time("baseline_to", baseline_to, now),
        )
    report = analysis_report(
        ctx.store,
        project,
        w.time_range,
        service=service or None,
        environment=w.environment,
        apdex_t_ms=w.apdex_t_ms,
        thresholds=parse_thresholds(ctx.config.analyze_thresholds),
        baseline=baseline,
    )
    return report_dict(report)
