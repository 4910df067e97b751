"""ClickHouse statements for: error events and issues (lists, detail, occurrence series,
tag values).

Issues are state (``StateStore``: counters, status, releases), events are telemetry
here. An issue row joins the two in Python: the figures over a range and its filters
are aggregated per issue in ClickHouse, the issue's stored state comes from
``state.issue_states``; status filters and sorts apply to the joined rows, so the rows,
their order and their figures are those of ``store/duckdb/issues.py``. Values are bound
server-side (``{name:Type}``); filter columns come from ``EVENT_FILTERS``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from heron.server.analyze.issues import IssueState
from heron.server.store.clickhouse._client import ChReads
from heron.server.store.issues import EVENT_FILTERS, Filters, Row
from heron.server.store.state import StateStore

_AGG = (
    "SELECT issue_id, count(), uniqExact(user_key), arraySort(groupUniqArray(release)), "
    "arraySort(groupUniqArray(environment)), arraySort(groupUniqArray(service)) "
    "FROM {db}.error_events WHERE {where} GROUP BY issue_id"
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
_DETAIL_TRACE = 14  # position of trace_id in _DETAIL_COLUMNS
_SUMMARY_TRACE = 10
# Sort keys of list_issues: the issue's state or its figures in the range.
_SORT_KEY: dict[str, Callable[[IssueState, tuple[Any, ...]], int]] = {
    "last_seen": lambda issue, _: issue.last_seen_ns,
    "first_seen": lambda issue, _: issue.first_seen_ns,
    "events": lambda _, figures: int(figures[0]),
    "users": lambda _, figures: int(figures[1]),
}
_NO_FIGURES = (None, None, None, None, None)


class _Where:
    """A WHERE clause over ``error_events`` with its bound values."""

    def __init__(self, project_id: int) -> None:
        self.clauses = ["project_id = {p:UInt32}"]
        self.params: dict[str, Any] = {"p": project_id}

    def add(self, clause: str, **params: Any) -> _Where:
        self.clauses.append(clause)
        self.params.update(params)
        return self

    def range(self, start_ns: int | None, end_ns: int | None) -> _Where:
        if start_ns is not None and end_ns is not None:
            self.add("time_ns >= {lo:Int64} AND time_ns < {hi:Int64}", lo=start_ns, hi=end_ns)
        return self

    def filters(self, filters: Filters) -> _Where:
        for col in EVENT_FILTERS:  # identifiers from the allow-list only
            value = filters.get(col)
            if value is not None:
                self.add(f"{col} = {{f_{col}:String}}", **{f"f_{col}": value})
        return self

    def sql(self) -> str:
        return " AND ".join(self.clauses)


def _event_where(
    project_id: int, start_ns: int | None, end_ns: int | None, filters: Filters
) -> _Where:
    return _Where(project_id).range(start_ns, end_ns).filters(filters)


def _issue_row(issue: IssueState, figures: tuple[Any, ...]) -> Row:
    """ISSUE_ROW: the stored issue, then its figures (events, users, releases,
    environments, services; all None when no event matches)."""
    return (
        issue.id,
        issue.title,
        issue.culprit,
        issue.exc_type,
        issue.level,
        issue.status,
        issue.first_seen_ns,
        issue.last_seen_ns,
        issue.event_count,
        issue.first_release,
        issue.last_release,
        issue.resolved_release,
        issue.status_changed_ns,
        issue.regressed_ns,
        *figures,
    )


def _with_trace(row: tuple[Any, ...], at: int) -> Row:
    """The row with its trace id as ``bytes`` (or None)."""
    trace = row[at]
    return (*row[:at], bytes(trace) if trace is not None else None, *row[at + 1 :])


class ClickHouseIssues:
    """Implements ``store.issues.IssueReader`` on ClickHouse plus the state store."""

    def __init__(self, reads: ChReads, state: Callable[[], StateStore]) -> None:
        self.reads = reads
        self.state = state

    def _figures(self, where: _Where) -> dict[int, tuple[Any, ...]]:
        rows = self.reads.rows(_AGG.replace("{where}", where.sql()), where.params)
        return {
            int(iid): (n, users, list(rels), list(envs), list(svcs))
            for iid, n, users, rels, envs, svcs in rows
        }

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
        key = _SORT_KEY[sort]
        figures = self._figures(_event_where(project_id, start_ns, end_ns, filters))
        states = self.state().issue_states(project_id, sorted(figures))
        issues = [
            s for s in states.values() if status is None or s.status == status
        ]  # an issue missing from the state (another project's id) is left out
        issues.sort(key=lambda s: (key(s, figures[s.id]), s.id), reverse=True)
        return [_issue_row(s, figures[s.id]) for s in issues[:limit]]

    def issue(
        self, project_id: int, issue_id: int, start_ns: int, end_ns: int, filters: Filters
    ) -> Row | None:
        state = self.state().issue_states(project_id, [issue_id]).get(issue_id)
        if state is None:
            return None
        where = _event_where(project_id, start_ns, end_ns, filters)
        figures = self._figures(where.add("issue_id = {i:Int64}", i=issue_id))
        return _issue_row(state, figures.get(issue_id, _NO_FIGURES))

    def issue_exists(self, project_id: int, issue_id: int) -> bool:
        return issue_id in self.state().issue_states(project_id, [issue_id])

    def issue_trends(
        self, project_id: int, start_ns: int, end_ns: int, issue_ids: Sequence[int], step_ns: int
    ) -> list[tuple[int, int, int]]:
        where = _Where(project_id).range(start_ns, end_ns)
        where.add("issue_id IN {ids:Array(Int64)}", ids=list(issue_ids), step=step_ns)
        rows = self.reads.rows(
            "SELECT issue_id, intDiv(time_ns, {step:Int64}) AS k, count() "  # noqa: S608 - constants only
            f"FROM {{db}}.error_events WHERE {where.sql()} GROUP BY issue_id, k",
            where.params,
        )
        return [(int(i), int(k), int(n)) for i, k, n in rows]

    def issue_series(
        self,
        project_id: int,
        issue_id: int,
        start_ns: int,
        end_ns: int,
        filters: Filters,
        step_ns: int,
    ) -> dict[int, int]:
        where = _event_where(project_id, start_ns, end_ns, filters)
        where.add("issue_id = {i:Int64}", i=issue_id, step=step_ns)
        rows = self.reads.rows(
            "SELECT intDiv(time_ns, {step:Int64}) AS k, count() FROM {db}.error_events "  # noqa: S608 - constants only
            f"WHERE {where.sql()} GROUP BY k",
            where.params,
        )
        return {int(k): int(n) for k, n in rows}

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
        where = _event_where(project_id, start_ns, end_ns, filters)
        where.add("issue_id = {i:Int64}", i=issue_id)
        rows = self.reads.rows(
            f"SELECT {column} AS v, count() AS n FROM {{db}}.error_events "  # noqa: S608 - allow-listed
            f"WHERE {where.sql()} GROUP BY v ORDER BY n DESC, v",
            where.params,
        )
        return [(v, int(n)) for v, n in rows]

    def issue_tags(
        self, project_id: int, issue_id: int, environment: str | None, limit: int
    ) -> list[str | None]:
        where = _event_where(project_id, None, None, {"environment": environment})
        where.add("issue_id = {i:Int64}", i=issue_id, limit=limit)
        rows = self.reads.rows(
            f"SELECT tags FROM {{db}}.error_events WHERE {where.sql()} "  # noqa: S608 - constants only
            "ORDER BY time_ns DESC LIMIT {limit:UInt32}",
            where.params,
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
        where = _event_where(project_id, start_ns, end_ns, {"environment": environment})
        where.add("issue_id = {i:Int64}", i=issue_id)
        rows = self.reads.rows(
            f"SELECT {_DETAIL_COLUMNS} FROM {{db}}.error_events WHERE {where.sql()} "  # noqa: S608 - constants only
            "ORDER BY time_ns DESC, event_id DESC LIMIT 1",
            where.params,
        )
        return _with_trace(rows[0], _DETAIL_TRACE) if rows else None

    def event(self, project_id: int, event_id: str) -> Row | None:
        """Served by the bloom filter on ``event_id``."""
        rows = self.reads.rows(
            f"SELECT {_DETAIL_COLUMNS} FROM {{db}}.error_events "  # noqa: S608 - constants only
            "WHERE project_id = {p:UInt32} AND event_id = {e:String} "
            "ORDER BY time_ns DESC LIMIT 1",
            {"p": project_id, "e": event_id},
        )
        return _with_trace(rows[0], _DETAIL_TRACE) if rows else None

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
        where = _event_where(project_id, start_ns, end_ns, {"environment": environment})
        where.add("issue_id = {i:Int64}", i=issue_id, limit=limit)
        if before is not None:
            t, eid = before
            where.add(
                "(time_ns < {bt:Int64} OR (time_ns = {bt:Int64} AND event_id < {be:String}))",
                bt=t,
                be=eid,
            )
        rows = self.reads.rows(
            f"SELECT {_SUMMARY_COLUMNS} FROM {{db}}.error_events WHERE {where.sql()} "  # noqa: S608 - constants only
            "ORDER BY time_ns DESC, event_id DESC LIMIT {limit:UInt32}",
            where.params,
        )
        return [_with_trace(r, _SUMMARY_TRACE) for r in rows]

    def event_values(self, project_id: int, start_ns: int, end_ns: int, column: str) -> list[str]:
        assert column in EVENT_FILTERS
        where = _Where(project_id).range(start_ns, end_ns)
        rows = self.reads.rows(
            f"SELECT DISTINCT {column} AS v FROM {{db}}.error_events WHERE {where.sql()} "  # noqa: S608 - allow-listed
            "ORDER BY v",
            where.params,
        )
        return [r[0] for r in rows]

    def has_events(self, project_id: int) -> bool:
        sql = "SELECT 1 FROM {db}.error_events WHERE project_id = {p:UInt32} LIMIT 1"
        return bool(self.reads.rows(sql, {"p": project_id}))

    def issues_of_events(self, project_id: int, event_ids: Sequence[str]) -> dict[str, int]:
        if not event_ids:
            return {}
        rows = self.reads.rows(
            "SELECT event_id, any(issue_id) FROM {db}.error_events "
            "WHERE project_id = {p:UInt32} AND event_id IN {ids:Array(String)} GROUP BY event_id",
            {"p": project_id, "ids": list(event_ids)},
        )
        return {eid: int(iid) for eid, iid in rows}
