"""A rule's condition → samples (labels, value, link) at one instant.

Every read goes through ``heron.server.query`` (rollups, never raw spans where a rollup
answers), and one evaluation cycle shares its reads through :class:`CycleReads`: a
thousand RED rules over the same window cost one service table, not a thousand.
Nothing here decides whether an alert fires; the evaluator compares and keeps state.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlencode

from heron.server import query
from heron.server.model.alerting import (
    AbsenceCondition,
    DbCondition,
    ErrorCondition,
    MetricCondition,
    RedCondition,
    RuleSpec,
    SloBurnCondition,
)
from heron.server.query import metrics as mq
from heron.server.query._common import NS_PER_S, TimeRange
from heron.server.store.base import Store

T = TypeVar("T")
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


class ConditionError(Exception):
    """The condition cannot be evaluated as written (an unknown metric, a deleted SLO):
    the rule is marked broken with this message."""


@dataclass(frozen=True, slots=True)
class Sample:
    """One group's value: an alert instance when it holds. ``link`` is a path of Heron's
    UI showing the group. ``holds`` overrides the op/threshold comparison (absence and
    SLO burn conditions decide themselves)."""

    labels: dict[str, str]
    value: float | None
    link: str
    holds: bool | None = None


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


class CycleReads:
    """Reads of one evaluation cycle, each made once: keyed by what was asked (project,
    window end and length, filters). Make a new one per cycle (cached values go stale)."""

    def __init__(self, store: Store, *, apdex_t_ms: float = 500.0) -> None:
        self.store = store
        self.apdex_t_ms = apdex_t_ms
        self._cache: dict[tuple[Any, ...], Any] = {}
        self.reads = 0
        """Reads actually made (the rest were answered from the cache)."""

    def get(self, key: tuple[Any, ...], read: Callable[[], T]) -> T:
        """``read()``, made once per key; a read that raised raises again for every rule
        asking (it is not retried within the cycle)."""
        if key not in self._cache:
            self.reads += 1
            try:
                self._cache[key] = read()
            except Exception as err:
                self._cache[key] = _Failed(err)
        got = self._cache[key]
        if isinstance(got, _Failed):
            raise got.err
        return got

    # ------------------------------------------------------------------ RED
    def services(
        self, pid: int, tr: TimeRange, env: str | None, release: str | None
    ) -> list[query.ServiceStats]:
        return self.get(
            ("services", pid, tr, env, release),
            lambda: query.service_table(
                self.store, pid, tr, environment=env, release=release, apdex_t_ms=self.apdex_t_ms
            ),
        )

    def endpoints(
        self, pid: int, tr: TimeRange, service: str, env: str | None, release: str | None
    ) -> list[query.EndpointStats]:
        return self.get(
            ("endpoints", pid, tr, service, env, release),
            lambda: query.endpoint_table(
                self.store,
                pid,
                tr,
                service,
                environment=env,
                release=release,
                apdex_t_ms=self.apdex_t_ms,
            ),
        )


@dataclass(frozen=True, slots=True)
class _Failed:
    err: Exception


def _range(now_ns: int, window_s: int) -> TimeRange:
    return TimeRange(now_ns - window_s * NS_PER_S, now_ns)


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
    from heron.server.alerting import slo  # slo reads conditions' CycleReads

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
    tr = _range(now_ns, cond.window)
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
            raise ConditionError(str(err).strip("'\"")) from None

    return reads.get(("metric", pid, q, tr), read)


def _metric(reads: CycleReads, pid: int, cond: MetricCondition, now_ns: int) -> list[Sample]:
    by = tuple(cond.by)
    match = tuple(sorted(cond.filter.items()))
    values = metric_values(
        reads, pid, cond.metric, cond.agg, by, match, _range(now_ns, cond.window)
    )
    link = _link("/explore", metric=cond.metric, agg=cond.agg, by=",".join(by) or None)
    return [Sample(dict(zip(by, g, strict=True)), v, link) for g, v in sorted(values.items())]


# ---------------------------------------------------------------------- errors
def _errors(reads: CycleReads, pid: int, cond: ErrorCondition, now_ns: int) -> list[Sample]:
    tr = _range(now_ns, cond.window)
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
    tr = _range(now_ns, cond.window)
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
    recent, older = _range(now_ns, cond.window), _range(now_ns, cond.lookback)
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
