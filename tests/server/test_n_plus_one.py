"""N+1 detection on a real store: which repeats are found, and that re-runs are safe.

Every test runs on each backend of ``tests/server/backends.py`` (DuckDB, ClickHouse in
process) but the retention test, which is DuckDB's (see there).

The first test traces a small SQLite shop with the OpenTelemetry SDK (as any app would),
ships the spans as an OTLP request through the server's decoder, and checks that the
endpoint loading children in a loop is found while the one using a join is not. The
rest build spans directly to pin the rules: repeats, thresholds, parents, HTTP URL
templates, endpoints, and idempotent re-runs with late spans.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from heron.server import query
from heron.server.ingest.otlp import decode_protobuf_batch
from heron.server.ingest.pipeline import Pipeline
from heron.server.jobs import Maintenance
from heron.server.model import SPAN_KIND_CLIENT, SPAN_KIND_INTERNAL, SPAN_KIND_SERVER, Span
from heron.server.query import TimeRange
from heron.server.store.base import Store
from heron.server.store.clickhouse.store import ClickHouseStore
from heron.server.store.duckdb_store import DuckDBStore
from tests.server.backends import BACKENDS, open_store

MS = 1_000_000
S = 1_000_000_000
NOW = 1_800_000_000 * S
RANGE = TimeRange(NOW - 3600 * S, NOW + 60 * S)


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path, chdb_dir: Path) -> Iterator[Store]:
    s = open_store(request.param, tmp_path, chdb_dir)
    try:
        yield s
    finally:
        s.close()


def stored_repeats(store: Store) -> list[tuple[int, int]]:
    """``(rows, sum of their counts)`` of the recorded repeat groups, read from the
    backend's own table (on ClickHouse as readers see it: FINAL)."""
    if isinstance(store, ClickHouseStore):
        sql = "SELECT count(), sum(count) FROM {db}.n_plus_one FINAL"
        return [(int(n), int(c or 0)) for n, c in store._reads.rows(sql)]
    assert isinstance(store, DuckDBStore)
    return [
        (int(n), int(c or 0)) for n, c in store.read("SELECT count(*), sum(count) FROM n_plus_one")
    ]


def analyze(store: Store, now: int = NOW) -> int:
    m = Maintenance(store, retention_days=7, rollup_retention_days=30, clock=lambda: now)
    return m.analyze_once()


def findings(store: Store, **kw: Any) -> list[query.NPlusOneFinding]:
    return query.n_plus_one_findings(store, 1, RANGE, **kw)


# ------------------------------------------------------------- a real app, a real SDK


SCHEMA = """
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT);
CREATE TABLE order_items (id INTEGER PRIMARY KEY, order_id INTEGER, sku TEXT, qty INTEGER);
CREATE INDEX order_items_order ON order_items (order_id);
"""


class Shop:
    """Two endpoints listing orders with their items: one loops, one joins."""

    def __init__(self) -> None:
        self.db = sqlite3.connect(":memory:")
        self.db.executescript(SCHEMA)
        for o in range(1, 13):
            self.db.execute("INSERT INTO orders VALUES (?, ?)", (o, f"c{o}"))
            for i in range(3):
                self.db.execute(
                    "INSERT INTO order_items (order_id, sku, qty) VALUES (?, ?, ?)",
                    (o, f"sku-{i}", i + 1),
                )
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider(resource=Resource.create({"service.name": "shop"}))
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer("shop")

    def sql(self, statement: str, params: tuple[Any, ...] = ()) -> list[Any]:
        attrs = {"db.system.name": "sqlite", "db.query.text": statement}
        name = f"SELECT {'order_items' if 'order_items' in statement else 'orders'}"
        with self.tracer.start_as_current_span(name, kind=SpanKind.CLIENT, attributes=attrs):
            return self.db.execute(statement, params).fetchall()

    def request(self, route: str) -> None:
        attrs = {"http.request.method": "GET", "http.route": route}
        with self.tracer.start_as_current_span(
            f"GET {route}", kind=SpanKind.SERVER, attributes=attrs
        ):
            if route == "/orders-loop":
                for (order_id,) in self.sql("SELECT id FROM orders ORDER BY id LIMIT 10"):
                    self.sql("SELECT sku, qty FROM order_items WHERE order_id = ?", (order_id,))
            else:
                self.sql(
                    "SELECT o.id, i.sku, i.qty FROM orders o "
                    "JOIN order_items i ON i.order_id = o.id ORDER BY o.id LIMIT 30"
                )

    def ship(self, store: Store) -> None:
        """Send what was traced as one OTLP/protobuf request body, via the decoder."""
        body = encode_spans(self.exporter.get_finished_spans()).SerializeToString()
        result = decode_protobuf_batch(body)
        assert result.rejected == 0
        Pipeline(store).submit_spans(1, result.spans).result(10)


