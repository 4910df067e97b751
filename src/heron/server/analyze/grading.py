"""The performance analyzer's rules as pure functions: thresholds, scores, grades and
findings over plain figures (no store; ``query/analysis.py`` gathers the figures).

An area (p95, mean latency, error rate, Apdex, CPU, memory, event-loop lag) is scored
0–10 against three thresholds, good / warning / critical (the seed's defaults, below):
at or better than *good* 10; to *warning* 10 → 7; to *critical* 7 → 4; beyond it 4 → 0
(at twice *critical*, or Apdex 0). The overall score is the mean of the scored areas,
capped at the worst area + 3 (one critical area cannot hide behind good ones); the
grade maps it: ≥ 9 A, ≥ 8 B, ≥ 7 C, ≥ 6 D, else F. Every score keeps its reason.

Findings carry a severity, their evidence, a UI link and a recommendation, and are
ranked by impact: user time wasted per minute (ms/min). Findings with no user-time
measure (memory growth, CPU, event-loop lag) follow, by severity.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote

Band = tuple[float, float, float]
"""Good, warning and critical thresholds of one area."""


@dataclass(frozen=True, slots=True)
class Area:
    name: str
    label: str
    unit: str
    higher_is_better: bool
    default: Band


AREAS: dict[str, Area] = {
    a.name: a
    for a in (
        Area("p95_ms", "Response time p95", "ms", False, (200.0, 1000.0, 3000.0)),
        Area("mean_ms", "Response time mean", "ms", False, (200.0, 1000.0, 3000.0)),
        Area("error_rate_pct", "Error rate", "%", False, (1.0, 5.0, 10.0)),
        Area("apdex", "Apdex", "", True, (0.94, 0.85, 0.70)),
        Area("cpu_pct", "CPU", "%", False, (50.0, 70.0, 85.0)),
        Area("memory_pct", "Memory", "%", False, (60.0, 80.0, 90.0)),
        Area("loop_lag_ms", "Event-loop lag (max)", "ms", False, (50.0, 200.0, 1000.0)),
    )
}
ENDPOINT_AREAS = ("p95_ms", "mean_ms", "error_rate_pct", "apdex")
SEVERITIES = ("critical", "warning", "info")


class ThresholdError(ValueError):
    """A thresholds spec is malformed; the message says where."""


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Bands per area, and per-service overrides of some of them."""

    bands: Mapping[str, Band] = field(default_factory=lambda: {a: AREAS[a].default for a in AREAS})
    services: Mapping[str, Mapping[str, Band]] = field(default_factory=dict)

    def band(self, area: str, service: str | None = None) -> Band:
        if service is not None and area in self.services.get(service, {}):
            return self.services[service][area]
        return self.bands[area]


def parse_thresholds(spec: str) -> Thresholds:
    """``area=good/warning/critical`` items separated by ``;`` or ``,``; an item
    ``service:area=…`` applies to that service only. Empty: the defaults."""
    bands = {a: AREAS[a].default for a in AREAS}
    services: dict[str, dict[str, Band]] = {}
    for item in re.split(r"[;,]", spec):
        item = item.strip()
        if not item:
            continue
        key, eq, value = item.partition("=")
        service, colon, area = key.strip().rpartition(":")
        area = area.strip()
        if not eq or area not in AREAS or (colon and not service.strip()):
            raise ThresholdError(
                f"bad threshold {item!r}: use [service:]area=good/warning/critical with area "
                f"one of {', '.join(AREAS)}"
            )
        parts = value.split("/")
        try:
            band = tuple(float(p) for p in parts)
        except ValueError:
            band = ()
        if len(band) != 3 or not all(math.isfinite(b) and b >= 0 for b in band):
            raise ThresholdError(f"bad threshold {item!r}: three numbers good/warning/critical")
        ordered = sorted(band, reverse=AREAS[area].higher_is_better)
        if list(band) != ordered or len(set(band)) != 3:
            word = "decrease" if AREAS[area].higher_is_better else "increase"
            raise ThresholdError(f"bad threshold {item!r}: the three values must {word}")
        b3: Band = (band[0], band[1], band[2])
        if colon:
            services.setdefault(service.strip(), {})[area] = b3
        else:
            bands[area] = b3
    return Thresholds(bands, services)


