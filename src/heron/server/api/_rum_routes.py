"""Read API routes for real-user monitoring: the web-vitals overview, the breakdown by
page / browser / device class, one page in depth, sessions and one session's timeline.

Included in the ``/api/v1`` router (``api/routes.py``), so they share its token check
and its 400 error mapping. No ``from __future__ import annotations``: FastAPI reads the
parameter annotations at runtime.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import Field

from heron.server import query
from heron.server.api._params import Project, WindowDep
from heron.server.api._route import ApiRoute
from heron.server.api._schemas import ErrorBody, _Ranged
from heron.server.context import Ctx
from heron.server.errors import NotFound
from heron.server.query import rum
from heron.server.store.rum import RUM_GROUPS, RumFilters

CHART_POINTS = 120


class _Filtered(_Ranged):
    app: str | None
    page: str | None
    browser: str | None
    device: str | None


class OverviewResponse(_Filtered):
    overview: rum.RumOverview
    trend: rum.RumTrend
    choices: dict[str, list[str]] = Field(
        description="Values each filter can take in the range (page, browser, device, app, "
        "environment)."
    )


class PagesResponse(_Filtered):
    by: str
    groups: list[rum.RumGroupStats]


class PageResponse(_Filtered):
    detail: rum.PageDetail


class SessionsResponse(_Filtered):
    user: str | None
    sessions: list[rum.SessionSummary]


def filters(
    w: WindowDep,
    app: Annotated[
        str | None, Query(description="Only this app (the SDK's `init({app})`).")
    ] = None,
    page: Annotated[
        str | None, Query(description="Only this page (route, or path with ids as `:id`).")
    ] = None,
    browser: Annotated[str | None, Query(description="Only this browser family.")] = None,
    device: Annotated[
        str | None, Query(description="Only this device class: desktop, mobile, tablet, other.")
    ] = None,
) -> RumFilters:
    """The RUM filters, checked (400 naming a bad one)."""
    return rum.rum_filters(
        app=app, environment=w.environment, page=page, browser=browser, device=device
    )


Filters = Annotated[RumFilters, Depends(filters)]


def _echo(w: Any, f: RumFilters) -> dict[str, Any]:
    return {**w.echo(), "app": f.app, "page": f.page, "browser": f.browser, "device": f.device}


router = APIRouter(route_class=ApiRoute)


@router.get("/rum/overview", response_model=OverviewResponse)
def rum_overview(ctx: Ctx, project: Project, w: WindowDep, f: Filters) -> dict[str, Any]:
    """Web vitals at the 75th percentile (LCP, INP, CLS, FCP, TTFB; ms, CLS unitless)
    with the rating of each p75 and the shares of good / needs-improvement / poor
    samples, also split by device class (desktop, mobile); page views, the page-load
    p75 and JavaScript errors; a trend per vital. From the per-minute RUM rollup."""
    tr = w.time_range
    step = query.chart_step_s(tr, CHART_POINTS)
    return {
        **_echo(w, f),
        "overview": rum.overview(ctx.store, project, tr, f),
        "trend": rum.trend(ctx.store, project, tr, f, step),
        "choices": rum.choices(ctx.store, project, tr),
    }


@router.get("/rum/pages", response_model=PagesResponse)
def rum_pages(
    ctx: Ctx,
    project: Project,
    w: WindowDep,
    f: Filters,
    by: Annotated[
        str,
        Query(
            description=f"Group by one of: {', '.join(RUM_GROUPS)}. Default: page.",
            json_schema_extra={"enum": list(RUM_GROUPS)},
        ),
    ] = "page",
    limit: Annotated[int, Query(ge=1, le=rum.MAX_GROUPS)] = 100,
) -> dict[str, Any]:
    """The breakdown: per page (or browser, device class, app, environment) the view
    count, load p75, JavaScript errors and each vital's p75 and rating shares, most
    viewed first."""
    groups = rum.breakdown(ctx.store, project, w.time_range, f, by, limit)
    return {**_echo(w, f), "by": by, "groups": groups}


@router.get("/rum/page", response_model=PageResponse)
def rum_page(ctx: Ctx, project: Project, w: WindowDep, f: Filters) -> dict[str, Any]:
    """One page (`page` is required): its vitals and their trend, slowest resources,
    long interactions with their targets, long animation frames, slow React renders,
    JavaScript errors, sample sessions and the slowest page loads."""
    tr = w.time_range
    step = query.chart_step_s(tr, CHART_POINTS)
    detail = rum.page_detail(ctx.store, project, tr, f, step_s=step)
    return {**_echo(w, f), "detail": detail}


@router.get("/rum/sessions", response_model=SessionsResponse)
def rum_sessions(
    ctx: Ctx,
    project: Project,
    w: WindowDep,
    f: Filters,
    user: Annotated[
        str | None, Query(max_length=256, description="Only sessions of this user id.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=rum.MAX_SESSION_LIMIT)] = 100,
) -> dict[str, Any]:
    """Browser sessions with an event in the range (matching the filters), most recently
    active first: user, first/last event, views, errors, browser, OS, device, entry page."""
    found = rum.sessions(ctx.store, project, w.time_range, f, user_id=user, limit=limit)
    return {**_echo(w, f), "user": user or None, "sessions": found}


_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No event of this session is stored."}
}


@router.get("/rum/sessions/{session_id}", response_model=rum.SessionTimeline, responses=_NOT_FOUND)
def rum_session(
    ctx: Ctx,
    project: Project,
    session_id: Annotated[str, Path(description="The SDK's session id (8-64 of [A-Za-z0-9_-]).")],
) -> rum.SessionTimeline:
    """One session's events oldest first — page views, vitals, interactions, long
    frames, errors, fetches — each with the backend `trace_id` it joined, if any."""
    found = rum.session_timeline(ctx.store, project, session_id)
    if found is None:
        raise NotFound(f"no session {session_id!r} is stored")
    return found
