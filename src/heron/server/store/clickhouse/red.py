"""ClickHouse statements for: RED rollups (services, endpoints, time series, service map).

Rollups are read from ``rollup_1m`` only (the service map aside); background merges of
the SummingMergeTree may not have summed every key yet, so readers always ``sum``. Filter
columns come from fixed lists; every value is bound server-side (``{name:Type}``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from heron.server.model.span import ENTRY_KIND_SQL, ERROR_SQL
from heron.server.store.clickhouse._client import ChReads
from heron.server.store.red import (
    ChoiceColumn,
    EdgeRow,
    EndpointGuide,
    GroupRow,
    RollupFilter,
    SeriesBucketRow,
)

_CHOICE_COLUMNS = frozenset({"service", "environment", "release", "endpoint"})
_STEP = "intDiv(minute_s, {step:Int64}) * {step:Int64}"
_GROUPS = (
    "SELECT g, sum(c), sum(e), toFloat64(sum(s)), "
    "arrayMap(x -> x.1, arraySort(groupArray((bucket, c)))), "
    "arrayMap(x -> x.2, arraySort(groupArray((bucket, c)))), min(f) FROM ("
    "SELECT {group} AS g, bucket, sum(count) AS c, sum(errors) AS e, sum(sum_ns) AS s, "
    "min(minute_s) AS f FROM {db}.rollup_1m WHERE {where} GROUP BY g, bucket) GROUP BY g"
)
_CHILD = (
    "SELECT trace_id, parent_id, service, start_ns, duration_ns, "  # noqa: S608 - constants only
    f"{ERROR_SQL} AS error FROM {{db}}.spans "
    "WHERE project_id = {p:UInt32} AND start_ns >= {lo%d:Int64} AND start_ns < {hi%d:Int64} "
    f"AND parent_id != 0 AND {ENTRY_KIND_SQL} {{env}}"
)
_PARENT = (
    "SELECT trace_id, span_id, service FROM {db}.spans WHERE project_id = {p:UInt32} "
    "AND start_ns >= {plo%d:Int64} AND start_ns < {hi%d:Int64}"
)
_EDGES = (
    "SELECT p.service AS caller, c.service AS callee, count() AS calls, "
    "countIf(c.error) AS errors, quantileExactInclusive(0.95)(c.duration_ns) AS p95_ns, "
    "min(c.start_ns) AS first_ns "
    "FROM ({children}) AS c INNER JOIN ({parents}) AS p "
    "ON p.trace_id = c.trace_id AND p.span_id = c.parent_id "
    "WHERE p.service != c.service GROUP BY caller, callee ORDER BY calls DESC, caller, callee"
)


def _where(f: RollupFilter) -> tuple[str, dict[str, Any]]:
    """WHERE clause over rollup_1m; filter columns come from the fixed list below."""
    clauses = ["project_id = {p:UInt32}", "minute_s >= {lo:Int64}", "minute_s < {hi:Int64}"]
    params: dict[str, Any] = {"p": f.project_id, "lo": f.lo_s, "hi": f.hi_s}
    for col, value in (
        ("service", f.service),
        ("environment", f.environment),
        ("release", f.release),
        ("endpoint", f.endpoint),
    ):
        if value is not None:
            clauses.append(f"{col} = {{{col}:String}}")
            params[col] = value
    return " AND ".join(clauses), params


class ClickHouseRed:
    """Implements ``store.red.RedReader`` on ClickHouse."""

    def __init__(self, reads: ChReads) -> None:
        self.reads = reads

    def _groups(
        self, group_sql: str, where: RollupFilter, params: dict[str, Any]
    ) -> list[GroupRow]:
        """Totals and latency buckets per group; ``group_sql`` is a constant of this module."""
        clause, where_params = _where(where)
        sql = _GROUPS.replace("{where}", clause).replace("{group}", group_sql)
        rows = self.reads.rows(sql, {**params, **where_params})
        return [(g, n, e, s, list(b), list(c), f) for g, n, e, s, b, c, f in rows]

    def group_totals(
        self, where: RollupFilter, by: Literal["service", "endpoint"]
    ) -> list[GroupRow]:
        if by not in ("service", "endpoint"):
            raise ValueError(f"cannot group rollups by {by!r}")
        return self._groups(by, where, {})

    def step_totals(self, where: RollupFilter, step_s: int) -> list[GroupRow]:
        return self._groups(_STEP, where, {"step": step_s})

    def service_step_buckets(
        self, where: RollupFilter, step_s: int
    ) -> list[tuple[str, int, int, int, int]]:
        clause, params = _where(where)
        return self.reads.rows(
            f"SELECT service, {_STEP} AS t, bucket, sum(count), sum(errors) "  # noqa: S608 - constants only
            f"FROM {{db}}.rollup_1m WHERE {clause} GROUP BY service, t, bucket",
            {**params, "step": step_s},
        )

    def top_values(self, where: RollupFilter, column: ChoiceColumn) -> list[tuple[str, int]]:
        if column not in _CHOICE_COLUMNS:
            raise ValueError(f"no choices for column {column!r}")
        clause, params = _where(where)
        return self.reads.rows(
            f"SELECT {column} AS v, sum(count) AS n FROM {{db}}.rollup_1m WHERE {clause} "  # noqa: S608 - constants only
            "GROUP BY v ORDER BY n DESC, v LIMIT 200",
            params,
        )

    def service_known(self, project_id: int, service: str) -> bool:
        sql = (
            "SELECT 1 FROM {db}.rollup_1m "
            "WHERE project_id = {p:UInt32} AND service = {s:String} LIMIT 1"
        )
        return bool(self.reads.rows(sql, {"p": project_id, "s": service}))

    def endpoint_known(self, project_id: int, service: str, endpoint: str) -> bool:
        sql = (
            "SELECT 1 FROM {db}.rollup_1m WHERE project_id = {p:UInt32} AND service = {s:String} "
            "AND endpoint = {e:String} LIMIT 1"
        )
        return bool(self.reads.rows(sql, {"p": project_id, "s": service, "e": endpoint}))

    def series_buckets(self, where: RollupFilter) -> list[SeriesBucketRow]:
        clause, params = _where(where)
        rows = self.reads.rows(
            "SELECT service, environment, endpoint, bucket, sum(count), sum(errors), "  # noqa: S608 - constants only
            f"toFloat64(sum(sum_ns)) FROM {{db}}.rollup_1m WHERE {clause} "
            "GROUP BY service, environment, endpoint, bucket",
            params,
        )
        return [(s, env, ep, int(b), int(n), int(e), float(t)) for s, env, ep, b, n, e, t in rows]

    def latency_buckets(self, where: RollupFilter) -> list[tuple[int, int]]:
        clause, params = _where(where)
        return self.reads.rows(
            f"SELECT bucket, sum(count) FROM {{db}}.rollup_1m WHERE {clause} GROUP BY bucket",  # noqa: S608 - constants only
            params,
        )

    def endpoint_guide(self, where: RollupFilter) -> EndpointGuide:
        clause, params = _where(where)
        minutes = self.reads.rows(
            "SELECT minute_s, sum(count), sum(errors), max(bucket) "  # noqa: S608 - constants only
            f"FROM {{db}}.rollup_1m WHERE {clause} GROUP BY minute_s",
            params,
        )
        return EndpointGuide(
            minutes=minutes,
            buckets=self.latency_buckets(where),
        )

    def call_edges(
        self,
        project_id: int,
        slices: Sequence[tuple[int, int]],
        parent_slack_ns: int,
        environment: str | None,
    ) -> list[EdgeRow]:
        if not slices:
            return []
        env = "AND environment = {env:String}" if environment else ""
        params: dict[str, Any] = {"p": project_id, **({"env": environment} if environment else {})}
        for i, (lo, hi) in enumerate(slices):
            params |= {f"lo{i}": lo, f"hi{i}": hi, f"plo{i}": lo - parent_slack_ns}
        children = " UNION ALL ".join(
            _CHILD.replace("%d", str(i)).replace("{env}", env) for i in range(len(slices))
        )
        parents = " UNION ALL ".join(_PARENT.replace("%d", str(i)) for i in range(len(slices)))
        sql = _EDGES.replace("{children}", children).replace("{parents}", parents)
        return self.reads.rows(sql, params)
