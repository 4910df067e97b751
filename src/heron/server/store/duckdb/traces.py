"""DuckDB statements for: Traces and spans: trace search, one trace's spans, span detail.

Searches bound ``start_ns`` so DuckDB's zone maps skip row groups outside the range.
Attribute filters use a lifted column when the key is one of its semantic-convention
names (old or current), else ``json_extract_string`` with the key as a bound JSON
pointer, which quotes any key (dots, quotes, slashes) correctly. A trace by id is
``WHERE trace_id = ?`` with the 16 raw id bytes bound, so DuckDB answers it from the ART
index on ``spans.trace_id`` instead of scanning the table.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, Literal

from heron.server.model.span import ENDPOINT_SQL, ENTRY_SQL, ERROR_SQL, SPAN_COLUMNS, SpanRow
from heron.server.store.duckdb._outgoing import outgoing_calls_params, outgoing_calls_sql
from heron.server.store.duckdb._sql import SqlReads
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

# Parameters: trace id (16 bytes), project id.
TRACE_SQL = (
    f"SELECT {', '.join(SPAN_COLUMNS)} FROM spans WHERE trace_id = ? AND project_id = ? "  # noqa: S608 - constants only
    "ORDER BY start_ns, span_id"
)
_MATCH_SQL = (
    "SELECT trace_id, span_id, service, name, start_ns, duration_ns FROM spans "
    "WHERE project_id = ? AND start_ns >= ? AND start_ns < ? AND {where} "
    "ORDER BY start_ns DESC LIMIT ?"
)
# Entry spans with the rollups' entry rule, endpoint naming and error rule.
_SAMPLES_SQL = (
    f"SELECT service, {ENDPOINT_SQL} AS endpoint, start_ns, duration_ns, {ERROR_SQL} AS error "  # noqa: S608 - constants only
    f"FROM spans WHERE project_id = ? AND start_ns >= ? AND start_ns < ? AND {ENTRY_SQL}"
)
_SAMPLES_ORDER = " ORDER BY start_ns"  # integers: grouping is split_samples's
_EXAMPLE_COLUMNS = f"trace_id, span_id, start_ns, duration_ns, http_status, release, {ERROR_SQL}"
_EXAMPLE_ORDER = {"slowest": "duration_ns DESC, start_ns DESC", "recent": "start_ns DESC"}


def _verbatim_in_json(text: str) -> bool:
    """Whether ``text`` appears unescaped in the stored JSON (orjson escapes only these)."""
    return not any(ch in ('"', "\\") or ch < " " for ch in text)


def _json_attr_clause(column: str, key: str, value: str) -> tuple[str, list[Any]]:
    # RFC 6901 pointer: only '~' and '/' need escaping, so any key is addressable.
    pointer = "/" + key.replace("~", "~0").replace("/", "~1")
    clause, params = f"json_extract_string({column}, ?) = ?", [pointer, value]
    if _verbatim_in_json(key) and _verbatim_in_json(value):
        # A cheap substring test first: the JSON text must contain both verbatim.
        clause = f"contains({column}, ?) AND contains({column}, ?) AND {clause}"
        params = [key, value, *params]
    return f"({clause})", params


def _attr_clause(key: str, value: str) -> tuple[str, list[Any]]:
    column = COLUMN_OF_KEY.get(key)
    if column == "http_status":
        return "http_status = TRY_CAST(? AS INTEGER)", [value]
    if column is not None:
        return f"{column} = ?", [value]
    span_clause, span_params = _json_attr_clause("attributes", key, value)
    res_clause, res_params = _json_attr_clause("resource", key, value)
    return f"({span_clause} OR {res_clause})", [*span_params, *res_params]


def _endpoint_clause(endpoint: str) -> tuple[str, list[Any]]:
    """Endpoint as the rollups name it (``METHOD route``), a bare route, or a span name."""
    clause, params = "(http_route = ? OR name = ?", [endpoint, endpoint]
    method, sep, route = endpoint.partition(" ")
    if sep and route:
        clause += " OR (http_method = ? AND http_route = ?)"
        params += [method, route]
    return clause + ")", params


@functools.lru_cache(maxsize=64)
def _span_filter(q: SpanFilter) -> tuple[str, tuple[Any, ...]]:
    """Conditions on one span besides project and time; constant SQL, values bound."""
    clauses: list[str] = []
    params: list[Any] = []
    if q.service is not None:
        clauses.append("service = ?")
        params.append(q.service)
    if q.environment is not None:
        clauses.append("environment = ?")
        params.append(q.environment)
    if q.endpoint is not None:
        clause, p = _endpoint_clause(q.endpoint)
        clauses.append(clause)
        params += p
    if q.min_duration_ns is not None:
        clauses.append("duration_ns >= ?")
        params.append(q.min_duration_ns)
    if q.max_duration_ns is not None:
        clauses.append("duration_ns <= ?")
        params.append(q.max_duration_ns)
    if q.status == "error":
        clauses.append(ERROR_SQL)
    elif q.status == "ok":
        clauses.append(f"NOT {ERROR_SQL}")
    for key, value in q.attributes:
        clause, p = _attr_clause(key, value)
        clauses.append(clause)
        params += p
    return " AND ".join(clauses) or "true", tuple(params)


def _entry_filter(f: EntryFilter) -> tuple[str, list[Any]]:
    """An endpoint's entry spans: rollup filters plus the entry and endpoint rules."""
    clauses, params = ["service = ?"], [f.service]
    for column, value in (("environment", f.environment), ("release", f.release)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    where = " AND ".join([*clauses, ENTRY_SQL, f"{ENDPOINT_SQL} = ?"])
    return where, [*params, f.endpoint]


class DuckDBTraces:
    """Implements ``store.traces.TraceReader`` on DuckDB."""

    def __init__(self, sql: SqlReads) -> None:
        self.sql = sql

    def matching_spans(
        self, project_id: int, lo_ns: int, hi_ns: int, span_filter: SpanFilter, limit: int
    ) -> list[MatchRow]:
        where, params = _span_filter(span_filter)
        return self.sql.read(
            _MATCH_SQL.replace("{where}", where), [project_id, lo_ns, hi_ns, *params, limit]
        )

    def trace_summaries(self, project_id: int, trace_ids: Sequence[bytes]) -> list[dict[str, Any]]:
        marks = ", ".join("?" * len(trace_ids))
        # The root is the span without a parent, else the earliest span (partial traces).
        return self.sql.read_dicts(
            "SELECT trace_id, min(start_ns) AS start_ns, "  # noqa: S608 - constants only
            "max(start_ns + duration_ns) AS end_ns, count(*) AS span_count, "
            f"bool_or({ERROR_SQL}) AS error, list(DISTINCT service ORDER BY service) AS services, "
            "arg_min(service, {'r': parent_id <> 0, 's': start_ns}) AS root_service, "
            "arg_min(name, {'r': parent_id <> 0, 's': start_ns}) AS root_name "
            f"FROM spans WHERE trace_id IN ({marks}) AND project_id = ? GROUP BY trace_id",
            [*trace_ids, project_id],
        )

    def trace_spans(self, project_id: int, trace_id: bytes) -> list[SpanRow]:
        return [SpanRow._make(row) for row in self.sql.read(TRACE_SQL, [trace_id, project_id])]

    def has_spans(self, project_id: int) -> bool:
        rows = self.sql.read("SELECT 1 FROM spans WHERE project_id = ? LIMIT 1", [project_id])
        return bool(rows)

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
        entry, params = _entry_filter(where)
        spans = " OR ".join(["(start_ns >= ? AND start_ns < ?)"] * len(runs))
        clause = f"project_id = ? AND ({spans}) AND duration_ns >= ? AND {entry}"
        if errors_only:
            clause += f" AND {ERROR_SQL}"
        return self.sql.read(
            f"SELECT {_EXAMPLE_COLUMNS} FROM spans WHERE {clause} "  # noqa: S608 - constants only
            f"ORDER BY {_EXAMPLE_ORDER[order]} LIMIT ?",
            [project_id, *(t for run in runs for t in run), min_duration_ns, *params, limit],
        )

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
        return endpoint_calls(self.sql.read(sql, params))

    def request_samples(
        self,
        project_id: int,
        lo_ns: int,
        hi_ns: int,
        *,
        service: str | None = None,
        environment: str | None = None,
    ) -> list[RequestSamples]:
        sql, params = _SAMPLES_SQL, list[Any]([project_id, lo_ns, hi_ns])
        for column, value in (("service", service), ("environment", environment)):
            if value is not None:
                sql += f" AND {column} = ?"
                params.append(value)
        return split_samples(self.sql.read_arrow(sql + _SAMPLES_ORDER, params))
