"""Conformance: the DuckDB and ClickHouse backends give the same answers.

Every backend is fed the same spans (those of ``test_query``) through the ingest
pipeline, in two batches; each test asks a public query function and compares the
answer with DuckDB's, and checks a few figures outright. ClickHouse runs in-process
through chdb, and over HTTP through ``tests/support/chdb_server.py`` (the chdb engine
behind ClickHouse's HTTP interface, in another process: ``clickhouse-http``); with
``HERON_TEST_CLICKHOUSE_URL`` set (``http://user:pass@host:8123``) the same tests also
run against that server (see docs/clickhouse.md).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from heron.server import query
from heron.server.histogram import bucket_of
from heron.server.ingest.pipeline import Pipeline
from heron.server.query import AttrFilter, TimeRange, TraceQuery
from heron.server.store.base import StorageUnavailable, Store
from heron.server.store.clickhouse import schema
from heron.server.store.clickhouse.store import ClickHouseStore
from heron.server.store.red import RollupFilter
from tests.server.backends import BACKENDS, LONG_RETENTION, open_store
from tests.server.test_query import (
    HOUR,
    MINUTE_S,
    MS,
    NOW_NS,
    ORDER_TRACE,
    PROJECT,
    USER_DURATIONS,
    USER_ERRORS,
    USERS,
    all_spans,
    exact_quantile,
    order_trace,
    user_request,
)

ORDER_HEX = ORDER_TRACE.to_bytes(16, "big").hex()


def _feed(store: Store) -> Store:
    spans = all_spans()
    # Two batches, so the rollups hold several partial rows per key.
    Pipeline(store).submit_spans(PROJECT, spans[::2]).result(30)
    Pipeline(store).submit_spans(PROJECT, spans[1::2]).result(30)
    return store


def _open(kind: str, tmp: Path, chdb_dir: Path, request: pytest.FixtureRequest) -> Store:
    # The HTTP server starts only for the suites that ask for it.
    http_url = request.getfixturevalue("chdb_http_url") if kind == "clickhouse-http" else None
    return open_store(kind, tmp, chdb_dir, http_url=http_url)


@pytest.fixture(scope="module")
def reference(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, chdb_dir: Path
) -> Iterator[Store]:
    store = _feed(_open("duckdb", tmp_path_factory.mktemp("ref"), chdb_dir, request))
    yield store
    store.close()


@pytest.fixture(scope="module", params=[*BACKENDS, "clickhouse-http"])
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, chdb_dir: Path
) -> Iterator[Store]:
    kind = request.param
    store = _feed(_open(kind, tmp_path_factory.mktemp(kind), chdb_dir, request))
    yield store
    store.close()


def plain(value: Any) -> Any:
    """Dataclasses (and lists of them) as dicts, for comparing answers."""
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return asdict(value) if hasattr(value, "__dataclass_fields__") else value


def test_service_table(backend: Store, reference: Store) -> None:
    rows = query.service_table(backend, PROJECT, HOUR, apdex_t_ms=50)
    assert plain(rows) == plain(query.service_table(reference, PROJECT, HOUR, apdex_t_ms=50))
    api = rows[0]
    assert (api.service, api.requests, api.errors) == ("api", 206, USER_ERRORS)
    durations: list[float] = [*USER_DURATIONS, 300, *[2] * 5]
    assert api.p95_ms == pytest.approx(exact_quantile(durations, 0.95), rel=0.05)
    env = query.service_table(backend, PROJECT, HOUR, environment="staging")
    assert [r.service for r in env] == ["worker"]


def test_endpoint_table(backend: Store, reference: Store) -> None:
    rows = query.endpoint_table(backend, PROJECT, HOUR, "api", apdex_t_ms=50)
    assert plain(rows) == plain(
        query.endpoint_table(reference, PROJECT, HOUR, "api", apdex_t_ms=50)
    )
    users = next(r for r in rows if r.endpoint == USERS)
    assert users.requests == 200
    assert users.p50_ms == pytest.approx(
        exact_quantile([float(d) for d in USER_DURATIONS], 0.5), rel=0.05
    )
    by_release = query.endpoint_table(backend, PROJECT, HOUR, "api", release="2.0")
    assert [(r.endpoint, r.requests) for r in by_release] == [(USERS, 100)]


def test_time_series_and_sparklines(backend: Store, reference: Store) -> None:
    for step_s in (60, 300):
        series = query.service_timeseries(backend, PROJECT, HOUR, "api", step_s=step_s)
        expected = query.service_timeseries(reference, PROJECT, HOUR, "api", step_s=step_s)
        assert plain(series) == plain(expected)
    by_endpoint = query.service_timeseries(backend, PROJECT, HOUR, "api", endpoint=USERS)
    assert sum(p.requests for p in by_endpoint.points) == 200
    sparks = query.service_sparklines(backend, PROJECT, HOUR, now_ns=NOW_NS)
    assert plain(sparks) == plain(query.service_sparklines(reference, PROJECT, HOUR, now_ns=NOW_NS))


def test_choices_and_known_names(backend: Store, reference: Store) -> None:
    for ask in (
        lambda s: query.list_services(s, PROJECT, HOUR),
        lambda s: query.list_environments(s, PROJECT, HOUR),
        lambda s: query.list_releases(s, PROJECT, HOUR, "api"),
        lambda s: query.list_endpoints(s, PROJECT, HOUR, "api"),
    ):
        assert plain(ask(backend)) == plain(ask(reference))
    assert query.service_known(backend, PROJECT, "worker")
    assert not query.service_known(backend, PROJECT, "nobody")
    assert query.endpoint_known(backend, PROJECT, "api", USERS)
    assert not query.endpoint_known(backend, PROJECT, "api", "GET /nowhere")
    assert query.has_data(backend, PROJECT)
    assert not query.has_data(backend, PROJECT + 1)
    with pytest.raises(ValueError, match="column"):
        backend.red.top_values(RollupFilter(PROJECT, 0, MINUTE_S), "count; DROP TABLE spans --")


def test_endpoint_histogram_and_examples(backend: Store, reference: Store) -> None:
    hist = query.latency_histogram(backend, PROJECT, HOUR, "api", USERS)
    assert plain(hist) == plain(query.latency_histogram(reference, PROJECT, HOUR, "api", USERS))
    examples = query.endpoint_traces(backend, PROJECT, HOUR, "api", USERS, limit=5)
    assert plain(examples) == plain(
        query.endpoint_traces(reference, PROJECT, HOUR, "api", USERS, limit=5)
    )
    assert [e.duration_ms for e in examples.slowest][:2] == [200, 199]
    guide = backend.red.endpoint_guide(
        RollupFilter(PROJECT, MINUTE_S - 3600, MINUTE_S + 60, service="api", endpoint=USERS)
    )
    assert sum(n for _, n in guide.buckets) == 200
    assert max(b for b, _ in guide.buckets) == bucket_of(200 * MS)


@pytest.mark.parametrize(
    "trace_query",
    [
        TraceQuery(),
        TraceQuery(service="worker"),
        TraceQuery(endpoint=USERS, min_duration_ms=150, limit=20),
        TraceQuery(endpoint="POST /orders"),
        TraceQuery(status="error", limit=100),
        TraceQuery(status="ok", max_duration_ms=20),
        TraceQuery(environment="staging"),
        TraceQuery(attributes=[AttrFilter("user.tier", "gold")], limit=200),
        TraceQuery(attributes=[AttrFilter('we"ird.key', "v7")]),
        TraceQuery(attributes=[AttrFilter("http.request.body.size", "512")]),
        TraceQuery(attributes=[AttrFilter("k8s.pod.name", "api-7f9c")]),
        TraceQuery(attributes=[AttrFilter("http.response.status_code", "500")], limit=100),
    ],
    ids=lambda q: repr(q)[:60],
)
def test_trace_search(backend: Store, reference: Store, trace_query: TraceQuery) -> None:
    found = query.search_traces(backend, PROJECT, HOUR, trace_query)
    assert found, "every filter here matches some trace"
    assert plain(found) == plain(query.search_traces(reference, PROJECT, HOUR, trace_query))


def test_trace_search_counts(backend: Store) -> None:
    errors = query.search_traces(backend, PROJECT, HOUR, TraceQuery(status="error", limit=100))
    assert len(errors) == USER_ERRORS
    gold = query.search_traces(
        backend, PROJECT, HOUR, TraceQuery(attributes=[AttrFilter("user.tier", "gold")], limit=200)
    )
    assert len(gold) == 100
    assert (
        query.search_traces(
            backend, PROJECT, TimeRange(0, MINUTE_S * 10**9 - 3 * 3600 * 10**9), TraceQuery()
        )
        == []
    )


def test_trace_detail(backend: Store, reference: Store) -> None:
    trace_id = query.parse_trace_id(ORDER_HEX)
    detail = query.get_trace(backend, PROJECT, trace_id)
    assert detail is not None
    assert plain(detail) == plain(query.get_trace(reference, PROJECT, trace_id))
    assert [s.service for s in detail.spans] == ["api", "api", "worker", "worker", "worker"]
    assert query.get_trace(backend, PROJECT, (7).to_bytes(16, "big")) is None
    assert query.get_trace(backend, PROJECT + 1, trace_id) is None


def test_service_map(backend: Store, reference: Store) -> None:
    found = query.service_map(backend, PROJECT, HOUR)
    assert plain(found) == plain(query.service_map(reference, PROJECT, HOUR))
    assert [(e.caller, e.callee, e.calls) for e in found.edges] == [("api", "worker", 1)]


# ----------------------------------------------------------- ClickHouse only: the writer


@pytest.fixture(params=["clickhouse", "clickhouse-http"])
def ch_store(
    request: pytest.FixtureRequest, tmp_path: Path, chdb_dir: Path
) -> Iterator[ClickHouseStore]:
    store = _open(request.param, tmp_path, chdb_dir, request)
    assert isinstance(store, ClickHouseStore)
    yield store
    store.close()


def _rows(store: ClickHouseStore, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    return store._reads.rows(sql, params)


def test_clickhouse_schema_is_migrated_once(ch_store: ClickHouseStore) -> None:
    client = ch_store._writer_client
    assert schema.migrate(client, ch_store.database) == schema.MIGRATIONS[-1][0]
    assert _rows(ch_store, "SELECT count() FROM {db}.schema_version") == [(len(schema.MIGRATIONS),)]
    spans_ddl = _rows(ch_store, "SHOW CREATE TABLE {db}.spans")[0][0]
    for part in ("PARTITION BY toDate(", "TTL toDateTime(", "toIntervalDay(3650)", "bloom_filter"):
        assert part in spans_ddl
    with pytest.raises(ValueError, match="database name"):
        schema.database_name("heron; DROP DATABASE x")
    with pytest.raises(ValueError, match="retention"):
        schema.apply_retention(
            client, ch_store.database, retention_days=100_000, rollup_retention_days=90
        )


def test_clickhouse_trace_times_bound_a_trace(ch_store: ClickHouseStore) -> None:
    _feed(ch_store)
    got = _rows(
        ch_store,
        "SELECT min(first_ns), max(last_ns) FROM {db}.trace_times "
        "WHERE trace_id = {t:FixedString(16)}",
        t=ORDER_TRACE.to_bytes(16, "big"),
    )
    start = min(s.start_ns for s in order_trace())
    end = max(s.start_ns + s.duration_ns for s in order_trace())
    assert got == [(start, end)]


def test_clickhouse_failed_insert_is_not_acknowledged_and_recovers(
    ch_store: ClickHouseStore,
) -> None:
    spans = order_trace()
    ch_store._writer_client.command(f"DETACH TABLE {ch_store.database}.spans")
    with pytest.raises(StorageUnavailable):
        Pipeline(ch_store).submit_spans(PROJECT, spans).result(30)
    assert ch_store.health() is not None
    with pytest.raises(StorageUnavailable):
        query.has_data(ch_store, PROJECT)
    ch_store._writer_client.command(f"ATTACH TABLE {ch_store.database}.spans")
    assert Pipeline(ch_store).submit_spans(PROJECT, spans).result(30) == len(spans)
    assert ch_store.health() is None
    assert _rows(ch_store, "SELECT count() FROM {db}.spans") == [(len(spans),)]


# ------------------------------------------- ClickHouse over HTTP: two processes, one database

_OTHER_PROCESS = """
import sys
from pathlib import Path
from heron.server import query
from heron.server.ingest.pipeline import Pipeline
from heron.server.store.clickhouse.store import ClickHouseStore
from tests.server.test_query import PROJECT, user_request

