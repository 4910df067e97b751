"""ClickHouse statements for: metrics — the series catalogue, per-step aggregates of the
rollup tiers, exemplars, and the writer's inserts.

The writer inserts each commit's per-minute partial rollups into ``metric_rollup_in``
(a Null table); materialized views aggregate them into the minute, 10-minute and hour
tiers (AggregatingMergeTree, see ``schema.py``), so every tier is current on write and
a read takes the coarsest tier whose period divides its step. Retention is the tables'
TTL. Labels come from the catalogue (``metric_series``, a row per series once merged):
the filtered series and their group labels are one small subquery joined to the
rollups. Every value is bound server-side (``{name:Type}``); label keys too.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import orjson

from heron.server.model.metric_rows import MetricRows
from heron.server.store.clickhouse._client import ChReads
from heron.server.store.metrics import (
    MAX_GROUPS,
    CatalogRow,
    ExemplarRow,
    MetricFilter,
    StepRow,
)

NS_PER_S = 10**9
# Tiers by period, coarsest first; the minute one serves every other step.
TIERS = ((3600, "metric_rollup_1h"), (600, "metric_rollup_10m"), (60, "metric_rollup_1m"))
# The catalogue merged per series (rows of several inserts until background merges fold
# them): ``{p}`` project, ``{name}``, minutes ``[{lo}, {hi})``.
_SERIES = (
    "SELECT series, any(service) AS service, any(attributes) AS attributes "
    "FROM {db}.metric_series WHERE project_id = {p:UInt32} AND name = {name:String} "
    "GROUP BY series HAVING max(last_seen_s) >= {lo:Int64} AND min(first_seen_s) < {hi:Int64}"
)
ROLLUP_IN_COLUMNS = (
    "project_id",
    "name",
    "series",
    "at_s",
    "bounds",
    "v_count",
    "v_sum",
    "v_min",
    "v_max",
    "v_last",
    "v_last_ns",
    "v_buckets",
)


def _label(key: str, params: dict[str, Any]) -> str:
    """The SQL of one label of a catalogue row (``service``: the series' service)."""
    if key == "service":
        return "service"
    name = f"k{len(params)}"
    params[name] = key
    return f"JSONExtractString(attributes, {{{name}:String}})"


def _series_sql(where: MetricFilter, select: str, params: dict[str, Any]) -> str:
    """``select`` over the metric's series with data in the range, every match holding."""
    params.update(p=where.project_id, name=where.name, lo=where.lo_s, hi=where.hi_s)
    clauses = []
    for key, value in where.match:
        label = _label(key, params)
        name = f"v{len(params)}"
        params[name] = value
        clauses.append(f"{label} = {{{name}:String}}")
    cond = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    return f"SELECT {select} FROM ({_SERIES}){cond}"  # noqa: S608 - constants only


def _finite(v: float | None) -> float | None:
    return None if v is None or math.isinf(v) or math.isnan(v) else float(v)


class ClickHouseMetrics:
    """Implements ``store.metrics.MetricReader`` on ClickHouse."""

    def __init__(self, reads: ChReads) -> None:
        self.reads = reads

    def catalog(
        self, project_id: int, lo_s: int, hi_s: int, service: str | None = None
    ) -> list[CatalogRow]:
        params: dict[str, Any] = {"p": project_id, "lo": lo_s, "hi": hi_s}
        svc = ""
        if service is not None:
            svc = " AND service = {svc:String}"
            params["svc"] = service
        rows = self.reads.rows(
            "SELECT name, argMax(kind, last), argMax(unit, last), argMax(description, last), "  # noqa: S608 - constants only
            "count(), arraySort(groupUniqArray(service)) FROM ("
            "SELECT name, series, any(service) AS service, anyLast(kind) AS kind, "
            "anyLast(unit) AS unit, anyLast(description) AS description, "
            "max(last_seen_s) AS last FROM {db}.metric_series WHERE project_id = {p:UInt32} "
            "GROUP BY name, series HAVING last >= {lo:Int64} AND min(first_seen_s) < {hi:Int64}"
            f") WHERE 1{svc} GROUP BY name ORDER BY name",
            params,
        )
        return [CatalogRow(n, k, u, d, int(c), tuple(s)) for n, k, u, d, c, s in rows]

    def describe(self, project_id: int, name: str) -> CatalogRow | None:
        rows = self.reads.rows(
            "SELECT argMax(kind, last), argMax(unit, last), argMax(description, last), count(), "
            "arraySort(groupUniqArray(service)) FROM (SELECT series, any(service) AS service, "
            "anyLast(kind) AS kind, anyLast(unit) AS unit, anyLast(description) AS description, "
            "max(last_seen_s) AS last FROM {db}.metric_series WHERE project_id = {p:UInt32} "
            "AND name = {name:String} GROUP BY series)",
            {"p": project_id, "name": name},
        )
        if not rows or not rows[0][3]:
            return None
        k, u, d, c, s = rows[0]
        return CatalogRow(name, k, u, d, int(c), tuple(s))

    def label_keys(self, where: MetricFilter) -> list[str]:
        params: dict[str, Any] = {}
        sql = _series_sql(where, "arrayJoin(JSONExtractKeys(attributes)) AS k", params)
        keys = {r[0] for r in self.reads.rows(f"SELECT DISTINCT k FROM ({sql})", params)}  # noqa: S608 - constants only
        params = {}
        any_sql = _series_sql(where, "series", params)
        if keys or self.reads.rows(f"SELECT 1 FROM ({any_sql}) LIMIT 1", params):  # noqa: S608 - constants only
            keys.add("service")
        return sorted(keys)

    def label_values(self, where: MetricFilter, key: str, limit: int) -> list[tuple[str, int]]:
        params: dict[str, Any] = {}
        value = _label(key, params)
        sql = _series_sql(where, f"{value} AS v", params)
        params["limit"] = limit
        rows = self.reads.rows(
            f"SELECT v, count() AS n FROM ({sql}) WHERE v != '' GROUP BY v "  # noqa: S608 - constants only
            "ORDER BY n DESC, v LIMIT {limit:UInt32}",
            params,
        )
        return [(str(v), int(n)) for v, n in rows]

    def _kind(self, where: MetricFilter) -> str | None:
        rows = self.reads.rows(
            "SELECT anyLast(kind) FROM {db}.metric_series "
            "WHERE project_id = {p:UInt32} AND name = {name:String}",
            {"p": where.project_id, "name": where.name},
        )
        return str(rows[0][0]) if rows and rows[0][0] else None

    def step_rows(
        self, where: MetricFilter, step_s: int, group_by: tuple[str, ...]
    ) -> list[StepRow]:
        if step_s <= 0 or step_s % 60:
            raise ValueError(f"step must be a positive multiple of 60 s, not {step_s}")
        table = next(t for res, t in TIERS if step_s % res == 0)
        params: dict[str, Any] = {"step": step_s}
        grp = "[" + ", ".join(_label(k, params) for k in group_by) + "]" if group_by else "[]"
        series_sql = _series_sql(where, f"series, CAST({grp}, 'Array(String)') AS grp", params)
        # The metric's name bounds the rows; label filters also bound the series early.
        only = f" AND series IN (SELECT series FROM ({series_sql}))" if where.match else ""  # noqa: S608 - constants only
        # Subqueries, not a CTE: ClickHouse inlines a CTE at each use and joins the
        # per-series aggregates to it markedly slower than to a subquery.
        rows = self.reads.rows(
            "SELECT grp, t, sum(samples), sum(count), sum(sum), min(min), max(max), "  # noqa: S608 - constants only
            "sum(last), count() FROM ("
            "SELECT series, intDiv(minute_s, {step:Int64}) * {step:Int64} AS t, "
            "sum(rows) AS samples, sum(count) AS count, sum(sum) AS sum, min(min) AS min, "
            f"max(max) AS max, argMaxMerge(last) AS last FROM {{db}}.{table} "
            "WHERE project_id = {p:UInt32} AND name = {name:String} AND minute_s >= {lo:Int64} "
            f"AND minute_s < {{hi:Int64}}{only} "
            f"GROUP BY series, t) AS per INNER JOIN ({series_sql}) AS s USING (series) "
            "GROUP BY grp, t ORDER BY grp, t",
            params,
        )
        totals: Counter[tuple[str, ...]] = Counter()
        for g, _t, _samples, count, *_ in rows:
            totals[tuple(g)] += int(count)
        keep = {g for g, _ in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_GROUPS]}
        hist = (
            self._buckets(where, step_s, table, grp, params)
            if self._kind(where) == "histogram"
            else {}
        )
        out = []
        for g, t, samples, count, total, lo, hi, last, n in rows:
            group = tuple(g)
            if group not in keep:
                continue
            bounds, buckets = hist.get((group, int(t)), ((), ()))
            out.append(
                StepRow(
                    group,
                    int(t),
                    int(samples),
                    int(count),
                    float(total),
                    _finite(lo),
                    _finite(hi),
                    _finite(last),
                    int(n),
                    bounds,
                    buckets,
                )
            )
        return out

    def _buckets(
        self, where: MetricFilter, step_s: int, table: str, grp: str, grp_params: dict[str, Any]
    ) -> dict[tuple[tuple[str, ...], int], tuple[tuple[float, ...], tuple[int, ...]]]:
        """Merged buckets per group, step and bounds; per group, the bounds of the most
        rows win (rows with other bounds are left out of the buckets)."""
        params = dict(grp_params)
        series_sql = _series_sql(where, f"series, CAST({grp}, 'Array(String)') AS grp", params)
        rows = self.reads.rows(
            "SELECT grp, intDiv(minute_s, {step:Int64}) * {step:Int64} AS t, bounds, "  # noqa: S608 - constants only
            f"sumForEachMerge(buckets), sum(rows) FROM {{db}}.{table} "
            f"INNER JOIN ({series_sql}) AS s USING (series) "
            "WHERE project_id = {p:UInt32} AND name = {name:String} AND minute_s >= {lo:Int64} "
            "AND minute_s < {hi:Int64} AND length(bounds) > 0 GROUP BY grp, t, bounds",
            params,
        )
        votes: dict[tuple[str, ...], Counter[tuple[float, ...]]] = {}
        for g, _t, bounds, _b, n in rows:
            votes.setdefault(tuple(g), Counter())[tuple(bounds)] += int(n)
        best = {g: max(c.items(), key=lambda kv: (kv[1], kv[0]))[0] for g, c in votes.items()}
        return {
            (tuple(g), int(t)): (tuple(bounds), tuple(int(x) for x in b))
            for g, t, bounds, b, _n in rows
            if tuple(bounds) == best[tuple(g)]
        }

    def exemplars(self, where: MetricFilter, limit: int) -> list[ExemplarRow]:
        params: dict[str, Any] = {}
        series_sql = _series_sql(where, "series, service, attributes", params)
        params.update(lo_ns=where.lo_s * NS_PER_S, hi_ns=where.hi_s * NS_PER_S, limit=limit)
        rows = self.reads.rows(
            f"WITH s AS ({series_sql}) "  # noqa: S608 - constants only
            "SELECT e.time_ns, e.value, e.trace_id, e.span_id, s.attributes, s.service "
            "FROM {db}.metric_exemplars AS e INNER JOIN s ON e.series = s.series "
            "WHERE e.project_id = {p:UInt32} AND e.time_ns >= {lo_ns:Int64} "
            "AND e.time_ns < {hi_ns:Int64} AND e.series IN (SELECT series FROM s) "
            "ORDER BY e.time_ns DESC LIMIT {limit:UInt32}",
            params,
        )
        return [
            ExemplarRow(
                int(t),
                float(v),
                tid if isinstance(tid, bytes) else str(tid).encode("latin-1"),
                int(sid),
                {"service": svc, **orjson.loads(a)},
            )
            for t, v, tid, sid, a, svc in rows
        ]

    def known_series(self, project_id: int, since_s: int) -> list[tuple[str, int]]:
        rows = self.reads.rows(
            "SELECT name, series FROM {db}.metric_series WHERE project_id = {p:UInt32} "
            "GROUP BY name, series HAVING max(last_seen_s) >= {since:Int64}",
            {"p": project_id, "since": since_s},
        )
        return [(str(n), int(s)) for n, s in rows]


