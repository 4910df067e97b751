"""Error tracking and logs pages: the issues list, one issue, the status actions, logs.

Everything an event carries (types, messages, frames, locals, breadcrumbs, headers,
tags, log bodies) is telemetry: it reaches HTML only through autoescaped expressions,
and the occurrences chart's data through a ``<script type="application/json">`` block.
Status changes are POST forms carrying the session's CSRF token (checked by the UI
router's guard) that redirect back with 303.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from heron.server import query
from heron.server.errors import NotFound
from heron.server.model import ISSUE_STATUSES
from heron.server.query import InvalidQuery
from heron.server.ui._kit import RENDERER, Kit, KitDep, UiRoute
from heron.server.ui._pages import sparkline_points
from heron.server.ui._state import UiState

ISSUE_LIMIT = 200
EVENTS_SHOWN = 20
LOG_LIMIT = 200
CHART_POINTS = 120
TREND_POINTS = 24
STATUS_CHOICES = ("open", "resolved", "ignored", "all")
SORT_LABELS = {
    "last_seen": "Last seen",
    "first_seen": "First seen",
    "events": "Events",
    "users": "Users",
}
SEVERITY_CHOICES = ("", "debug", "info", "warn", "error", "fatal")
MAX_PRETTY = 20_000


@dataclass(frozen=True, slots=True)
class SourceLine:
    lineno: int | None
    text: str
    current: bool


def source_lines(frame: dict[str, Any]) -> list[SourceLine]:
    """A frame's context: the lines before, the line itself, the lines after, numbered
    when the frame has a line number."""
    pre = [str(x) for x in frame.get("pre_context") or [] if x is not None]
    post = [str(x) for x in frame.get("post_context") or [] if x is not None]
    line = frame.get("context_line")
    if line is None:
        return []
    lineno = frame.get("lineno")
    first = lineno - len(pre) if isinstance(lineno, int) else None

    def num(i: int) -> int | None:
        return None if first is None else first + i

    out = [SourceLine(num(i), text, False) for i, text in enumerate(pre)]
    out.append(SourceLine(lineno if isinstance(lineno, int) else None, str(line), True))
    out += [SourceLine(num(len(pre) + 1 + i), text, False) for i, text in enumerate(post)]
    return out


def pretty(value: Any) -> str:
    """A JSON-ish value as indented text (strings as they are), size-capped."""
    text = (
        value
        if isinstance(value, str)
        else json.dumps(value, indent=2, ensure_ascii=False, default=str)
    )
    return text if len(text) <= MAX_PRETTY else text[:MAX_PRETTY] + "…"


def crumb_ns(crumb: dict[str, Any]) -> int | None:
    """A breadcrumb's time (Unix seconds, a float) in nanoseconds."""
    t = crumb.get("timestamp")
    return int(t * 1e9) if isinstance(t, (int, float)) and not isinstance(t, bool) else None


def _opt(request: Request, name: str) -> str | None:
    return (request.query_params.get(name) or "").strip() or None


def dsn(kit: Kit, request: Request) -> dict[str, str]:
    """Where to send errors: the Sentry DSN and the OTLP logs endpoint of this server."""
    boot = kit.ctx.bootstrap
    key = boot.ingest_key if boot else "hk_…"
    base = str(request.base_url).rstrip("/")
    return {
        "dsn": f"{request.url.scheme}://{key}@{request.url.netloc}/{kit.project}",
        "endpoint": base,
        "logs": f"{base}/v1/logs",
        "key": key,
    }


def _series(detail: query.IssueDetail, state: UiState) -> dict[str, Any]:
    """Occurrences per step in the shape heron.js's charts read (``events`` kind)."""
    return {
        "step_s": detail.step_s,
        "from": state.time_range.start_ns // 10**9,
        "to": state.time_range.end_ns // 10**9,
        "t": [p.t for p in detail.series],
        "events": [p.events for p in detail.series],
        "partial": bool(detail.series)
        and query.filling_share(detail.series[-1].t, detail.step_s, state.now_ns) is not None,
    }


def _issue_event(
    kit: Kit, request: Request, issue_id: int, default: query.EventDetail | None
) -> query.EventDetail | None:
    """The event chosen with ``?event=`` (it must belong to the issue), else the latest."""
    wanted = _opt(request, "event")
    if wanted is None:
        return default
    found = query.get_event(kit.ctx.store, kit.project, wanted)
    if found is None or found.issue_id != issue_id:
        raise NotFound(f"Issue {issue_id} has no event {wanted[:40]}.")
    return found


router = APIRouter(route_class=UiRoute)
RENDERER.env.filters.update(source_lines=source_lines, pretty=pretty, crumb_ns=crumb_ns)


