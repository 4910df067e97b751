"""Error tracking's read side: issues, one issue in depth, its events; and status changes.

Issues hold the writer's counters (first/last seen, total events); everything that
depends on the time range or on a filter (events and users in the range, releases,
environments) is counted from ``error_events``. An issue is listed when it has an event
in the range matching the filters. JSON columns are decoded here, so callers get dicts
and lists, never JSON text. The rows come from ``store.issues`` (no SQL here).
"""

from __future__ import annotations

import string
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from heron.server.model import ISSUE_STATUSES
from heron.server.query._common import NS_PER_S, InvalidQuery, TimeRange, filling_share
from heron.server.query._red import MAX_POINTS
from heron.server.store.base import Store

ISSUE_SORTS = ("last_seen", "first_seen", "events", "users")
MAX_ISSUE_LIMIT = 500
MAX_EVENT_LIMIT = 200
TAG_SAMPLE = 100
MAX_TAG_VALUES = 10
_HEX = frozenset(string.hexdigits)


@dataclass(frozen=True, slots=True)
class IssueSummary:
    """One issue with its figures over the queried range (and filters)."""

    id: int
    title: str
    culprit: str
    exc_type: str | None
    level: str
    status: str
    regressed: bool
    """Reopened by an event from a later release (or after resolving) and still open."""
    first_seen_ns: int
    last_seen_ns: int
    event_count: int
    """Events ever recorded for the issue (not only in the range)."""
    first_release: str
    last_release: str
    resolved_release: str | None
    status_changed_ns: int | None
    regressed_ns: int | None
    events: int
    """Events in the range matching the filters."""
    users: int
    """Distinct users affected in the range (events without a user do not count)."""
    releases: list[str]
    environments: list[str]
    services: list[str]


@dataclass(frozen=True, slots=True)
class EventSummary:
    """One occurrence, as listed under its issue."""

    event_id: str
    issue_id: int
    time_ns: int
    service: str
    environment: str
    release: str
    level: str
    exc_type: str | None
    message: str
    transaction: str | None
    trace_id: str | None
    user_key: str | None


@dataclass(frozen=True, slots=True)
class EventDetail:
    """One occurrence in full: the Sentry-shaped parts decoded from their JSON columns."""

    event_id: str
    issue_id: int
    time_ns: int
    received_ns: int
    service: str
    environment: str
    release: str
    level: str
    platform: str
    source: str
    exc_type: str | None
    message: str
    culprit: str
    transaction: str | None
    trace_id: str | None
    span_id: str | None
    user_key: str | None
    handled: bool | None
    logger: str | None
    sdk: str
    exceptions: list[dict[str, Any]]
    """The chain oldest → newest; frames caller → callee (see model.ErrorEvent)."""
    breadcrumbs: list[dict[str, Any]]
    request: dict[str, Any]
    user: dict[str, Any]
    tags: dict[str, Any]
    contexts: dict[str, Any]
    extra: dict[str, Any]


@dataclass(frozen=True, slots=True)
class EventPage:
    events: list[EventSummary]
    next_cursor: str | None
    """Pass as ``cursor`` for the next (older) page; None on the last page."""


@dataclass(frozen=True, slots=True)
class Count:
    value: str
    events: int


@dataclass(frozen=True, slots=True)
class IssuePoint:
    """Events in one step; ``t`` is the step's start in Unix seconds."""

    t: int
    events: int


@dataclass(frozen=True, slots=True)
class TagBreakdown:
    key: str
    values: list[Count]
    """Most frequent first, at most MAX_TAG_VALUES."""


@dataclass(frozen=True, slots=True)
class IssueDetail:
    issue: IssueSummary
    latest: EventDetail | None
    """The newest event of the issue (in the range if it has one there, else ever)."""
    step_s: int
    series: list[IssuePoint] = field(default_factory=list)
    by_release: list[Count] = field(default_factory=list)
    by_environment: list[Count] = field(default_factory=list)
    by_service: list[Count] = field(default_factory=list)
    tags: list[TagBreakdown] = field(default_factory=list)
    """Tag values over the issue's latest TAG_SAMPLE events."""


# ------------------------------------------------------------------------- helpers


def _json(text: str | None, empty: Any) -> Any:
    """A JSON column's value, or ``empty`` when NULL or not JSON of the expected kind."""
    if not text:
        return empty
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return empty
    return value if isinstance(value, type(empty)) else empty