def score_value(value: float, band: Band, higher_is_better: bool) -> float:
    """0–10 for one figure (see the module doc)."""
    good, warn, crit = band
    if higher_is_better:  # mirror: distance below the thresholds
        value, good, warn, crit = -value, -good, -warn, -crit
    if value <= good:
        s = 10.0
    elif value <= warn:
        s = 10.0 - 3.0 * (value - good) / (warn - good)
    elif value <= crit:
        s = 7.0 - 3.0 * (value - warn) / (crit - warn)
    else:
        # Beyond critical: 4 → 0 at twice critical (Apdex: at 0).
        zero = 0.0 if higher_is_better else 2 * crit
        s = 4.0 - 4.0 * (value - crit) / (zero - crit) if zero != crit else 0.0
    return round(max(0.0, min(10.0, s)), 2)


def level_of(value: float, band: Band, higher_is_better: bool) -> str:
    good, warn, crit = band
    if higher_is_better:
        value, good, warn, crit = -value, -good, -warn, -crit
    if value <= good:
        return "good"
    if value <= warn:
        return "fair"
    if value <= crit:
        return "warning"
    return "critical"


def grade_of(score: float) -> str:
    for floor, grade in ((9, "A"), (8, "B"), (7, "C"), (6, "D")):
        if score >= floor:
            return grade
    return "F"


def _fmt(value: float, unit: str) -> str:
    if unit == "":
        return f"{value:.2f}"
    if unit == "%":
        return f"{value:.1f} %"
    return f"{value:,.0f} {unit}" if value >= 10 else f"{value:.1f} {unit}"


@dataclass(frozen=True, slots=True)
class AreaScore:
    area: str
    label: str
    value: float
    unit: str
    band: Band
    score: float
    level: str
    reason: str


@dataclass(frozen=True, slots=True)
class Graded:
    """A service or endpoint with its area scores, overall score and grade."""

    name: str
    score: float | None
    grade: str | None
    """None when no area had data."""
    areas: list[AreaScore]
    reason: str


def score_area(area: str, value: float, band: Band) -> AreaScore:
    a = AREAS[area]
    score = score_value(value, band, a.higher_is_better)
    level = level_of(value, band, a.higher_is_better)
    good, warn, crit = (_fmt(b, a.unit) for b in band)
    word = "at least" if a.higher_is_better else "at most"
    reason = (
        f"{a.label} {_fmt(value, a.unit)}: {level} (good {word} {good}, warning {warn}, "
        f"critical {crit}) → {score:g}/10"
    )
    return AreaScore(area, a.label, value, a.unit, band, score, level, reason)


def grade_entity(
    name: str, figures: Mapping[str, float | None], thresholds: Thresholds, service: str
) -> Graded:
    """Score every area with a figure; overall = mean capped at the worst area + 3."""
    areas = [
        score_area(area, float(v), thresholds.band(area, service))
        for area, v in figures.items()
        if v is not None and math.isfinite(v)
    ]
    if not areas:
        return Graded(name, None, None, [], "no data in the window")
    mean = sum(a.score for a in areas) / len(areas)
    worst = min(areas, key=lambda a: a.score)
    overall = round(min(mean, worst.score + 3.0), 2)
    reason = f"mean of {len(areas)} areas {mean:.2f}"
    if overall < round(mean, 2):
        reason += f", capped at worst area ({worst.label} {worst.score:g}) + 3"
    reason += f" → {overall:g} = {grade_of(overall)}"
    return Graded(name, overall, grade_of(overall), areas, reason)


