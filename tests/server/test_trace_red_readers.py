"""The trace and RED readers' own logic on a real DuckDB store: what the query layer
relies on beyond the SQL it used to run itself."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from heron.server.histogram import bucket_of
from heron.server.ingest.pipeline import Pipeline
from heron.server.model import SPAN_KIND_SERVER, STATUS_ERROR, STATUS_UNSET, Span
from heron.server.model.span import SpanRow
from heron.server.store.duckdb_store import DuckDBStore
from heron.server.store.red import RollupFilter
from heron.server.store.traces import EntryFilter, SpanFilter

NS = 1_000_000_000
MS = 1_000_000
MINUTE_S = 1_700_000_040
P = 1


def request(trace: int, minute: int, dur_ms: int, *, error: bool = False) -> Span:
    return Span(
        trace_id=trace.to_bytes(16, "big"),
        span_id=1,
        parent_id=0,
        start_ns=(MINUTE_S + 60 * minute + 5) * NS,
        duration_ns=dur_ms * MS,
        name="GET /a",
        kind=SPAN_KIND_SERVER,
        status=STATUS_ERROR if error else STATUS_UNSET,
        status_message="",
        service="api",
        environment="prod",
        release="1.0",
        http_method="GET",
        http_route="/a",
        http_status=200,
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DuckDBStore]:
    path: Path = tmp_path_factory.mktemp("readers") / "heron.duckdb"
    s = DuckDBStore(path, commit_interval_ms=0).start()
    spans = [request(1, 0, 10), request(2, 0, 300, error=True), request(3, 2, 10)]
    Pipeline(s).submit_spans(P, spans).result(30)
    yield s
    s.close()


def rollups(**kw: Any) -> RollupFilter:
    return RollupFilter(P, MINUTE_S, MINUTE_S + 600, **kw)


def test_endpoint_guide_splits_minutes_from_buckets(store: DuckDBStore) -> None:
    guide = store.red.endpoint_guide(rollups(service="api", endpoint="GET /a"))
    slow, fast = bucket_of(300 * MS), bucket_of(10 * MS)
    assert sorted(guide.minutes) == [(MINUTE_S, 2, 1, slow), (MINUTE_S + 120, 1, 0, fast)]
    assert sorted(guide.buckets) == sorted([(fast, 2), (slow, 1)])
    assert store.red.endpoint_guide(rollups(service="other")).minutes == []


def test_rollup_columns_come_from_an_allow_list(store: DuckDBStore) -> None:
    assert store.red.top_values(rollups(), "endpoint") == [("GET /a", 3)]
    with pytest.raises(ValueError, match="column"):
        store.red.top_values(rollups(), "count; DROP TABLE spans --")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="group"):
        store.red.group_totals(rollups(), "minute_s")  # type: ignore[arg-type]


def test_trace_spans_and_filters(store: DuckDBStore) -> None:
    rows = store.traces.trace_spans(P, (2).to_bytes(16, "big"))
    assert [type(r) for r in rows] == [SpanRow]
    assert rows[0].duration_ns == 300 * MS
    lo, hi = MINUTE_S * NS, (MINUTE_S + 600) * NS
    errors = store.traces.matching_spans(P, lo, hi, SpanFilter(status="error"), 10)
    assert [r[0] for r in errors] == [(2).to_bytes(16, "big")]
    by_status = SpanFilter(attributes=(("http.response.status_code", "200"),))
    assert len(store.traces.matching_spans(P, lo, hi, by_status, 10)) == 3
    slowest = store.traces.endpoint_examples(
        P,
        EntryFilter("api", "GET /a"),
        [(lo, hi)],
        min_duration_ns=0,
        errors_only=False,
        order="slowest",
        limit=2,
    )
    assert [r[3] for r in slowest] == [300 * MS, 10 * MS]
