"""Read API routes for error tracking and logs, plus the one write: an issue's status.

Included in the ``/api/v1`` router (``api/routes.py``), so they share its token
check and its 400 error mapping. The status change is the API's only state-changing
route: with a session cookie instead of a bearer token it also needs the session's CSRF
token in an ``X-CSRF-Token`` header, since a browser sends cookies on cross-site posts.
No ``from __future__ import annotations``: FastAPI reads the annotations at runtime.
"""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from pydantic import BaseModel, Field

from heron.server import query
from heron.server.api._params import Project, WindowDep
from heron.server.api._route import ApiRoute
from heron.server.api._schemas import ErrorBody, _Ranged
from heron.server.auth import verify_csrf
from heron.server.context import Ctx
from heron.server.errors import NotFound

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No issue with this id."}
}


class IssuesResponse(_Ranged):
    status: str | None
    service: str | None
    release: str | None
    platform: str | None
    sort: str
    issues: list[query.IssueSummary]


class IssueDetailResponse(_Ranged):
    issue: query.IssueSummary
    latest: query.EventDetail | None = Field(
        description="The newest event (in the range if the issue has one there, else ever)."
    )
    step_s: int
    series: list[query.IssuePoint] = Field(description="Events per step; `t` in Unix seconds.")
    by_release: list[query.Count]
    by_environment: list[query.Count]
    by_service: list[query.Count]
    tags: list[query.TagBreakdown] = Field(
        description=f"Tag values over the issue's latest {query.TAG_SAMPLE} events."
    )


class EventsResponse(BaseModel):
    issue_id: int
    events: list[query.EventSummary]
    next_cursor: str | None = Field(description="Pass as `cursor` for older events.")


class StatusChange(BaseModel):
    status: Literal["open", "resolved", "ignored"]
    release: str | None = Field(
        default=None,
        max_length=200,
        description="With `resolved`: the release that fixes it (default: the issue's last "
        "release). An event from a later release reopens the issue as a regression.",
    )


class LogsResponse(_Ranged):
    logs: list[query.LogLine]
    next_cursor: str | None = Field(description="Pass as `cursor` for older records.")


class TraceLogsResponse(BaseModel):
    trace_id: str
    logs: list[query.LogLine]


IssueId = Annotated[int, Path(ge=1, description="The issue's id, as listed by /issues.")]
Cursor = Annotated[
    str | None, Query(max_length=100, description="`next_cursor` of the previous page.")
]


async def _csrf_unless_bearer(request: Request) -> None:
    """Bearer tokens are never sent by a browser on its own; cookies are (see module doc)."""
    if request.headers.get("authorization", "").lower().startswith("bearer "):
        return  # the router's dependency has already checked it
    await verify_csrf(request)


router = APIRouter(route_class=ApiRoute)


@router.get("/issues", response_model=IssuesResponse)
def issues(
    ctx: Ctx,
    project: Project,
    w: WindowDep,
    status: Annotated[
        Literal["open", "resolved", "ignored"] | None, Query(description="Only this status.")
    ] = None,
    service: Annotated[str | None, Query(description="Events of this service.")] = None,
    release: Annotated[str | None, Query(description="Events of this release.")] = None,
    platform: Annotated[
        str | None,
        Query(description="Events of this platform (python, javascript for browser errors…)."),
    ] = None,
    sort: Annotated[
        str,
        Query(
            description="last_seen (default), first_seen, events or users (in the range).",
            json_schema_extra={"enum": list(query.ISSUE_SORTS)},
        ),
    ] = "last_seen",
    limit: Annotated[int, Query(ge=1, le=query.MAX_ISSUE_LIMIT)] = 100,
) -> dict[str, Any]:
    """Issues (errors grouped by fingerprint) with an event in the range matching the
    filters, newest first by default.

    `events` and `users` (distinct affected users) count the events in the range that
    match the filters; `event_count`, `first_seen_ns` and `last_seen_ns` are the
    issue's all-time figures. `regressed` is true for an open issue that a later
    release's event reopened after it was resolved."""
    found = query.list_issues(
        ctx.store,
        project,
        w.time_range,
        status=status,
        service=service or None,
        release=release or None,
        environment=w.environment,
        platform=platform or None,
        sort=sort,
        limit=limit,
    )
    return {
        **w.echo(),
        "status": status,
        "service": service or None,
        "release": release or None,
        "platform": platform or None,
        "sort": sort,
        "issues": found,
    }


