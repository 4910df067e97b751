"""Load-test runs read side: a run's JSON, its per-endpoint summary, its comparison with a
baseline run (and the verdict it stores) and its time series (docs/loadtest.md).

A run is only a window (``model/loadtest.py``); everything here is computed from the
telemetry of that window on demand: the entry spans as numpy columns
(``TraceReader.request_samples``, counted by start time), database time and queries per
request from the database rollups (the attribution ``top_queries`` uses, per minute:
the rollups' totals over the window's minutes divided by the requests the request
rollups count in the same minutes), runtime metrics (``query/analysis.py``) and the
analyzer's findings for the run's window. The statistics are ``analyze/loadtest_stats.py``.
"""

from __future__ import annotations

import copy
import math
import threading
import weakref
from collections import OrderedDict
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlencode

import numpy as np

from heron.server.analyze import grading as g
from heron.server.analyze import loadtest_stats as st
from heron.server.model.loadtest import LoadTestRun
from heron.server.query import runtime
from heron.server.query._common import InvalidQuery, TimeRange
from heron.server.query._timerange import iso
from heron.server.query.analysis import _metric, _runtime_figures, analysis_report
from heron.server.store.base import Store
from heron.server.store.traces import RequestSamples

NS = 1_000_000_000
SERIES_POINTS = 60
"""Points of a run's time series when no step is given."""
MAX_SERIES_POINTS = 2000
SERIES_ENDPOINTS = 20
"""Endpoints (most requests first) with a series of their own."""
TOP_FINDINGS = 10
CPU_HIGH_PCT = 80.0
MEMORY_HIGH_PCT = 90.0

STATUS_ORDER = ("regression", "improvement", "unchanged", "new", "gone", "insufficient-data")


class RunNotFound(LookupError):
    """No such run (or baseline) in the project."""


class RunStillRunning(Exception):
    """A run that has not finished cannot be compared yet."""


# ------------------------------------------------------------------------ JSON


def run_json(run: LoadTestRun, now_ns: int | None = None) -> dict[str, Any]:
    """A run as the API answers it (``RunJSON``); ``duration_s`` of a running run counts
    to ``now_ns`` when given."""
    end = run.end_ns if run.end_ns is not None else now_ns
    return {
        "id": run.id,
        "name": run.name,
        "status": run.status,
        "verdict": run.verdict,
        "baseline": run.baseline,
        "baseline_id": run.baseline_id,
        "labels": run.labels,
        "load": run.load,
        "tool": run.tool,
        "command": run.command,
        "service": run.service,
        "environment": run.environment,
        "exit_code": run.exit_code,
        "start_ns": run.start_ns,
        "end_ns": run.end_ns,
        "start": iso(run.start_ns),
        "end": None if run.end_ns is None else iso(run.end_ns),
        "duration_s": None if end is None else max(0, end - run.start_ns) / NS,
        "links": {"ui": f"/loadtests/{run.id}", "compare": f"/loadtests/{run.id}/compare"},
    }


def get_run(store: Store, project_id: int, run_id: int) -> LoadTestRun:
    run = store.state.get_loadtest(project_id, run_id)
    if run is None:
        raise RunNotFound(f"no load-test run {run_id}")
    return run


def window(run: LoadTestRun, now_ns: int) -> TimeRange:
    """The run's window: ``[start, end)``, to now while it runs (at least 1 ns)."""
    end = run.end_ns if run.end_ns is not None else now_ns
    return TimeRange(run.start_ns, max(end, run.start_ns + 1))


# --------------------------------------------------------------------- figures


@dataclass(frozen=True, slots=True)
class _RunData:
    run: LoadTestRun
    tr: TimeRange
    samples: dict[tuple[str, str], RequestSamples]
    db: dict[tuple[str, str], tuple[float, float]]
    """(db ns per request, queries per request) per (service, endpoint)."""

    @property
    def seconds(self) -> float:
        return (self.tr.end_ns - self.tr.start_ns) / NS


def _db_per_request(
    store: Store, project_id: int, tr: TimeRange, run: LoadTestRun
) -> dict[tuple[str, str], tuple[float, float]]:
    """Database ns and queries per request per endpoint over the window's minutes."""
    lo, hi = tr.minute_bounds()
    filters = {"service": run.service, "environment": run.environment}
    groups = store.db.query_stat_groups(project_id, lo, hi, filters, "endpoint")
    if not groups:
        return {}
    requests = store.db.request_time(
        project_id, lo, hi, service=run.service, endpoint=None, environment=run.environment
    )
    out: dict[tuple[str, str], tuple[float, float]] = {}
    for (svc, endpoint), agg in groups:
        n = requests.get((svc, endpoint), (0, 0.0))[0]
        if n > 0:
            calls, sum_ns = int(agg[0]), float(agg[2])
            out[(svc, endpoint)] = (sum_ns / n, calls / n)
    return out


