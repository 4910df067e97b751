"""ClickHouse statements for: real-user monitoring (the web-vitals rollup, raw RUM
events, sessions), and the writer's insert of RUM writes.

``rum_rollup_1m`` is a SummingMergeTree: background merges may not have summed every key
yet, so readers always ``sum``. ``rum_events`` is keyed by (project, kind, minute, time);
session, page-view and trace lookups go through bloom filters. Filter and group columns
come from ``store.rum.RUM_GROUPS`` (an allow-list); every value is bound server-side
(``{name:Type}``). p75 is ``quantileExactInclusive(0.75)``: the same linear interpolation
as DuckDB's ``quantile_cont``, so both stores give the same value for the same events.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from heron.server.model.rum import (
    RUM_FIELDS,
    RUM_ROLLUP_KEY,
    RumWrite,
    merge_rum_rollups,
    rum_values,
)
from heron.server.store.clickhouse._client import ChReads
from heron.server.store.rum import RUM_GROUPS, Row, RumFilters, RumGroup

RUM_EVENT_COLUMNS = ("project_id", *RUM_FIELDS)
RUM_ROLLUP_COLUMNS = (*RUM_ROLLUP_KEY, "count")
_COLUMNS = ", ".join(RUM_FIELDS)
_GROUP_COLUMNS = frozenset(RUM_GROUPS)
# What the hourly tier keeps (None: no group).
_TIER_GROUPS = frozenset({None, "app", "environment", "page"})
HOUR_S = 3600
_TRACE_INDEX = RUM_FIELDS.index("trace_id")
_CHOICES_LIMIT = 500


def insert_rum(writes: ChReads, batch: Sequence[RumWrite]) -> None:
    """Insert one commit's RUM events, then their rollups summed over the commit."""
    columns: list[list[Any]] = [[] for _ in RUM_EVENT_COLUMNS]
    for write in batch:
        columns[0] += [write.project_id] * len(write.events)
        for e in write.events:
            for i, v in enumerate(rum_values(e), start=1):
                columns[i].append(v)
    if columns[0]:
        writes.insert("rum_events", columns, RUM_EVENT_COLUMNS)
    acc = merge_rum_rollups([w.rollups for w in batch if w.rollups])
    if acc:
        keys = list(acc)
        rollup = [[k[i] for k in keys] for i in range(len(RUM_ROLLUP_KEY))]
        rollup.append([acc[k] for k in keys])
        writes.insert("rum_rollup_1m", rollup, RUM_ROLLUP_COLUMNS)


def _row(r: tuple[Any, ...]) -> Row:
    """A RUM_ROW with the trace id as ``bytes`` (or None)."""
    t = r[_TRACE_INDEX]
    return (*r[:_TRACE_INDEX], bytes(t) if t is not None else None, *r[_TRACE_INDEX + 1 :])


def _filters(filters: RumFilters, clauses: list[str], params: dict[str, Any]) -> None:
    """Add the equality filters (columns from the RUM_GROUPS allow-list)."""
    for col, value in filters.items():
        if col not in _GROUP_COLUMNS:
            raise ValueError(f"unknown RUM filter {col!r}")
        clauses.append(f"{col} = {{f_{col}:String}}")
        params[f"f_{col}"] = value


def _group(by: str | None) -> str:
    if by is None:
        return "''"
    if by not in _GROUP_COLUMNS:
        raise ValueError(f"cannot group RUM rows by {by!r}")
    return f"toString({by})"