def test_a_loop_over_children_is_found_and_a_join_is_not(store: Store) -> None:
    shop = Shop()
    for _ in range(3):
        shop.request("/orders-loop")
        shop.request("/orders-join")
    shop.ship(store)
    analyze(store, time.time_ns() + 60 * S)
    live = TimeRange(time.time_ns() - 3600 * S, time.time_ns() + 60 * S)
    # SQLite in memory answers in microseconds: look at repeats, whatever their time.
    found = query.n_plus_one_findings(store, 1, live, min_total_ms=0)
    assert [(f.endpoint, f.kind, f.display) for f in found] == [
        ("GET /orders-loop", "db", "SELECT sku, qty FROM order_items WHERE order_id = ?")
    ]
    (f,) = found
    assert (f.occurrences, f.requests, f.calls, f.max_repeats) == (3, 3, 30, 10)
    assert f.db_system == "sqlite" and f.service == "shop"
    assert query.n_plus_one_findings(store, 1, live, endpoint="GET /orders-join") == []
    # The default time threshold (50 ms in all) is far above what these repeats took.
    assert query.n_plus_one_findings(store, 1, live) == []


# ------------------------------------------------------------------ the rules, pinned


def span(
    trace: int,
    span_id: int,
    parent: int,
    start_ms: float,
    dur_ms: float,
    name: str,
    *,
    kind: int = SPAN_KIND_CLIENT,
    service: str = "shop",
    **kw: Any,
) -> Span:
    return Span(
        trace_id=trace.to_bytes(16, "big"),
        span_id=span_id,
        parent_id=parent,
        start_ns=NOW - 120 * S + round(start_ms * MS),
        duration_ns=round(dur_ms * MS),
        name=name,
        kind=kind,
        status=0,
        status_message="",
        service=service,
        environment="prod",
        release="1",
        **kw,
    )


def request(trace: int, route: str, dur_ms: float = 500, **kw: Any) -> Span:
    return span(
        trace,
        1,
        0,
        0,
        dur_ms,
        f"GET {route}",
        kind=SPAN_KIND_SERVER,
        http_method="GET",
        http_route=route,
        http_status=200,
        **kw,
    )


def queries(
    trace: int, parent: int, n: int, dur_ms: float, sql: str = "SELECT * FROM items WHERE id = {}"
) -> list[Span]:
    return [
        span(
            trace,
            1000 * parent + i,
            parent,
            1 + i * (dur_ms + 0.1),
            dur_ms,
            "SELECT items",
            db_system="postgresql",
            db_statement=sql.format(i),
        )
        for i in range(n)
    ]


def test_repeats_and_time_thresholds(store: Store) -> None:
    spans = [request(1, "/a"), *queries(1, 1, 5, 12)]  # 5 × 12 ms = 60 ms: a finding
    spans += [request(2, "/b"), *queries(2, 1, 5, 9)]  # 45 ms: repeated, but quick
    spans += [request(3, "/c"), *queries(3, 1, 4, 30)]  # 4 repeats: not recorded
    Pipeline(store).submit_spans(1, spans).result(10)
    assert analyze(store) == 2
    assert [f.endpoint for f in findings(store)] == ["GET /a"]
    assert {f.endpoint for f in findings(store, min_total_ms=40)} == {"GET /a", "GET /b"}
    assert findings(store, min_count=6) == []
    (a,) = findings(store, endpoint="GET /a")
    assert (a.calls, a.total_time_ms, a.wasted_time_ms) == (5, 60.0, 48.0)
    assert a.display == "SELECT * FROM items WHERE id = ?"
    assert a.example_trace_id == f"{1:032x}" and a.example_span_id == f"{1000:016x}"