def trace_hex(raw: bytes | None) -> str | None:
    return raw.hex() if raw else None


def span_hex(span_id: int | None) -> str | None:
    return f"{span_id:016x}" if span_id else None


def parse_event_id(text: str) -> str:
    """An event id (32 hex digits, dashes allowed as in UUIDs), lowercase without dashes."""
    clean = text.replace("-", "").lower()
    if len(clean) != 32 or not set(clean) <= _HEX:
        raise InvalidQuery(f"an event id is 32 hex digits (got {text[:40]!r})")
    return clean


def _check_status(status: str | None) -> None:
    if status is not None and status not in ISSUE_STATUSES:
        raise InvalidQuery(
            f"status must be one of {', '.join(ISSUE_STATUSES)} (got {status[:32]!r})"
        )


# ------------------------------------------------------------------------- issues


def _issue(row: Sequence[Any]) -> IssueSummary:
    (iid, title, culprit, exc_type, level, status, first, last, count, first_rel, last_rel) = row[
        :11
    ]
    resolved_rel, changed, regressed, events, users, releases, envs, services = row[11:]
    return IssueSummary(
        id=iid,
        title=title,
        culprit=culprit,
        exc_type=exc_type,
        level=level,
        status=status,
        regressed=status == "open" and regressed is not None,
        first_seen_ns=first,
        last_seen_ns=last,
        event_count=count,
        first_release=first_rel,
        last_release=last_rel,
        resolved_release=resolved_rel,
        status_changed_ns=changed,
        regressed_ns=regressed,
        events=events or 0,
        users=users or 0,
        releases=list(releases or []),
        environments=list(envs or []),
        services=list(services or []),
    )


def list_issues(
    store: Store,
    project_id: int,
    time_range: TimeRange,
    *,
    status: str | None = None,
    service: str | None = None,
    release: str | None = None,
    environment: str | None = None,
    platform: str | None = None,
    sort: str = "last_seen",
    limit: int = 100,
) -> list[IssueSummary]:
    """Issues with an event in the range matching the filters, most recent (or most
    frequent, most users, oldest) first; events and users are counted in the range.
    ``platform`` is the events' platform (``python``, ``javascript`` for browser errors…)."""
    if sort not in ISSUE_SORTS:
        raise InvalidQuery(f"cannot sort by {sort[:32]!r}: use one of {', '.join(ISSUE_SORTS)}")
    if not 1 <= limit <= MAX_ISSUE_LIMIT:
        raise InvalidQuery(f"limit must be between 1 and {MAX_ISSUE_LIMIT} (got {limit})")
    _check_status(status)
    filters = {
        "service": service,
        "release": release,
        "environment": environment,
        "platform": platform,
    }
    rows = store.issues.list_issues(
        project_id,
        time_range.start_ns,
        time_range.end_ns,
        filters,
        status=status,
        sort=sort,
        limit=limit,
    )
    return [_issue(r) for r in rows]