@router.get("/issues/{issue_id}", response_model=IssueDetailResponse, responses=_NOT_FOUND)
def issue(
    ctx: Ctx,
    project: Project,
    issue_id: IssueId,
    w: WindowDep,
    step_s: Annotated[int, Query(ge=60, description="Series step in seconds.")] = 300,
) -> dict[str, Any]:
    """One issue: its figures over the range, its latest event in full (exception
    chain with frames, breadcrumbs, request, user, tags, contexts), occurrences per
    step, counts per release, environment and service, and tag values."""
    detail = query.issue_detail(
        ctx.store, project, issue_id, w.time_range, environment=w.environment, step_s=step_s
    )
    if detail is None:
        raise NotFound(f"issue {issue_id} not found")
    return {
        **w.echo(),
        "issue": detail.issue,
        "latest": detail.latest,
        "step_s": detail.step_s,
        "series": detail.series,
        "by_release": detail.by_release,
        "by_environment": detail.by_environment,
        "by_service": detail.by_service,
        "tags": detail.tags,
    }


@router.get("/issues/{issue_id}/events", response_model=EventsResponse, responses=_NOT_FOUND)
def issue_events(
    ctx: Ctx,
    project: Project,
    issue_id: IssueId,
    limit: Annotated[int, Query(ge=1, le=query.MAX_EVENT_LIMIT)] = 50,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """Every event of an issue, newest first, a page at a time (follow `next_cursor`)."""
    if not query.issue_exists(ctx.store, project, issue_id):
        raise NotFound(f"issue {issue_id} not found")
    page = query.issue_events(ctx.store, project, issue_id, limit=limit, cursor=cursor)
    return {"issue_id": issue_id, "events": page.events, "next_cursor": page.next_cursor}


@router.get(
    "/events/{event_id}",
    response_model=query.EventDetail,
    responses={404: {"model": ErrorBody, "description": "No event with this id."}},
)
def event(
    ctx: Ctx,
    project: Project,
    event_id: Annotated[str, Path(description="32 hex digits (dashes allowed).")],
) -> query.EventDetail:
    """One error event in full, by the id the SDK reported (Sentry `event_id`)."""
    found = query.get_event(ctx.store, project, event_id)
    if found is None:
        raise NotFound(f"event {event_id[:40]} not found")
    return found


@router.post(
    "/issues/{issue_id}/status",
    response_model=query.IssueSummary,
    responses={
        **_NOT_FOUND,
        403: {"model": ErrorBody, "description": "Session without a CSRF token."},
    },
    dependencies=[Depends(_csrf_unless_bearer)],
)
def set_status(
    ctx: Ctx,
    project: Project,
    issue_id: IssueId,
    change: Annotated[StatusChange, Body()],
    w: WindowDep,
) -> query.IssueSummary:
    """Resolve, ignore or reopen an issue; answers the issue as it now is.

    Resolving records the release it is fixed in; an event from a later release (first
    seen after it) reopens the issue as a regression, as does any new event when no
    release is known. Ignored issues stay ignored whatever arrives. With a session
    cookie instead of a token, send the page's CSRF token as `X-CSRF-Token`."""
    pid = project
    if not query.set_issue_status(
        ctx.store, pid, issue_id, change.status, change.release, now_ns=ctx.clock()
    ):
        raise NotFound(f"issue {issue_id} not found")
    found = query.get_issue(ctx.store, pid, issue_id, w.time_range)
    assert found is not None
    return found


@router.get("/logs", response_model=LogsResponse)
def logs(
    ctx: Ctx,
    project: Project,
    w: WindowDep,
    service: Annotated[str | None, Query(description="Only this service.")] = None,
    severity: Annotated[
        str | None,
        Query(
            description="Minimum severity: trace, debug, info, warn, error, fatal, or an "
            "OTLP severity number (1-24)."
        ),
    ] = None,
    text: Annotated[
        str | None,
        Query(max_length=500, description="Body contains this text (case-insensitive)."),
    ] = None,
    trace_id: Annotated[str | None, Query(description="Only this trace (32 hex).")] = None,
    limit: Annotated[int, Query(ge=1, le=query.MAX_LOG_LIMIT)] = 100,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """Log records in the range matching every filter, newest first, a page at a time.

    `event_id` and `issue_id` are set on records that became error events."""
    q = query.LogQuery(
        service=service or None,
        min_severity=query.parse_severity(severity) if severity else None,
        text=text or None,
        trace_id=query.parse_trace_id(trace_id) if trace_id else None,
        environment=w.environment,
        limit=limit,
        cursor=cursor,
    )
    page = query.search_logs(ctx.store, project, w.time_range, q)
    return {**w.echo(), "logs": page.logs, "next_cursor": page.next_cursor}


@router.get("/traces/{trace_id}/logs", response_model=TraceLogsResponse)
def trace_logs(ctx: Ctx, project: Project, trace_id: str) -> dict[str, Any]:
    """Every log record of a trace, oldest first (empty when it has none)."""
    tid = query.parse_trace_id(trace_id)
    return {"trace_id": tid.hex(), "logs": query.trace_logs(ctx.store, project, tid)}
