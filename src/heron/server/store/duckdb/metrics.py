"""DuckDB statements for: metrics — the series catalogue, per-step aggregates from the
minute rollups, exemplars, retention and rollup compaction.

Labels live in the catalogue (``metric_series.attributes``, JSON text, ~one row per
series): filters and grouping turn the filtered series' attributes into a MAP once and
join the resulting (series → group) table to the rollups, so grouping never touches a
per-point JSON value. Rollup rows are partial until compaction merges them: reads merge
per series and step first (sum, min, max, latest value), then per group.
"""

from __future__ import annotations

from typing import Any

import orjson

from heron.server.store.duckdb._sql import SqlReads
from heron.server.store.metrics import (
    MAX_GROUPS,
    CatalogRow,
    ExemplarRow,
    MetricFilter,
    StepRow,
)

NS_PER_S = 10**9
NS_PER_DAY = 86_400 * NS_PER_S
# Rollup rows of one table in a range (``?``: project, from, to).
_ROWS = (
    "SELECT series, minute_s, count, sum, min, max, last, last_ns, bounds, buckets "
    "FROM {table} WHERE project_id = ? AND minute_s >= ? AND minute_s < ?"
)
# Coarser rollups built by upkeep from the minutes, coarsest first: (period s, table).
TIERS = ((3600, "metric_rollup_1h"), (600, "metric_rollup_10m"))
_MAP = "json_transform(attributes, '\"MAP(VARCHAR, VARCHAR)\"')"


def _label(key: str, params: list[Any]) -> str:
    """The SQL of one label of a catalogue row with ``m`` its attributes MAP; the key is
    bound (``service`` is the series' service)."""
    if key == "service":
        return "service"
    params.append(key)
    return "coalesce(m[?], '')"


def _series_sql(where: MetricFilter, select: str, params: list[Any]) -> str:
    """The filtered catalogue: ``select`` over (series, service, m) rows of the metric's
    series with data in the range, every ``match`` holding. ``select``'s own parameters
    must already be in ``params``."""
    clauses: list[str] = []
    match_params: list[Any] = []
    for key, value in where.match:
        clauses.append(f"{_label(key, match_params)} = ?")
        match_params.append(value)
    sql = (
        f"SELECT {select} FROM (SELECT series, service, {_MAP} AS m FROM metric_series "  # noqa: S608 - constants only
        "WHERE project_id = ? AND name = ? AND last_seen_s >= ? AND first_seen_s < ?)"
        + (f" WHERE {' AND '.join(clauses)}" if clauses else "")
    )
    params += [where.project_id, where.name, where.lo_s, where.hi_s, *match_params]
    return sql


def _attrs(text: str, service: str) -> dict[str, str]:
    attrs: dict[str, str] = orjson.loads(text)
    return {"service": service, **attrs}


