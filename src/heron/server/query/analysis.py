"""The performance analysis report: figures gathered from the other query functions,
graded and turned into findings by ``heron.server.analyze.grading`` (docs/analyze.md).

No SQL here: RED figures from the rollups (``service_table``/``endpoint_table``), N+1
findings, slow query groups with their EXPLAIN plans, database time per endpoint
(``top_queries``), outgoing HTTP call time per endpoint and callee
(``TraceReader.outgoing_calls``), issues, and runtime metrics (``query.metrics``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from heron.server.analyze import grading as g
from heron.server.query import metrics as mq
from heron.server.query import runtime
from heron.server.query._common import NS_PER_MS, TimeRange
from heron.server.query._db import top_queries
from heron.server.query._db_slow import slow_query_groups
from heron.server.query._errors import list_issues
from heron.server.query._n_plus_one import n_plus_one_findings
from heron.server.query._red import EndpointStats, endpoint_table, service_table
from heron.server.query._timerange import iso
from heron.server.store.base import Store
from heron.server.store.traces import EndpointCalls

MAX_ENDPOINTS = 50
"""Endpoints graded per service (most requests first)."""
DB_CHECKED_ENDPOINTS = 5
"""Endpoints per service (most total time first) whose database share is checked."""
DB_HEAVY_SHARE = 0.5
EXTERNAL_CHECKED_ENDPOINTS = 10
"""Endpoints per service (most total time first) whose outgoing calls are checked."""
TAIL_RATIO = 5.0
TAIL_MIN_REQUESTS = 100
SLOW_QUERY_MS = 100.0

NOT_COVERED = [
    "memory %: only from host metrics (system.memory.utilization) sent by the service",
]


@dataclass(frozen=True, slots=True)
class ServiceReport:
    service: str
    graded: g.Graded
    requests: int
    endpoints: list[g.Graded]


@dataclass(frozen=True, slots=True)
class AnalysisReport:
    start_ns: int
    end_ns: int
    service: str | None
    environment: str | None
    apdex_t_ms: float
    score: float | None
    grade: str | None
    services: list[ServiceReport]
    findings: list[g.Finding]
    not_covered: list[str] = field(default_factory=lambda: list(NOT_COVERED))
    baseline_from: str | None = None
    baseline_to: str | None = None
    comparison: list[g.Change] | None = None
    """With a baseline window: every endpoint of either window, regressions first."""


def _pct(v: float | None) -> float | None:
    return None if v is None else v * 100


def _metric(
    store: Store, project: int, tr: TimeRange, metric: str, agg: str, match: dict[str, str],
    by: tuple[str, ...] = (),
) -> dict[tuple[str, ...], float | None]:  # fmt: skip
    q = mq.SeriesQuery(metric, agg, by, tuple(sorted(match.items())))  # type: ignore[arg-type]
    try:
        return mq.window_values(store, project, q, tr)
    except (mq.UnknownMetric, mq.InvalidQuery):
        return {}


def _runtime_figures(
    store: Store, project: int, tr: TimeRange, service: str
) -> dict[str, float | None]:
    only = {"service": service}
    cpu_modes = _metric(store, project, tr, runtime.PROCESS_CPU, "avg", only, (runtime.CPU_MODE,))
    cpu = sum(v for v in cpu_modes.values() if v is not None) if cpu_modes else None
    mem = _metric(
        store, project, tr, runtime.SYSTEM_MEMORY, "avg", {**only, runtime.MEMORY_STATE: "used"}
    ).get(())
    lag = _metric(store, project, tr, runtime.EVENT_LOOP_LAG, "max", only).get(())
    return {
        "cpu_pct": _pct(cpu),
        "memory_pct": _pct(mem),
        "loop_lag_ms": None if lag is None else lag * 1000,
    }


def _leaks(store: Store, project: int, tr: TimeRange, service: str) -> list[g.Finding]:
    q = mq.SeriesQuery(
        runtime.PROCESS_MEMORY,
        "avg",
        runtime.INSTANCE_LABELS,
        (("service", service),),
        step_s=max(60, mq.choose_step(tr)),
    )
    try:
        res = mq.query_series(store, project, q, tr)
    except (mq.UnknownMetric, mq.InvalidQuery):
        return []
    out = []
    for s in res.series:
        pts = [(float(t), v) for t, v in s.points if v is not None]
        instance = " ".join(v for v in s.labels.values() if v) or service
        f = g.leak_finding(service=service, instance=instance, points=pts)
        if f is not None:
            out.append(f)
    return out


def analysis_report(
    store: Store,
    project_id: int,
    time_range: TimeRange,
    *,
    service: str | None = None,
    environment: str | None = None,
    apdex_t_ms: float = 500.0,
    thresholds: g.Thresholds | None = None,
    baseline: TimeRange | None = None,
) -> AnalysisReport:
    """Grades per service and endpoint and ranked findings for the range; with
    ``baseline``, each endpoint compared with that window too."""
    th = thresholds or g.Thresholds()
    tr, p, env = time_range, project_id, environment
    minutes = max(tr.minutes, 1.0)
    findings: list[g.Finding] = []
    reports: list[ServiceReport] = []
    services = [
        s
        for s in service_table(store, p, tr, environment=env, apdex_t_ms=apdex_t_ms)
        if service is None or s.service == service
    ]
    mean_of: dict[str, float] = {}
    calls = {
        (c.service, c.endpoint): c
        for c in store.traces.outgoing_calls(
            p, tr.start_ns, tr.end_ns, service=service, environment=env
        )
    }
    for s in services:
        name = s.service
        mean_of[name] = s.avg_ms or 0.0
        figures: dict[str, float | None] = {
            "p95_ms": s.p95_ms,
            "mean_ms": s.avg_ms,
            "error_rate_pct": s.error_rate * 100 if s.requests else None,
            "apdex": s.apdex,
            **_runtime_figures(store, p, tr, name),
        }
        graded = g.grade_entity(name, figures, th, name)
        eps = endpoint_table(store, p, tr, name, environment=env, apdex_t_ms=apdex_t_ms)
        graded_eps = []
        for e in eps[:MAX_ENDPOINTS]:
            ef = {
                "p95_ms": e.p95_ms,
                "mean_ms": e.avg_ms,
                "error_rate_pct": e.error_rate * 100 if e.requests else None,
                "apdex": e.apdex,
            }
            graded_eps.append(g.grade_entity(e.endpoint, ef, th, name))
            findings += _endpoint_findings(name, e, th, minutes)
        by_time = sorted(eps, key=lambda e: e.total_time_ms, reverse=True)
        for e in by_time[:DB_CHECKED_ENDPOINTS]:
            qs = top_queries(store, p, tr, service=name, endpoint=e.endpoint, environment=env)
            share = sum(q.endpoint_time_share or 0.0 for q in qs)
            if share >= DB_HEAVY_SHARE:
                findings.append(
                    g.db_heavy_finding(
                        service=name,
                        endpoint=e.endpoint,
                        db_share=min(share, 1.0),
                        total_ms=e.total_time_ms,
                        top_query=qs[0].display if qs else None,
                        minutes=minutes,
                    )
                )
        for e in by_time[:EXTERNAL_CHECKED_ENDPOINTS]:
            findings += _external_findings(calls.get((name, e.endpoint)), minutes)
        for area, kind in (("cpu_pct", "cpu"), ("loop_lag_ms", "loop")):
            v = figures[area]
            if v is not None:
                rf = g.resource_finding(
                    kind=kind, service=name, area=area, value=v, band=th.band(area, name)
                )
                if rf is not None:
                    findings.append(rf)
        findings += _leaks(store, p, tr, name)
        reports.append(ServiceReport(name, graded, s.requests, graded_eps))

    for n1 in n_plus_one_findings(store, p, tr, service=service, environment=env, limit=100):
        findings.append(
            g.n_plus_one_finding(
                service=n1.service,
                endpoint=n1.endpoint,
                kind=n1.kind,
                display=n1.display,
                fingerprint=n1.fingerprint,
                calls=n1.calls,
                occurrences=n1.occurrences,
                avg_repeats=n1.avg_repeats,
                wasted_ms=n1.wasted_time_ms,
                trace_id=n1.example_trace_id,
                minutes=minutes,
            )
        )
    for sq in slow_query_groups(
        store, p, tr, threshold_ms=SLOW_QUERY_MS, service=service, environment=env, limit=100
    ):
        scan = g.seq_scan(sq.plan, sq.statement) if sq.plan else None
        if scan is None:
            continue
        findings.append(
            g.seq_scan_finding(
                table=scan[0],
                condition=scan[1],
                display=sq.display or sq.statement or "",
                fingerprint=sq.fingerprint,
                count=sq.count,
                total_ms=sq.total_time_ms,
                p95_ms=sq.p95_ms,
                services=sq.services,
                endpoints=sq.endpoints,
                trace_id=sq.example_trace_id,
                minutes=minutes,
            )
        )
    for issue in list_issues(store, p, tr, status="open", service=service, environment=env):
        new = issue.first_seen_ns >= tr.start_ns
        if not (new or issue.regressed):
            continue
        svc = issue.services[0] if issue.services else (service or "")
        findings.append(
            g.issue_finding(
                service=svc,
                issue_id=issue.id,
                title=issue.title,
                regressed=issue.regressed,
                events=issue.events,
                mean_ms=mean_of.get(svc, 0.0),
                minutes=minutes,
            )
        )

    scored = [r.graded for r in reports if r.graded.score is not None]
    total = sum(r.requests for r in reports if r.graded.score is not None)
    overall = None
    if scored and total:
        overall = round(
            sum((r.graded.score or 0.0) * r.requests for r in reports) / total, 2
        )  # weighted by requests
    return AnalysisReport(
        start_ns=tr.start_ns,
        end_ns=tr.end_ns,
        service=service,
        environment=env,
        apdex_t_ms=apdex_t_ms,
        score=overall,
        grade=g.grade_of(overall) if overall is not None else None,
        services=reports,
        findings=g.rank(findings),
        baseline_from=iso(baseline.start_ns) if baseline else None,
        baseline_to=iso(baseline.end_ns) if baseline else None,
        comparison=_compare(store, p, tr, baseline, service, env, apdex_t_ms) if baseline else None,
    )


def _endpoint_figures(
    store: Store, p: int, tr: TimeRange, service: str | None, env: str | None, apdex_t_ms: float
) -> dict[tuple[str, str], g.EndpointFigures]:
    out = {}
    for s in service_table(store, p, tr, environment=env, apdex_t_ms=apdex_t_ms):
        if service is not None and s.service != service:
            continue
        for e in endpoint_table(store, p, tr, s.service, environment=env, apdex_t_ms=apdex_t_ms):
            out[(s.service, e.endpoint)] = g.EndpointFigures(
                e.requests, e.p95_ms, e.error_rate * 100
            )
    return out


def _compare(
    store: Store, p: int, tr: TimeRange, baseline: TimeRange, service: str | None,
    env: str | None, apdex_t_ms: float,
) -> list[g.Change]:  # fmt: skip
    return g.compare(
        _endpoint_figures(store, p, tr, service, env, apdex_t_ms),
        _endpoint_figures(store, p, baseline, service, env, apdex_t_ms),
    )


def _external_findings(calls: EndpointCalls | None, minutes: float) -> list[g.Finding]:
    """A finding per callee dominating the endpoint's time (at most one, unless calls
    run in parallel)."""
    if calls is None:
        return []
    out = []
    for c in calls.callees:
        f = g.external_call_finding(
            service=calls.service,
            endpoint=calls.endpoint,
            callee=c.callee,
            calls=c.calls,
            calls_ms=c.total_ns / NS_PER_MS,
            requests=calls.requests,
            endpoint_total_ms=calls.total_ns / NS_PER_MS,
            trace_id=c.example_trace_id.hex(),
            minutes=minutes,
        )
        if f is not None:
            out.append(f)
    return out


def _endpoint_findings(
    service: str, e: EndpointStats, th: g.Thresholds, minutes: float
) -> list[g.Finding]:
    out: list[g.Finding] = []
    if (
        e.p50_ms
        and e.p99_ms
        and e.requests >= TAIL_MIN_REQUESTS
        and e.p99_ms / e.p50_ms >= TAIL_RATIO
    ):
        out.append(
            g.tail_finding(
                service=service,
                endpoint=e.endpoint,
                p50=e.p50_ms,
                p99=e.p99_ms,
                rpm=e.rpm,
                ratio=TAIL_RATIO,
            )
        )
    band = th.band("apdex", service)
    if e.apdex is not None and e.apdex < band[1]:
        out.append(
            g.apdex_finding(
                service=service,
                endpoint=e.endpoint,
                apdex=e.apdex,
                band=band,
                rpm=e.rpm,
                mean_ms=e.avg_ms or 0.0,
            )
        )
    eband = th.band("error_rate_pct", service)
    if e.requests and e.error_rate * 100 > eband[1]:
        out.append(
            g.error_rate_finding(
                service=service,
                endpoint=e.endpoint,
                rate_pct=e.error_rate * 100,
                band=eband,
                errors=e.errors,
                mean_ms=e.avg_ms or 0.0,
                minutes=minutes,
            )
        )
    return out


def report_dict(report: AnalysisReport) -> dict[str, Any]:
    """The report as the JSON API answers it (plain types; ``from``/``to`` in ISO 8601)."""
    body = asdict(report)
    start, end = body.pop("start_ns"), body.pop("end_ns")
    return {"from": iso(start), "to": iso(end), **body}