# ------------------------------------------------------------------------ findings


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str
    severity: str
    """critical, warning or info."""
    title: str
    service: str
    endpoint: str | None
    impact_ms_per_min: float | None
    """User time wasted per minute, where the finding has one."""
    evidence: dict[str, str | float | int | None]
    link: str
    recommendation: str


def rank(findings: Iterable[Finding]) -> list[Finding]:
    """Most user time wasted per minute first; those without a measure after, by severity."""
    order = {s: i for i, s in enumerate(SEVERITIES)}
    return sorted(
        findings,
        key=lambda f: (
            f.impact_ms_per_min is None,
            -(f.impact_ms_per_min or 0.0),
            order.get(f.severity, 9),
            f.service,
            f.endpoint or "",
            f.title,
        ),
    )


def severity_by_impact(ms_per_min: float) -> str:
    """≥ 1 s of user time per minute is critical, ≥ 100 ms a warning."""
    return "critical" if ms_per_min >= 1000 else "warning" if ms_per_min >= 100 else "info"


def q(value: str) -> str:
    return quote(value, safe="")


def endpoint_link(service: str, endpoint: str) -> str:
    return f"/endpoint?service={q(service)}&endpoint={q(endpoint)}"


def n_plus_one_finding(
    *,
    service: str,
    endpoint: str,
    kind: str,
    display: str,
    fingerprint: str,
    calls: int,
    occurrences: int,
    avg_repeats: float,
    wasted_ms: float,
    trace_id: str,
    minutes: float,
) -> Finding:
    per_min = wasted_ms / minutes
    what = "query" if kind == "db" else "call"
    fix = (
        "load the rows in one query: a JOIN, WHERE … IN (…), or the ORM's prefetch "
        "(select_related / prefetch_related / selectinload)"
        if kind == "db"
        else "batch the calls (one request for all ids) or cache the responses"
    )
    return Finding(
        kind="n_plus_one",
        severity=severity_by_impact(per_min),
        title=f"N+1 {what} in {endpoint}: ×{avg_repeats:g} per request",
        service=service,
        endpoint=endpoint,
        impact_ms_per_min=round(per_min, 3),
        evidence={
            "query": display,
            "fingerprint": fingerprint,
            "calls": calls,
            "occurrences": occurrences,
            "avg_repeats": avg_repeats,
            "wasted_ms": round(wasted_ms, 3),
            "trace_id": trace_id,
        },
        link=f"/traces/{trace_id}",
        recommendation=f"{display} runs {avg_repeats:g} times per request; {fix}.",
    )


_PG_SEQ = re.compile(r"Seq Scan on (\w+)(?:\s+(\w+))?")
_PG_FILTER = re.compile(r"Filter:\s*(.+)")
_SQLITE_SCAN = re.compile(r"^\W*SCAN (?:TABLE )?(\w+)(?: AS (\w+))?\s*$", re.MULTILINE)
_MYSQL_ALL = re.compile(r'"table_name":\s*"(\w+)"[^{}]*?"access_type":\s*"ALL"', re.DOTALL)
_FROM = re.compile(r"\b(?:FROM|JOIN)\s+([\w.]+)(?:\s+(?:AS\s+)?(\w+))?", re.IGNORECASE)
_WHERE = re.compile(r"\bWHERE\s+(.+?)(?:\bORDER\b|\bGROUP\b|\bLIMIT\b|$)", re.I | re.S)
_KEYWORDS = {"where", "join", "on", "order", "group", "limit", "left", "inner", "using"}


