"""The issue rules as pure functions (analyze/issues.py): counters, the release and the
time regression rules, ignored issues. The writer's use of them is in test_issue_store."""

from __future__ import annotations

from heron.server.analyze.grouping import assign
from heron.server.analyze.issues import IssueState, apply_event, is_regression, new_issue
from heron.server.model import ErrorEvent

S = 10**9
FIRST_SEEN = {(1, "1.0"): 10 * S, (1, "1.1"): 20 * S, (1, "0.9"): 5 * S}


def first_seen(project_id: int, release: str) -> int | None:
    return FIRST_SEEN.get((project_id, release))


def ev(t: int, release: str = "1.0", level: str = "error") -> ErrorEvent:
    return assign(
        ErrorEvent(
            event_id=f"{t:032x}",
            time_ns=t * S,
            received_ns=t * S,
            service="shop",
            environment="prod",
            release=release,
            level=level,
            platform="python",
            source="sentry",
            exc_type="ValueError",
            message="boom",
            culprit="",
        )
    )


def resolved(release: str | None, at: int) -> IssueState:
    issue = new_issue(7, 1, ev(1))
    apply_event(issue, ev(1), first_seen)
    issue.status, issue.resolved_release, issue.status_changed_ns = "resolved", release, at * S
    return issue


def test_counters_move_on_every_event_and_the_event_gets_the_issue() -> None:
    first = ev(30, "1.0")
    issue = new_issue(7, 1, first)
    for e in (first, ev(10, "0.9", level="warning"), ev(40, "", level="fatal")):
        apply_event(issue, e, first_seen)
        assert e.issue_id == 7
    assert (issue.event_count, issue.first_seen_ns, issue.last_seen_ns) == (3, 10 * S, 40 * S)
    assert (issue.level, issue.first_release, issue.last_release) == ("fatal", "1.0", "1.0")
    assert issue.status == "open" and issue.regressed_ns is None


def test_release_rule_reopens_only_for_a_later_release() -> None:
    assert not is_regression(resolved("1.0", 100), ev(200, "1.0"), first_seen)
    assert not is_regression(resolved("1.0", 100), ev(200, "0.9"), first_seen)
    assert not is_regression(resolved("1.0", 100), ev(200, ""), first_seen)
    assert is_regression(resolved("1.0", 100), ev(50, "1.1"), first_seen)


def test_time_rule_without_a_known_release() -> None:
    for release in (None, "", "2.0"):  # none, or never seen in an event
        assert not is_regression(resolved(release, 100), ev(100), first_seen)
        assert is_regression(resolved(release, 100), ev(101), first_seen)


def test_a_regression_reopens_and_an_ignored_issue_stays_ignored() -> None:
    issue = resolved("1.0", 100)
    apply_event(issue, ev(150, "1.1"), first_seen)
    assert (issue.status, issue.regressed_ns, issue.resolved_release) == ("open", 150 * S, None)
    assert issue.status_changed_ns == 150 * S
    ignored = resolved(None, 100)
    ignored.status = "ignored"
    apply_event(ignored, ev(200), first_seen)
    assert ignored.status == "ignored" and ignored.event_count == 2
