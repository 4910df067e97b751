"""Load-test pages: the runs (``/loadtests``), one run (``/loadtests/{id}``) and a run
compared with its baseline (``/loadtests/{id}/compare``), docs/loadtest.md.

They read the same dictionaries the JSON API returns (``query/loadtest.py``: RunJSON,
the run's summary and series, the Comparison), so the page and ``heron loadtest compare``
never disagree. Runs are not tied to the global time range: a run carries its own
window, and the charts put two runs on one axis of seconds since each one's start.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from heron.server import query
from heron.server.analyze.grading import parse_thresholds
from heron.server.analyze.loadtest_stats import Settings
from heron.server.errors import NotFound
from heron.server.model.loadtest import LoadTestRun
from heron.server.query import loadtest as lt
from heron.server.ui._kit import RENDERER, Kit, KitDep, UiRoute, _session


class LoadTestPageRoute(UiRoute):
    """The query's "no such run" is a 404 page, "still running" a 409 page."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except lt.RunNotFound as e:
                return self.error_page(request, 404, _sentence(e), _HINT)
            except lt.RunStillRunning as e:
                return self.error_page(request, 409, _sentence(e), _HINT)

        return handle


def load_value(v: Any) -> str:
    """A value of a run's ``load`` as text: nested objects and lists as compact JSON
    (what the load tool sent), escaped by the template like any other string."""
    if isinstance(v, dict | list):
        return json.dumps(v, separators=(", ", ": "), ensure_ascii=False)
    return str(v)


RENDERER.env.filters["lt_value"] = load_value


def _sentence(e: Exception) -> str:
    text = str(e)
    return f"{text[:1].upper()}{text[1:]}."


router = APIRouter(route_class=LoadTestPageRoute)

PAGE_SIZE = 20
"""Runs per list page: each row's figures read its window's requests (the same read as
the run's page), so a page costs about PAGE_SIZE of those."""
MAX_ID = 2**62
SERIES_POINTS = 60
_HINT = "The runs are listed on /loadtests."


@router.get("/loadtests")
def loadtests_page(kit: KitDep, request: Request) -> Response:
    name = (request.query_params.get("name") or "").strip() or None
    before = _id_param(request.query_params.get("before"), "before")
    store, project, now = kit.ctx.store, kit.project, kit.ctx.clock()
    runs = store.state.list_loadtests(project, name=name, limit=PAGE_SIZE + 1, before_id=before)
    older = runs[PAGE_SIZE - 1].id if len(runs) > PAGE_SIZE else None
    rows = []
    for run in runs[:PAGE_SIZE]:
        row = lt.run_json(run, now)
        row["totals"] = _totals(lt.run_summary(store, project, run, now))
        row["previous_id"] = _previous_id(kit, run)
        rows.append(row)
    return _page(
        kit,
        request,
        "loadtests.html",
        name=name,
        runs=rows,
        older=older,
    )


@router.get("/loadtests/{run_id}")
def loadtest_page(kit: KitDep, request: Request, run_id: str) -> Response:
    store, project, now = kit.ctx.store, kit.project, kit.ctx.clock()
    run = _run(kit, run_id)
    summary = lt.run_summary(store, project, run, now)
    previous = None
    prev_id = _previous_id(kit, run)
    if prev_id is not None and prev_id != run.baseline_id:
        previous = store.state.get_loadtest(project, prev_id)
    series = _chart_data(
        {"run": _full_steps(lt.run_series(store, project, run, now, _step_s(now, run)), run, now)},
        {"run": f"#{run.id}"},
        focus=None,
    )
    return _page(
        kit,
        request,
        "loadtest.html",
        run=lt.run_json(run, now),
        endpoints=summary.get("endpoints", []),
        previous=previous,
        series=series,
    )


@router.get("/loadtests/{run_id}/compare")
def loadtest_compare_page(kit: KitDep, request: Request, run_id: str) -> Response:
    store, project, now = kit.ctx.store, kit.project, kit.ctx.clock()
    run = _run(kit, run_id)
    params = request.query_params
    ref = (params.get("baseline") or "").strip() or None
    if run.end_ns is None:
        raise lt.RunStillRunning(f"run {run.id} is still running: compare it once it finishes")
    baseline = lt.resolve_baseline(store, project, run, ref)
    defaults = Settings()
    settings = Settings(
        threshold=_float_param(params.get("threshold"), "threshold", 0.0, 10.0)
        or defaults.threshold,
        alpha=_float_param(params.get("alpha"), "alpha", 0.0, 0.5) or defaults.alpha,
    )
    comparison = lt.compare_runs(
        store,
        project,
        run,
        baseline,
        settings,
        now_ns=now,
        thresholds=parse_thresholds(kit.ctx.config.analyze_thresholds),
    )
    step = _step_s(now, run, baseline)  # one step for both, so their points line up
    regressed = [e for e in comparison["endpoints"] if e["status"] == "regression"]
    series = _chart_data(
        {
            "run": _full_steps(lt.run_series(store, project, run, now, step), run, now),
            "baseline": _full_steps(
                lt.run_series(store, project, baseline, now, step), baseline, now
            ),
        },
        {"run": f"run #{run.id}", "baseline": f"baseline #{baseline.id}"},
        focus=(regressed[0]["service"], regressed[0]["endpoint"]) if regressed else None,
    )
    return _page(
        kit,
        request,
        "loadtest_compare.html",
        c=comparison,
        has_runtime=any(
            v is not None
            for s in comparison["services"]
            for side in (s["run"], s["baseline"])
            for v in (side or {}).values()
        ),
        series=series,
        baseline_param=ref or str(baseline.id),
        threshold_param=params.get("threshold"),
        alpha_param=params.get("alpha"),
    )


