"""DuckDB statements for: Log records: search and the logs of a trace.

Text search is ``body ILIKE ?`` with the caller's text bound as a parameter and its
``%``, ``_`` and ``\\`` escaped, so the text matches literally. A row's position is its
``rowid``."""

from __future__ import annotations

from typing import Any

from heron.server.store.duckdb._sql import SqlReads
from heron.server.store.logs import Row

_COLUMNS = (
    "l.rowid, l.time_ns, l.observed_ns, l.trace_id, l.span_id, l.service, l.environment, "
    "l.release, l.severity_number, l.severity_text, l.logger, l.body, l.attributes, "
    "l.event_id"
)


def like_contains(text: str) -> str:
    """An ILIKE pattern (ESCAPE '\\') matching ``text`` anywhere, literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class DuckDBLogs:
    """Implements ``store.logs.LogReader`` on DuckDB."""

    def __init__(self, sql: SqlReads) -> None:
        self.sql = sql

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
        clauses = ["l.project_id = ?", "l.time_ns >= ?", "l.time_ns < ?"]
        params: list[Any] = [project_id, start_ns, end_ns]
        for col, value in (
            ("l.service", service),
            ("l.environment", environment),
            ("l.trace_id", trace_id),
        ):
            if value is not None:
                clauses.append(f"{col} = ?")
                params.append(value)
        if min_severity:
            clauses.append("l.severity_number >= ?")
            params.append(min_severity)
        if text:
            clauses.append("l.body ILIKE ? ESCAPE '\\'")
            params.append(like_contains(text))
        if before is not None:
            t, row = before
            clauses.append("(l.time_ns < ? OR (l.time_ns = ? AND l.rowid < ?))")
            params += [t, t, row]
        return self.sql.read(
            f"SELECT {_COLUMNS} FROM logs l WHERE {' AND '.join(clauses)} "  # noqa: S608 - constants only
            "ORDER BY l.time_ns DESC, l.rowid DESC LIMIT ?",
            [*params, limit],
        )

    def trace_logs(self, project_id: int, trace_id: bytes, limit: int) -> list[Row]:
        """Served by the index on ``trace_id``."""
        return self.sql.read(
            f"SELECT {_COLUMNS} FROM logs l "  # noqa: S608 - constants only
            "WHERE l.project_id = ? AND l.trace_id = ? ORDER BY l.time_ns, l.rowid LIMIT ?",
            [project_id, trace_id, limit],
        )

    def services(self, project_id: int, start_ns: int, end_ns: int) -> list[str]:
        rows = self.sql.read(
            "SELECT DISTINCT service FROM logs WHERE project_id = ? AND time_ns >= ? "
            "AND time_ns < ? ORDER BY 1",
            [project_id, start_ns, end_ns],
        )
        return [r[0] for r in rows]
