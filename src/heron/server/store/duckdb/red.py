"""DuckDB statements for: RED rollups: services, endpoints, time series, the service map."""

from __future__ import annotations

from heron.server.store.duckdb._sql import SqlReads


class DuckDBRed:
    """Implements ``store.red.RedReader`` on DuckDB."""

    def __init__(self, sql: SqlReads) -> None:
        self.sql = sql