def issue_trends(
    store: Store,
    project_id: int,
    time_range: TimeRange,
    issue_ids: Sequence[int],
    step_s: int,
    *,
    now_ns: int | None = None,
) -> dict[int, list[int]]:
    """Events per step of each issue over the range (for sparklines); zero-filled.

    Given ``now_ns``, the step still filling then is left out: its few events so far
    would read as a sudden drop."""
    if not issue_ids:
        return {}
    step_ns = step_s * NS_PER_S
    lo = time_range.start_ns // step_ns
    n = -(-time_range.end_ns // step_ns) - lo
    if filling_share((lo + n - 1) * step_s, step_s, now_ns) is not None:
        n -= 1
    rows = store.issues.issue_trends(
        project_id, time_range.start_ns, time_range.end_ns, issue_ids, step_ns
    )
    out = {i: [0] * n for i in issue_ids}
    for iid, k, count in rows:
        if k - lo < n:
            out[iid][k - lo] = count
    return out


def _issue_in_range(
    store: Store, project_id: int, issue_id: int, time_range: TimeRange, filters: dict[str, Any]
) -> IssueSummary | None:
    """The issue with range figures; zero figures (not None) when it has no event there."""
    row = store.issues.issue(project_id, issue_id, time_range.start_ns, time_range.end_ns, filters)
    return _issue(row) if row else None


def get_issue(
    store: Store,
    project_id: int,
    issue_id: int,
    time_range: TimeRange,
    *,
    environment: str | None = None,
) -> IssueSummary | None:
    """One issue with its figures over the range, or None if the project has no such issue."""
    return _issue_in_range(store, project_id, issue_id, time_range, {"environment": environment})


def issue_detail(
    store: Store,
    project_id: int,
    issue_id: int,
    time_range: TimeRange,
    *,
    environment: str | None = None,
    step_s: int = 60,
) -> IssueDetail | None:
    """One issue: range figures, its latest event in full, occurrences per step, counts
    per release/environment/service, and tag values of its latest events. None if the
    project has no such issue."""
    if step_s <= 0:
        raise InvalidQuery(f"step_s must be positive (got {step_s})")
    if (time_range.end_ns - time_range.start_ns) // (step_s * NS_PER_S) > MAX_POINTS:
        raise InvalidQuery("too many points; use a larger step_s or a shorter range")
    filters = {"environment": environment}
    issue = _issue_in_range(store, project_id, issue_id, time_range, filters)
    if issue is None:
        return None
    latest = _latest_event(store, project_id, issue_id, time_range, environment)
    return IssueDetail(
        issue=issue,
        latest=latest,
        step_s=step_s,
        series=_series(store, project_id, issue_id, time_range, filters, step_s),
        by_release=_counts(store, project_id, issue_id, time_range, filters, "release"),
        by_environment=_counts(store, project_id, issue_id, time_range, filters, "environment"),
        by_service=_counts(store, project_id, issue_id, time_range, filters, "service"),
        tags=_tag_breakdown(store, project_id, issue_id, environment),
    )


def _series(
    store: Store,
    project_id: int,
    issue_id: int,
    time_range: TimeRange,
    filters: dict[str, Any],
    step_s: int,
) -> list[IssuePoint]:
    step_ns = step_s * NS_PER_S
    lo, hi = time_range.start_ns // step_ns, -(-time_range.end_ns // step_ns)
    by_k = store.issues.issue_series(
        project_id, issue_id, time_range.start_ns, time_range.end_ns, filters, step_ns
    )
    return [IssuePoint(k * step_s, by_k.get(k, 0)) for k in range(lo, hi)]


def _counts(
    store: Store,
    project_id: int,
    issue_id: int,
    time_range: TimeRange,
    filters: dict[str, Any],
    column: str,
) -> list[Count]:
    rows = store.issues.issue_counts(
        project_id, issue_id, time_range.start_ns, time_range.end_ns, filters, column
    )
    return [Count(v, n) for v, n in rows]


def _tag_breakdown(
    store: Store, project_id: int, issue_id: int, environment: str | None
) -> list[TagBreakdown]:
    texts = store.issues.issue_tags(project_id, issue_id, environment, TAG_SAMPLE)
    counts: dict[str, Counter[str]] = {}
    for text in texts:
        for key, value in _json(text, {}).items():
            counts.setdefault(str(key), Counter())[str(value)] += 1
    return [
        TagBreakdown(key, [Count(v, n) for v, n in c.most_common(MAX_TAG_VALUES)])
        for key, c in sorted(counts.items())
    ]


# ------------------------------------------------------------------------- events


def _detail(r: Sequence[Any]) -> EventDetail:
    (eid, iid, t, received, svc, env, rel, level, platform, source, exc_type, msg) = r[:12]
    (culprit, txn, trace, span, user_key, handled, logger, sdk) = r[12:20]
    exceptions, crumbs, request, user, tags, contexts, extra = r[20:]
    return EventDetail(
        event_id=eid,
        issue_id=iid,
        time_ns=t,
        received_ns=received,
        service=svc,
        environment=env,
        release=rel,
        level=level,
        platform=platform,
        source=source,
        exc_type=exc_type,
        message=msg,
        culprit=culprit,
        transaction=txn,
        trace_id=trace_hex(trace),
        span_id=span_hex(span),
        user_key=user_key,
        handled=handled,
        logger=logger,
        sdk=sdk,
        exceptions=_json(exceptions, []),
        breadcrumbs=_json(crumbs, []),
        request=_json(request, {}),
        user=_json(user, {}),
        tags=_json(tags, {}),
        contexts=_json(contexts, {}),
        extra=_json(extra, {}),
    )


def _summary(r: Sequence[Any]) -> EventSummary:
    eid, iid, t, svc, env, rel, level, exc_type, msg, txn, trace, user_key = r
    return EventSummary(
        eid, iid, t, svc, env, rel, level, exc_type, msg, txn, trace_hex(trace), user_key
    )


def _latest_event(
    store: Store,
    project_id: int,
    issue_id: int,
    time_range: TimeRange,
    environment: str | None,
) -> EventDetail | None:
    """The newest event in the range, else the newest ever (an issue page always shows one)."""
    row = store.issues.latest_event(
        project_id, issue_id, environment, time_range.start_ns, time_range.end_ns
    ) or store.issues.latest_event(project_id, issue_id, environment)
    return _detail(row) if row else None


def get_event(store: Store, project_id: int, event_id: str) -> EventDetail | None:
    """One event by id (32 hex digits), or None."""
    row = store.issues.event(project_id, parse_event_id(event_id))
    return _detail(row) if row else None


def _parse_cursor(cursor: str) -> tuple[int, str]:
    t, _, rest = cursor.partition(":")
    try:
        return int(t), rest
    except ValueError:
        raise InvalidQuery("cursor is malformed: pass next_cursor as it was given") from None


def issue_events(
    store: Store,
    project_id: int,
    issue_id: int,
    *,
    time_range: TimeRange | None = None,
    environment: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> EventPage:
    """Events of an issue, newest first, a page at a time (keyset on time and id)."""
    if not 1 <= limit <= MAX_EVENT_LIMIT:
        raise InvalidQuery(f"limit must be between 1 and {MAX_EVENT_LIMIT} (got {limit})")
    rows = store.issues.issue_events(
        project_id,
        issue_id,
        start_ns=time_range.start_ns if time_range else None,
        end_ns=time_range.end_ns if time_range else None,
        environment=environment,
        before=_parse_cursor(cursor) if cursor else None,
        limit=limit + 1,
    )
    events = [_summary(r) for r in rows[:limit]]
    more = len(rows) > limit
    last = events[-1] if events else None
    return EventPage(events, f"{last.time_ns}:{last.event_id}" if more and last else None)


def issue_exists(store: Store, project_id: int, issue_id: int) -> bool:
    return store.issues.issue_exists(project_id, issue_id)


def error_services(store: Store, project_id: int, time_range: TimeRange) -> list[str]:
    """Services, releases and environments offered by the issue filters: those with events."""
    return _distinct(store, project_id, time_range, "service")


def error_releases(store: Store, project_id: int, time_range: TimeRange) -> list[str]:
    return _distinct(store, project_id, time_range, "release")


def error_platforms(store: Store, project_id: int, time_range: TimeRange) -> list[str]:
    """Platforms of the range's error events (``python``, ``javascript``…)."""
    return _distinct(store, project_id, time_range, "platform")


def issue_platforms(
    store: Store,
    project_id: int,
    time_range: TimeRange,
    platforms: Sequence[str],
    *,
    status: str | None = None,
    service: str | None = None,
    release: str | None = None,
    environment: str | None = None,
    sort: str = "last_seen",
) -> dict[int, list[str]]:
    """The platforms of each listed issue's events: one filtered list per platform (a
    range holds few), with the list's own filters and sort, so every issue of a first
    page of at most ``MAX_ISSUE_LIMIT`` is in the list of each of its platforms."""
    out: dict[int, list[str]] = {}
    for platform in platforms:
        rows = list_issues(
            store,
            project_id,
            time_range,
            status=status,
            service=service,
            release=release,
            environment=environment,
            platform=platform,
            sort=sort,
            limit=MAX_ISSUE_LIMIT,
        )
        for issue in rows:
            out.setdefault(issue.id, []).append(platform)
    return out


def _distinct(store: Store, project_id: int, time_range: TimeRange, column: str) -> list[str]:
    return store.issues.event_values(project_id, time_range.start_ns, time_range.end_ns, column)


def has_errors(store: Store, project_id: int) -> bool:
    return store.issues.has_events(project_id)


# ------------------------------------------------------------------------- status


def set_issue_status(
    store: Store,
    project_id: int,
    issue_id: int,
    status: str,
    release: str | None = None,
    *,
    now_ns: int,
) -> bool:
    """Resolve, ignore or reopen an issue (contract §4); False if there is no such issue.

    Resolving records the release it is fixed in (the given one, else the issue's last
    release, '' when none): a later release's event reopens it as a regression. Reopening
    by hand clears the regression mark, which only the writer sets.
    """
    _check_status(status)
    return store.state.set_issue_status(project_id, issue_id, status, release, now_ns)