class DuckDBMetrics:
    """Implements ``store.metrics.MetricReader`` on DuckDB."""

    def __init__(self, sql: SqlReads) -> None:
        self.sql = sql

    def catalog(
        self, project_id: int, lo_s: int, hi_s: int, service: str | None = None
    ) -> list[CatalogRow]:
        params: list[Any] = [project_id, lo_s, hi_s]
        svc = ""
        if service is not None:
            svc = " AND service = ?"
            params.append(service)
        rows = self.sql.read(
            "SELECT name, arg_max(kind, last_seen_s), arg_max(unit, last_seen_s), "  # noqa: S608 - constants only
            "arg_max(description, last_seen_s), count(*), list(DISTINCT service ORDER BY service) "
            "FROM metric_series WHERE project_id = ? AND last_seen_s >= ? AND first_seen_s < ?"
            f"{svc} GROUP BY name ORDER BY name",
            params,
        )
        return [CatalogRow(n, k, u, d, int(c), tuple(s)) for n, k, u, d, c, s in rows]

    def describe(self, project_id: int, name: str) -> CatalogRow | None:
        rows = self.sql.read(
            "SELECT arg_max(kind, last_seen_s), arg_max(unit, last_seen_s), "
            "arg_max(description, last_seen_s), count(*), list(DISTINCT service ORDER BY service) "
            "FROM metric_series WHERE project_id = ? AND name = ?",
            [project_id, name],
        )
        if not rows or not rows[0][3]:
            return None
        k, u, d, c, s = rows[0]
        return CatalogRow(name, k, u, d, int(c), tuple(s))

    def label_keys(self, where: MetricFilter) -> list[str]:
        params: list[Any] = []
        sql = _series_sql(where, "unnest(map_keys(m)) AS k", params)
        rows = self.sql.read(f"SELECT DISTINCT k FROM ({sql})", params)  # noqa: S608 - constants only
        keys = {r[0] for r in rows}
        if rows or self._any_series(where):
            keys.add("service")
        return sorted(keys)

    def _any_series(self, where: MetricFilter) -> bool:
        params: list[Any] = []
        sql = _series_sql(where, "series", params)
        return bool(self.sql.read(f"SELECT 1 FROM ({sql}) LIMIT 1", params))  # noqa: S608 - constants only

    def label_values(self, where: MetricFilter, key: str, limit: int) -> list[tuple[str, int]]:
        params: list[Any] = []
        value = _label(key, params)
        sql = _series_sql(where, f"{value} AS v", params)
        rows = self.sql.read(
            f"SELECT v, count(*) FROM ({sql}) WHERE v <> '' GROUP BY v "  # noqa: S608 - constants only
            "ORDER BY 2 DESC, 1 LIMIT ?",
            [*params, limit],
        )
        return [(str(v), int(n)) for v, n in rows]

    def _kind(self, where: MetricFilter) -> str | None:
        rows = self.sql.read(
            "SELECT arg_max(kind, last_seen_s) FROM metric_series WHERE project_id = ? AND name = ?",
            [where.project_id, where.name],
        )
        return rows[0][0] if rows else None

    def _split(self, where: MetricFilter, step_s: int) -> tuple[str | None, int, int]:
        """(tier table or None, its period, where the minutes take over): the coarsest
        tier whose period divides the step serves the range up to its watermark."""
        tier = next(((res, t) for res, t in TIERS if step_s % res == 0), None)
        if tier is None:
            return None, 60, where.lo_s
        rows = self.sql.read("SELECT built_to_s FROM metric_tiers WHERE res_s = ?", [tier[0]])
        built = int(rows[0][0]) if rows else 0
        split = max(where.lo_s, min(where.hi_s, built))
        return (tier[1], tier[0], split) if split > where.lo_s else (None, 60, where.lo_s)

    def _source(self, where: MetricFilter, step_s: int) -> tuple[str, list[Any]]:
        """The rollup rows of the range as one subquery (tier rows, then minutes)."""
        table, _res, split = self._split(where, step_s)
        minute = _ROWS.format(table="metric_rollup_1m")
        if table is None:
            return minute, [where.project_id, where.lo_s, where.hi_s]
        return (
            f"{_ROWS.format(table=table)} UNION ALL {minute}",
            [where.project_id, where.lo_s, split, where.project_id, split, where.hi_s],
        )

    def _per_series(self, where: MetricFilter, step_s: int) -> tuple[str, list[Any]]:
        """Per series and step: samples, count, sum, min, max and the latest value.
        A tier's rows whose period is the step are one per series and step already
        (built merged), so only the minutes after its watermark are aggregated."""
        table, res, split = self._split(where, step_s)
        agg = (
            "SELECT series, minute_s // ? * ? AS t, count(*) AS samples, sum(count) AS count, "
            "sum(sum) AS sum, min(min) AS min, max(max) AS max, arg_max(last, last_ns) AS last "
            "FROM ({rows}) GROUP BY series, t"
        )
        if table is not None and res == step_s:
            direct = (
                "SELECT series, minute_s AS t, 1 AS samples, count, sum, min, max, last "  # noqa: S608 - constants only
                f"FROM {table} WHERE project_id = ? AND minute_s >= ? AND minute_s < ?"
            )
            params = [where.project_id, where.lo_s, split]
            if split >= where.hi_s:
                return direct, params
            minute = agg.format(rows=_ROWS.format(table="metric_rollup_1m"))
            return (
                f"{direct} UNION ALL {minute}",
                [*params, step_s, step_s, where.project_id, split, where.hi_s],
            )
        source, params = self._source(where, step_s)
        return agg.format(rows=source), [step_s, step_s, *params]

    def step_rows(
        self, where: MetricFilter, step_s: int, group_by: tuple[str, ...]
    ) -> list[StepRow]:
        if step_s <= 0 or step_s % 60:
            raise ValueError(f"step must be a positive multiple of 60 s, not {step_s}")
        grp_params: list[Any] = []
        grp = (
            # A JSON text key: grouping by a string is several times faster than by a list.
            "to_json(list_value("
            + ", ".join(_label(k, grp_params) for k in group_by)
            + "))::VARCHAR"
            if group_by
            else "'[]'"
        )
        params = list(grp_params)
        series_sql = _series_sql(where, f"series, {grp} AS grp", params)
        per_sql, per_params = self._per_series(where, step_s)
        # Only when the catalogue has more groups than MAX_GROUPS are the busiest picked
        # (a second pass over the aggregates); the count is over ~one row per series.
        count_params = list(params)
        groups = self.sql.read(f"SELECT count(DISTINCT grp) FROM ({series_sql})", count_params)  # noqa: S608 - constants only
        many = bool(groups) and int(groups[0][0]) > MAX_GROUPS
        sql = (
            f"WITH s AS ({series_sql}), "  # noqa: S608 - constants only
            f"per AS (SELECT * FROM ({per_sql}) WHERE series IN (SELECT series FROM s)), "
            "agg AS (SELECT grp, t::BIGINT AS t, sum(samples)::BIGINT AS samples, "
            "sum(count)::BIGINT AS count, sum(sum) AS sum, min(min) AS min, max(max) AS max, "
            "sum(last) AS last, count(*) AS n FROM per JOIN s USING (series) GROUP BY grp, t) "
            + (
                ", top AS (SELECT grp FROM agg GROUP BY grp ORDER BY sum(count) DESC, grp "
                "LIMIT ?) SELECT grp, t, samples, count, sum, min, max, last, n FROM agg "
                "WHERE grp IN (SELECT grp FROM top) ORDER BY grp, t"
                if many
                else "SELECT grp, t, samples, count, sum, min, max, last, n FROM agg ORDER BY grp, t"
            )
        )
        rows = self.sql.read(sql, [*params, *per_params, *([MAX_GROUPS] if many else [])])
        hist = (
            self._buckets(where, step_s, grp, grp_params, *self._source(where, step_s))
            if self._kind(where) == "histogram"
            else {}
        )
        decoded: dict[str, tuple[str, ...]] = {}
        out: list[StepRow] = []
        for g, t, samples, count, total, lo, hi, last, n in rows:
            group = decoded.get(g)
            if group is None:
                group = decoded[g] = tuple(orjson.loads(g))
            bounds, buckets = hist.get((group, t), ((), ()))
            out.append(StepRow(group, t, samples, count, total, lo, hi, last, n, bounds, buckets))
        return out

    def _buckets(
        self,
        where: MetricFilter,
        step_s: int,
        grp: str,
        grp_params: list[Any],
        source: str,
        source_params: list[Any],
    ) -> dict[tuple[tuple[str, ...], int], tuple[tuple[float, ...], tuple[int, ...]]]:
        """Merged histogram buckets per group and step, over the rows whose bounds are
        the group's most common ones."""
        params = list(grp_params)
        series_sql = _series_sql(where, f"series, {grp} AS grp", params)
        sql = (
            f"WITH s AS ({series_sql}), "  # noqa: S608 - constants only
            f"h AS (SELECT grp, minute_s // ? * ? AS t, bounds, buckets FROM ({source}) "
            "JOIN s USING (series) WHERE buckets IS NOT NULL), "
            "best AS (SELECT grp, mode(bounds) AS bounds FROM h GROUP BY grp), "
            "e AS (SELECT h.grp, h.t, unnest(h.buckets) AS b, "
            "generate_subscripts(h.buckets, 1) AS i FROM h JOIN best "
            "ON h.grp = best.grp AND h.bounds = best.bounds), "
            "m AS (SELECT grp, t, i, sum(b) AS b FROM e GROUP BY grp, t, i) "
            "SELECT m.grp, m.t, any_value(best.bounds), list(m.b ORDER BY m.i) FROM m "
            "JOIN best ON m.grp = best.grp GROUP BY m.grp, m.t"
        )
        rows = self.sql.read(sql, [*params, step_s, step_s, *source_params])
        return {
            (tuple(orjson.loads(g)), int(t)): (tuple(bounds), tuple(int(b) for b in buckets))
            for g, t, bounds, buckets in rows
        }

    def exemplars(self, where: MetricFilter, limit: int) -> list[ExemplarRow]:
        params: list[Any] = []
        series_sql = _series_sql(where, "series", params)
        rows = self.sql.read(
            f"WITH s AS ({series_sql}) "  # noqa: S608 - constants only
            "SELECT e.time_ns, e.value, e.trace_id, e.span_id, c.attributes, c.service "
            "FROM metric_exemplars e JOIN metric_series c "
            "ON c.project_id = e.project_id AND c.series = e.series "
            "WHERE e.project_id = ? AND e.time_ns >= ? AND e.time_ns < ? "
            "AND e.series IN (SELECT series FROM s) ORDER BY e.time_ns DESC LIMIT ?",
            [
                *params,
                where.project_id,
                where.lo_s * NS_PER_S,
                where.hi_s * NS_PER_S,
                limit,
            ],
        )
        return [
            ExemplarRow(int(t), float(v), bytes(tid), int(sid), _attrs(a, svc))
            for t, v, tid, sid, a, svc in rows
        ]

    def known_series(self, project_id: int, since_s: int) -> list[tuple[str, int]]:
        rows = self.sql.read(
            "SELECT name, series FROM metric_series WHERE project_id = ? AND last_seen_s >= ?",
            [project_id, since_s],
        )
        return [(str(n), int(s)) for n, s in rows]