def _load(store: Store, project_id: int, run: LoadTestRun, now_ns: int) -> _RunData:
    tr = window(run, now_ns)
    found = store.traces.request_samples(
        project_id, tr.start_ns, tr.end_ns, service=run.service, environment=run.environment
    )
    return _RunData(
        run,
        tr,
        {(s.service, s.endpoint): s for s in found},
        _db_per_request(store, project_id, tr, run),
    )


def _figures(data: _RunData, key: tuple[str, str]) -> st.Figures:
    s = data.samples[key]
    per = data.db.get(key)
    n = len(s.duration_ns)
    return st.figures(
        s.duration_ns,
        s.error,
        data.seconds,
        db_ns=None if per is None else per[0] * n,
        db_calls=None if per is None else round(per[1] * n),
    )


def _fig_json(f: st.Figures | None) -> dict[str, Any] | None:
    if f is None:
        return None
    return {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v)
        for k, v in asdict(f).items()
    }


SETTLED_NS = 5 * 60 * NS
"""A run that ended this long ago has all its telemetry: its summary no longer changes."""
SUMMARY_CACHE = 512


class _SummaryCache:
    """Summaries of settled runs, so the runs list does not re-read every run's requests
    on each view (a run of a million requests costs about half a second to read)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[tuple[int, int, int, int], dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[int, int, int, int]) -> dict[str, Any] | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: tuple[int, int, int, int], value: dict[str, Any]) -> None:
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)


_summaries: weakref.WeakKeyDictionary[Store, _SummaryCache] = weakref.WeakKeyDictionary()
_summaries_lock = threading.Lock()


def _cache_of(store: Store) -> _SummaryCache:
    """The store's own cache (a closed store's goes with it)."""
    with _summaries_lock:
        cache = _summaries.get(store)
        if cache is None:
            cache = _summaries[store] = _SummaryCache(SUMMARY_CACHE)
        return cache


def run_summary(store: Store, project_id: int, run: LoadTestRun, now_ns: int) -> dict[str, Any]:
    """Per-endpoint figures of the run alone, most requests first (kept in memory once
    the run has settled: ended ``SETTLED_NS`` ago)."""
    settled = run.end_ns is not None and now_ns - run.end_ns >= SETTLED_NS
    key = (project_id, run.id, run.start_ns, run.end_ns or 0)
    if settled:
        cached = _cache_of(store).get(key)
        if cached is not None:
            return copy.deepcopy(cached)
    summary = _summary(store, project_id, run, now_ns)
    if settled:
        _cache_of(store).put(key, copy.deepcopy(summary))
    return summary


def _summary(store: Store, project_id: int, run: LoadTestRun, now_ns: int) -> dict[str, Any]:
    data = _load(store, project_id, run, now_ns)
    rows = [
        {"service": svc, "endpoint": ep, **(_fig_json(_figures(data, (svc, ep))) or {})}
        for svc, ep in data.samples
    ]
    rows.sort(key=lambda r: (-r["requests"], r["service"], r["endpoint"]))
    return {"requests": sum(r["requests"] for r in rows), "endpoints": rows}


# ------------------------------------------------------------------ comparison


def resolve_baseline(
    store: Store, project_id: int, run: LoadTestRun, baseline: str | None
) -> LoadTestRun:
    """The baseline run: ``baseline`` (an id, or a name: its newest finished run older
    than ``run``), else the run's own ``baseline`` field."""
    ref = (baseline or "").strip() or (run.baseline or "").strip()
    if not ref:
        raise InvalidQuery(
            "no baseline: give ?baseline=<run id or name>, or start the run with one"
        )
    if ref.isdigit():
        found = store.state.get_loadtest(project_id, int(ref))
        if found is None:
            raise RunNotFound(f"baseline run {ref} does not exist")
    else:
        found = store.state.latest_loadtest(project_id, ref, before_id=run.id)
        if found is None:
            raise RunNotFound(f"no finished run named {ref!r} before run {run.id}")
    if found.id == run.id:
        raise InvalidQuery("a run cannot be its own baseline")
    if found.end_ns is None:
        raise RunStillRunning(f"baseline run {found.id} is still running")
    return found


def _links(service: str, endpoint: str, tr: TimeRange) -> dict[str, str]:
    span = {"from": iso(tr.start_ns), "to": iso(tr.end_ns)}
    params = urlencode({"service": service, "endpoint": endpoint, **span})
    return {"endpoint": f"/endpoint?{params}", "traces": f"/traces?{params}"}


