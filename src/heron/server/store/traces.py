"""Traces and spans: trace search, one trace's spans, span detail.

The protocol the query layer (and jobs) call; each backend implements it
(DuckDB: ``store/duckdb/traces.py``). No SQL above ``store/``."""

from __future__ import annotations

from typing import Protocol


class TraceReader(Protocol):
    """Filled in by issue 10's storage seam, one method per question."""