def test_the_same_query_under_different_parents_is_no_repeat(store: Store) -> None:
    spans = [request(1, "/a")]
    spans += [span(1, 2, 1, 0, 100, "load", kind=SPAN_KIND_INTERNAL)]
    spans += [span(1, 3, 1, 100, 100, "load", kind=SPAN_KIND_INTERNAL)]
    spans += queries(1, 2, 3, 20) + queries(1, 3, 3, 20)
    Pipeline(store).submit_spans(1, spans).result(10)
    assert analyze(store) == 0


def test_endpoint_is_the_request_the_repeats_ran_under(store: Store) -> None:
    # shop GET /a → internal span → 5 queries; shop calls inventory, whose request
    # GET /stock runs 6 queries of its own under an internal span.
    spans = [request(1, "/a"), span(1, 2, 1, 1, 200, "work", kind=SPAN_KIND_INTERNAL)]
    spans += queries(1, 2, 5, 20)
    spans += [span(1, 3, 1, 250, 200, "GET", http_method="GET")]
    stock = span(
        1,
        4,
        3,
        252,
        190,
        "GET /stock",
        kind=SPAN_KIND_SERVER,
        service="inventory",
        http_method="GET",
        http_route="/stock",
    )
    spans += [stock, span(1, 5, 4, 253, 180, "check", kind=SPAN_KIND_INTERNAL, service="inventory")]
    spans += [
        span(
            1,
            5000 + i,
            5,
            254 + i * 25,
            20,
            "SELECT stock",
            service="inventory",
            db_system="mysql",
            db_statement=f"SELECT qty FROM stock WHERE sku = 'sku-{i}'",  # noqa: S608 - span data, never run
        )
        for i in range(6)
    ]
    Pipeline(store).submit_spans(1, spans).result(10)
    assert analyze(store) == 2
    got = {(f.service, f.endpoint, f.display) for f in findings(store)}
    assert got == {
        ("shop", "GET /a", "SELECT * FROM items WHERE id = ?"),
        ("inventory", "GET /stock", "SELECT qty FROM stock WHERE sku = ?"),
    }


def test_repeated_http_calls_are_grouped_by_url_template(store: Store) -> None:
    def call(i: int, url: str, **extra: Any) -> Span:
        return span(
            1,
            100 + i,
            1,
            1 + i * 15,
            14,
            "GET",
            http_method="GET",
            attributes={**extra, "url.full": url},
        )

    spans = [request(1, "/product")]
    spans += [call(i, f"http://inventory:8001/stock/{i}?fresh=1") for i in range(6)]
    spans += [call(10 + i, f"http://inventory:8001/{name}/1") for i, name in enumerate("abcde")]
    Pipeline(store).submit_spans(1, spans).result(10)
    analyze(store)
    (f,) = findings(store, kind="http")
    assert f.display == "GET http://inventory:8001/stock/{id}"
    assert (f.kind, f.db_system, f.calls, f.total_time_ms) == ("http", None, 6, 84.0)
    assert findings(store, kind="db") == []


def test_calls_without_a_url_are_templated_from_address_port_and_path(store: Store) -> None:
    # The port is a JSON number: read as its text, as DuckDB's json_extract_string does.
    spans = [request(1, "/product")]
    spans += [
        span(
            1,
            100 + i,
            1,
            1 + i * 15,
            14,
            "GET",
            http_method="GET",
            attributes={"server.address": "inventory", "server.port": 8001, "url.path": f"/s/{i}"},
        )
        for i in range(5)
    ]
    Pipeline(store).submit_spans(1, spans).result(10)
    analyze(store)
    (f,) = findings(store, kind="http")
    assert (f.display, f.calls) == ("GET inventory:8001/s/{id}", 5)