url, database, state = sys.argv[1:]
store = ClickHouseStore(url, database=database, retention_days=3650,
                        rollup_retention_days=3650, state_path=Path(state))
Pipeline(store).submit_spans(PROJECT, user_request(2)).result(30)
other = query.get_trace(store, PROJECT, (1000 + 1).to_bytes(16, "big"))
print(sorted(s.name for s in other.spans) if other else None)
store.close()
"""


def test_two_processes_share_one_clickhouse_over_http(tmp_path: Path, chdb_http_url: str) -> None:
    """This process and a child process, each with its own ``ClickHouseStore`` on the
    same database of the HTTP server, write spans and read the other one's."""
    database = f"heron_test_{uuid.uuid4().hex[:12]}"
    here = ClickHouseStore(
        chdb_http_url,
        database=database,
        retention_days=LONG_RETENTION,
        rollup_retention_days=LONG_RETENTION,
        state_path=tmp_path / "here.duckdb",
    )
    try:
        assert Pipeline(here).submit_spans(PROJECT, user_request(1)).result(30) == 2
        child = subprocess.run(
            [sys.executable, "-c", _OTHER_PROCESS, chdb_http_url, database]
            + [str(tmp_path / "child.duckdb")],
            cwd=Path(__file__).resolve().parents[2],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert child.returncode == 0, child.stderr
        assert child.stdout.strip() == str(["GET /users/{id}", "SELECT users"])
        theirs = query.get_trace(here, PROJECT, (1000 + 2).to_bytes(16, "big"))
        assert theirs is not None
        assert sorted((s.name, s.duration_ms) for s in theirs.spans) == [
            ("GET /users/{id}", 2),
            ("SELECT users", 0.5),
        ]
        assert _rows(here, "SELECT count() FROM {db}.spans") == [(4,)]
    finally:
        here.close()


def test_concurrent_reads_borrow_clients_from_a_pool(tmp_path: Path, chdb_http_url: str) -> None:
    """Pages read at once each borrow a client (a clickhouse-connect client runs one query
    at a time): up to ``read_clients`` are made, and every answer is right."""
    store = ClickHouseStore(
        chdb_http_url,
        database=f"heron_test_{uuid.uuid4().hex[:12]}",
        retention_days=LONG_RETENTION,
        rollup_retention_days=LONG_RETENTION,
        state_path=tmp_path / "state.duckdb",
        read_clients=3,
    )
    try:
        _feed(store)
        expected = plain(query.service_table(store, PROJECT, HOUR, apdex_t_ms=50))
        start = threading.Barrier(6)

        def page(_: int) -> Any:
            start.wait(30)
            return plain(query.service_table(store, PROJECT, HOUR, apdex_t_ms=50))

        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(page, range(6)))
        assert answers == [expected] * 6
        assert 1 < len(store._reads._clients) <= 3
    finally:
        store.close()


def test_clickhouse_store_without_a_state_store_says_so(chdb_dir: Path) -> None:
    store = ClickHouseStore(
        f"chdb://{chdb_dir}",
        database=f"heron_test_{uuid.uuid4().hex[:12]}",
        retention_days=LONG_RETENTION,
        rollup_retention_days=LONG_RETENTION,
    )
    try:
        with pytest.raises(RuntimeError, match="no state store: give state_url or state_path"):
            _ = store.state
    finally:
        store.close()
