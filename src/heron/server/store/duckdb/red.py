"""DuckDB statements for: RED rollups: services, endpoints, time series, the service map.

Rollups are read from ``rollup_1m`` only, never raw spans (the service map aside), so a
30-day range costs the same as a one-hour one. Rollup rows are partial until compaction
merges them: always SUM.

The service map joins child entry spans to their parents on (trace id, span id); both
sides are bounded by ``start_ns`` so zone maps skip row groups outside the slices.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from heron.server.model.span import ENTRY_KIND_SQL, ERROR_SQL
from heron.server.store.duckdb._sql import SqlReads
from heron.server.store.red import (
    ChoiceColumn,
    EdgeRow,
    EndpointGuide,
    GroupRow,
    RollupFilter,
    SeriesBucketRow,
)

_CHILD = (
    "SELECT trace_id, parent_id, service, start_ns, duration_ns, "  # noqa: S608 - constants only
    f"{ERROR_SQL} AS error FROM spans "
    "WHERE project_id = ? AND start_ns >= ? AND start_ns < ? AND parent_id <> 0 "
    f"AND {ENTRY_KIND_SQL} {{env}}"
)
_PARENT = "SELECT trace_id, span_id, service FROM spans WHERE project_id = ? AND start_ns >= ? AND start_ns < ?"
_EDGES = (
    "WITH c AS ({children}), p AS ({parents}) "
    "SELECT p.service AS caller, c.service AS callee, count(*)::BIGINT AS calls, "
    "count(*) FILTER (WHERE c.error)::BIGINT AS errors, "
    "quantile_cont(c.duration_ns, 0.95) AS p95_ns, min(c.start_ns) AS first_ns "
    "FROM c JOIN p ON p.trace_id = c.trace_id AND p.span_id = c.parent_id "
    "WHERE p.service <> c.service GROUP BY ALL ORDER BY calls DESC, caller, callee"
)
_CHOICE_COLUMNS = frozenset({"service", "environment", "release", "endpoint"})


def _where(f: RollupFilter) -> tuple[str, list[Any]]:
    """WHERE clause over rollup_1m; filter columns come from the fixed set below."""
    clauses = ["project_id = ?", "minute_s >= ?", "minute_s < ?"]
    params: list[Any] = [f.project_id, f.lo_s, f.hi_s]
    for col, value in (
        ("service", f.service),
        ("environment", f.environment),
        ("release", f.release),
        ("endpoint", f.endpoint),
    ):
        if value is not None:
            clauses.append(f"{col} = ?")
            params.append(value)
    return " AND ".join(clauses), params


class DuckDBRed:
    """Implements ``store.red.RedReader`` on DuckDB."""

    def __init__(self, sql: SqlReads) -> None:
        self.sql = sql

    def _groups(self, group_sql: str, where: RollupFilter, params: Sequence[Any]) -> list[GroupRow]:
        """Totals and latency buckets per group; ``group_sql`` is a constant of this module."""
        clause, where_params = _where(where)
        sql = (
            "SELECT g, sum(c)::BIGINT, sum(e)::BIGINT, sum(s)::DOUBLE, "  # noqa: S608 - constants only
            "list(bucket ORDER BY bucket), list(c ORDER BY bucket), min(f) FROM ("
            f"SELECT {group_sql} AS g, bucket, sum(count)::BIGINT AS c, sum(errors) AS e, "
            f"sum(sum_ns) AS s, min(minute_s) AS f FROM rollup_1m WHERE {clause} GROUP BY g, bucket"
            ") GROUP BY g"
        )
        return self.sql.read(sql, [*params, *where_params])

    def group_totals(
        self, where: RollupFilter, by: Literal["service", "endpoint"]
    ) -> list[GroupRow]:
        if by not in ("service", "endpoint"):
            raise ValueError(f"cannot group rollups by {by!r}")
        return self._groups(by, where, [])

    def step_totals(self, where: RollupFilter, step_s: int) -> list[GroupRow]:
        return self._groups("minute_s // ? * ?", where, [step_s, step_s])

    def service_step_buckets(
        self, where: RollupFilter, step_s: int
    ) -> list[tuple[str, int, int, int, int]]:
        clause, params = _where(where)
        return self.sql.read(
            "SELECT service, minute_s // ? * ? AS t, bucket, sum(count)::BIGINT, "  # noqa: S608 - constants only
            f"sum(errors)::BIGINT FROM rollup_1m WHERE {clause} GROUP BY ALL",
            [step_s, step_s, *params],
        )

    def top_values(self, where: RollupFilter, column: ChoiceColumn) -> list[tuple[str, int]]:
        if column not in _CHOICE_COLUMNS:
            raise ValueError(f"no choices for column {column!r}")
        clause, params = _where(where)
        return self.sql.read(
            f"SELECT {column}, sum(count)::BIGINT AS n FROM rollup_1m WHERE {clause} "  # noqa: S608 - constants only
            f"GROUP BY {column} ORDER BY n DESC, {column} LIMIT 200",
            params,
        )

    def service_known(self, project_id: int, service: str) -> bool:
        rows = self.sql.read(
            "SELECT 1 FROM rollup_1m WHERE project_id = ? AND service = ? LIMIT 1",
            [project_id, service],
        )
        return bool(rows)

    def endpoint_known(self, project_id: int, service: str, endpoint: str) -> bool:
        rows = self.sql.read(
            "SELECT 1 FROM rollup_1m WHERE project_id = ? AND service = ? AND endpoint = ? LIMIT 1",
            [project_id, service, endpoint],
        )
        return bool(rows)

    def series_buckets(self, where: RollupFilter) -> list[SeriesBucketRow]:
        clause, params = _where(where)
        return self.sql.read(
            "SELECT service, environment, endpoint, bucket, sum(count)::BIGINT, "  # noqa: S608 - constants only
            f"sum(errors)::BIGINT, sum(sum_ns)::DOUBLE FROM rollup_1m WHERE {clause} "
            "GROUP BY ALL",
            params,
        )

    def latency_buckets(self, where: RollupFilter) -> list[tuple[int, int]]:
        clause, params = _where(where)
        return self.sql.read(
            "SELECT bucket, sum(count)::BIGINT FROM rollup_1m "  # noqa: S608 - constants only
            f"WHERE {clause} GROUP BY bucket",
            params,
        )

    def endpoint_guide(self, where: RollupFilter) -> EndpointGuide:
        clause, params = _where(where)
        rows = self.sql.read(
            "SELECT minute_s, bucket, sum(count)::BIGINT, sum(errors)::BIGINT, max(bucket) "  # noqa: S608 - constants only
            f"FROM rollup_1m WHERE {clause} "
            "GROUP BY GROUPING SETS ((minute_s), (bucket))",
            params,
        )
        # Per-minute rows have no bucket, per-bucket rows no minute.
        return EndpointGuide(
            minutes=[(m, n, e, top) for m, b, n, e, top in rows if b is None],
            buckets=[(b, n) for m, b, n, e, top in rows if b is not None],
        )

    def call_edges(
        self,
        project_id: int,
        slices: Sequence[tuple[int, int]],
        parent_slack_ns: int,
        environment: str | None,
    ) -> list[EdgeRow]:
        env_clause, env_params = ("AND environment = ?", [environment]) if environment else ("", [])
        child = _CHILD.replace("{env}", env_clause)
        sql = _EDGES.replace("{children}", " UNION ALL ".join([child] * len(slices)))
        sql = sql.replace("{parents}", " UNION ALL ".join([_PARENT] * len(slices)))
        params: list[object] = []
        for lo, hi in slices:
            params += [project_id, lo, hi, *env_params]
        for lo, hi in slices:
            params += [project_id, lo - parent_slack_ns, hi]
        return self.sql.read(sql, params)
