"""ClickHouse statements for: log records (search and the logs of a trace).

A row's position is the ``position`` column the event writer assigns (increasing in
write order, like DuckDB's ``rowid``). Text search is ``lowerUTF8(body) LIKE
lowerUTF8(pattern)`` with the caller's text bound as a parameter and its ``%``, ``_``
and ``\\`` escaped, so it matches literally and case-insensitively; the n-gram bloom
filter on ``lowerUTF8(body)`` skips granules without the text. A trace's logs are found
through the bloom filter on ``trace_id``.
"""

from __future__ import annotations

from typing import Any

from heron.server.store.clickhouse._client import ChReads
from heron.server.store.logs import Row

_COLUMNS = (
    "position, time_ns, observed_ns, trace_id, span_id, service, environment, release, "
    "severity_number, severity_text, logger, body, attributes, event_id"
)
_FILTERS = (
    ("service", "service = {service:String}"),
    ("environment", "environment = {environment:String}"),
    ("trace_id", "trace_id = {trace_id:FixedString(16)}"),
)


def like_contains(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere, literally (backslash escapes)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _row(r: tuple[Any, ...]) -> Row:
    """LOG_ROW with the trace id as ``bytes`` (or None)."""
    return (*r[:3], bytes(r[3]) if r[3] is not None else None, *r[4:])


class ClickHouseLogs:
    """Implements ``store.logs.LogReader`` on ClickHouse."""

    def __init__(self, reads: ChReads) -> None:
        self.reads = reads

    def search(
        self,
        project_id: int,
        start_ns: int,
        end_ns: int,
        *,
        service: str | None = None,
        environment: str | None = None,
        trace_id: bytes | None = None,
        min_severity: int | None = None,
        text: str | None = None,
        before: tuple[int, int] | None = None,
        limit: int,
    ) -> list[Row]:
        clauses = ["project_id = {p:UInt32}", "time_ns >= {lo:Int64}", "time_ns < {hi:Int64}"]
        params: dict[str, Any] = {"p": project_id, "lo": start_ns, "hi": end_ns, "limit": limit}
        given = {"service": service, "environment": environment, "trace_id": trace_id}
        for name, clause in _FILTERS:
            if given[name] is not None:
                clauses.append(clause)
                params[name] = given[name]
        if min_severity:
            clauses.append("severity_number >= {sev:UInt8}")
            params["sev"] = min_severity
        if text:
            clauses.append("lowerUTF8(body) LIKE lowerUTF8({text:String})")
            params["text"] = like_contains(text)
        if before is not None:
            clauses.append(
                "(time_ns < {bt:Int64} OR (time_ns = {bt:Int64} AND position < {bp:UInt64}))"
            )
            params["bt"], params["bp"] = before
        rows = self.reads.rows(
            f"SELECT {_COLUMNS} FROM {{db}}.logs WHERE {' AND '.join(clauses)} "  # noqa: S608 - constants only
            "ORDER BY time_ns DESC, position DESC LIMIT {limit:UInt32}",
            params,
        )
        return [_row(r) for r in rows]

    def trace_logs(self, project_id: int, trace_id: bytes, limit: int) -> list[Row]:
        rows = self.reads.rows(
            f"SELECT {_COLUMNS} FROM {{db}}.logs "  # noqa: S608 - constants only
            "WHERE project_id = {p:UInt32} AND trace_id = {t:FixedString(16)} "
            "ORDER BY time_ns, position LIMIT {limit:UInt32}",
            {"p": project_id, "t": trace_id, "limit": limit},
        )
        return [_row(r) for r in rows]

    def services(self, project_id: int, start_ns: int, end_ns: int) -> list[str]:
        rows = self.reads.rows(
            "SELECT DISTINCT service FROM {db}.logs WHERE project_id = {p:UInt32} "
            "AND time_ns >= {lo:Int64} AND time_ns < {hi:Int64} ORDER BY service",
            {"p": project_id, "lo": start_ns, "hi": end_ns},
        )
        return [r[0] for r in rows]
