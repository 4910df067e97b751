"""Load-test statistics: one run's figures per endpoint, and whether an endpoint regressed
against a baseline run (pure numpy/scipy; ``query/loadtest.py`` gathers the requests).

The method, per endpoint with at least ``min_requests`` requests in both runs:

- **Latency regression** iff all three hold: the p95 ratio run/baseline is at least
  ``1 + threshold``; a one-sided Mann-Whitney U test (run slower than baseline, scipy,
  asymptotic with tie and continuity correction) gives p < ``alpha``; and the lower bound
  of the 95 % percentile-bootstrap interval of the p95 ratio is above 1. A big shift that
  is noise fails the test or the interval; a significant but small shift (any shift is
  significant at a million requests) fails the ratio.
- **Error regression** iff the error rate rises by at least ``error_threshold_pp``
  percentage points and a one-sided Fisher exact test on the 2×2 table of errors and
  successes gives p < ``alpha``.
- Improvements are the mirror image (ratio ≤ 1/(1 + threshold), the other tail, interval
  upper bound below 1; error rate falling by the same points). They are shown, never fail.

The Mann-Whitney test uses every request up to ``MAX_TEST_SAMPLES`` per side (a seeded
random subsample beyond: p-values there are already far below any alpha for a real
shift). The bootstrap draws ``RESAMPLES`` resamples per side; a resample's p95 (the
``ceil(0.95 n)``-th order statistic) is drawn from its exact bootstrap distribution,
``P(X*₍ₖ₎ ≤ x₍ⱼ₎) = P(Binomial(n, j/n) ≥ k)``, so no resample is materialised and every
request counts. Seeds are fixed, so a report is reproducible.

Percentiles in figures are numpy's linear interpolation between order statistics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

Status = Literal["regression", "improvement", "unchanged", "new", "gone", "insufficient-data"]

MAX_TEST_SAMPLES = 50_000
RESAMPLES = 2_000
SEED = 14
NS_PER_MS = 1e6

METHOD = (
    "Per endpoint with at least {min_requests} requests in each run. "
    "Latency regression: the p95 ratio run/baseline is at least {ratio:.2f}, "
    "a one-sided Mann-Whitney U test (run slower, asymptotic, up to 50,000 requests per "
    "side) gives p < {alpha}, and the 95 % bootstrap interval of the p95 ratio "
    "(2,000 resamples per side, exact order-statistic draws, fixed seed) lies above 1. "
    "Error regression: the error rate rises by at least {pp} percentage points and a "
    "one-sided Fisher exact test gives p < {alpha}. "
    "Improvements mirror these and never fail the gate."
)


@dataclass(frozen=True, slots=True)
class Settings:
    threshold: float = 0.20
    alpha: float = 0.01
    error_threshold_pp: float = 1.0
    min_requests: int = 30

    def method(self) -> str:
        return METHOD.format(
            min_requests=self.min_requests,
            ratio=1 + self.threshold,
            alpha=self.alpha,
            pp=self.error_threshold_pp,
        )


@dataclass(frozen=True, slots=True)
class Figures:
    """One endpoint's figures over one run's window (None: not measurable)."""

    requests: int
    throughput_rps: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    mean_ms: float | None
    error_rate: float | None
    db_ms_per_request: float | None = None
    queries_per_request: float | None = None


def figures(
    duration_ns: Any,
    error: Any,
    window_s: float,
    *,
    db_ns: float | None = None,
    db_calls: int | None = None,
) -> Figures:
    """Figures of one endpoint's requests (``duration_ns`` and ``error`` numpy arrays)
    in a window of ``window_s`` seconds; ``db_ns``/``db_calls``: the database time and
    queries attributed to those requests, when known."""
    n = len(duration_ns)
    if n == 0:
        return Figures(0, 0.0 if window_s > 0 else None, None, None, None, None, None)
    ms = np.asarray(duration_ns, dtype=np.float64) / NS_PER_MS
    p50, p95, p99 = (float(v) for v in np.percentile(ms, [50, 95, 99]))
    return Figures(
        requests=n,
        throughput_rps=n / window_s if window_s > 0 else None,
        p50_ms=p50,
        p95_ms=p95,
        p99_ms=p99,
        mean_ms=float(ms.mean()),
        error_rate=float(np.count_nonzero(error)) / n,
        db_ms_per_request=None if db_ns is None else db_ns / NS_PER_MS / n,
        queries_per_request=None if db_calls is None else db_calls / n,
    )


@dataclass(frozen=True, slots=True)
class Test:
    """The outcome of comparing one endpoint's requests in two runs."""

    status: Status
    reasons: list[str] = field(default_factory=list)
    p95_ratio: float | None = None
    p95_ratio_ci: tuple[float, float] | None = None
    p_value: float | None = None
    """Mann-Whitney U, one-sided in the direction of the change (run slower when the p95
    rose, faster when it fell)."""
    error_rate_change_pp: float | None = None
    error_p_value: float | None = None
    latency: Literal["regression", "improvement"] | None = None
    errors: Literal["regression", "improvement"] | None = None