def seq_scan(plan: str, statement: str | None) -> tuple[str, str | None] | None:
    """The table a plan reads whole, and the filter it applies, or None.

    Understands PostgreSQL's text plan (``Seq Scan on t`` + ``Filter:``), SQLite's
    (``SCAN t``, not ``SCAN t USING INDEX``) and MySQL's JSON (``access_type: ALL``);
    an alias is resolved to its table, and the filter taken from the statement's
    WHERE clause when the plan names none.
    """
    filt: str | None = None
    m = _PG_SEQ.search(plan)
    if m:
        name = m.group(1)
        f = _PG_FILTER.search(plan[m.end() :])
        filt = f.group(1).strip() if f else None
    elif s := _SQLITE_SCAN.search(plan):
        name = s.group(1)
    elif my := _MYSQL_ALL.search(plan):
        name = my.group(1)
    else:
        return None
    aliases: dict[str, str] = {}
    for table, alias in _FROM.findall(statement or ""):
        aliases[table.lower()] = table
        if alias and alias.lower() not in _KEYWORDS:
            aliases[alias.lower()] = table
    table = aliases.get(name.lower(), name)
    if filt is None and statement:
        w = _WHERE.search(statement)
        filt = " ".join(w.group(1).split()) if w else None
    return table, filt


def seq_scan_finding(
    *,
    table: str,
    condition: str | None,
    display: str,
    fingerprint: str | None,
    count: int,
    total_ms: float,
    p95_ms: float,
    services: Sequence[str],
    endpoints: Sequence[str],
    trace_id: str,
    minutes: float,
) -> Finding:
    per_min = total_ms / minutes
    cols = sorted(set(re.findall(r"(?:\w+\.)?(\w+)\s*(?:=|<|>|LIKE|IN\b|IS\b)", condition or "")))
    cols = [c for c in cols if c.lower() not in {"and", "or", "not"}]
    if cols:
        index = f"CREATE INDEX ON {table} ({', '.join(cols)})"
        rec = f"Add an index for the filter ({condition}): {index}"
        if "LIKE" in (condition or "").upper():
            rec += " (a leading-wildcard LIKE needs a trigram/full-text index instead)"
    else:
        rec = f"Add an index on {table} matching the query's filter, or limit the rows it reads"
    return Finding(
        kind="seq_scan",
        severity=severity_by_impact(per_min),
        title=f"Slow query reads all of {table} (sequential scan)",
        service=services[0] if services else "",
        endpoint=endpoints[0] if endpoints else None,
        impact_ms_per_min=round(per_min, 3),
        evidence={
            "query": display,
            "fingerprint": fingerprint,
            "table": table,
            "filter": condition,
            "slow_calls": count,
            "total_ms": round(total_ms, 3),
            "p95_ms": p95_ms,
            "trace_id": trace_id,
        },
        link=f"/db/query?fp={fingerprint}" if fingerprint else f"/traces/{trace_id}",
        recommendation=rec + ".",
    )


def db_heavy_finding(
    *,
    service: str,
    endpoint: str,
    db_share: float,
    total_ms: float,
    top_query: str | None,
    minutes: float,
) -> Finding:
    per_min = total_ms * db_share / minutes
    return Finding(
        kind="db_time",
        severity="warning" if db_share >= 0.8 else "info",
        title=f"{endpoint} spends {db_share:.0%} of its time in the database",
        service=service,
        endpoint=endpoint,
        impact_ms_per_min=round(per_min, 3),
        evidence={"db_share": round(db_share, 4), "endpoint_total_ms": total_ms, "top": top_query},
        link=endpoint_link(service, endpoint),
        recommendation=(
            f"Start with its most expensive query ({top_query}): fewer round trips, "
            "an index, or caching the result"
            if top_query
            else "Reduce its database work: fewer round trips, indexes, caching"
        )
        + ".",
    )


EXTERNAL_SHARE = 0.5
"""One callee taking this share of an endpoint's request time dominates it."""
EXTERNAL_MIN_REQUESTS = 10
"""Fewer requests than this in the window: too few to judge an endpoint's calls."""


