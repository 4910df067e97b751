"""Load-test runs in the state store (DuckDB, and PostgreSQL as scale-out deployments
keep state) and ``TraceReader.request_samples`` on every telemetry backend: the same
entry spans, endpoint names and error rule as the rollups, as numpy columns."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from heron.server.ingest.pipeline import Pipeline
from heron.server.model import SPAN_KIND_CLIENT, SPAN_KIND_SERVER, STATUS_ERROR, STATUS_UNSET, Span
from heron.server.model.loadtest import NewRun
from heron.server.store.base import Store
from heron.server.store.duckdb_store import DuckDBStore
from heron.server.store.loadtests import LoadTestStore
from heron.server.store.postgres.state import PostgresState
from heron.server.store.state import STATE_TABLES
from tests.server.backends import BACKENDS, open_store
from tests.server.postgres import POSTGRES_URL, drop_schema, fresh_schema

S = 10**9
MS = 10**6
T0 = 1_700_000_040 * S
P = 1


@pytest.fixture(scope="module")
def pg_schema() -> Iterator[str]:
    name = fresh_schema()
    yield name
    drop_schema(name)


@pytest.fixture(params=["duckdb", "postgres"])
def runs(request: pytest.FixtureRequest, tmp_path: Path, pg_schema: str) -> Iterator[LoadTestStore]:
    if request.param == "duckdb":
        store = DuckDBStore(tmp_path / "heron.duckdb", commit_interval_ms=0).start()
        yield store.state
        store.close()
    else:
        pg = PostgresState(POSTGRES_URL, schema=pg_schema)
        pg._pool.transaction(lambda con: con.execute("TRUNCATE loadtest_runs RESTART IDENTITY"))
        yield pg
        pg.close()


def new(name: str = "checkout", **kw: object) -> NewRun:
    return NewRun.model_validate({"name": name, **kw})


def test_a_run_is_created_finished_and_found(runs: LoadTestStore) -> None:
    run = runs.create_loadtest(
        P, new(labels={"branch": "main"}, load={"users": 10}, tool="locust"), 100 * S, 5
    )
    assert (run.status, run.end_ns, run.verdict, run.labels) == (
        "running",
        None,
        None,
        {"branch": "main"},
    )
    assert run.load == {"users": 10} and run.tool == "locust" and run.created_ns == 5
    done = runs.finish_loadtest(
        P, run.id, status="failed", end_ns=160 * S, exit_code=1, load={"requests": 9}, now_ns=6
    )
    assert done is not None
    assert (done.status, done.end_ns, done.exit_code, done.load) == (
        "failed",
        160 * S,
        1,
        {"requests": 9},
    )
    # Finishing again changes nothing (a retried request).
    again = runs.finish_loadtest(
        P, run.id, status="finished", end_ns=999 * S, exit_code=0, load=None, now_ns=7
    )
    assert again == done
    assert runs.get_loadtest(P, run.id) == done
    assert runs.get_loadtest(2, run.id) is None  # another project's
    assert (
        runs.finish_loadtest(
            P, 999, status="finished", end_ns=1, exit_code=None, load=None, now_ns=1
        )
        is None
    )


def test_finish_keeps_the_load_when_none_is_given(runs: LoadTestStore) -> None:
    run = runs.create_loadtest(P, new(load={"users": 3}), 1, 1)
    done = runs.finish_loadtest(
        P, run.id, status="finished", end_ns=2, exit_code=0, load=None, now_ns=2
    )
    assert done is not None and done.load == {"users": 3}


def test_latest_list_verdict_and_delete(runs: LoadTestStore) -> None:
    a = runs.create_loadtest(P, new(), 1, 1)
    runs.finish_loadtest(P, a.id, status="finished", end_ns=2, exit_code=0, load=None, now_ns=2)
    b = runs.create_loadtest(P, new(), 3, 3)
    runs.finish_loadtest(P, b.id, status="aborted", end_ns=4, exit_code=None, load=None, now_ns=4)
    c = runs.create_loadtest(P, new(), 5, 5)  # still running
    other = runs.create_loadtest(P, new("other"), 6, 6)
    assert a.id < b.id < c.id < other.id
    # Newest finished or failed: not the aborted nor the running one, never itself.
    latest = runs.latest_loadtest(P, "checkout")
    assert latest is not None and latest.id == a.id
    assert runs.latest_loadtest(P, "checkout", before_id=a.id) is None
    assert runs.latest_loadtest(P, "nope") is None
    assert [r.id for r in runs.list_loadtests(P)] == [other.id, c.id, b.id, a.id]
    assert [r.id for r in runs.list_loadtests(P, name="checkout", limit=2)] == [c.id, b.id]
    assert [r.id for r in runs.list_loadtests(P, before_id=b.id)] == [a.id]
    runs.set_loadtest_verdict(P, c.id, a.id, "regression", 9)
    got = runs.get_loadtest(P, c.id)
    assert got is not None and (got.verdict, got.baseline_id, got.updated_ns) == (
        "regression",
        a.id,
        9,
    )
    assert runs.delete_loadtest(P, c.id) and not runs.delete_loadtest(P, c.id)
    assert runs.get_loadtest(P, c.id) is None


@pytest.mark.parametrize("target", ["duckdb", "postgres"])
def test_heron_migrate_copies_the_runs(tmp_path: Path, pg_schema: str, target: str) -> None:
    """What ``heron migrate`` does with state: the rows of ``STATE_TABLES`` read from
    the source file, imported with their ids; new ids follow the imported ones."""
    src = DuckDBStore(tmp_path / "src.duckdb", commit_interval_ms=0).start()
    a = src.state.create_loadtest(P, new(labels={"k": "v"}), 1, 1)
    src.state.finish_loadtest(
        P, a.id, status="finished", end_ns=2, exit_code=0, load={"n": 1}, now_ns=2
    )
    b = src.state.create_loadtest(P, new(), 3, 3)
    src.state.set_loadtest_verdict(P, b.id, a.id, "pass", 4)
    cols = ", ".join(STATE_TABLES["loadtest_runs"])
    rows = src.read(f"SELECT {cols} FROM loadtest_runs")  # noqa: S608 - constants
    before = [src.state.get_loadtest(P, i) for i in (a.id, b.id)]
    src.close()
    if target == "duckdb":
        dst_store = DuckDBStore(tmp_path / "dst.duckdb", commit_interval_ms=0).start()
        dst: Any = dst_store.state
    else:
        dst = PostgresState(POSTGRES_URL, schema=pg_schema)
        dst._pool.transaction(lambda con: con.execute("TRUNCATE loadtest_runs RESTART IDENTITY"))
    try:
        assert dst.import_state({"loadtest_runs": rows}) == {"loadtest_runs": 2}
        assert dst.import_state({"loadtest_runs": rows}) == {"loadtest_runs": 0}
        assert [dst.get_loadtest(P, i) for i in (a.id, b.id)] == before
        assert dst.create_loadtest(P, new(), 5, 5).id > b.id
    finally:
        dst_store.close() if target == "duckdb" else dst.close()


# ------------------------------------------------------------ request samples


def span(
    trace: int, t_ms: int, dur_ms: int, *, route: str = "/a", service: str = "api",
    error: bool = False, http_status: int = 200, child: bool = False, env: str = "prod",
) -> Span:  # fmt: skip
    return Span(
        trace_id=trace.to_bytes(16, "big"),
        span_id=2 if child else 1,
        parent_id=1 if child else 0,
        start_ns=T0 + t_ms * MS,
        duration_ns=dur_ms * MS,
        name="SELECT" if child else f"GET {route}",
        kind=SPAN_KIND_CLIENT if child else SPAN_KIND_SERVER,
        status=STATUS_ERROR if error else STATUS_UNSET,
        status_message="",
        service=service,
        environment=env,
        release="1.0",
        http_method=None if child else "GET",
        http_route=None if child else route,
        http_status=None if child else http_status,
    )


SPANS = [
    span(1, 0, 10),
    span(1, 1, 2, child=True),  # not an entry span
    span(2, 5, 30, error=True),
    span(3, 7, 20, http_status=503),
    span(4, 3, 40, route="/b"),
    span(5, 4, 50, service="worker", env="dev"),
    span(6, 60_000, 99),  # outside the window
]


@pytest.fixture(scope="module", params=BACKENDS)
def telemetry(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, chdb_dir: Path
) -> Iterator[Store]:
    store = open_store(request.param, tmp_path_factory.mktemp("samples"), chdb_dir)
    Pipeline(store).submit_spans(P, SPANS).result(30)
    yield store
    store.close()


def test_request_samples_are_entry_spans_per_endpoint(telemetry: Store) -> None:
    got = telemetry.traces.request_samples(P, T0, T0 + 60 * S)
    assert [(s.service, s.endpoint) for s in got] == [
        ("api", "GET /a"), ("api", "GET /b"), ("worker", "GET /a"),
    ]  # fmt: skip
    a = got[0]
    assert a.start_ns.dtype == np.int64 and a.error.dtype == np.bool_
    assert (a.start_ns - T0).tolist() == [0, 5 * MS, 7 * MS]  # by start time
    assert (a.duration_ns // MS).tolist() == [10, 30, 20]
    assert a.error.tolist() == [False, True, True]  # status error, HTTP 5xx
    only = telemetry.traces.request_samples(P, T0, T0 + 60 * S, service="worker")
    assert [(s.service, s.endpoint, len(s.start_ns)) for s in only] == [("worker", "GET /a", 1)]
    env = telemetry.traces.request_samples(P, T0, T0 + 60 * S, environment="prod")
    assert [s.service for s in env] == ["api", "api"]
    assert telemetry.traces.request_samples(P, T0 + 61 * S, T0 + 62 * S) == []
    assert telemetry.traces.request_samples(2, T0, T0 + 60 * S) == []


def test_summary_and_comparison_on_every_backend(telemetry: Store) -> None:
    """The query layer over each backend's readers: same figures, same statuses."""
    from heron.server.analyze.loadtest_stats import Settings
    from heron.server.query.loadtest import compare_runs, run_summary

    state = telemetry.state
    base = state.create_loadtest(P, new("w", service="api"), T0, 1)
    base = state.finish_loadtest(
        P, base.id, status="finished", end_ns=T0 + 60 * S, exit_code=0, load=None, now_ns=2
    )
    run = state.create_loadtest(P, new("w", service="api"), T0, 3)
    run = state.finish_loadtest(
        P, run.id, status="finished", end_ns=T0 + 60 * S, exit_code=0, load=None, now_ns=4
    )
    assert base is not None and run is not None
    summary = run_summary(telemetry, P, run, now_ns=T0 + 3600 * S)
    assert summary["requests"] == 4
    a, b = summary["endpoints"]
    assert (a["endpoint"], a["requests"], a["error_rate"]) == ("GET /a", 3, 2 / 3)
    assert a["p50_ms"] == 20.0 and a["throughput_rps"] == 3 / 60
    assert (b["endpoint"], b["requests"], b["p95_ms"]) == ("GET /b", 1, 40.0)
    cmp = compare_runs(telemetry, P, run, base, Settings(min_requests=2), now_ns=5)
    assert [(e["endpoint"], e["status"]) for e in cmp["endpoints"]] == [
        ("GET /a", "unchanged"), ("GET /b", "insufficient-data"),
    ]  # fmt: skip
    assert cmp["verdict"] == "pass" and cmp["run"]["verdict"] == "pass"
    stored = state.get_loadtest(P, run.id)
    assert stored is not None and stored.baseline_id == base.id
