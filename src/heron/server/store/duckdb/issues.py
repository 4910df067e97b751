"""DuckDB statements for: Error events and issues: lists, detail, occurrence series,
tag values. Issues hold the writer's counters; everything that depends on the time range
or on a filter is counted from ``error_events``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from heron.server.store.duckdb._sql import SqlReads
from heron.server.store.issues import EVENT_FILTERS, Filters, Row

# Sort keys -> ORDER BY expressions over the issues list query's columns (constants).
_ORDER_BY = {
    "last_seen": "i.last_seen_ns",
    "first_seen": "i.first_seen_ns",
    "events": "ev.events",
    "users": "ev.users",
}
_ISSUE_COLUMNS = (
    "i.id, i.title, i.culprit, i.exc_type, i.level, i.status, i.first_seen_ns, "
    "i.last_seen_ns, i.event_count::BIGINT, i.first_release, i.last_release, "
    "i.resolved_release, i.status_changed_ns, i.regressed_ns, ev.events, ev.users, "
    "ev.releases, ev.environments, ev.services"
)
_EVENT_AGG = (
    "issue_id, count(*)::BIGINT AS events, count(DISTINCT user_key)::BIGINT AS users, "
    "list(DISTINCT release ORDER BY release) AS releases, "
    "list(DISTINCT environment ORDER BY environment) AS environments, "
    "list(DISTINCT service ORDER BY service) AS services"
)
_DETAIL_COLUMNS = (
    "event_id, issue_id, time_ns, received_ns, service, environment, release, level, "
    "platform, source, exc_type, message, culprit, transaction, trace_id, span_id, "
    "user_key, handled, logger, sdk, exceptions, breadcrumbs, request, user_data, tags, "
    "contexts, extra"
)
_SUMMARY_COLUMNS = (
    "event_id, issue_id, time_ns, service, environment, release, level, exc_type, "
    "message, transaction, trace_id, user_key"
)


def _event_where(
    project_id: int, start_ns: int | None, end_ns: int | None, filters: Filters
) -> tuple[list[str], list[Any]]:
    clauses = ["project_id = ?"]
    params: list[Any] = [project_id]
    if start_ns is not None and end_ns is not None:
        clauses += ["time_ns >= ?", "time_ns < ?"]
        params += [start_ns, end_ns]
    for col in EVENT_FILTERS:
        value = filters.get(col)
        if value is not None:
            clauses.append(f"{col} = ?")
            params.append(value)
    return clauses, params


class DuckDBIssues:
    """Implements ``store.issues.IssueReader`` on DuckDB."""

    def __init__(self, sql: SqlReads) -> None:
        self.sql = sql

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
        order = _ORDER_BY[sort]
        clauses, params = _event_where(project_id, start_ns, end_ns, filters)
        outer = ["i.project_id = ?"]
        params.append(project_id)
        if status is not None:
            outer.append("i.status = ?")
            params.append(status)
        params.append(limit)
        return self.sql.read(
            f"WITH ev AS (SELECT {_EVENT_AGG} FROM error_events WHERE {' AND '.join(clauses)} "  # noqa: S608 - constants only
            f"GROUP BY issue_id) SELECT {_ISSUE_COLUMNS} FROM issues i JOIN ev ON ev.issue_id = i.id "
            f"WHERE {' AND '.join(outer)} ORDER BY {order} DESC, i.id DESC LIMIT ?",
            params,
        )

    def issue(
        self, project_id: int, issue_id: int, start_ns: int, end_ns: int, filters: Filters
    ) -> Row | None:
        clauses, params = _event_where(project_id, start_ns, end_ns, filters)
        rows = self.sql.read(
            f"WITH ev AS (SELECT {_EVENT_AGG} FROM error_events WHERE {' AND '.join(clauses)} "  # noqa: S608 - constants only
            f"AND issue_id = ? GROUP BY issue_id) SELECT {_ISSUE_COLUMNS} FROM issues i "
            "LEFT JOIN ev ON ev.issue_id = i.id WHERE i.project_id = ? AND i.id = ?",
            [*params, issue_id, project_id, issue_id],
        )
        return rows[0] if rows else None

    def issue_exists(self, project_id: int, issue_id: int) -> bool:
        rows = self.sql.read(
            "SELECT 1 FROM issues WHERE project_id = ? AND id = ?", [project_id, issue_id]
        )
        return bool(rows)

    def issue_trends(
        self, project_id: int, start_ns: int, end_ns: int, issue_ids: Sequence[int], step_ns: int
    ) -> list[tuple[int, int, int]]:
        marks = ", ".join("?" * len(issue_ids))
        rows = self.sql.read(
            "SELECT issue_id, time_ns // ? AS k, count(*)::BIGINT FROM error_events "  # noqa: S608 - placeholders only
            f"WHERE project_id = ? AND time_ns >= ? AND time_ns < ? AND issue_id IN ({marks}) "
            "GROUP BY ALL",
            [step_ns, project_id, start_ns, end_ns, *issue_ids],
        )
        return [(i, k, n) for i, k, n in rows]

    def issue_series(
        self,
        project_id: int,
        issue_id: int,
        start_ns: int,
        end_ns: int,
        filters: Filters,
        step_ns: int,
    ) -> dict[int, int]:
        clauses, params = _event_where(project_id, start_ns, end_ns, filters)
        rows = self.sql.read(
            "SELECT time_ns // ? AS k, count(*)::BIGINT FROM error_events "  # noqa: S608 - constants only
            f"WHERE {' AND '.join(clauses)} AND issue_id = ? GROUP BY k",
            [step_ns, *params, issue_id],
        )
        return {k: n for k, n in rows}

    def issue_counts(
        self,
        project_id: int,
        issue_id: int,
        start_ns: int,
        end_ns: int,
        filters: Filters,
        column: str,
    ) -> list[tuple[str, int]]:
        assert column in EVENT_FILTERS  # an identifier: from the allow-list only
        clauses, params = _event_where(project_id, start_ns, end_ns, filters)
        rows = self.sql.read(
            f"SELECT {column}, count(*)::BIGINT AS n FROM error_events "  # noqa: S608 - allow-listed
            f"WHERE {' AND '.join(clauses)} AND issue_id = ? GROUP BY 1 ORDER BY n DESC, 1",
            [*params, issue_id],
        )
        return [(v, n) for v, n in rows]

    def issue_tags(
        self, project_id: int, issue_id: int, environment: str | None, limit: int
    ) -> list[str | None]:
        clauses, params = _event_where(project_id, None, None, {"environment": environment})
        rows = self.sql.read(
            f"SELECT tags FROM error_events WHERE {' AND '.join(clauses)} AND issue_id = ? "  # noqa: S608 - constants only
            "ORDER BY time_ns DESC LIMIT ?",
            [*params, issue_id, limit],
        )
        return [text for (text,) in rows]

    def latest_event(
        self,
        project_id: int,
        issue_id: int,
        environment: str | None,
        start_ns: int | None = None,
        end_ns: int | None = None,
    ) -> Row | None:
        clauses, params = _event_where(project_id, start_ns, end_ns, {"environment": environment})
        rows = self.sql.read(
            f"SELECT {_DETAIL_COLUMNS} FROM error_events WHERE {' AND '.join(clauses)} "  # noqa: S608 - constants only
            "AND issue_id = ? ORDER BY time_ns DESC, event_id DESC LIMIT 1",
            [*params, issue_id],
        )
        return rows[0] if rows else None

    def event(self, project_id: int, event_id: str) -> Row | None:
        rows = self.sql.read(
            f"SELECT {_DETAIL_COLUMNS} FROM error_events WHERE project_id = ? AND event_id = ? "  # noqa: S608 - constants only
            "ORDER BY time_ns DESC LIMIT 1",
            [project_id, event_id],
        )
        return rows[0] if rows else None

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
        clauses, params = _event_where(project_id, start_ns, end_ns, {"environment": environment})
        clauses.append("issue_id = ?")
        params.append(issue_id)
        if before is not None:
            t, eid = before
            clauses.append("(time_ns < ? OR (time_ns = ? AND event_id < ?))")
            params += [t, t, eid]
        return self.sql.read(
            f"SELECT {_SUMMARY_COLUMNS} FROM error_events WHERE {' AND '.join(clauses)} "  # noqa: S608 - constants only
            "ORDER BY time_ns DESC, event_id DESC LIMIT ?",
            [*params, limit],
        )

    def event_values(self, project_id: int, start_ns: int, end_ns: int, column: str) -> list[str]:
        assert column in EVENT_FILTERS
        rows = self.sql.read(
            f"SELECT DISTINCT {column} FROM error_events WHERE project_id = ? AND time_ns >= ? "  # noqa: S608 - allow-listed
            "AND time_ns < ? ORDER BY 1",
            [project_id, start_ns, end_ns],
        )
        return [r[0] for r in rows]

    def has_events(self, project_id: int) -> bool:
        return bool(
            self.sql.read("SELECT 1 FROM error_events WHERE project_id = ? LIMIT 1", [project_id])
        )

    def issues_of_events(self, project_id: int, event_ids: Sequence[str]) -> dict[str, int]:
        if not event_ids:
            return {}
        marks = ", ".join("?" * len(event_ids))
        found = self.sql.read(
            f"SELECT event_id, issue_id FROM error_events WHERE project_id = ? AND event_id IN ({marks})",  # noqa: S608 - placeholders only
            [project_id, *event_ids],
        )
        return dict(found)