def external_call_finding(
    *,
    service: str,
    endpoint: str,
    callee: str,
    calls: int,
    calls_ms: float,
    requests: int,
    endpoint_total_ms: float,
    trace_id: str | None,
    minutes: float,
) -> Finding | None:
    """An outgoing HTTP call dominating an endpoint: one callee's time ≥ ``EXTERNAL_SHARE``
    of the endpoint's total request time, over at least ``EXTERNAL_MIN_REQUESTS``
    requests; else None.

    Parallel calls can add up to more than the request time, so the share is capped at
    100 % and the impact (user time per minute spent waiting on the callee) at the
    endpoint's own time. Severity: critical at ≥ 80 % and ≥ 1 s/min, warning at ≥ 80 %
    or ≥ 100 ms/min, else info."""
    if requests < EXTERNAL_MIN_REQUESTS or endpoint_total_ms <= 0 or calls <= 0:
        return None
    share = min(calls_ms / endpoint_total_ms, 1.0)
    if share < EXTERNAL_SHARE:
        return None
    per_min = min(calls_ms, endpoint_total_ms) / minutes
    if share >= 0.8 and per_min >= 1000:
        severity = "critical"
    elif share >= 0.8 or per_min >= 100:
        severity = "warning"
    else:
        severity = "info"
    per_request = calls / requests
    mean_ms = calls_ms / calls
    fixes = [f"cache its responses where they can be reused (a {mean_ms:,.0f} ms call)"]
    if per_request >= 1.5:
        fixes.append(
            f"batch the {per_request:.1f} calls per request into one, or run them concurrently"
        )
    else:
        fixes.append("run it concurrently with the endpoint's other work, or off the request")
    fixes.append("set a timeout and a circuit breaker so a slow callee cannot hold requests")
    return Finding(
        kind="external_call",
        severity=severity,
        title=f"{endpoint} spends {share:.0%} of its time calling {callee}",
        service=service,
        endpoint=endpoint,
        impact_ms_per_min=round(per_min, 3),
        evidence={
            "callee": callee,
            "share": round(share, 4),
            "calls": calls,
            "calls_per_request": round(per_request, 2),
            "mean_ms_per_call": round(mean_ms, 3),
            "calls_total_ms": round(calls_ms, 3),
            "requests": requests,
            "endpoint_total_ms": round(endpoint_total_ms, 3),
            "trace_id": trace_id,
        },
        link=endpoint_link(service, endpoint),
        recommendation=f"{callee} takes {share:.0%} of {endpoint}'s time: "
        + "; ".join(fixes)
        + ".",
    )


def tail_finding(
    *, service: str, endpoint: str, p50: float, p99: float, rpm: float, ratio: float
) -> Finding:
    per_min = rpm * 0.01 * (p99 - p50)  # the slowest 1 % wait p99 − p50 longer
    return Finding(
        kind="tail_latency",
        severity="warning" if p99 / p50 >= 2 * ratio else "info",
        title=f"Tail latency in {endpoint}: p99 {p99:,.0f} ms is {p99 / p50:.1f}× p50",
        service=service,
        endpoint=endpoint,
        impact_ms_per_min=round(per_min, 3),
        evidence={"p50_ms": p50, "p99_ms": p99, "rpm": rpm},
        link=endpoint_link(service, endpoint),
        recommendation="Open the slowest traces of the endpoint and look for lock waits, "
        "cold caches, retries or a slow dependency hit by a few requests.",
    )


def apdex_finding(
    *, service: str, endpoint: str, apdex: float, band: Band, rpm: float, mean_ms: float
) -> Finding:
    per_min = rpm * (1 - apdex) * mean_ms
    return Finding(
        kind="low_apdex",
        severity="critical" if apdex < band[2] else "warning",
        title=f"Low Apdex in {endpoint}: {apdex:.2f}",
        service=service,
        endpoint=endpoint,
        impact_ms_per_min=round(per_min, 3),
        evidence={"apdex": round(apdex, 4), "warning_below": band[1], "rpm": rpm},
        link=endpoint_link(service, endpoint),
        recommendation="Too many requests are slower than the Apdex target: see the "
        "endpoint's latency histogram and its slowest traces.",
    )


