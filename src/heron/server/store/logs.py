"""Log records: search and the logs of a trace.

The protocol the query layer (and jobs) call; each backend implements it
(DuckDB: ``store/duckdb/logs.py``). No SQL above ``store/``."""

from __future__ import annotations

from typing import Protocol


class LogReader(Protocol):
    """Filled in by issue 10's storage seam, one method per question."""
