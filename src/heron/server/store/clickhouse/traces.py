"""ClickHouse statements for: traces and spans (trace search, one trace, examples).

Values are bound server-side (``{name:Type}``); the only text spliced into a statement is
constant SQL of this module and of ``model.span`` (the shared rules). A trace by id first
reads its time range from ``trace_times``, then only the spans in that range: the day
partitions and the primary key bound it, the bloom filter on ``trace_id`` skips most
granules inside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from heron.server.model.span import ENDPOINT_SQL, ENTRY_SQL, ERROR_SQL, SPAN_COLUMNS, SpanRow
from heron.server.store.clickhouse._client import ChReads
from heron.server.store.clickhouse._outgoing import outgoing_calls_params, outgoing_calls_sql
from heron.server.store.traces import (
    CALL_SLACK_NS,
    COLUMN_OF_KEY,
    EndpointCalls,
    EntryFilter,
    ExampleRow,
    MatchRow,
    RequestSamples,
    SpanFilter,
    endpoint_calls,
    split_samples,
)

_MATCH_SQL = (
    "SELECT trace_id, span_id, service, name, start_ns, duration_ns FROM {db}.spans "
    "WHERE project_id = {p:UInt32} AND start_ns >= {lo:Int64} AND start_ns < {hi:Int64} "
    "AND {where} ORDER BY start_ns DESC LIMIT {limit:UInt32}"
)
_TRACE_RANGE_SQL = (
    "SELECT min(first_ns), max(last_ns) FROM {db}.trace_times "
    "WHERE project_id = {p:UInt32} AND trace_id = {t:FixedString(16)}"
)
_TRACE_SQL = (
    f"SELECT {', '.join(SPAN_COLUMNS)} FROM {{db}}.spans "  # noqa: S608 - constants only
    "WHERE project_id = {p:UInt32} AND start_ns >= {lo:Int64} AND start_ns <= {hi:Int64} "
    "AND trace_id = {t:FixedString(16)} ORDER BY start_ns, span_id"
)
_SUMMARY_SQL = (
    "SELECT trace_id, min(start_ns), max(start_ns + duration_ns), count(), "  # noqa: S608 - constants only
    f"max({ERROR_SQL}), arraySort(groupUniqArray(service)), "
    "argMin(service, (parent_id != 0, start_ns)), argMin(name, (parent_id != 0, start_ns)) "
    "FROM {db}.spans WHERE project_id = {p:UInt32} AND trace_id IN {ids:Array(FixedString(16))} "
    "GROUP BY trace_id"
)
_SUMMARY_KEYS = (
    "trace_id",
    "start_ns",
    "end_ns",
    "span_count",
    "error",
    "services",
    "root_service",
    "root_name",
)
# Entry spans with the rollups' entry rule, endpoint naming and error rule.
_SAMPLES_SQL = (
    f"SELECT service, {ENDPOINT_SQL} AS endpoint, start_ns, duration_ns, "  # noqa: S608 - constants only
    f"toUInt8({ERROR_SQL}) AS error FROM {{db}}.spans WHERE project_id = {{p:UInt32}} "
    f"AND start_ns >= {{lo:Int64}} AND start_ns < {{hi:Int64}} AND {ENTRY_SQL}"
)
_SAMPLES_ORDER = " ORDER BY start_ns"  # integers: grouping is split_samples's
_EXAMPLE_COLUMNS = f"trace_id, span_id, start_ns, duration_ns, http_status, release, {ERROR_SQL}"
_EXAMPLE_ORDER = {"slowest": "duration_ns DESC, start_ns DESC", "recent": "start_ns DESC"}


class _Params:
    """Names bound values ``v0``, ``v1``, … for one statement."""

    def __init__(self, **fixed: Any) -> None:
        self.values: dict[str, Any] = dict(fixed)

    def bind(self, value: Any, type_: str = "String") -> str:
        name = f"v{len(self.values)}"
        self.values[name] = value
        return f"{{{name}:{type_}}}"


def _json_attr(column: str, key: str, value: str, b: _Params) -> str:
    # Strings compare by value, other JSON values (numbers, booleans) by their text, as
    # DuckDB's json_extract_string does; the key is one literal key, dots and all.
    k = b.bind(key)
    return (
        f"(if(JSONType({column}, {k}) = 'String', JSONExtractString({column}, {k}), "
        f"JSONExtractRaw({column}, {k})) = {b.bind(value)})"
    )


def _attr_clause(key: str, value: str, b: _Params) -> str:
    column = COLUMN_OF_KEY.get(key)
    if column == "http_status":
        return f"http_status = toUInt16OrNull({b.bind(value)})"
    if column is not None:
        return f"{column} = {b.bind(value)}"
    return f"({_json_attr('attributes', key, value, b)} OR {_json_attr('resource', key, value, b)})"


def _endpoint_clause(endpoint: str, b: _Params) -> str:
    """Endpoint as the rollups name it (``METHOD route``), a bare route, or a span name."""
    v = b.bind(endpoint)
    clause = f"(http_route = {v} OR name = {v}"
    method, sep, route = endpoint.partition(" ")
    if sep and route:
        clause += f" OR (http_method = {b.bind(method)} AND http_route = {b.bind(route)})"
    return clause + ")"


def _span_filter(q: SpanFilter, b: _Params) -> str:
    clauses: list[str] = []
    if q.service is not None:
        clauses.append(f"service = {b.bind(q.service)}")
    if q.environment is not None:
        clauses.append(f"environment = {b.bind(q.environment)}")
    if q.endpoint is not None:
        clauses.append(_endpoint_clause(q.endpoint, b))
    if q.min_duration_ns is not None:
        clauses.append(f"duration_ns >= {b.bind(q.min_duration_ns, 'Int64')}")
    if q.max_duration_ns is not None:
        clauses.append(f"duration_ns <= {b.bind(q.max_duration_ns, 'Int64')}")
    if q.status == "error":
        clauses.append(ERROR_SQL)
    elif q.status == "ok":
        clauses.append(f"NOT {ERROR_SQL}")
    clauses += [_attr_clause(key, value, b) for key, value in q.attributes]
    return " AND ".join(clauses) or "true"


def _entry_filter(f: EntryFilter, b: _Params) -> str:
    """An endpoint's entry spans: rollup filters plus the entry and endpoint rules."""
    clauses = [f"service = {b.bind(f.service)}"]
    for column, value in (("environment", f.environment), ("release", f.release)):
        if value is not None:
            clauses.append(f"{column} = {b.bind(value)}")
    return " AND ".join([*clauses, ENTRY_SQL, f"{ENDPOINT_SQL} = {b.bind(f.endpoint)}"])


