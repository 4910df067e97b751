"""A rule's condition → samples (labels, value, link) at one instant.

Every read goes through ``heron.server.query`` (rollups, never raw spans where a rollup
answers), and one evaluation cycle shares its reads through :class:`CycleReads`: a
thousand RED rules over the same window cost one service table, not a thousand.
Nothing here decides whether an alert fires; the evaluator compares and keeps state.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from urllib.parse import urlencode

from heron.server import query
from heron.server.alerting import slo
from heron.server.alerting._cycle import ConditionError, CycleReads, Sample
from heron.server.model.alerting import (
    AbsenceCondition,
    DbCondition,
    ErrorCondition,
    MetricCondition,
    RedCondition,
    RuleSpec,
    RumCondition,
    SloBurnCondition,
)
from heron.server.query import metrics as mq
from heron.server.query._common import NS_PER_S, TimeRange
from heron.server.store.metrics import MAX_GROUPS

SLOW_QUERY_MS = 100.0
"""A database call this slow counts as a slow query (the /db/slow page's default)."""
NEW_FINDING_LOOKBACK_S = 86_400
"""An N+1 finding is new when it was not seen in this long before the window."""
_RED_FIGURE = {"mean_ms": "avg_ms", "throughput_rpm": "rpm"}
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


def compare(value: float | None, op: str, threshold: float) -> bool:
    """Whether ``value op threshold`` (never for no value)."""
    return value is not None and _OPS[op](value, threshold)


def sample_holds(rule: RuleSpec, sample: Sample) -> bool:
    """Whether the sample makes the rule's condition true."""
    if sample.holds is not None:
        return sample.holds
    cond = rule.condition
    if isinstance(cond, AbsenceCondition | SloBurnCondition):
        return sample.value is not None
    return compare(sample.value, cond.op, cond.threshold)


def _link(path: str, **params: str | None) -> str:
    kept = {k: v for k, v in params.items() if v is not None}
    return f"{path}?{urlencode(kept)}" if kept else path


def window_range(now_ns: int, window_s: int) -> TimeRange:
    """At least ``window_s`` ending now, in whole rollup minutes: from the start of the
    minute ``window_s`` ago to now, so the current (partial) minute never stands alone:
    a 1-minute window just after a minute boundary still holds the last full minute."""
    start_s = (now_ns // NS_PER_S - window_s) // 60 * 60
    return TimeRange(start_s * NS_PER_S, max(now_ns, start_s * NS_PER_S + 1))


def evaluate_condition(
    reads: CycleReads, project_id: int, rule: RuleSpec, now_ns: int
) -> list[Sample]:
    """The samples of the rule's condition at ``now_ns`` (one per group). Raises
    ConditionError when the condition refers to something that does not exist."""
    cond = rule.condition
    if isinstance(cond, RedCondition):
        return _red(reads, project_id, cond, now_ns)
    if isinstance(cond, MetricCondition):
        return _metric(reads, project_id, cond, now_ns)
    if isinstance(cond, ErrorCondition):
        return _errors(reads, project_id, cond, now_ns)
    if isinstance(cond, DbCondition):
        return _db(reads, project_id, cond, now_ns)
    if isinstance(cond, AbsenceCondition):
        return _absence(reads, project_id, cond, now_ns)
    if isinstance(cond, RumCondition):
        return _rum(reads, project_id, cond, now_ns)
    return slo.burn_samples(reads, project_id, cond, now_ns)


# ------------------------------------------------------------------------ RED
def _red_value(stats: query.ServiceStats | query.EndpointStats, cond: RedCondition) -> float | None:
    if stats.requests < max(cond.min_requests, 1):
        return None
    value = getattr(stats, _RED_FIGURE.get(cond.figure, cond.figure))
    if value is None:
        return None
    return float(value) * 100 if cond.figure == "error_rate" else float(value)


def _red(reads: CycleReads, pid: int, cond: RedCondition, now_ns: int) -> list[Sample]:
    tr = window_range(now_ns, cond.window)
    services = [
        s.service
        for s in reads.services(pid, tr, cond.environment, cond.release)
        if cond.service is None or s.service == cond.service
    ]
    out: list[Sample] = []
    if cond.per == "service":
        for s in reads.services(pid, tr, cond.environment, cond.release):
            if s.service in services:
                link = _link("/service", service=s.service, environment=cond.environment)
                out.append(Sample({"service": s.service}, _red_value(s, cond), link))
        return out
    for service in services:
        for e in reads.endpoints(pid, tr, service, cond.environment, cond.release):
            if cond.endpoint is not None and e.endpoint != cond.endpoint:
                continue
            labels = {"service": service, "endpoint": e.endpoint}
            link = _link("/endpoint", service=service, endpoint=e.endpoint)
            out.append(Sample(labels, _red_value(e, cond), link))
    return out


# --------------------------------------------------------------------- metrics
def metric_values(
    reads: CycleReads,
    pid: int,
    metric: str,
    agg: str,
    by: tuple[str, ...],
    match: tuple[tuple[str, str], ...],
    tr: TimeRange,
) -> dict[tuple[str, ...], float | None]:
    """The metric's value per group over the range; ConditionError for an unknown metric
    or an aggregation its kind has no meaning for."""
    q = mq.SeriesQuery(metric=metric, agg=agg, group_by=by, match=match)  # type: ignore[arg-type]

    def read() -> dict[tuple[str, ...], float | None]:
        try:
            return mq.window_values(reads.store, pid, q, tr)
        except (mq.UnknownMetric, query.InvalidQuery) as err:
            raise ConditionError(str(err.args[0] if err.args else err)) from None

    return reads.get(("metric", pid, q, tr), read)


def _metric(reads: CycleReads, pid: int, cond: MetricCondition, now_ns: int) -> list[Sample]:
    by = tuple(cond.by)
    tr = window_range(now_ns, cond.window)
    every = None
    if cond.filter and set(cond.filter) <= set(by):
        # The groups are keyed by the filtered labels already: one read serves every
        # rule filtering the same grouping differently (one host each, say), unless
        # the read was cut at MAX_GROUPS (the group wanted may be among those left out).
        every = metric_values(reads, pid, cond.metric, cond.agg, by, (), tr)
        every = every if len(every) < MAX_GROUPS else None
    if every is not None:
        want = [(by.index(k), v) for k, v in cond.filter.items()]
        values = {g: v for g, v in every.items() if all(g[i] == x for i, x in want)}
    else:
        match = tuple(sorted(cond.filter.items()))
        values = metric_values(reads, pid, cond.metric, cond.agg, by, match, tr)
    link = _link("/explore", metric=cond.metric, agg=cond.agg, by=",".join(by) or None)
    return [Sample(dict(zip(by, g, strict=True)), v, link) for g, v in sorted(values.items())]


# ---------------------------------------------------------------------- errors
def _errors(reads: CycleReads, pid: int, cond: ErrorCondition, now_ns: int) -> list[Sample]:
    tr = window_range(now_ns, cond.window)
    issues = reads.get(
        ("issues", pid, tr, cond.service, cond.environment),
        lambda: query.list_issues(
            reads.store,
            pid,
            tr,
            service=cond.service,
            environment=cond.environment,
            limit=query.MAX_ISSUE_LIMIT,
        ),
    )
    out = []
    for issue in issues:
        if cond.issue_id is not None and issue.id != cond.issue_id:
            continue
        if cond.event == "new_issue" and issue.first_seen_ns < tr.start_ns:
            continue
        if cond.event == "regression" and not (
            issue.regressed and (issue.regressed_ns or 0) >= tr.start_ns
        ):
            continue
        labels = {"issue_id": str(issue.id), "issue": issue.title[:200]}
        out.append(Sample(labels, float(issue.events), f"/issues/{issue.id}"))
    return out


# -------------------------------------------------------------------- database
def _db(reads: CycleReads, pid: int, cond: DbCondition, now_ns: int) -> list[Sample]:
    tr = window_range(now_ns, cond.window)
    if cond.event == "fingerprint_p95":
        stats = reads.get(
            ("top_queries", pid, tr, cond.service),
            lambda: query.top_queries(
                reads.store, pid, tr, service=cond.service, limit=query.MAX_DB_LIMIT
            ),
        )
        want = cond.fingerprint.lower().zfill(16) if cond.fingerprint else None
        return [
            Sample(
                {"service": q.service, "fingerprint": q.fingerprint},
                q.p95_ms,
                _link("/db/query", fp=q.fingerprint, service=q.service),
            )
            for q in stats
            if want is None or q.fingerprint == want
        ]
    if cond.event == "slow_queries":
        return _slow_queries(reads, pid, cond, tr)
    return _new_findings(reads, pid, cond, tr)


def _slow_groups(
    reads: CycleReads, pid: int, tr: TimeRange, service: str | None
) -> list[query.SlowQueryGroup]:
    return reads.get(
        ("slow", pid, tr, service),
        lambda: query.slow_query_groups(
            reads.store,
            pid,
            tr,
            threshold_ms=SLOW_QUERY_MS,
            service=service,
            limit=query.MAX_DB_LIMIT,
        ),
    )


def _slow_queries(reads: CycleReads, pid: int, cond: DbCondition, tr: TimeRange) -> list[Sample]:
    """Slow calls per service: a group seen from several services is re-read per service
    so each gets its own calls only."""
    groups = _slow_groups(reads, pid, tr, cond.service)
    services = sorted({s for g in groups for s in g.services})
    if cond.service is not None:
        services = [cond.service] if groups else []
    out = []
    for svc in services:
        count = sum(g.count for g in _slow_groups(reads, pid, tr, svc))
        out.append(Sample({"service": svc}, float(count), _link("/db/slow", service=svc)))
    return out


def _new_findings(reads: CycleReads, pid: int, cond: DbCondition, tr: TimeRange) -> list[Sample]:
    def findings(r: TimeRange) -> list[query.NPlusOneFinding]:
        return reads.get(
            ("n+1", pid, r, cond.service),
            lambda: query.n_plus_one_findings(
                reads.store, pid, r, service=cond.service, limit=query.MAX_FINDINGS
            ),
        )

    before = TimeRange(tr.start_ns - NEW_FINDING_LOOKBACK_S * NS_PER_S, tr.start_ns)
    seen = {(f.service, f.endpoint, f.fingerprint) for f in findings(before)}
    return [
        Sample(
            {"service": f.service, "endpoint": f.endpoint, "fingerprint": f.fingerprint},
            float(f.occurrences),
            _link("/n-plus-one", service=f.service),
        )
        for f in findings(tr)
        if (f.service, f.endpoint, f.fingerprint) not in seen
    ]


# --------------------------------------------------------------------- absence
def _absence(reads: CycleReads, pid: int, cond: AbsenceCondition, now_ns: int) -> list[Sample]:
    """Groups with data in the lookback but none in the window; the value is the
    window (seconds silent, at least)."""
    recent, older = window_range(now_ns, cond.window), window_range(now_ns, cond.lookback)
    silent = float(cond.window)
    if cond.target == "service":
        now_seen = {s.service for s in reads.services(pid, recent, None, None) if s.requests}
        return [
            Sample({"service": s.service}, silent, _link("/service", service=s.service), True)
            for s in reads.services(pid, older, None, None)
            if s.requests
            and s.service not in now_seen
            and (cond.service is None or s.service == cond.service)
        ]
    assert cond.metric is not None  # the spec's validator requires it
    by = tuple(cond.by)
    match = tuple(sorted(cond.filter.items()))
    if cond.service is not None:
        match = tuple(sorted({*match, ("service", cond.service)}))
    now_groups = metric_values(reads, pid, cond.metric, "count", by, match, recent)
    link = _link("/explore", metric=cond.metric, by=",".join(by) or None)
    return [
        Sample(dict(zip(by, g, strict=True)), silent, link, True)
        for g, n in sorted(
            metric_values(reads, pid, cond.metric, "count", by, match, older).items()
        )
        if n and not now_groups.get(g)
    ]


# ------------------------------------------------------------------ web vitals
def _rum_value(cond: RumCondition, f: query.rum.MetricFigures | None) -> float | None:
    count = 0 if f is None else f.count
    if count < cond.min_samples:
        return None
    if cond.figure == "samples":
        return float(count)
    if f is None:
        return None
    value = f.poor_pct if cond.figure == "poor_share" else getattr(f, cond.figure)
    return None if value is None else float(value)


def _rum(reads: CycleReads, pid: int, cond: RumCondition, now_ns: int) -> list[Sample]:
    """A vital's figure per ``by`` group from the RUM rollup; without ``by`` one sample
    (``samples`` is 0 then, not absent, so "fewer than N samples" rules can fire)."""
    tr = window_range(now_ns, cond.window)
    try:
        filters = query.rum.rum_filters(
            app=cond.app,
            environment=cond.environment,
            page=cond.page,
            browser=cond.browser,
            device=cond.device,
        )
    except query.InvalidQuery as err:
        raise ConditionError(str(err)) from None
    figures = reads.rum_figures(pid, tr, filters, cond.vital, cond.by)
    groups = sorted(figures) if cond.by is not None else [""]
    out = []
    for g in groups:
        f = figures.get(g)
        params = {
            "app": filters.app,
            "env": filters.environment,
            "page": filters.page,
            "browser": filters.browser,
            "device": filters.device,
        }
        if cond.by is not None:
            params[cond.by] = g
        labels: dict[str, str] = {cond.by: g} if cond.by is not None else {}
        path = "/rum/page" if params["page"] else "/rum"
        out.append(Sample(labels, _rum_value(cond, f), _link(path, **params)))
    return out