def compare(run_ns: Any, run_err: Any, base_ns: Any, base_err: Any, settings: Settings) -> Test:
    """Compare one endpoint's requests of a run with the baseline's (numpy arrays of
    durations in ns and error flags), by the module's method."""
    n_run, n_base = len(run_ns), len(base_ns)
    if n_run < settings.min_requests or n_base < settings.min_requests:
        return Test(
            "insufficient-data",
            [
                f"{n_run} requests in the run and {n_base} in the baseline; "
                f"{settings.min_requests} needed in each"
            ],
        )
    run = np.asarray(run_ns, dtype=np.float64)
    base = np.asarray(base_ns, dtype=np.float64)
    p95_run, p95_base = np.percentile(run, 95), np.percentile(base, 95)
    ratio = float(p95_run / p95_base) if p95_base > 0 else math.inf
    slower = ratio >= 1.0
    p = _mann_whitney(run, base, "greater" if slower else "less")
    lo, hi = _ratio_interval(run, base)
    reasons: list[str] = []
    latency: Literal["regression", "improvement"] | None = None
    change = f"p95 {p95_run / NS_PER_MS:.1f} ms vs {p95_base / NS_PER_MS:.1f} ms ({_pct(ratio)})"
    evidence = f"Mann-Whitney p={p:.2g}, 95 % CI of the ratio ×{lo:.2f}–×{hi:.2f}"
    if ratio >= 1 + settings.threshold and p < settings.alpha and lo > 1.0:
        latency = "regression"
        reasons.append(f"slower: {change}; {evidence}")
    elif ratio <= 1 / (1 + settings.threshold) and p < settings.alpha and hi < 1.0:
        latency = "improvement"
        reasons.append(f"faster: {change}; {evidence}")
    errors, pp, err_p = _error_test(run_err, base_err, settings)
    if errors is not None:
        rate_run = float(np.count_nonzero(run_err)) / n_run
        rate_base = float(np.count_nonzero(base_err)) / n_base
        word = "more errors" if errors == "regression" else "fewer errors"
        reasons.append(
            f"{word}: {rate_run * 100:.2f} % vs {rate_base * 100:.2f} % ({pp:+.2f} points); "
            f"Fisher exact p={err_p:.2g}"
        )
    if "regression" in (latency, errors):
        status: Status = "regression"
    elif "improvement" in (latency, errors):
        status = "improvement"
    else:
        status = "unchanged"
        reasons.append(f"within noise or threshold: {change}; {evidence}")
    return Test(
        status,
        reasons,
        p95_ratio=ratio,
        p95_ratio_ci=(lo, hi),
        p_value=p,
        error_rate_change_pp=pp,
        error_p_value=err_p,
        latency=latency,
        errors=errors,
    )


def _pct(ratio: float) -> str:
    return "no baseline time" if math.isinf(ratio) else f"{(ratio - 1) * 100:+.1f} %"


def _capped(x: np.ndarray, seed: int) -> np.ndarray:
    if len(x) <= MAX_TEST_SAMPLES:
        return x
    return np.random.default_rng(seed).choice(x, MAX_TEST_SAMPLES, replace=False)


def _mann_whitney(run: np.ndarray, base: np.ndarray, alternative: str) -> float:
    from scipy.stats import mannwhitneyu

    res = mannwhitneyu(
        _capped(run, SEED), _capped(base, SEED + 1), alternative=alternative, method="asymptotic"
    )
    p = float(res.pvalue)
    return 1.0 if math.isnan(p) else p  # all values equal: no evidence


def p95_draws(x: np.ndarray, draws: int, rng: np.random.Generator, q: float = 0.95) -> np.ndarray:
    """``draws`` bootstrap replicates of the ``ceil(q n)``-th order statistic of ``x``,
    each drawn from its exact bootstrap distribution: ``P(X*₍ₖ₎ ≤ x₍ⱼ₎) =
    P(Binomial(n, j/n) ≥ k)``. Only order statistics within 12 standard deviations of
    ``k`` carry probability, so only those are sorted."""
    from scipy.stats import binom

    n = len(x)
    k = min(n, max(1, math.ceil(q * n)))
    spread = int(12 * math.sqrt(n * q * (1 - q))) + 2
    lo, hi = max(1, k - spread), min(n, k + spread)
    part = np.partition(x, (lo - 1, hi - 1))
    window = np.sort(part[lo - 1 : hi])
    j = np.arange(lo, hi + 1)
    cdf = binom.sf(k - 1, n, j / n)
    cdf[-1] = 1.0
    picks = np.searchsorted(cdf, rng.random(draws), side="left")
    out: np.ndarray = window[np.minimum(picks, len(window) - 1)]
    return out


def _ratio_interval(run: np.ndarray, base: np.ndarray) -> tuple[float, float]:
    rng = np.random.default_rng(SEED)
    num, den = p95_draws(run, RESAMPLES, rng), p95_draws(base, RESAMPLES, rng)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.inf)
    lo, hi = np.percentile(ratios, [2.5, 97.5])
    return float(lo), float(hi)


def _error_test(
    run_err: Any, base_err: Any, settings: Settings
) -> tuple[Literal["regression", "improvement"] | None, float, float]:
    """(outcome, change in percentage points, one-sided Fisher p in that direction)."""
    from scipy.stats import fisher_exact

    n_run, n_base = len(run_err), len(base_err)
    e_run, e_base = int(np.count_nonzero(run_err)), int(np.count_nonzero(base_err))
    pp = (e_run / n_run - e_base / n_base) * 100
    table = [[e_run, n_run - e_run], [e_base, n_base - e_base]]
    if e_run == e_base == 0:
        return None, pp, 1.0
    p = float(fisher_exact(table, alternative="greater" if pp >= 0 else "less")[1])
    if pp >= settings.error_threshold_pp and p < settings.alpha:
        return "regression", pp, p
    if pp <= -settings.error_threshold_pp and p < settings.alpha:
        return "improvement", pp, p
    return None, pp, p


def verdict(statuses: list[str]) -> Literal["pass", "regression", "insufficient-data"]:
    """``regression`` if any endpoint regressed; else ``insufficient-data`` if none was
    comparable (every endpoint new, gone or too small); else ``pass``."""
    if "regression" in statuses:
        return "regression"
    if not any(s in ("improvement", "unchanged") for s in statuses):
        return "insufficient-data"
    return "pass"