@router.get("/issues")
def issues_page(kit: KitDep, request: Request) -> Response:
    state = kit.state(request)
    status = _opt(request, "status") or "open"
    if status not in STATUS_CHOICES:
        raise InvalidQuery(f"status must be one of {', '.join(STATUS_CHOICES)}")
    sort = _opt(request, "sort") or "last_seen"
    service, release = _opt(request, "service"), _opt(request, "release")
    platform = _opt(request, "platform")
    store, project, tr = kit.ctx.store, kit.project, state.time_range
    listed: dict[str, Any] = {
        "status": None if status == "all" else status,
        "service": service,
        "release": release,
        "environment": state.environment,
        "sort": sort,
    }
    rows = query.list_issues(store, project, tr, platform=platform, limit=ISSUE_LIMIT, **listed)
    platforms = query.error_platforms(store, project, tr)
    shown = [platform] if platform else platforms
    by_issue = query.issue_platforms(store, project, tr, shown, **listed) if rows else {}
    step = query.chart_step_s(tr, TREND_POINTS)
    trends = query.issue_trends(store, project, tr, [i.id for i in rows], step, now_ns=state.now_ns)
    return kit.render(
        request,
        "issues.html",
        state,
        nav="issues",
        page_params={
            "status": status if status != "open" else None,
            "sort": sort if sort != "last_seen" else None,
            "service": service,
            "release": release,
            "platform": platform,
        },
        rows=rows,
        platforms=platforms,
        platform=platform,
        issue_platforms=by_issue,
        trends={iid: sparkline_points([float(v) for v in vs]) for iid, vs in trends.items()},
        status_filter=status,
        statuses=STATUS_CHOICES,
        sort=sort,
        sorts=SORT_LABELS,
        service=service,
        release=release,
        services=query.error_services(store, project, tr),
        releases=query.error_releases(store, project, tr),
        filtered=bool(service or release or platform or status != "open"),
        has_errors=bool(rows) or query.has_errors(store, project),
        setup=dsn(kit, request),
    )


@router.get("/issues/{issue_id}")
def issue_page(kit: KitDep, request: Request, issue_id: int) -> Response:
    state = kit.state(request)
    step = query.chart_step_s(state.time_range, CHART_POINTS)
    store, project = kit.ctx.store, kit.project
    detail = query.issue_detail(
        store, project, issue_id, state.time_range, environment=state.environment, step_s=step
    )
    if detail is None:
        raise NotFound(f"Issue {issue_id} was not found.")
    event = _issue_event(kit, request, issue_id, detail.latest)
    recent = query.issue_events(
        store, project, issue_id, environment=state.environment, limit=EVENTS_SHOWN
    )
    return kit.render(
        request,
        "issue.html",
        state,
        nav="issues",
        detail=detail,
        issue=detail.issue,
        event=event,
        recent=recent.events,
        more_events=recent.next_cursor is not None,
        series=_series(detail, state),
        trace_logs=query.trace_logs(store, project, bytes.fromhex(event.trace_id), 200)
        if event and event.trace_id
        else [],
    )


@router.post("/issues/{issue_id}/status")
async def issue_status(kit: KitDep, request: Request, issue_id: int) -> Response:
    form = await request.form()
    status = form.get("status")
    if not isinstance(status, str) or status not in ISSUE_STATUSES:
        raise InvalidQuery(f"status must be one of {', '.join(ISSUE_STATUSES)}")
    release = form.get("release")
    release = release.strip()[:200] if isinstance(release, str) else ""
    state = kit.state(request)  # the page's range and filters ride on the action URL
    changed = await run_in_threadpool(
        query.set_issue_status,
        kit.ctx.store,
        kit.project,
        issue_id,
        status,
        release or None,
        now_ns=kit.ctx.clock(),
    )
    if not changed:
        raise NotFound(f"Issue {issue_id} was not found.")
    return RedirectResponse(state.url(f"/issues/{issue_id}"), status_code=303)


@router.get("/logs")
def logs_page(kit: KitDep, request: Request) -> Response:
    state = kit.state(request)
    service, text = _opt(request, "service"), _opt(request, "text")
    severity = _opt(request, "severity") or ""
    trace = _opt(request, "trace_id")
    cursor = _opt(request, "cursor")
    q = query.LogQuery(
        service=service,
        min_severity=query.parse_severity(severity) if severity else None,
        text=text,
        trace_id=query.parse_trace_id(trace) if trace else None,
        environment=state.environment,
        limit=LOG_LIMIT,
        cursor=cursor,
    )
    store, project, tr = kit.ctx.store, kit.project, state.time_range
    page = query.search_logs(store, project, tr, q)
    params = {"service": service, "severity": severity or None, "text": text, "trace_id": trace}
    return kit.render(
        request,
        "logs.html",
        state,
        nav="logs",
        page_params=params,
        logs=page.logs,
        next_url=state.url("/logs", **params, cursor=page.next_cursor)
        if page.next_cursor
        else None,
        paged=cursor is not None,
        service=service,
        services=query.log_services(store, project, tr),
        severity=severity,
        severities=SEVERITY_CHOICES,
        text=text,
        trace_id=trace,
        filtered=any(params.values()),
        setup=dsn(kit, request),
    )
