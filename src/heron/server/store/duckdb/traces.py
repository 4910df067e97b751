"""DuckDB statements for: Traces and spans: trace search, one trace's spans, span detail."""

from __future__ import annotations

from heron.server.store.duckdb._sql import SqlReads


class DuckDBTraces:
    """Implements ``store.traces.TraceReader`` on DuckDB."""

    def __init__(self, sql: SqlReads) -> None:
        self.sql = sql
