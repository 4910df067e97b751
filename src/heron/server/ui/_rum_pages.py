"""Web-vitals pages: the overview, one page in depth, sessions and one session's timeline.

Figures come from ``query.rum`` (p75 from the per-minute rollup; lists from raw RUM
events). Every string here is telemetry from browsers — URLs, selectors, error messages,
user and session ids — and reaches HTML only through autoescaped expressions and
``textContent`` in scripts. With no RUM data yet the overview shows the setup snippet
(the project's browser key, the ``/rum.js`` URL, the allowed-origins setting).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from heron.server import query
from heron.server.errors import NotFound
from heron.server.model.rum import DEVICES, RATINGS, VITAL_THRESHOLDS, VITALS
from heron.server.query import InvalidQuery, rum
from heron.server.store.rum import RumFilters
from heron.server.ui._kit import RENDERER, Kit, KitDep, UiRoute
from heron.server.ui._state import UiState

CHART_POINTS = 120
GROUP_LIMIT = 50
SESSION_LIMIT = 200
MAX_ISSUE_LINKS = 50
BREAKDOWNS = (("page", "Pages"), ("browser", "Browsers"), ("device", "Device classes"))
VITAL_INFO = {
    "LCP": "Largest Contentful Paint",
    "INP": "Interaction to Next Paint",
    "CLS": "Cumulative Layout Shift",
    "FCP": "First Contentful Paint",
    "TTFB": "Time to First Byte",
}


def fmt_vital(value: float | None, name: str) -> str:
    """A vital's value as people read it: CLS as a score (0.12), the rest in ms or s."""
    if value is None:
        return "–"
    if name == "CLS":
        return f"{value:.3f}".rstrip("0").rstrip(".") if value else "0"
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.0f} ms"


def rating_class(rating: str | None) -> str:
    """The CSS class of a rating (``good``, ``ni``, ``poor``; ``none`` without one)."""
    return {"good": "good", "needs-improvement": "ni", "poor": "poor"}.get(rating or "", "none")


RENDERER.env.filters.update(vital=fmt_vital, rating_class=rating_class)
RENDERER.env.globals.update(
    VITAL_INFO=VITAL_INFO, VITAL_THRESHOLDS=VITAL_THRESHOLDS, RUM_RATINGS=RATINGS
)


def _opt(request: Request, name: str) -> str | None:
    return (request.query_params.get(name) or "").strip() or None


def _filters(request: Request, state: UiState, *, page: str | None = None) -> RumFilters:
    return rum.rum_filters(
        app=_opt(request, "app"),
        environment=state.environment,
        page=page if page is not None else _opt(request, "page"),
        browser=_opt(request, "browser"),
        device=_opt(request, "device"),
    )


def _params(f: RumFilters) -> dict[str, str | None]:
    return {"app": f.app, "page": f.page, "browser": f.browser, "device": f.device}


def _series(trend: rum.RumTrend, state: UiState) -> dict[str, Any]:
    """The vitals' p75 per step in the shape heron.js's charts read: the four timing
    vitals as ``latency`` lines (ms), CLS as ``score``, views as ``rpm``."""
    partial = bool(trend.t) and (
        query.filling_share(trend.t[-1], trend.step_s, state.now_ns) is not None
    )
    return {
        "rate_label": "views",
        "points": True,
        "partial": partial,
        "step_s": trend.step_s,
        "from": state.time_range.start_ns // 10**9,
        "to": state.time_range.end_ns // 10**9,
        "t": trend.t,
        "rpm": trend.views,
        "latency": [{"label": f"{v} p75", "values": trend.p75[v]} for v in VITALS if v != "CLS"],
        "score": [{"label": "CLS p75", "values": trend.p75["CLS"]}],
    }


