"""SLOs: the SLI over a rolling window, the error budget, burn rates, the burn-down,
and the multi-window multi-burn-rate rules generated from an SLO.

Counts come from the per-minute request rollups of the SLO's service (or endpoint):
``total`` requests, ``bad`` = errors (availability) or errors plus requests slower than
``threshold_ms`` (latency). The rollups keep latency as buckets, not single durations,
so "slower than T" counts the requests whose bucket lies above T, with the bucket that
holds T split linearly (``histogram.count_at_most``): the error is at most that one
bucket's share. Rollups do not say which slow requests were errors either, so an error
that was also slow counts once only if we subtract; we take ``bad = min(total,
errors + slow)``, which may count a slow error twice (pessimistic, never optimistic).

Burn rate = error ratio ÷ (1 − objective). A burn rule holds when both the long and the
short window of one row of :data:`BURN_WINDOWS` burn faster than the row's threshold:
budget fraction × SLO window ÷ long window (14.4 for 2 % over 1 h of 30 days).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from heron.server.alerting._cycle import ConditionError, CycleReads, Sample
from heron.server.histogram import count_at_most
from heron.server.model.alerting import (
    RuleSpec,
    SloBurnCondition,
    SloSpec,
    parse_rule,
    parse_slo,
)
from heron.server.query._common import NS_PER_MS, NS_PER_S
from heron.server.store.base import Store
from heron.server.store.red import RollupFilter

BURN_KEYS = {"5m": 300, "30m": 1800, "1h": 3600, "2h": 7200, "6h": 21600, "1d": 86400, "3d": 259200}
BURNDOWN_POINTS = 120


@dataclass(frozen=True, slots=True)
class BurnWindow:
    """One row of the multi-window multi-burn-rate table (Google SRE workbook)."""

    alert: str
    """``page`` or ``ticket``."""
    long: str
    short: str
    budget_fraction: float
    """The share of the budget an alert at the threshold burns within the long window."""

    def threshold(self, window_days: int) -> float:
        """The burn rate that fires, scaled to the SLO's window (14.4 at 30 days)."""
        return self.budget_fraction * window_days * 86400 / BURN_KEYS[self.long]


BURN_WINDOWS: tuple[BurnWindow, ...] = (
    BurnWindow("page", "1h", "5m", 0.02),
    BurnWindow("page", "6h", "30m", 0.05),
    BurnWindow("ticket", "1d", "2h", 0.10),
    BurnWindow("ticket", "3d", "6h", 0.10),
)


@dataclass(frozen=True, slots=True)
class SloStatus:
    good: int
    total: int
    sli: float | None
    """good ÷ total over the window (0..1), None without requests."""
    objective: float
    """The objective as a fraction (0.999)."""
    budget_remaining: float
    """The fraction of the error budget left (1 untouched, negative when overspent)."""
    burn_rates: dict[str, float | None]
    """Burn rate per window ("5m" .. "3d"), None without requests in it."""
    burndown: list[tuple[int, float]] = field(default_factory=list)
    """(Unix seconds, budget remaining) over the window: the budget is the allowed share
    of the requests seen so far, so the line ends at ``budget_remaining``."""
    firing: list[str] = field(default_factory=list)
    """Names of the SLO's burn rules firing now."""


def burn_rules(slo_id: int, spec: SloSpec) -> list[RuleSpec]:
    """The SLO's two burn-rate rules (none when ``spec.alerts`` is off): a critical page
    on fast burn, a warning ticket on slow burn."""
    if not spec.alerts:
        return []
    base = spec.name[: 200 - len(" — fast burn")]
    labels = {"slo": spec.name, "service": spec.service}
    rules = []
    for alert, what, severity in (("page", "fast", "critical"), ("ticket", "slow", "warning")):
        rules.append(
            parse_rule(
                {
                    "name": f"{base} — {what} burn",
                    "severity": severity,
                    "condition": {"kind": "slo_burn", "slo_id": slo_id, "alert": alert},
                    "labels": labels,
                    "channels": spec.channels,
                    "annotations": {
                        "summary": f"SLO {spec.name}: error budget burning {what} "
                        "(burn rate {{ value | round(1) if value is not none else 'n/a' }})",
                    },
                }
            )
        )
    return rules


def _counts(reads: CycleReads, pid: int, spec: SloSpec, lo_s: int, hi_s: int) -> tuple[int, int]:
    """(good, total) of the SLO's requests in the rollup minutes ``[lo_s, hi_s)``. The
    rollup read is per window and environment (every service's, or one service's
    endpoints), shared by every SLO of the cycle asking for the same window."""
    by: Literal["service", "endpoint"] = "service" if spec.endpoint is None else "endpoint"
    service = None if spec.endpoint is None else spec.service
    where = RollupFilter(pid, lo_s, hi_s, service=service, environment=spec.environment)
    rows = reads.get(
        ("slo_totals", where, by),
        lambda: {r[0]: r for r in reads.store.red.group_totals(where, by)},
    )
    row = rows.get(spec.service if spec.endpoint is None else spec.endpoint)
    if row is None:
        return 0, 0
    _, n, e, _, buckets, counts, _ = row
    return _good(spec, int(n), int(e), buckets, counts)