def _page(kit: Kit, request: Request, template: str, **context: Any) -> Response:
    """A page without the global time range, environment and refresh controls: a run
    carries its own window, so they would change nothing here."""
    ctx: dict[str, Any] = {
        "state": None,
        "nav": "loadtests",
        "path": request.url.path,
        "page_params": {},
    }
    return kit.renderer.page(request, template, {**ctx, **_session(request), **context})


def _run(kit: Kit, run_id: str) -> LoadTestRun:
    ok = run_id.isdigit() and int(run_id) <= MAX_ID
    run = kit.ctx.store.state.get_loadtest(kit.project, int(run_id)) if ok else None
    if run is None:
        raise NotFound(f"Load-test run {run_id[:40]!r} was not found.")
    return run


def _previous_id(kit: Kit, run: LoadTestRun) -> int | None:
    """The newest finished run of the same name before this one: the natural baseline."""
    prev = kit.ctx.store.state.latest_loadtest(kit.project, run.name, before_id=run.id)
    return None if prev is None else prev.id


def _step_s(now_ns: int, *runs: LoadTestRun) -> int:
    """Seconds per chart point: about SERIES_POINTS over the longest of ``runs``."""
    longest = max(lt.window(r, now_ns).end_ns - r.start_ns for r in runs)
    return max(1, math.ceil(longest / 1e9 / SERIES_POINTS))


def _full_steps(series: dict[str, Any], run: LoadTestRun, now_ns: int) -> dict[str, Any]:
    """Drop a last point that covers less than half a step of the window: its few
    requests (rps under-counted, one slow request as its p95) draw a spike that is not
    there."""
    tr = lt.window(run, now_ns)
    seconds = (tr.end_ns - tr.start_ns) / 1e9
    step = series["step_s"]

    def trim(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if len(points) > 1 and seconds - points[-1]["offset_s"] < step / 2:
            return points[:-1]
        return points

    endpoints = {
        svc: {ep: trim(pts) for ep, pts in eps.items()}
        for svc, eps in (series.get("endpoints") or {}).items()
    }
    return {**series, "points": trim(series["points"]), "endpoints": endpoints}


def _chart_data(
    sides: dict[str, dict[str, Any]], labels: dict[str, str], focus: tuple[str, str] | None
) -> dict[str, Any]:
    """What loadtest.js draws: each side's overall points and per-endpoint points, the
    endpoints to choose from (``choices``; the page's select lists them by index), and
    which one to show first (a regressed endpoint on the compare page, else all)."""
    keys = sorted(
        {
            (svc, ep)
            for side in sides.values()
            for svc, eps in side["endpoints"].items()
            for ep in eps
        }
    )
    return {
        "run": sides["run"],
        "baseline": sides.get("baseline"),
        "run_label": labels["run"],
        "baseline_label": labels.get("baseline"),
        "choices": [{"service": svc, "endpoint": ep} for svc, ep in keys],
        "focus": keys.index(focus) if focus in keys else None,
    }


def _totals(summary: dict[str, Any]) -> dict[str, Any]:
    """The list's two figures of a run: its entry requests, its slowest endpoint's p95."""
    eps = summary.get("endpoints") or []
    p95s = [e["p95_ms"] for e in eps if e.get("p95_ms") is not None]
    return {
        "requests": sum(int(e.get("requests") or 0) for e in eps) if eps else None,
        "p95_ms": max(p95s) if p95s else None,
    }


def _id_param(raw: str | None, what: str) -> int | None:
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or int(raw) > MAX_ID:
        raise query.InvalidQuery(f"{what} must be a run id (digits), not {raw[:40]!r}")
    return int(raw)


def _float_param(raw: str | None, what: str, lo: float, hi: float) -> float | None:
    if raw is None or raw.strip() == "":
        return None
    try:
        v = float(raw)
    except ValueError:
        raise query.InvalidQuery(f"{what} must be a number, not {raw[:40]!r}") from None
    if not lo < v <= hi:
        raise query.InvalidQuery(
            f"{what} must be above {lo:g} and at most {hi:g}, not {raw[:40]!r}"
        )
    return v