def setup_info(kit: Kit, request: Request) -> dict[str, Any]:
    """What the setup panel shows: the script URL, the browser key (when the server has
    browser keys) and the allowed origins."""
    base = str(request.base_url).rstrip("/")
    key = kit.ctx.projects.browser_key(kit.project)
    return {
        "script": f"{base}/rum.js",
        "endpoint": base,
        "key": key or "<browser key>",
        "has_key": bool(key),
        "origins": list(kit.ctx.config.rum_origin_list),
    }


router = APIRouter(route_class=UiRoute)


@router.get("/rum")
def rum_overview(kit: KitDep, request: Request) -> Response:
    state = kit.state(request)
    f = _filters(request, state)
    store, project, tr = kit.ctx.store, kit.project, state.time_range
    step = query.chart_step_s(tr, CHART_POINTS)
    ov = rum.overview(store, project, tr, f)
    groups = {key: rum.breakdown(store, project, tr, f, key, GROUP_LIMIT) for key, _ in BREAKDOWNS}
    choices = rum.choices(store, project, tr)
    filtered = any(_params(f).values())
    return kit.render(
        request,
        "rum.html",
        state,
        nav="rum",
        page_params=_params(f),
        overview=ov,
        series=_series(rum.trend(store, project, tr, f, step), state),
        groups=groups,
        breakdowns=BREAKDOWNS,
        choices=choices,
        devices=DEVICES,
        filters=f,
        filtered=filtered,
        setup=None if ov.has_data or filtered else setup_info(kit, request),
    )


@router.get("/rum/page")
def rum_page(kit: KitDep, request: Request) -> Response:
    state = kit.state(request)
    page = _opt(request, "page")
    if page is None:
        raise InvalidQuery("the 'page' parameter (a page of the web-vitals overview) is required")
    f = _filters(request, state, page=page)
    step = query.chart_step_s(state.time_range, CHART_POINTS)
    detail = rum.page_detail(kit.ctx.store, kit.project, state.time_range, f, step_s=step)
    return kit.render(
        request,
        "rum_page.html",
        state,
        nav="rum",
        page_params=_params(f),
        detail=detail,
        overview=detail.overview,
        series=_series(detail.trend, state),
        filters=f,
    )


@router.get("/rum/sessions")
def rum_sessions(kit: KitDep, request: Request) -> Response:
    state = kit.state(request)
    f = _filters(request, state)
    user = _opt(request, "user")
    if user is not None and len(user) > 256:
        raise InvalidQuery("user is longer than 256 characters")
    rows = rum.sessions(
        kit.ctx.store, kit.project, state.time_range, f, user_id=user, limit=SESSION_LIMIT
    )
    params = {**_params(f), "user": user}
    return kit.render(
        request,
        "rum_sessions.html",
        state,
        nav="rum",
        page_params=params,
        rows=rows,
        filters=f,
        user_filter=user,
        filtered=any(params.values()),
        limit=SESSION_LIMIT,
    )


def _issue_links(kit: Kit, timeline: rum.SessionTimeline) -> dict[str, int]:
    """The issue of each error event that names its error event (``event_id``; the
    first ``MAX_ISSUE_LINKS`` of them: one lookup each)."""
    out: dict[str, int] = {}
    looked = 0
    for e in timeline.events:
        eid = e.attributes.get("event_id") if e.kind == "error" else None
        if not isinstance(eid, str) or eid in out or looked >= MAX_ISSUE_LINKS:
            continue
        looked += 1
        try:
            found = query.get_event(kit.ctx.store, kit.project, eid)
        except InvalidQuery:
            continue
        if found is not None:
            out[eid] = found.issue_id
    return out


@router.get("/rum/sessions/{session_id}")
def rum_session(kit: KitDep, request: Request, session_id: str) -> Response:
    state = kit.state(request)
    timeline = rum.session_timeline(kit.ctx.store, kit.project, session_id)
    if timeline is None:
        raise NotFound(f"No event of session {session_id[:64]!r} is stored.")
    return kit.render(
        request,
        "rum_session.html",
        state,
        nav="rum",
        timeline=timeline,
        issues=_issue_links(kit, timeline),
    )