def insert_metrics(
    writes: ChReads, rows: list[MetricRows], new_series: dict[str, list[Any]]
) -> None:
    """Insert one commit's metric rows: the catalogue rows given, points, exemplars and
    the partial rollups (through ``metric_rollup_in`` into every tier)."""
    if new_series["series"]:
        writes.insert("metric_series", list(new_series.values()), list(new_series))
    points: dict[str, list[Any]] = {}
    exemplars: dict[str, list[Any]] = {}
    rollups: dict[str, list[Any]] = {c: [] for c in ROLLUP_IN_COLUMNS}
    for r in rows:
        for c, values in r.points.items():
            points.setdefault(c, []).extend(values)
        for c, values in r.exemplars.items():
            exemplars.setdefault(c, []).extend(values)
        ro = r.rollups
        names = dict(zip(r.series["series"], r.series["name"], strict=True))
        rollups["project_id"] += ro["project_id"]
        rollups["name"] += [names[k] for k in ro["series"]]
        rollups["series"] += ro["series"]
        rollups["at_s"] += ro["minute_s"]
        rollups["bounds"] += [b or [] for b in ro["bounds"]]
        rollups["v_count"] += ro["count"]
        rollups["v_sum"] += ro["sum"]
        rollups["v_min"] += [math.inf if v is None else v for v in ro["min"]]
        rollups["v_max"] += [-math.inf if v is None else v for v in ro["max"]]
        rollups["v_last"] += [math.nan if v is None else v for v in ro["last"]]
        rollups["v_last_ns"] += [0 if v is None else v for v in ro["last_ns"]]
        rollups["v_buckets"] += [b or [] for b in ro["buckets"]]
    if points.get("series"):
        for c in ("bounds", "buckets", "quantiles"):
            points[c] = [v or [] for v in points[c]]
        writes.insert("metric_points", list(points.values()), list(points))
    if exemplars.get("series"):
        writes.insert("metric_exemplars", list(exemplars.values()), list(exemplars))
    if rollups["series"]:
        writes.insert("metric_rollup_in", list(rollups.values()), list(rollups))
