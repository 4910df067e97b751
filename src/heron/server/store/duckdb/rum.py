"""DuckDB statements for: real-user monitoring (the web-vitals rollup, raw RUM events,
sessions), and their writes, retention and compaction.

Tables (migration 8): ``rum_events`` (``project_id`` + ``model.rum.RUM_FIELDS``) and
``rum_rollup_1m`` (``model.rum.RUM_ROLLUP_KEY`` + ``count``). Rollup rows are partial until
upkeep compacts them (one row per key): readers always SUM. Filter and group columns come
from ``store.rum.RUM_GROUPS`` (an allow-list); every value is bound as a parameter.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import pyarrow as pa

from heron.server.model.rum import RUM_FIELDS, RUM_ROLLUP_KEY, RumRollups, RumWrite, rum_values
from heron.server.store.duckdb._sql import SqlReads
from heron.server.store.rum import RUM_GROUPS, Row, RumFilters, RumGroup

NS_PER_DAY = 86_400 * 10**9
HOUR_S = 3600

RUM_EVENT_SCHEMA = pa.schema(
    [
        ("project_id", pa.int32()),
        ("time_ns", pa.int64()),
        *((name, pa.string()) for name in RUM_FIELDS[1:7]),  # kind … name
        ("value", pa.float64()),
        *((name, pa.string()) for name in RUM_FIELDS[8:18]),  # rating … user_id
        ("trace_id", pa.binary()),
        ("span_id", pa.uint64()),
        ("attributes", pa.string()),
    ]
)
RUM_ROLLUP_SCHEMA = pa.schema(
    [
        ("project_id", pa.int32()),
        ("minute_s", pa.int64()),
        *((name, pa.string()) for name in RUM_ROLLUP_KEY[2:9]),  # app … rating
        ("bucket", pa.uint16()),
        ("count", pa.uint64()),
    ]
)
assert [f.name for f in RUM_EVENT_SCHEMA] == ["project_id", *RUM_FIELDS]
assert [f.name for f in RUM_ROLLUP_SCHEMA] == [*RUM_ROLLUP_KEY, "count"]

_COLUMNS = ", ".join(RUM_FIELDS)
_GROUP_COLUMNS = frozenset(RUM_GROUPS)
# What the hourly tier keeps (None: no group).
_TIER_GROUPS = frozenset({None, "app", "environment", "page"})
_CHOICES_LIMIT = 500


def rum_events_to_arrow(write: RumWrite) -> pa.Table:
    """A write's events as one insertable Arrow table (``RUM_EVENT_SCHEMA``)."""
    rows = [rum_values(e) for e in write.events]
    arrays = [pa.repeat(pa.scalar(write.project_id, pa.int32()), len(rows))]
    for i, f in enumerate(list(RUM_EVENT_SCHEMA)[1:]):
        arrays.append(pa.array([r[i] for r in rows], f.type))
    return pa.Table.from_arrays(arrays, schema=RUM_EVENT_SCHEMA)


def rum_rollups_to_arrow(acc: RumRollups) -> pa.Table:
    keys = list(acc)
    cols: dict[str, list[Any]] = {n: [k[i] for k in keys] for i, n in enumerate(RUM_ROLLUP_KEY)}
    cols["count"] = [acc[k] for k in keys]
    return pa.table(cols, schema=RUM_ROLLUP_SCHEMA)


def _filters(filters: RumFilters, clauses: list[str], params: list[Any]) -> None:
    """Add the equality filters (columns from the RUM_GROUPS allow-list)."""
    for col, value in filters.items():
        if col not in _GROUP_COLUMNS:
            raise ValueError(f"unknown RUM filter {col!r}")
        clauses.append(f"{col} = ?")
        params.append(value)


def _in(col: str, values: Sequence[str], clauses: list[str], params: list[Any]) -> None:
    clauses.append(f"{col} IN ({', '.join('?' for _ in values)})")
    params.extend(values)


def _group(by: str | None) -> str:
    if by is None:
        return "''"
    if by not in _GROUP_COLUMNS:
        raise ValueError(f"cannot group RUM rows by {by!r}")
    return by


