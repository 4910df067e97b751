"""Issue rules: how an error event changes the issue it is grouped into (pure functions).

The store's writer loads the issues of a commit's events, applies each event with
:func:`apply_event` (oldest first) and persists the results; the rules live here, the
SQL in the store. Status semantics (shared with the read side):

- an event for an ``ignored`` issue keeps it ignored;
- an event for a ``resolved`` issue is a **regression** (status back to ``open``,
  ``regressed_ns`` = the event's time) when the issue was resolved without a release
  (``resolved_release`` '' or NULL) and the event is newer than the resolution, or when
  it was resolved in release R and the event's release was first seen after R was. When
  R was never seen in an event, the time rule applies;
- counters (``event_count``, ``first/last_seen_ns``, ``last_release``) move on every event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from heron.server.analyze.grouping import title
from heron.server.model import ErrorEvent

# (project id, release) -> when the release was first seen, or None if never.
ReleaseFirstSeen = Callable[[int, str], int | None]


@dataclass(slots=True)
class IssueState:
    """An issue's mutable state while a group of events is applied to it."""

    id: int
    project_id: int
    fingerprint: int
    title: str
    exc_type: str | None
    culprit: str
    level: str
    status: str
    first_seen_ns: int
    last_seen_ns: int
    event_count: int
    first_release: str
    last_release: str
    resolved_release: str | None
    status_changed_ns: int | None
    regressed_ns: int | None


def new_issue(issue_id: int, project_id: int, ev: ErrorEvent) -> IssueState:
    """A new open issue for its first event (counters start at 0: apply the event next)."""
    return IssueState(
        issue_id,
        project_id,
        ev.issue_fingerprint,
        title(ev),
        ev.exc_type,
        ev.culprit,
        ev.level,
        "open",
        ev.time_ns,
        ev.time_ns,
        0,
        ev.release,
        ev.release,
        None,
        None,
        None,
    )


def is_regression(issue: IssueState, ev: ErrorEvent, first_seen: ReleaseFirstSeen) -> bool:
    """Contract §4: does this event reopen a resolved issue?"""
    if issue.status != "resolved":
        return False
    changed = issue.status_changed_ns or 0
    if issue.resolved_release:
        resolved_at = first_seen(issue.project_id, issue.resolved_release)
        if resolved_at is not None:
            if not ev.release:
                return False
            seen = first_seen(issue.project_id, ev.release)
            return seen is not None and seen > resolved_at
    return ev.time_ns > changed


def apply_event(issue: IssueState, ev: ErrorEvent, first_seen: ReleaseFirstSeen) -> None:
    """Count ``ev`` into ``issue`` (reopening it on a regression) and set its issue id."""
    if is_regression(issue, ev, first_seen):
        issue.status = "open"
        issue.regressed_ns = ev.time_ns
        issue.resolved_release = None
        issue.status_changed_ns = ev.time_ns
    issue.event_count += 1
    issue.first_seen_ns = min(issue.first_seen_ns, ev.time_ns)
    if ev.time_ns >= issue.last_seen_ns:
        issue.last_seen_ns = ev.time_ns
        issue.level = ev.level
        issue.last_release = ev.release or issue.last_release
    if not issue.first_release:
        issue.first_release = ev.release
    ev.issue_id = issue.id