class ClickHouseTraces:
    """Implements ``store.traces.TraceReader`` on ClickHouse."""

    def __init__(self, reads: ChReads) -> None:
        self.reads = reads

    def matching_spans(
        self, project_id: int, lo_ns: int, hi_ns: int, span_filter: SpanFilter, limit: int
    ) -> list[MatchRow]:
        b = _Params(p=project_id, lo=lo_ns, hi=hi_ns, limit=limit)
        where = _span_filter(span_filter, b)
        rows = self.reads.rows(_MATCH_SQL.replace("{where}", where), b.values)
        return [(bytes(r[0]), *r[1:]) for r in rows]

    def trace_summaries(self, project_id: int, trace_ids: Sequence[bytes]) -> list[dict[str, Any]]:
        if not trace_ids:
            return []
        rows = self.reads.rows(_SUMMARY_SQL, {"p": project_id, "ids": list(trace_ids)})
        out = [dict(zip(_SUMMARY_KEYS, row, strict=True)) for row in rows]
        for r in out:
            r["trace_id"], r["error"] = bytes(r["trace_id"]), bool(r["error"])
        return out

    def trace_spans(self, project_id: int, trace_id: bytes) -> list[SpanRow]:
        params = {"p": project_id, "t": trace_id}
        (first, last), *_ = self.reads.rows(_TRACE_RANGE_SQL, params)
        if first is None or last is None:
            return []
        rows = self.reads.rows(_TRACE_SQL, {**params, "lo": first, "hi": last})
        return [SpanRow._make((r[0], bytes(r[1]), *r[2:])) for r in rows]

    def has_spans(self, project_id: int) -> bool:
        sql = "SELECT 1 FROM {db}.spans WHERE project_id = {p:UInt32} LIMIT 1"
        return bool(self.reads.rows(sql, {"p": project_id}))

    def endpoint_examples(
        self,
        project_id: int,
        where: EntryFilter,
        runs: Sequence[tuple[int, int]],
        *,
        min_duration_ns: int,
        errors_only: bool,
        order: Literal["slowest", "recent"],
        limit: int,
    ) -> list[ExampleRow]:
        b = _Params(p=project_id, min=min_duration_ns, limit=limit)
        spans = " OR ".join(
            f"(start_ns >= {b.bind(lo, 'Int64')} AND start_ns < {b.bind(hi, 'Int64')})"
            for lo, hi in runs
        )
        clause = (
            f"project_id = {{p:UInt32}} AND ({spans or 'false'}) AND duration_ns >= {{min:Int64}}"
        )
        clause += f" AND {_entry_filter(where, b)}"
        if errors_only:
            clause += f" AND {ERROR_SQL}"
        rows = self.reads.rows(
            f"SELECT {_EXAMPLE_COLUMNS} FROM {{db}}.spans WHERE {clause} "  # noqa: S608 - constants only
            f"ORDER BY {_EXAMPLE_ORDER[order]} LIMIT {{limit:UInt32}}",
            b.values,
        )
        return [(bytes(r[0]), r[1], r[2], r[3], r[4], r[5], bool(r[6])) for r in rows]

    def outgoing_calls(
        self,
        project_id: int,
        lo_ns: int,
        hi_ns: int,
        *,
        service: str | None = None,
        environment: str | None = None,
    ) -> list[EndpointCalls]:
        sql = outgoing_calls_sql(service is not None, environment is not None)
        params = outgoing_calls_params(
            project_id, lo_ns, hi_ns, hi_ns + CALL_SLACK_NS, service, environment
        )
        return endpoint_calls(self.reads.rows(sql, params))

    def request_samples(
        self,
        project_id: int,
        lo_ns: int,
        hi_ns: int,
        *,
        service: str | None = None,
        environment: str | None = None,
    ) -> list[RequestSamples]:
        b = _Params(p=project_id, lo=lo_ns, hi=hi_ns)
        sql = _SAMPLES_SQL
        for column, value in (("service", service), ("environment", environment)):
            if value is not None:
                sql += f" AND {column} = {b.bind(value)}"
        return split_samples(self.reads.arrow(sql + _SAMPLES_ORDER, b.values))