def test_findings_group_per_endpoint_and_fingerprint(store: Store) -> None:
    spans = [request(1, "/orders"), *queries(1, 1, 10, 10)]
    spans += [request(2, "/orders"), *queries(2, 1, 20, 10)]
    spans += [request(3, "/orders"), *queries(3, 1, 2, 10)]
    spans += [request(4, "/other"), *queries(4, 1, 8, 10)]
    Pipeline(store).submit_spans(1, spans).result(10)
    analyze(store)
    orders, other = findings(store)
    assert (orders.endpoint, orders.occurrences, orders.requests) == ("GET /orders", 2, 3)
    assert (orders.calls, orders.avg_repeats, orders.max_repeats) == (30, 15.0, 20)
    assert orders.total_time_ms == pytest.approx(300.0)
    assert orders.wasted_time_ms == pytest.approx(100 * 9 / 10 + 200 * 19 / 20)
    assert orders.example_trace_id == f"{2:032x}"  # the occurrence that took longest
    assert (other.endpoint, other.calls) == ("GET /other", 8)
    assert orders.fingerprint == other.fingerprint
    by_count = findings(store, sort="calls")
    assert [f.calls for f in by_count] == [30, 8]


def test_re_runs_and_late_spans_never_duplicate(store: Store) -> None:
    first = [request(1, "/a"), *queries(1, 1, 6, 10)]
    Pipeline(store).submit_spans(1, first).result(10)
    assert analyze(store) == analyze(store) == 1
    late = [
        span(
            1,
            9000 + i,
            1,
            200 + i * 11,
            10,
            "SELECT items",
            db_system="postgresql",
            db_statement=f"SELECT * FROM items WHERE id = {100 + i}",  # noqa: S608 - span data, never run
        )
        for i in range(3)
    ]
    Pipeline(store).submit_spans(1, late).result(10)
    assert analyze(store, NOW + 30 * S) == 1
    (f,) = findings(store)
    assert (f.occurrences, f.calls) == (1, 9)
    assert stored_repeats(store)[0][0] == 1
    # Once the group is older than the window, later runs leave its row alone.
    assert analyze(store, NOW + 3600 * S) == 0
    assert stored_repeats(store) == [(1, 9)]


def test_retention_deletes_old_findings(tmp_path: Path) -> None:
    # DuckDB only: its upkeep deletes by Heron's clock, which the test moves three days
    # on. ClickHouse's retention is each table's TTL, counted by the server's wall clock
    # (test_clickhouse_upkeep_prunes_names_and_tables_expire covers it).
    store = DuckDBStore(tmp_path / "h.duckdb", commit_interval_ms=0).start()
    try:
        _retention_deletes_old_findings(store)
    finally:
        store.close()


def _retention_deletes_old_findings(store: DuckDBStore) -> None:
    Pipeline(store).submit_spans(1, [request(1, "/a"), *queries(1, 1, 6, 10)]).result(10)
    analyze(store)
    m = Maintenance(
        store, retention_days=1, rollup_retention_days=1, clock=lambda: NOW + 3 * 86_400 * S
    )
    m.run_once()
    for table in ("n_plus_one", "db_rollup_1m", "sql_fingerprints", "spans"):
        assert store.read(f"SELECT count(*) FROM {table}") == [(0,)], table  # noqa: S608


def test_the_maintenance_thread_runs_analysis_on_its_own(store: Store) -> None:
    Pipeline(store).submit_spans(1, [request(1, "/a"), *queries(1, 1, 6, 10)]).result(10)
    m = Maintenance(
        store,
        retention_days=7,
        rollup_retention_days=30,
        interval_s=3600,
        analysis_interval_s=0.05,
        clock=lambda: NOW,
    )
    m.start()
    try:
        deadline = time.monotonic() + 10
        while not findings(store) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        m.stop()
    assert [f.endpoint for f in findings(store)] == ["GET /a"]