def metric_retention(
    con: Any, now_ns: int, retention_days: int, rollup_retention_days: int
) -> None:
    """Delete raw points and exemplars older than ``retention_days``, rollups (and the
    series without any left) older than ``rollup_retention_days``."""
    cutoff = now_ns - retention_days * NS_PER_DAY
    con.execute("DELETE FROM metric_points WHERE time_ns < ?", [cutoff])
    con.execute("DELETE FROM metric_exemplars WHERE time_ns < ?", [cutoff])
    rollup_cutoff_s = (now_ns - rollup_retention_days * NS_PER_DAY) // NS_PER_S
    con.execute("DELETE FROM metric_rollup_1m WHERE minute_s < ?", [rollup_cutoff_s])
    for res, table in TIERS:
        con.execute(
            f"DELETE FROM {table} WHERE minute_s < ?",  # noqa: S608 - constants
            [rollup_cutoff_s // res * res],
        )
    con.execute("DELETE FROM metric_series WHERE last_seen_s < ?", [rollup_cutoff_s])


# Rollup rows merged per series, period (``res``: ``minute_s // res * res``) and bounds,
# from ``r`` (a CTE the caller defines): the minute compaction and the hourly tier.
_MERGED = (
    "a AS (SELECT project_id, series, minute_s // {res} * {res} AS minute_s, bounds, "
    "sum(count)::UBIGINT AS count, sum(sum) AS sum, min(min) AS min, max(max) AS max, "
    "arg_max(last, last_ns) AS last, max(last_ns) AS last_ns FROM r GROUP BY ALL), "
    "e AS (SELECT project_id, series, minute_s // {res} * {res} AS minute_s, bounds, "
    "unnest(buckets) AS b, generate_subscripts(buckets, 1) AS i FROM r "
    "WHERE buckets IS NOT NULL), "
    "m AS (SELECT project_id, series, minute_s, bounds, i, sum(b)::UBIGINT AS b "
    "FROM e GROUP BY ALL), "
    "l AS (SELECT project_id, series, minute_s, bounds, list(b ORDER BY i) AS buckets "
    "FROM m GROUP BY ALL) "
    "SELECT a.project_id, a.series, a.minute_s, a.count, a.sum, a.min, a.max, a.last, "
    "a.last_ns, a.bounds, l.buckets FROM a LEFT JOIN l ON a.project_id = l.project_id "
    "AND a.series = l.series AND a.minute_s = l.minute_s AND a.bounds = l.bounds"
)


def compact_metric_rollups(con: Any, start_s: int, end_s: int) -> None:
    """Merge the partial metric rollup rows of minutes [start_s, end_s): one row per
    series, minute and histogram bounds. Only keys with several rows are rewritten."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE metric_dup AS SELECT project_id, series, minute_s "
        "FROM metric_rollup_1m WHERE minute_s >= ? AND minute_s < ? "
        "GROUP BY ALL HAVING count(*) > 1",
        [start_s, end_s],
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE metric_merge AS "  # noqa: S608 - constants only
        "WITH r AS (SELECT r.* FROM metric_rollup_1m r SEMI JOIN metric_dup d "
        "ON r.project_id = d.project_id AND r.series = d.series AND r.minute_s = d.minute_s "
        "WHERE r.minute_s >= ? AND r.minute_s < ?), " + _MERGED.format(res=60),
        [start_s, end_s],
    )
    con.execute(
        "DELETE FROM metric_rollup_1m r USING metric_dup d WHERE r.project_id = d.project_id "
        "AND r.series = d.series AND r.minute_s = d.minute_s"
    )
    con.execute("INSERT INTO metric_rollup_1m BY NAME SELECT * FROM metric_merge")
    con.execute("DROP TABLE metric_merge")
    con.execute("DROP TABLE metric_dup")


def build_tiers(con: Any, start_s: int, end_s: int) -> None:
    """(Re)build every tier's rows (``TIERS``) of the complete periods from ``start_s``'s
    (or the tier's watermark, or the first minute stored, whichever is earliest) up to
    ``end_s``'s, and move its watermark there. Minute rows arriving later for a period
    already built are taken in while that period is within ``[start_s, end_s)``."""
    first: int | None = None
    for res, table in TIERS:
        to_s = end_s // res * res
        row = con.execute("SELECT built_to_s FROM metric_tiers WHERE res_s = ?", [res]).fetchone()
        built = row[0] if row else None
        if built is None:
            if first is None:
                r = con.execute("SELECT min(minute_s) FROM metric_rollup_1m").fetchone()
                first = r[0] if r and r[0] is not None else end_s
            from_s = first
        else:
            from_s = min(built, start_s)
        from_s = from_s // res * res
        if from_s < to_s:
            con.execute(
                f"DELETE FROM {table} WHERE minute_s >= ? AND minute_s < ?",  # noqa: S608 - constants
                [from_s, to_s],
            )
            con.execute(
                f"INSERT INTO {table} BY NAME "  # noqa: S608 - constants
                "WITH r AS (SELECT * FROM metric_rollup_1m WHERE minute_s >= ? AND minute_s < ?), "
                + _MERGED.format(res=res),
                [from_s, to_s],
            )
        con.execute("DELETE FROM metric_tiers WHERE res_s = ?", [res])
        con.execute("INSERT INTO metric_tiers VALUES (?, ?)", [res, max(to_s, built or 0)])
