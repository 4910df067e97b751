"""The span record's one declaration: its columns match the stored table, and its rules
(entry span, endpoint, error) give the same answers in Python, in SQL and in rollups."""

from __future__ import annotations

import itertools
from pathlib import Path

from heron.server.ingest.pipeline import Pipeline
from heron.server.model.span import (
    ENDPOINT_SQL,
    ENTRY_SQL,
    ERROR_SQL,
    SPAN_COLUMN_TYPES,
    SPAN_COLUMNS,
    Span,
    SpanBatch,
    SpanRow,
)
from heron.server.store.duckdb_store import DuckDBStore

NOW = 1_700_000_000 * 10**9
DUCKDB_TYPES = {
    "int64": "BIGINT",
    "uint64": "UBIGINT",
    "uint16": "USMALLINT",
    "uint8": "UTINYINT",
    "bytes": "BLOB",
    "str": "VARCHAR",
}


def grid() -> list[Span]:
    """Every combination of the values the rules look at."""
    spans = []
    combos = itertools.product(
        range(6),  # kind
        (0, 77),  # parent_id
        (0, 1, 2),  # status
        (None, 200, 499, 500, 503),  # http_status
        (None, "", "GET"),  # http_method
        (None, "", "/orders/{id}"),  # http_route
    )
    for i, (kind, parent, status, http_status, method, route) in enumerate(combos):
        spans.append(
            Span(
                trace_id=(i + 1).to_bytes(16, "big"),
                span_id=i + 1,
                parent_id=parent,
                start_ns=NOW + i,
                duration_ns=1_000_000,
                name=f"op {i % 7}",
                kind=kind,
                status=status,
                status_message="",
                service="svc",
                environment="prod",
                release="1.0",
                http_method=method,
                http_route=route,
                http_status=http_status,
            )
        )
    return spans


def test_sql_rules_agree_with_the_python_rules(tmp_path: Path) -> None:
    spans = grid()
    store = DuckDBStore(tmp_path / "h.duckdb", commit_interval_ms=0).start()
    try:
        Pipeline(store).submit_spans(1, spans).result(10)
        rows = store.read(
            f"SELECT span_id, {ENTRY_SQL}, {ENDPOINT_SQL}, {ERROR_SQL} FROM spans "  # noqa: S608 - constants only
            "ORDER BY span_id"
        )
        rollup = store.read("SELECT endpoint, sum(count), sum(errors) FROM rollup_1m GROUP BY 1")
    finally:
        store.close()
    assert rows == [(s.span_id, s.is_entry, s.endpoint, s.is_error) for s in spans]
    entries = [s for s in spans if s.is_entry]
    assert 0 < len(entries) < len(spans)
    assert {e.endpoint for e in entries} == {"GET /orders/{id}", "/orders/{id}"} | {
        f"op {i}" for i in range(7)
    }
    expected: dict[str, list[int]] = {}
    for s in entries:
        counts = expected.setdefault(s.endpoint, [0, 0])
        counts[0] += 1
        counts[1] += s.is_error
    assert {endpoint: [n, errors] for endpoint, n, errors in rollup} == expected


def test_batch_entries_are_the_entry_spans_with_endpoint_and_error() -> None:
    spans = grid()
    batch = SpanBatch.from_spans(spans)
    assert list(batch) == spans
    got = [(e.span.span_id, e.endpoint, e.error) for e in batch.entries()]
    assert got == [(s.span_id, s.endpoint, s.is_error) for s in spans if s.is_entry]
    assert all(isinstance(e.span, SpanRow) for e in batch.entries())


def test_stored_spans_table_has_the_declared_columns(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "h.duckdb", commit_interval_ms=0).start()
    try:
        described = store.read("SELECT column_name, column_type FROM (DESCRIBE spans)")
    finally:
        store.close()
    declared = [(name, DUCKDB_TYPES[SPAN_COLUMN_TYPES[name]]) for name in SPAN_COLUMNS]
    assert described == [("project_id", "INTEGER"), *declared, ("db_fingerprint", "UBIGINT")]