# ---------------------------------------------------- replacing a window, on each backend


def test_a_late_entry_span_moves_findings_and_statistics_to_its_endpoint(store: Store) -> None:
    # The queries arrive before their request: until it does, they ran under no endpoint.
    Pipeline(store).submit_spans(1, queries(1, 1, 6, 10)).result(10)
    assert analyze(store) == 1
    (early,) = findings(store)
    assert (early.endpoint, early.calls) == ("", 6)
    fp = int(early.fingerprint, 16)
    detail = query.query_detail(store, 1, RANGE, fp)
    assert detail is not None
    assert [(e.endpoint, e.calls) for e in detail.endpoints] == [("", 6)]
    Pipeline(store).submit_spans(1, [request(1, "/a")]).result(10)
    assert analyze(store) == 1
    # The window's rows under '' are replaced, not kept beside the new ones.
    assert [(f.endpoint, f.calls) for f in findings(store)] == [("GET /a", 6)]
    detail = query.query_detail(store, 1, RANGE, fp)
    assert detail is not None
    assert [(e.endpoint, e.calls) for e in detail.endpoints] == [("GET /a", 6)]
    assert [q.calls for q in query.top_queries(store, 1, RANGE)] == [6]
    assert stored_repeats(store) == [(1, 6)]


def test_readers_never_count_a_window_twice(store: Store) -> None:
    Pipeline(store).submit_spans(1, [request(1, "/a"), *queries(1, 1, 6, 10)]).result(10)
    analyze(store)
    stop = threading.Event()
    seen: list[tuple[int, int]] = []

    def read() -> None:
        while not stop.is_set():
            calls = sum(q.calls for q in query.top_queries(store, 1, RANGE))
            seen.append((calls, sum(f.calls for f in findings(store))))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for _ in range(15):  # each run replaces the whole window while the reader reads
            assert analyze(store) == 1
    finally:
        stop.set()
        reader.join()
    assert seen and set(seen) == {(6, 6)}


# ---------------------------------------------------------------- ClickHouse's upkeep


def test_clickhouse_upkeep_prunes_names_and_tables_expire(tmp_path: Path, chdb_dir: Path) -> None:
    store = open_store("clickhouse", tmp_path, chdb_dir)
    assert isinstance(store, ClickHouseStore)
    try:
        for table, column in (
            ("db_rollup_1m", "toDateTime(minute_s)"),
            ("n_plus_one", "toDateTime(intDiv(start_ns, 1000000000))"),
        ):
            ddl = store._reads.rows(f"SHOW CREATE TABLE {{db}}.{table}")[0][0]
            assert f"TTL {column} + toIntervalDay(3650)" in ddl, ddl
            assert "ReplacingMergeTree(version, is_deleted)" in ddl
        Pipeline(store).submit_spans(1, [request(1, "/a"), *queries(1, 1, 6, 10)]).result(10)
        analyze(store)
        assert store.db.has_query_stats()
        late = Maintenance(
            store, retention_days=1, rollup_retention_days=1, clock=lambda: NOW + 3 * 86_400 * S
        )
        # Retention is the TTL (ClickHouse's clock): upkeep deletes no spans itself, and
        # keeps the name of a fingerprint its statistics still use.
        assert late.run_once() == 0
        assert store.db.has_query_stats()
        # Once no statistic uses it (the window replaced by an empty one) and a merge has
        # collapsed the old rows into their tombstones, it goes.
        empty = store.db.query_stat_rollup(NOW // S + 3600, NOW)
        assert empty.num_rows == 0
        store.db.replace_analysis((NOW - 3600 * S) // S, empty, [], 0, [])
        assert late.run_once() == 0 and store.db.has_query_stats()
        store._writes.command("OPTIMIZE TABLE {db}.db_rollup_1m FINAL")
        assert late.run_once() == 0
        assert not store.db.has_query_stats()
        assert findings(store) == [] and query.top_queries(store, 1, RANGE) == []
    finally:
        store.close()