def _good(spec: SloSpec, n: int, e: int, buckets: list[int], counts: list[int]) -> tuple[int, int]:
    if spec.sli == "availability" or spec.threshold_ms is None:
        return n - e, n
    fast = count_at_most(dict(zip(buckets, counts, strict=True)), spec.threshold_ms * NS_PER_MS)
    slow = max(n - round(fast), 0)
    return n - min(n, e + slow), n


def burn_rate(good: int, total: int, objective_pct: float) -> float | None:
    """Error ratio ÷ allowed error ratio; None without requests."""
    if total <= 0:
        return None
    return (total - good) / total / (1 - objective_pct / 100)


def _minute_bounds(now_ns: int, seconds: int) -> tuple[int, int]:
    hi = -(-now_ns // (60 * NS_PER_S)) * 60  # the minute holding now, whole
    return hi - seconds, hi


def window_burn(
    reads: CycleReads, pid: int, slo_id: int, spec: SloSpec, key: str, now_ns: int
) -> float | None:
    lo, hi = _minute_bounds(now_ns, BURN_KEYS[key])
    good, total = _counts(reads, pid, spec, lo, hi)
    return burn_rate(good, total, spec.objective)


def _slo_spec(reads: CycleReads, pid: int, slo_id: int) -> SloSpec:
    """The SLO's spec (the project's SLOs are read once per cycle)."""
    slos = reads.get(
        ("slos", pid),
        lambda: {r.id: r.spec for r in reads.store.state.list_alert_config(pid, "slo")},
    )
    if slo_id not in slos:
        raise ConditionError(f"condition.slo_id: no SLO with id {slo_id}")
    return reads.get(("slo_spec", pid, slo_id), lambda: parse_slo_json(slos[slo_id]))


def parse_slo_json(text: str) -> SloSpec:
    import json

    return parse_slo(json.loads(text))


def burn_samples(reads: CycleReads, pid: int, cond: SloBurnCondition, now_ns: int) -> list[Sample]:
    """One sample: the long-window burn rate of the fastest-burning row of the alert's
    class, holding when both windows of any of its rows exceed the threshold."""
    spec = _slo_spec(reads, pid, cond.slo_id)
    holds, value = False, None
    for row in (w for w in BURN_WINDOWS if w.alert == cond.alert):
        long = window_burn(reads, pid, cond.slo_id, spec, row.long, now_ns)
        short = window_burn(reads, pid, cond.slo_id, spec, row.short, now_ns)
        limit = row.threshold(spec.window_days)
        if long is not None and (value is None or long > value):
            value = long
        if long is not None and short is not None and long > limit and short > limit:
            holds = True
    labels = {"slo": spec.name, "service": spec.service}
    return [Sample(labels, value, f"/slos/{cond.slo_id}", holds)]


def slo_status(store: Store, project_id: int, slo_id: int, spec: SloSpec, now_ns: int) -> SloStatus:
    """The SLO now: SLI and budget over its window, burn rates, burn-down, firing rules."""
    reads = CycleReads(store)
    window_s = spec.window_days * 86400
    lo, hi = _minute_bounds(now_ns, window_s)
    where = RollupFilter(
        project_id,
        lo,
        hi,
        service=spec.service,
        environment=spec.environment,
        endpoint=spec.endpoint,
    )
    step = window_s // BURNDOWN_POINTS // 60 * 60
    allowed = 1 - spec.objective / 100
    good = total = 0
    burndown: list[tuple[int, float]] = []
    steps = sorted(store.red.step_totals(where, step), key=lambda r: int(r[0]))  # type: ignore[call-overload]
    if steps:  # nothing is spent before the first request: the whole budget is left
        burndown.append((int(steps[0][0]), 1.0))  # type: ignore[call-overload]
    for t, n, e, _, buckets, counts, _ in steps:
        g, n_ = _good(spec, int(n), int(e), buckets, counts)
        good, total = good + g, total + n_
        burndown.append((int(t) + step, _remaining(good, total, allowed)))  # type: ignore[call-overload]
    return SloStatus(
        good=good,
        total=total,
        sli=good / total if total else None,
        objective=spec.objective / 100,
        budget_remaining=_remaining(good, total, allowed),
        burn_rates={k: window_burn(reads, project_id, slo_id, spec, k, now_ns) for k in BURN_KEYS},
        burndown=burndown,
        firing=_firing(store, project_id, slo_id),
    )


def _remaining(good: int, total: int, allowed: float) -> float:
    return 1.0 if total <= 0 else 1 - (total - good) / total / allowed


def _firing(store: Store, project_id: int, slo_id: int) -> list[str]:
    rules = {
        r.id: r.name
        for r in store.state.list_alert_config(project_id, "rule")
        if r.source == f"slo:{slo_id}"
    }
    return sorted(
        {
            rules[i.rule_id]
            for i in store.state.alert_instances(project_id)
            if i.rule_id in rules and i.state == "firing"
        }
    )