def error_rate_finding(
    *, service: str, endpoint: str | None, rate_pct: float, band: Band, errors: int, mean_ms: float,
    minutes: float,
) -> Finding:  # fmt: skip
    per_min = errors / minutes * mean_ms
    where = endpoint or service
    return Finding(
        kind="error_rate",
        severity="critical" if rate_pct > band[2] else "warning",
        title=f"High error rate in {where}: {rate_pct:.1f} %",
        service=service,
        endpoint=endpoint,
        impact_ms_per_min=round(per_min, 3),
        evidence={"error_rate_pct": round(rate_pct, 3), "errors": errors},
        link=f"/issues?service={q(service)}",
        recommendation="Open the service's issues for the failing requests' exceptions, "
        "fix the most frequent first.",
    )


def issue_finding(
    *, service: str, issue_id: int, title: str, regressed: bool, events: int, mean_ms: float,
    minutes: float,
) -> Finding:  # fmt: skip
    per_min = events / minutes * mean_ms
    what = "Regressed" if regressed else "New"
    return Finding(
        kind="regressed_issue" if regressed else "new_issue",
        severity="critical" if regressed else "warning",
        title=f"{what} issue: {title}",
        service=service,
        endpoint=None,
        impact_ms_per_min=round(per_min, 3),
        evidence={"issue_id": issue_id, "events": events},
        link=f"/issues/{issue_id}",
        recommendation=(
            "It came back after being resolved: check the release that reopened it."
            if regressed
            else "A new error in this window: look at its stack trace and the release."
        ),
    )


def leak_fit(points: Sequence[tuple[float, float]]) -> tuple[float, float, float] | None:
    """Least-squares ``(slope per hour, r², growth ratio)`` of a memory series, or None
    with fewer than 5 points."""
    if len(points) < 5:
        return None
    n = len(points)
    xs = [t for t, _ in points]
    ys = [v for _, v in points]
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    if sxx == 0:
        return None
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    slope = sxy / sxx
    r2 = sxy * sxy / (sxx * syy) if syy else 0.0
    first = slope * (xs[0] - mx) + my
    last = slope * (xs[-1] - mx) + my
    growth = (last - first) / first if first > 0 else 0.0
    return slope * 3600, r2, growth


LEAK_MIN_R2 = 0.8
LEAK_MIN_GROWTH = 0.10


def leak_finding(
    *, service: str, instance: str, points: Sequence[tuple[float, float]]
) -> Finding | None:
    """Memory growing steadily: a linear fit with r² ≥ 0.8 gaining ≥ 10 % over the window."""
    fit = leak_fit(points)
    if fit is None:
        return None
    per_hour, r2, growth = fit
    if per_hour <= 0 or r2 < LEAK_MIN_R2 or growth < LEAK_MIN_GROWTH:
        return None
    return Finding(
        kind="memory_growth",
        severity="critical" if growth >= 0.5 else "warning",
        title=f"Memory of {service} ({instance}) grows steadily: +{growth:.0%} in the window",
        service=service,
        endpoint=None,
        impact_ms_per_min=None,
        evidence={
            "instance": instance,
            "growth_pct": round(growth * 100, 1),
            "mb_per_hour": round(per_hour / 2**20, 2),
            "r2": round(r2, 3),
            "first_mb": round(points[0][1] / 2**20, 1),
            "last_mb": round(points[-1][1] / 2**20, 1),
        },
        link=f"/service/runtime?service={q(service)}",
        recommendation="Leak suspicion: compare heap snapshots (tracemalloc) at two times, "
        "look for caches or lists that only grow.",
    )