def _num(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else v


def _endpoint_row(
    key: tuple[str, str], run: _RunData, base: _RunData, settings: st.Settings
) -> dict[str, Any]:
    in_run, in_base = key in run.samples, key in base.samples
    fr = _figures(run, key) if in_run else None
    fb = _figures(base, key) if in_base else None
    row: dict[str, Any] = {
        "service": key[0],
        "endpoint": key[1],
        "status": "",
        "reasons": [],
        "run": _fig_json(fr),
        "baseline": _fig_json(fb),
        "p95_change_pct": None,
        "p95_ratio_ci": None,
        "p_value": None,
        "error_rate_change_pp": None,
        "error_p_value": None,
        "throughput_change_pct": None,
        "links": _links(key[0], key[1], run.tr if in_run else base.tr),
    }
    if fr is None or fb is None:
        row["status"] = "new" if fr is not None else "gone"
        row["reasons"] = ["only in the run" if fr is not None else "only in the baseline"]
        return row
    if fr.throughput_rps and fb.throughput_rps:
        row["throughput_change_pct"] = (fr.throughput_rps / fb.throughput_rps - 1) * 100
    r, b = run.samples[key], base.samples[key]
    t = st.compare(r.duration_ns, r.error, b.duration_ns, b.error, settings)
    row["status"], row["reasons"] = t.status, t.reasons
    if t.p95_ratio is not None:
        row["p95_change_pct"] = _num((t.p95_ratio - 1) * 100)
    if t.p95_ratio_ci is not None:
        row["p95_ratio_ci"] = [_num(t.p95_ratio_ci[0]), _num(t.p95_ratio_ci[1])]
    row["p_value"], row["error_p_value"] = t.p_value, t.error_p_value
    row["error_rate_change_pp"] = t.error_rate_change_pp
    return row


def _service_figures(
    store: Store, project_id: int, tr: TimeRange, service: str
) -> dict[str, float | None]:
    figs = _runtime_figures(store, project_id, tr, service)
    rss = _metric(store, project_id, tr, runtime.PROCESS_MEMORY, "avg", {"service": service}).get(
        ()
    )
    return {
        "cpu_pct": figs["cpu_pct"],
        "memory_mb": None if rss is None else rss / 2**20,
        "memory_pct": figs["memory_pct"],
        "loop_lag_ms": figs["loop_lag_ms"],
    }


def _recommendations(services: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for s in services:
        fig, name = s["run"], s["service"]
        link = f"/service/runtime?service={g.q(name)}"
        if fig["cpu_pct"] is not None and fig["cpu_pct"] > CPU_HIGH_PCT:
            out.append(
                {
                    "severity": "warning",
                    "title": f"{name}: CPU at {fig['cpu_pct']:.0f} % during the run",
                    "recommendation": "Scale out (more processes or instances), or profile "
                    "CPU to find the hot path before adding load.",
                    "evidence": {
                        "cpu_pct": fig["cpu_pct"],
                        "baseline_cpu_pct": s["baseline"]["cpu_pct"],
                    },
                    "link": link,
                }
            )
        if fig["memory_pct"] is not None and fig["memory_pct"] > MEMORY_HIGH_PCT:
            out.append(
                {
                    "severity": "critical",
                    "title": f"{name}: memory at {fig['memory_pct']:.0f} % during the run",
                    "recommendation": "Check for leaks (memory growing with requests served), "
                    "or give the service more memory.",
                    "evidence": {"memory_pct": fig["memory_pct"], "memory_mb": fig["memory_mb"]},
                    "link": link,
                }
            )
    return out


def compare_runs(
    store: Store,
    project_id: int,
    run: LoadTestRun,
    baseline: LoadTestRun,
    settings: st.Settings,
    *,
    now_ns: int,
    thresholds: g.Thresholds | None = None,
    store_verdict: bool = True,
) -> dict[str, Any]:
    """The ``Comparison`` JSON of ``run`` against ``baseline``; stores the verdict."""
    if run.end_ns is None:
        raise RunStillRunning(f"run {run.id} is still running: finish it before comparing")
    rd = _load(store, project_id, run, now_ns)
    bd = _load(store, project_id, baseline, now_ns)
    keys = sorted(set(rd.samples) | set(bd.samples))
    rows = [_endpoint_row(k, rd, bd, settings) for k in keys]
    rows.sort(
        key=lambda r: (
            r["status"] != "regression",
            -abs(r["p95_change_pct"] or 0.0),
            STATUS_ORDER.index(r["status"]),
            r["service"],
            r["endpoint"],
        )
    )
    verdict = st.verdict([r["status"] for r in rows])
    if store_verdict:
        store.state.set_loadtest_verdict(project_id, run.id, baseline.id, verdict, now_ns)
        run = store.state.get_loadtest(project_id, run.id) or run
    names = sorted({k[0] for k in keys})
    services = [
        {
            "service": name,
            "run": _service_figures(store, project_id, rd.tr, name),
            "baseline": _service_figures(store, project_id, bd.tr, name),
        }
        for name in names
    ]
    report = analysis_report(
        store,
        project_id,
        rd.tr,
        service=run.service,
        environment=run.environment,
        thresholds=thresholds,
    )
    return {
        "run": run_json(run),
        "baseline": run_json(baseline),
        "verdict": verdict,
        "threshold_pct": settings.threshold * 100,
        "alpha": settings.alpha,
        "error_threshold_pp": settings.error_threshold_pp,
        "min_requests": settings.min_requests,
        "method": settings.method(),
        "regressions": sum(r["status"] == "regression" for r in rows),
        "improvements": sum(r["status"] == "improvement" for r in rows),
        "endpoints": rows,
        "services": services,
        "recommendations": _recommendations(services),
        "findings": [asdict(f) for f in report.findings[:TOP_FINDINGS]],
    }


# ---------------------------------------------------------------------- series


def _points(
    offsets_ns: np.ndarray,
    dur_ns: np.ndarray,
    err: np.ndarray,
    step_ns: int,
    n_steps: int,
    span_ns: int,
) -> list[dict[str, Any]]:
    """One point per step; the last step may cover less than ``step_ns`` of the window
    (``duration_s``), and its ``rps`` is over what it covers, not over a whole step."""
    bucket = np.minimum(offsets_ns // step_ns, n_steps - 1)
    order = np.argsort(bucket, kind="stable")
    b_sorted = bucket[order]
    d_sorted = dur_ns[order].astype(np.float64) / 1e6
    e_sorted = err[order]
    edges = np.searchsorted(b_sorted, np.arange(n_steps + 1))
    step_s = step_ns / NS
    out = []
    for i in range(n_steps):
        lo, hi = int(edges[i]), int(edges[i + 1])
        n = hi - lo
        errors = int(np.count_nonzero(e_sorted[lo:hi]))
        p50 = p95 = None
        if n:
            p50, p95 = (float(v) for v in np.percentile(d_sorted[lo:hi], [50, 95]))
        covered_s = max(min(step_ns, span_ns - i * step_ns), 1) / NS
        out.append(
            {
                "offset_s": i * step_s,
                "duration_s": covered_s,
                "requests": n,
                "rps": n / covered_s,
                "p50_ms": p50,
                "p95_ms": p95,
                "errors": errors,
                "error_rate": errors / n if n else None,
            }
        )
    return out


def run_series(
    store: Store, project_id: int, run: LoadTestRun, now_ns: int, step_s: int | None = None
) -> dict[str, Any]:
    """Requests, throughput, p50/p95 and errors per step from the run's start (offsets,
    so two runs overlay), over every endpoint and per endpoint (the busiest
    ``SERIES_ENDPOINTS``: ``{service: {endpoint: points}}``)."""
    tr = window(run, now_ns)
    span_ns = tr.end_ns - tr.start_ns
    if step_s is None:
        step_s = max(1, math.ceil(span_ns / NS / SERIES_POINTS))
    if step_s < 1:
        raise InvalidQuery("step must be at least 1 second")
    step_ns = step_s * NS
    n_steps = max(1, math.ceil(span_ns / step_ns))
    if n_steps > MAX_SERIES_POINTS:
        raise InvalidQuery(
            f"step {step_s}s gives {n_steps} points; at most {MAX_SERIES_POINTS} "
            f"(use a step of at least {math.ceil(span_ns / NS / MAX_SERIES_POINTS)}s)"
        )
    found = store.traces.request_samples(
        project_id, tr.start_ns, tr.end_ns, service=run.service, environment=run.environment
    )

    def cols(s: list[RequestSamples]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if not s:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, bool)
        return (
            np.concatenate([x.start_ns for x in s]) - tr.start_ns,
            np.concatenate([x.duration_ns for x in s]),
            np.concatenate([x.error for x in s]),
        )

    endpoints: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for s in sorted(found, key=lambda x: -len(x.start_ns))[:SERIES_ENDPOINTS]:
        endpoints.setdefault(s.service, {})[s.endpoint] = _points(
            *cols([s]), step_ns, n_steps, span_ns
        )
    return {
        "step_s": step_s,
        "start_ns": tr.start_ns,
        "points": _points(*cols(found), step_ns, n_steps, span_ns),
        "endpoints": endpoints,
    }
