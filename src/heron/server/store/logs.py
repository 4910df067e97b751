"""Log records: search and the logs of a trace.

The protocol the query layer (and jobs) call; each backend implements it
(DuckDB: ``store/duckdb/logs.py``). No SQL above ``store/``.

A LOG_ROW is a tuple: position (an opaque, stable order of records with the same time,
used for keyset pages), time_ns, observed_ns, trace_id (bytes), span_id (int), service,
environment, release, severity_number, severity_text, logger, body, attributes (JSON
text), event_id.
"""

from __future__ import annotations

from typing import Any, Protocol

Row = tuple[Any, ...]


class LogReader(Protocol):
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
        """LOG_ROWs in the range matching every filter given, newest first (time, then
        position), older than ``before`` (time_ns, position) when given. ``text`` matches
        the body case-insensitively and literally (no wildcards)."""
        ...

    def trace_logs(self, project_id: int, trace_id: bytes, limit: int) -> list[Row]:
        """LOG_ROWs of one trace, oldest first."""
        ...

    def services(self, project_id: int, start_ns: int, end_ns: int) -> list[str]:
        """Services with log records in the range, sorted."""
        ...
