"""Error events and issues: lists, detail, occurrence series, tag values.

The protocol the query layer (and jobs) call; each backend implements it
(DuckDB: ``store/duckdb/issues.py``). No SQL above ``store/``. Status changes are
transactional state (``store.state.set_issue_status``).

Rows are plain tuples; JSON columns come as their text (the query layer decodes them),
ids as stored (trace id bytes, span id int). Time ranges are ``[start_ns, end_ns)``;
``filters`` maps event columns of :data:`EVENT_FILTERS` to a value that must match
(None: any). Row orders:

- ISSUE_ROW: id, title, culprit, exc_type, level, status, first_seen_ns, last_seen_ns,
  event_count, first_release, last_release, resolved_release, status_changed_ns,
  regressed_ns, then the figures over the range and filters: events, users (distinct),
  releases, environments, services (sorted distinct lists; all NULL when none match);
- EVENT_DETAIL_ROW: event_id, issue_id, time_ns, received_ns, service, environment,
  release, level, platform, source, exc_type, message, culprit, transaction, trace_id,
  span_id, user_key, handled, logger, sdk, then JSON: exceptions, breadcrumbs, request,
  user, tags, contexts, extra;
- EVENT_SUMMARY_ROW: event_id, issue_id, time_ns, service, environment, release, level,
  exc_type, message, transaction, trace_id, user_key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

EVENT_FILTERS = ("service", "environment", "release", "platform")

Row = tuple[Any, ...]
Filters = Mapping[str, str | None]


class IssueReader(Protocol):
    def list_issues(
        self,
        project_id: int,
        start_ns: int,
        end_ns: int,
        filters: Filters,
        *,
        status: str | None,
        sort: str,
        limit: int,
    ) -> list[Row]:
        """ISSUE_ROWs of the issues with an event in the range matching the filters,
        sorted by ``sort`` (last_seen, first_seen, events, users) descending, then id descending."""
        ...

    def issue(
        self, project_id: int, issue_id: int, start_ns: int, end_ns: int, filters: Filters
    ) -> Row | None:
        """The ISSUE_ROW of one issue (NULL figures when no event matches), or None."""
        ...

    def issue_exists(self, project_id: int, issue_id: int) -> bool: ...

    def issue_trends(
        self, project_id: int, start_ns: int, end_ns: int, issue_ids: Sequence[int], step_ns: int
    ) -> list[tuple[int, int, int]]:
        """(issue id, time_ns // step_ns, events) of the non-empty steps."""
        ...

    def issue_series(
        self,
        project_id: int,
        issue_id: int,
        start_ns: int,
        end_ns: int,
        filters: Filters,
        step_ns: int,
    ) -> dict[int, int]:
        """Events per non-empty step, keyed by time_ns // step_ns."""
        ...

    def issue_counts(
        self,
        project_id: int,
        issue_id: int,
        start_ns: int,
        end_ns: int,
        filters: Filters,
        column: str,
    ) -> list[tuple[str, int]]:
        """(value, events) per value of ``column`` (one of EVENT_FILTERS), most first."""
        ...

    def issue_tags(
        self, project_id: int, issue_id: int, environment: str | None, limit: int
    ) -> list[str | None]:
        """The tags JSON of the issue's newest ``limit`` events."""
        ...

    def latest_event(
        self,
        project_id: int,
        issue_id: int,
        environment: str | None,
        start_ns: int | None = None,
        end_ns: int | None = None,
    ) -> Row | None:
        """The EVENT_DETAIL_ROW of the issue's newest event (in the range, if given)."""
        ...

    def event(self, project_id: int, event_id: str) -> Row | None:
        """The EVENT_DETAIL_ROW of an event by id (32 lowercase hex digits)."""
        ...

    def issue_events(
        self,
        project_id: int,
        issue_id: int,
        *,
        start_ns: int | None,
        end_ns: int | None,
        environment: str | None,
        before: tuple[int, str] | None,
        limit: int,
    ) -> list[Row]:
        """EVENT_SUMMARY_ROWs newest first (time, then id), older than ``before``
        (time_ns, event_id) when given."""
        ...

    def event_values(self, project_id: int, start_ns: int, end_ns: int, column: str) -> list[str]:
        """Distinct values of ``column`` (one of EVENT_FILTERS) among the range's events."""
        ...

    def has_events(self, project_id: int) -> bool: ...

    def issues_of_events(self, project_id: int, event_ids: Sequence[str]) -> dict[str, int]:
        """The issue id of each stored event among ``event_ids``."""
        ...