class ClickHouseRum:
    """Implements ``store.rum.RumReader`` on ClickHouse."""

    def __init__(self, reads: ChReads) -> None:
        self.reads = reads

    def rollup(
        self,
        project_id: int,
        start_s: int,
        end_s: int,
        *,
        filters: RumFilters,
        metrics: Sequence[str] | None = None,
        by: RumGroup | None = None,
        step_s: int | None = None,
    ) -> list[Row]:
        if metrics is not None and not metrics:
            return []
        if step_s is not None and step_s <= 0:
            raise ValueError("step_s must be positive")
        group = _group(by)
        params: dict[str, Any] = {"p": project_id}
        where = ["project_id = {p:UInt32}"]
        if metrics is not None:
            where.append("metric IN {metrics:Array(String)}")
            params["metrics"] = list(metrics)
        _filters(filters, where, params)
        # Whole hours come from the hourly tier (kept by materialized views on every
        # insert) when the read needs no browser or device and its steps hold whole
        # hours; the range's edges from the minutes.
        first_h = -(-start_s // HOUR_S) * HOUR_S
        last_h = end_s // HOUR_S * HOUR_S
        parts: list[tuple[str, str, int, int, str]] = [
            ("rum_rollup_1m", "minute_s", start_s, end_s, "")
        ]
        if (
            by in _TIER_GROUPS
            and {col for col, _ in filters.items()} <= _TIER_GROUPS
            and (step_s is None or step_s % HOUR_S == 0)
            and first_h < last_h
        ):
            per_page = by == "page" or filters.page is not None
            parts = [
                ("rum_rollup_1h", "hour_s", first_h, last_h, f"all_pages = {0 if per_page else 1}"),
                ("rum_rollup_1m", "minute_s", start_s, first_h, ""),
                ("rum_rollup_1m", "minute_s", last_h, end_s, ""),
            ]
        selects = []
        for i, (table, time_col, lo, hi, extra) in enumerate(parts):
            if lo >= hi:
                continue
            clauses = [*where, f"{time_col} >= {{lo{i}:Int64}}", f"{time_col} < {{hi{i}:Int64}}"]
            params[f"lo{i}"], params[f"hi{i}"] = lo, hi
            if extra:
                clauses.append(extra)
            step = "toInt64(0)"
            if step_s is not None:
                step = f"intDiv({time_col}, {{step:Int64}}) * {{step:Int64}}"
                params["step"] = step_s
            selects.append(
                f"SELECT {step} AS s, {group} AS g, toString(metric) AS m, "  # noqa: S608 - allow-listed identifiers
                f"toString(rating) AS r, bucket, count FROM {{db}}.{table} "
                f"WHERE {' AND '.join(clauses)}"
            )
        sql = (
            "SELECT s, g, m, r, bucket, sum(count) FROM ("  # noqa: S608 - constants only
            + " UNION ALL ".join(selects)
            + ") GROUP BY s, g, m, r, bucket"
        )
        return self.reads.rows(sql, params)

    def choices(self, project_id: int, start_s: int, end_s: int) -> dict[str, list[str]]:
        parts = [
            f"SELECT '{col}' AS c, v FROM (SELECT DISTINCT toString({col}) AS v "  # noqa: S608 - allow-listed identifiers
            "FROM {db}.rum_rollup_1m WHERE project_id = {p:UInt32} AND minute_s >= {lo:Int64} "
            f"AND minute_s < {{hi:Int64}} AND {col} != '' ORDER BY v LIMIT {_CHOICES_LIMIT})"
            for col in RUM_GROUPS
        ]
        rows = self.reads.rows(
            " UNION ALL ".join(parts), {"p": project_id, "lo": start_s, "hi": end_s}
        )
        out: dict[str, list[str]] = {col: [] for col in RUM_GROUPS}
        for col, value in rows:
            out[col].append(value)
        for values in out.values():
            values.sort()
        return out

    def events(
        self,
        project_id: int,
        start_ns: int,
        end_ns: int,
        *,
        kinds: Sequence[str],
        filters: RumFilters,
        session_id: str | None = None,
        view_id: str | None = None,
        trace_id: bytes | None = None,
        order: Literal["time", "value"] = "time",
        limit: int,
    ) -> list[Row]:
        if not kinds:
            return []
        clauses = [
            "project_id = {p:UInt32}",
            "time_ns >= {lo:Int64}",
            "time_ns < {hi:Int64}",
            "kind IN {kinds:Array(String)}",
        ]
        params: dict[str, Any] = {
            "p": project_id,
            "lo": start_ns,
            "hi": end_ns,
            "kinds": list(kinds),
            "limit": limit,
        }
        _filters(filters, clauses, params)
        if session_id is not None:
            clauses.append("session_id = {session:String}")
            params["session"] = session_id
        if view_id is not None:
            clauses.append("view_id = {view:String}")
            params["view"] = view_id
        if trace_id is not None:
            clauses.append("trace_id = {trace:FixedString(16)}")
            params["trace"] = trace_id
        order_sql = "value DESC, time_ns DESC" if order == "value" else "time_ns DESC"
        rows = self.reads.rows(
            f"SELECT {_COLUMNS} FROM {{db}}.rum_events WHERE {' AND '.join(clauses)} "  # noqa: S608 - constants only
            f"ORDER BY {order_sql} LIMIT {{limit:UInt32}}",
            params,
        )
        return [_row(r) for r in rows]

    def top(
        self,
        project_id: int,
        start_ns: int,
        end_ns: int,
        *,
        kind: str,
        filters: RumFilters,
        limit: int,
    ) -> list[Row]:
        clauses = [
            "project_id = {p:UInt32}",
            "kind = {kind:String}",
            "time_ns >= {lo:Int64}",
            "time_ns < {hi:Int64}",
        ]
        params: dict[str, Any] = {
            "p": project_id,
            "lo": start_ns,
            "hi": end_ns,
            "kind": kind,
            "limit": limit,
        }
        _filters(filters, clauses, params)
        rows = self.reads.rows(
            "SELECT name, target, count() AS n, quantileExactInclusive(0.75)(value) AS p75, "  # noqa: S608 - constants only
            "max(value), max(time_ns), any(trace_id) FROM {db}.rum_events "
            f"WHERE {' AND '.join(clauses)} GROUP BY name, target "
            "ORDER BY p75 DESC, n DESC, name, target LIMIT {limit:UInt32}",
            params,
        )
        return [(*r[:6], bytes(r[6]) if r[6] is not None else None) for r in rows]

    def sessions(
        self,
        project_id: int,
        start_ns: int,
        end_ns: int,
        *,
        filters: RumFilters,
        user_id: str | None = None,
        limit: int,
    ) -> list[Row]:
        params: dict[str, Any] = {"p": project_id, "lo": start_ns, "hi": end_ns, "limit": limit}
        match: list[str] = []
        _filters(filters, match, params)
        having: list[str] = []
        if match:
            having.append(f"countIf({' AND '.join(match)}) > 0")
        if user_id is not None:
            having.append("countIf(user_id = {user:String}) > 0")
            params["user"] = user_id
        having_sql = f"HAVING {' AND '.join(having)} " if having else ""
        return self.reads.rows(
            "SELECT session_id, argMaxIf(user_id, time_ns, user_id != ''), "  # noqa: S608 - constants only
            "min(time_ns), max(time_ns) AS last, countIf(kind = 'view'), "
            "countIf(kind = 'error'), toString(argMin(app, time_ns)), "
            "toString(argMin(browser, time_ns)), toString(argMin(os, time_ns)), "
            "toString(argMin(device, time_ns)), toString(argMinIf(page, time_ns, kind = 'view')) "
            "FROM {db}.rum_events WHERE project_id = {p:UInt32} AND time_ns >= {lo:Int64} "
            f"AND time_ns < {{hi:Int64}} GROUP BY session_id {having_sql}"
            "ORDER BY last DESC, session_id LIMIT {limit:UInt32}",
            params,
        )

    def session(self, project_id: int, session_id: str, limit: int) -> list[Row]:
        rows = self.reads.rows(
            f"SELECT {_COLUMNS} FROM {{db}}.rum_events WHERE project_id = {{p:UInt32}} "  # noqa: S608 - constants only
            "AND session_id = {session:String} ORDER BY time_ns LIMIT {limit:UInt32}",
            {"p": project_id, "session": session_id, "limit": limit},
        )
        return [_row(r) for r in rows]