class DuckDBRum:
    """Implements ``store.rum.RumReader`` on DuckDB."""

    def __init__(self, sql: SqlReads) -> None:
        self.sql = sql

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
        # Whole hours before the tier's watermark come from rum_rollup_1h when the read
        # needs no browser or device and its steps hold whole hours; the rest (the range's
        # edges, the hours not built yet) from the minutes.
        parts: list[tuple[str, str, int, int, str]] = []  # table, time column, lo, hi, extra
        first_h = -(-start_s // HOUR_S) * HOUR_S
        tierable = (
            by in _TIER_GROUPS
            and {col for col, _ in filters.items()} <= _TIER_GROUPS
            and (step_s is None or step_s % HOUR_S == 0)
            and first_h < end_s // HOUR_S * HOUR_S
        )
        if tierable:
            built = int(self.sql.read("SELECT built_to_s FROM rum_tiers")[0][0])
            last_h = min(end_s // HOUR_S * HOUR_S, built)
            if first_h < last_h:
                per_page = by == "page" or filters.page is not None
                tier = "page IS NOT NULL" if per_page else "page IS NULL"
                parts.append(("rum_rollup_1h", "hour_s", first_h, last_h, tier))
                parts.append(("rum_rollup_1m", "minute_s", start_s, first_h, ""))
                parts.append(("rum_rollup_1m", "minute_s", last_h, end_s, ""))
        if not parts:
            parts.append(("rum_rollup_1m", "minute_s", start_s, end_s, ""))
        selects: list[str] = []
        params: list[Any] = []
        for table, time_col, lo, hi, extra in parts:
            if lo >= hi:
                continue
            clauses = ["project_id = ?", f"{time_col} >= ?", f"{time_col} < ?"]
            part_params: list[Any] = [project_id, lo, hi]
            if extra:
                clauses.append(extra)
            if metrics is not None:
                _in("metric", list(metrics), clauses, part_params)
            _filters(filters, clauses, part_params)
            step = "0::BIGINT"
            if step_s is not None:
                step = f"{time_col} // ? * ?"
                part_params = [step_s, step_s, *part_params]
            selects.append(
                f"SELECT {step} AS s, {group} AS g, metric, rating, bucket, count AS c "  # noqa: S608 - allow-listed identifiers
                f"FROM {table} WHERE {' AND '.join(clauses)}"
            )
            params += part_params
        sql = (
            "SELECT s, g, metric, rating, bucket, sum(c)::BIGINT FROM ("  # noqa: S608 - constants only
            + " UNION ALL ".join(selects)
            + ") GROUP BY ALL"
        )
        return [tuple(r) for r in self.sql.read(sql, params)]

    def choices(self, project_id: int, start_s: int, end_s: int) -> dict[str, list[str]]:
        parts = [
            f"(SELECT '{col}' AS c, v FROM (SELECT DISTINCT {col} AS v FROM rum_rollup_1m "  # noqa: S608 - allow-listed identifiers
            f"WHERE project_id = ? AND minute_s >= ? AND minute_s < ? AND {col} <> '' "
            f"ORDER BY v LIMIT {_CHOICES_LIMIT}))"
            for col in RUM_GROUPS
        ]
        params = [project_id, start_s, end_s] * len(RUM_GROUPS)
        out: dict[str, list[str]] = {col: [] for col in RUM_GROUPS}
        for col, value in self.sql.read(" UNION ALL ".join(parts), params):
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
        clauses = ["project_id = ?", "time_ns >= ?", "time_ns < ?"]
        params: list[Any] = [project_id, start_ns, end_ns]
        _in("kind", list(kinds), clauses, params)
        _filters(filters, clauses, params)
        for col, value in (("session_id", session_id), ("view_id", view_id)):
            if value is not None:
                clauses.append(f"{col} = ?")
                params.append(value)
        if trace_id is not None:
            clauses.append("trace_id = ?")
            params.append(trace_id)
        order_sql = "value DESC, time_ns DESC" if order == "value" else "time_ns DESC"
        params.append(limit)
        sql = (
            f"SELECT {_COLUMNS} FROM rum_events WHERE {' AND '.join(clauses)} "  # noqa: S608 - constants only
            f"ORDER BY {order_sql} LIMIT ?"
        )
        return [tuple(r) for r in self.sql.read(sql, params)]

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
        clauses = ["project_id = ?", "time_ns >= ?", "time_ns < ?", "kind = ?"]
        params: list[Any] = [project_id, start_ns, end_ns, kind]
        _filters(filters, clauses, params)
        params.append(limit)
        sql = (
            "SELECT name, target, count(*)::BIGINT AS n, "  # noqa: S608 - constants only
            "quantile_cont(value, 0.75)::DOUBLE AS p75, max(value)::DOUBLE, max(time_ns), "
            "any_value(trace_id) FROM rum_events "
            f"WHERE {' AND '.join(clauses)} GROUP BY name, target "
            "ORDER BY p75 DESC, n DESC, name, target LIMIT ?"
        )
        return [tuple(r) for r in self.sql.read(sql, params)]

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
        params: list[Any] = [project_id, start_ns, end_ns]
        having: list[str] = []
        match: list[str] = []
        match_params: list[Any] = []
        _filters(filters, match, match_params)
        if match:
            having.append(f"count(*) FILTER (WHERE {' AND '.join(match)}) > 0")
        if user_id is not None:
            having.append("count(*) FILTER (WHERE user_id = ?) > 0")
            match_params.append(user_id)
        having_sql = f"HAVING {' AND '.join(having)} " if having else ""
        sql = (
            "SELECT session_id, "  # noqa: S608 - constants only
            "coalesce(arg_max(user_id, time_ns) FILTER (WHERE user_id <> ''), ''), "
            "min(time_ns), max(time_ns), "
            "count(*) FILTER (WHERE kind = 'view')::BIGINT, "
            "count(*) FILTER (WHERE kind = 'error')::BIGINT, "
            "arg_min(app, time_ns), arg_min(browser, time_ns), arg_min(os, time_ns), "
            "arg_min(device, time_ns), "
            "coalesce(arg_min(page, time_ns) FILTER (WHERE kind = 'view'), '') "
            "FROM rum_events WHERE project_id = ? AND time_ns >= ? AND time_ns < ? "
            f"GROUP BY session_id {having_sql}"
            "ORDER BY max(time_ns) DESC, session_id LIMIT ?"
        )
        return [tuple(r) for r in self.sql.read(sql, [*params, *match_params, limit])]

    def session(self, project_id: int, session_id: str, limit: int) -> list[Row]:
        sql = (
            f"SELECT {_COLUMNS} FROM rum_events WHERE project_id = ? AND session_id = ? "  # noqa: S608 - constants only
            "ORDER BY time_ns LIMIT ?"
        )
        return [tuple(r) for r in self.sql.read(sql, [project_id, session_id, limit])]


# --------------------------------------------------------------- upkeep (on the writer)


def rum_retention(con: Any, now_ns: int, retention_days: int, rollup_retention_days: int) -> None:
    """Delete raw RUM events older than the retention, rollup rows older than the
    rollup retention."""
    con.execute("DELETE FROM rum_events WHERE time_ns < ?", [now_ns - retention_days * NS_PER_DAY])
    rollup_cutoff_s = (now_ns - rollup_retention_days * NS_PER_DAY) // 10**9
    con.execute("DELETE FROM rum_rollup_1m WHERE minute_s < ?", [rollup_cutoff_s])
    con.execute("DELETE FROM rum_rollup_1h WHERE hour_s < ?", [rollup_cutoff_s])


_KEY = ", ".join(RUM_ROLLUP_KEY)


def compact_rum_rollups(con: Any, start_s: int, end_s: int) -> None:
    """Merge the partial RUM rollup rows of minutes in [start_s, end_s) into one row per
    key; only minutes holding a key twice are rewritten."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE rum_dup AS SELECT DISTINCT project_id, minute_s FROM ("  # noqa: S608 - constants only
        f"SELECT {_KEY} FROM rum_rollup_1m WHERE minute_s >= ? AND minute_s < ? "
        "GROUP BY ALL HAVING count(*) > 1)",
        [start_s, end_s],
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE rum_merge AS SELECT {_KEY}, sum(count)::UBIGINT AS count "  # noqa: S608 - constants only
        "FROM rum_rollup_1m r SEMI JOIN rum_dup d "
        "ON r.project_id = d.project_id AND r.minute_s = d.minute_s GROUP BY ALL"
    )
    con.execute(
        "DELETE FROM rum_rollup_1m r USING rum_dup d "
        "WHERE r.project_id = d.project_id AND r.minute_s = d.minute_s"
    )
    con.execute("INSERT INTO rum_rollup_1m BY NAME SELECT * FROM rum_merge")
    con.execute("DROP TABLE rum_merge")
    con.execute("DROP TABLE rum_dup")


def build_rum_tier(con: Any, end_s: int) -> None:
    """(Re)build the hourly tier's rows of the whole hours from its watermark (or the
    first minute stored) up to ``end_s``'s hour, and move the watermark there. A write of
    earlier minutes has moved the watermark back (``RUM_TIER_UPDATE``): those hours are
    rebuilt too."""
    to_s = end_s // HOUR_S * HOUR_S
    built = int(con.execute("SELECT built_to_s FROM rum_tiers").fetchone()[0])
    from_s = built
    if built == 0:
        first = con.execute("SELECT min(minute_s) FROM rum_rollup_1m").fetchone()[0]
        from_s = to_s if first is None else int(first)
    from_s = from_s // HOUR_S * HOUR_S
    if from_s < to_s:
        con.execute("DELETE FROM rum_rollup_1h WHERE hour_s >= ? AND hour_s < ?", [from_s, to_s])
        con.execute(
            "INSERT INTO rum_rollup_1h BY NAME SELECT project_id, minute_s // 3600 * 3600 AS "
            "hour_s, app, environment, page, metric, rating, bucket, sum(count)::UBIGINT AS count "
            "FROM rum_rollup_1m WHERE minute_s >= ? AND minute_s < ? GROUP BY GROUPING SETS ("
            "(project_id, hour_s, app, environment, metric, rating, bucket), "
            "(project_id, hour_s, app, environment, page, metric, rating, bucket))",
            [from_s, to_s],
        )
    con.execute("UPDATE rum_tiers SET built_to_s = ?", [max(to_s, built)])


# Part of a write's transaction, after its rollup rows (``rum_rollup_tbl``) went in: the
# tier's watermark moves back to the earliest hour they touch.
RUM_TIER_UPDATE = (
    "UPDATE rum_tiers SET built_to_s = least(built_to_s, "
    "(SELECT min(minute_s) // 3600 * 3600 FROM rum_rollup_tbl))"
)