def resource_finding(
    *, kind: str, service: str, area: str, value: float, band: Band
) -> Finding | None:
    """CPU saturation or event-loop blocking beyond the warning threshold."""
    if value <= band[1]:
        return None
    a = AREAS[area]
    if kind == "cpu":
        title = f"CPU saturation in {service}: {_fmt(value, a.unit)}"
        rec = "Profile the hot endpoints, move CPU-heavy work off the request path, or scale out."
    else:
        title = f"Event loop blocked in {service}: lag up to {_fmt(value, a.unit)}"
        rec = (
            "Something blocks the asyncio loop: move blocking calls (sync I/O, CPU work) "
            "to a thread (asyncio.to_thread) or a process pool."
        )
    return Finding(
        kind="cpu_saturation" if kind == "cpu" else "event_loop_lag",
        severity="critical" if value > band[2] else "warning",
        title=title,
        service=service,
        endpoint=None,
        impact_ms_per_min=None,
        evidence={area: round(value, 3), "warning_above": band[1]},
        link=f"/service/runtime?service={q(service)}",
        recommendation=rec,
    )


# ------------------------------------------------------------------ compare mode

REGRESSION_PCT = 20.0
"""A p95 change beyond ±20 % is slower/faster (the seed's load-test rule)."""
MIN_COMPARE_REQUESTS = 10
"""Fewer requests than this in either window: too few to judge latency."""


@dataclass(frozen=True, slots=True)
class Change:
    """One endpoint in the current window against the baseline window."""

    service: str
    endpoint: str
    verdict: str
    """slower, faster, new errors, more errors, new endpoint, gone, unchanged, too few requests."""
    baseline_requests: int
    requests: int
    baseline_p95_ms: float | None
    p95_ms: float | None
    p95_change_pct: float | None
    baseline_error_rate_pct: float | None
    error_rate_pct: float | None


@dataclass(frozen=True, slots=True)
class EndpointFigures:
    requests: int
    p95_ms: float | None
    error_rate_pct: float


_VERDICT_ORDER = (
    "slower",
    "new errors",
    "more errors",
    "new endpoint",
    "faster",
    "gone",
    "too few requests",
    "unchanged",
)


def compare(
    current: Mapping[tuple[str, str], EndpointFigures],
    baseline: Mapping[tuple[str, str], EndpointFigures],
    threshold_pct: float = REGRESSION_PCT,
) -> list[Change]:
    """Per endpoint: slower/faster when p95 moved more than ``threshold_pct`` (both
    windows with at least ``MIN_COMPARE_REQUESTS``), new errors when the baseline had
    none, more errors when the error rate rose by more than 1 point and ``threshold_pct``.
    No significance test: that belongs to load-test runs (issue 14, part 2)."""
    out = []
    for key in sorted(set(current) | set(baseline)):
        cur, base = current.get(key), baseline.get(key)
        change = None
        if cur is None or base is None:
            verdict = "gone" if cur is None else "new endpoint"
        else:
            verdict = "unchanged"
            if cur.p95_ms is not None and base.p95_ms:
                change = round((cur.p95_ms - base.p95_ms) / base.p95_ms * 100, 2)
            enough = min(cur.requests, base.requests) >= MIN_COMPARE_REQUESTS
            if cur.error_rate_pct > 0 and base.error_rate_pct == 0:
                verdict = "new errors"
            elif (
                cur.error_rate_pct > base.error_rate_pct * (1 + threshold_pct / 100)
                and cur.error_rate_pct - base.error_rate_pct > 1
            ):
                verdict = "more errors"
            elif not enough:
                verdict = "too few requests"
            elif change is not None and change > threshold_pct:
                verdict = "slower"
            elif change is not None and change < -threshold_pct:
                verdict = "faster"
        out.append(
            Change(
                service=key[0],
                endpoint=key[1],
                verdict=verdict,
                baseline_requests=base.requests if base else 0,
                requests=cur.requests if cur else 0,
                baseline_p95_ms=base.p95_ms if base else None,
                p95_ms=cur.p95_ms if cur else None,
                p95_change_pct=change,
                baseline_error_rate_pct=base.error_rate_pct if base else None,
                error_rate_pct=cur.error_rate_pct if cur else None,
            )
        )
    order = {v: i for i, v in enumerate(_VERDICT_ORDER)}
    return sorted(out, key=lambda c: (order[c.verdict], -abs(c.p95_change_pct or 0.0)))
