"""The UI's query functions (services, endpoints, map, critical path) on a real store."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from heron.server import query
from heron.server.histogram import bucket_of
from heron.server.ingest.pipeline import Pipeline
from heron.server.model import (
    SPAN_KIND_CLIENT,
    SPAN_KIND_INTERNAL,
    SPAN_KIND_SERVER,
    STATUS_ERROR,
    STATUS_UNSET,
    Span,
)
from heron.server.query import InvalidQuery, SpanDetail, TimeRange, TraceDetail
from heron.server.store.duckdb_store import DuckDBStore

NS = 1_000_000_000
MS = 1_000_000
MINUTE_S = 1_700_000_040
NOW_NS = (MINUTE_S + 30) * NS
HOUR = TimeRange(NOW_NS - 3600 * NS, NOW_NS)
P = 1


def span(trace: int, sid: int, parent: int = 0, *, start: int, dur_ms: float, **kw: Any) -> Span:
    fields: dict[str, Any] = {
        "name": "op",
        "kind": SPAN_KIND_SERVER,
        "status": STATUS_UNSET,
        "status_message": "",
        "service": "api",
        "environment": "prod",
        "release": "1.0",
        **kw,
    }
    return Span(
        trace_id=trace.to_bytes(16, "big"),
        span_id=sid,
        parent_id=parent,
        start_ns=start,
        duration_ns=round(dur_ms * MS),
        **fields,
    )


def seed() -> list[Span]:
    spans: list[Span] = []
    # 60 requests to "GET /items/{id}" of api: 1..60 ms, one per 50 s over the last ~50 min;
    # every 10th fails; releases alternate. Each calls db-svc (server span) via a client span.
    for i in range(1, 61):
        start = NOW_NS - 3030 * NS + i * 50 * NS
        fail = i % 10 == 0
        spans.append(
            span(
                i,
                1,
                start=start,
                dur_ms=i,
                name="GET /items/{id}",
                http_method="GET",
                http_route="/items/{id}",
                http_status=500 if fail else 200,
                release="1.0" if i % 2 else "2.0",
                environment="prod" if i <= 50 else "staging",
            )
        )
        spans.append(
            span(i, 2, 1, start=start + MS, dur_ms=i / 2, kind=SPAN_KIND_CLIENT, name="POST")
        )
        spans.append(
            span(
                i,
                3,
                2,
                start=start + 2 * MS,
                dur_ms=i / 4,
                service="db-svc",
                name="POST /q",
                status=STATUS_ERROR if fail else STATUS_UNSET,
                environment="prod" if i <= 50 else "staging",
            )
        )
    # A route-less endpoint (the span name), a stale request outside the hour, and an
    # internal child that is not an entry span.
    spans.append(span(100, 1, start=NOW_NS - 60 * NS, dur_ms=5, name="cron tick"))
    spans.append(
        span(
            100,
            2,
            1,
            start=NOW_NS - 59 * NS,
            dur_ms=1,
            name="GET /items/{id}",
            kind=SPAN_KIND_INTERNAL,
        )
    )
    spans.append(
        span(
            101,
            1,
            start=NOW_NS - 7200 * NS,
            dur_ms=9999,
            name="GET /items/{id}",
            http_method="GET",
            http_route="/items/{id}",
        )
    )
    return spans


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DuckDBStore]:
    path: Path = tmp_path_factory.mktemp("uiq") / "heron.duckdb"
    s = DuckDBStore(path, commit_interval_ms=0).start()
    Pipeline(s).submit_spans(P, seed()).result(30)
    yield s
    s.close()


# ----------------------------------------------------------------------- overview


def test_chart_step() -> None:
    assert query.chart_step_s(HOUR, 120) == 60
    assert query.chart_step_s(HOUR, 48) == 120
    day = TimeRange(NOW_NS - 86_400 * NS, NOW_NS)
    assert query.chart_step_s(day, 120) == 900
    year = TimeRange(NOW_NS - 400 * 86_400 * NS, NOW_NS)
    assert query.chart_step_s(year, 100) == 4 * 86_400
    with pytest.raises(InvalidQuery):
        query.chart_step_s(HOUR, 0)


def test_sparklines(store: DuckDBStore) -> None:
    lines = query.service_sparklines(store, P, HOUR, max_points=30)
    assert set(lines) == {"api", "db-svc"}
    api = lines["api"]
    assert api.step_s == 120 and len(api.t) == len(api.rpm) == len(api.p95_ms) == 31
    assert sum(api.rpm) * api.step_s / 60 == pytest.approx(61)  # 60 requests + cron tick
    assert all(r is None or 0 <= r <= 1 for r in api.error_rate)
    assert any(p is None for p in api.p95_ms)  # steps without requests have no p95
    staging = query.service_sparklines(store, P, HOUR, environment="staging")
    assert sum(staging["api"].rpm) * staging["api"].step_s / 60 == pytest.approx(10)


def test_filter_choices(store: DuckDBStore) -> None:
    envs = query.list_environments(store, P, HOUR)
    assert [(c.value, c.requests) for c in envs] == [("prod", 101), ("staging", 20)]
    releases = query.list_releases(store, P, HOUR, "api")
    assert {c.value: c.requests for c in releases} == {"1.0": 31, "2.0": 30}
    assert [c.value for c in query.list_services(store, P, HOUR)] == ["api", "db-svc"]
    eps = query.list_endpoints(store, P, HOUR, "api", environment="prod")
    assert [c.value for c in eps] == ["GET /items/{id}", "cron tick"]
    assert query.has_data(store, P) and not query.has_data(store, 99)


# ----------------------------------------------------------------------- endpoint


def test_latency_histogram(store: DuckDBStore) -> None:
    h = query.latency_histogram(store, P, HOUR, "api", "GET /items/{id}")
    assert h.total == 60 == sum(b.count for b in h.bins)
    assert h.bins[0].lo_ms <= 1 <= h.bins[0].hi_ms and h.bins[-1].lo_ms <= 60 <= h.bins[-1].hi_ms
    for a, b in zip(h.bins, h.bins[1:], strict=False):
        assert a.hi_ms == pytest.approx(b.lo_ms, rel=1e-3)  # contiguous, gaps included
        assert b.hi_ms / b.lo_ms == pytest.approx(2**0.25, rel=1e-3)
    assert h.p50_ms == pytest.approx(30, rel=0.06) and h.p99_ms == pytest.approx(60, rel=0.06)
    ones = query.latency_histogram(store, P, HOUR, "api", "GET /items/{id}", release="2.0")
    assert ones.total == 30
    assert query.latency_histogram(store, P, HOUR, "api", "nope").total == 0
    # The bin holding 1 ms is the one the rollup writer used.
    assert bucket_of(1 * MS) // 2 * 2 <= bucket_of(1 * MS)


def test_endpoint_traces(store: DuckDBStore) -> None:
    ex = query.endpoint_traces(store, P, HOUR, "api", "GET /items/{id}", limit=5)
    assert [t.duration_ms for t in ex.slowest] == [60, 59, 58, 57, 56]
    assert [t.trace_id for t in ex.recent] == [f"{i:032x}" for i in (60, 59, 58, 57, 56)]
    assert [t.trace_id for t in ex.errors] == [f"{i:032x}" for i in (60, 50, 40, 30, 20)]
    assert all(t.error and t.http_status == 500 for t in ex.errors)
    assert ex.slowest[0].span_id == f"{1:016x}" and ex.slowest[0].release == "2.0"
    # The internal child named like the endpoint is not an entry span: not listed.
    assert all(t.trace_id != f"{100:032x}" for t in ex.recent)
    prod = query.endpoint_traces(store, P, HOUR, "api", "GET /items/{id}", environment="prod")
    assert prod.recent[0].trace_id == f"{50:032x}"
    named = query.endpoint_traces(store, P, HOUR, "api", "cron tick")
    assert [t.trace_id for t in named.recent] == [f"{100:032x}"]
    with pytest.raises(InvalidQuery):
        query.endpoint_traces(store, P, HOUR, "api", "x", limit=0)


def reference_traces(store: DuckDBStore, tr: TimeRange, limit: int) -> list[list[str]]:
    """The three lists by brute force: every entry span of the endpoint in the range."""
    rows = store.read(
        "SELECT trace_id, start_ns, duration_ns, (status = 2 OR coalesce(http_status, 0) >= 500) "
        "FROM spans WHERE start_ns >= ? AND start_ns < ? AND service = 'api' "
        "AND http_route = '/items/{id}' AND kind = 2",
        [tr.start_ns, tr.end_ns],
    )
    slowest = sorted(rows, key=lambda r: (-r[2], -r[1]))[:limit]
    recent = sorted(rows, key=lambda r: -r[1])[:limit]
    errors = sorted((r for r in rows if r[3]), key=lambda r: -r[1])[:limit]
    return [[r[0].hex() for r in x] for x in (slowest, recent, errors)]


@pytest.mark.parametrize("seed_value", range(12))
def test_endpoint_traces_match_a_full_scan(store: DuckDBStore, seed_value: int) -> None:
    # Ranges whose ends cut minutes anywhere: the rollup guide must never change answers.
    import random

    rng = random.Random(seed_value)
    start = NOW_NS - rng.randrange(60, 3100) * NS - rng.randrange(NS)
    end = min(start + rng.randrange(30, 3000) * NS + rng.randrange(NS), NOW_NS)
    tr = TimeRange(start, end)
    limit = rng.choice((1, 3, 10))
    ex = query.endpoint_traces(store, P, tr, "api", "GET /items/{id}", limit=limit)
    got = [[t.trace_id for t in x] for x in (ex.slowest, ex.recent, ex.errors)]
    assert got == reference_traces(store, tr, limit)


# ----------------------------------------------------------------------- map


def test_service_map(store: DuckDBStore) -> None:
    smap = query.service_map(store, P, HOUR)
    assert smap.services == ["api", "db-svc"]
    [edge] = smap.edges
    assert (edge.caller, edge.callee, edge.calls, edge.errors) == ("api", "db-svc", 60, 6)
    assert edge.error_rate == pytest.approx(0.1)
    # Over the minutes since the edge's first call (its minute starts 50.5 min before now).
    assert edge.rpm == pytest.approx(60 / 50.5, abs=1e-3)
    assert edge.p95_ms == pytest.approx(0.25 * 57.05, rel=0.02)
    staging = query.service_map(store, P, HOUR, environment="staging")
    assert staging.edges[0].calls == 10
    assert staging.edges[0].rpm == pytest.approx(10 / 8.5, abs=1e-3)
    assert query.service_map(store, P, HOUR, environment="qa").edges == []
    assert query.service_map(store, 2, HOUR).edges == []
    assert smap.sampled_minutes is None


def test_service_map_samples_long_ranges(store: DuckDBStore) -> None:
    day = TimeRange(NOW_NS - 86_400 * NS, NOW_NS)
    smap = query.service_map(store, P, day)
    assert smap.sampled_minutes == 60  # 12 slices of 5 minutes
    [edge] = smap.edges
    # Only the newest slice holds requests: i = 55..60, one every 50 s; the first one's
    # minute starts 5.5 min before now, so the slice's 5 minutes are all covered.
    assert edge.rpm == pytest.approx(6 / 5)
    assert edge.calls == round(5.5 * 6 / 5) and edge.errors == 1


def test_service_map_rates_cover_minutes_since_first_call(tmp_path: Path) -> None:
    """A service seen for the last 2.5 minutes at 24 calls/min shows 24, not 24 × 2.5/60."""
    s = DuckDBStore(tmp_path / "heron.duckdb", commit_interval_ms=0).start()
    try:
        start = MINUTE_S * NS - 2 * 60 * NS  # one call every 2 s for 2 minutes; now is 30 s later
        spans = []
        for i in range(60):
            t = start + i * 2 * NS
            spans.append(span(1000 + i, 1, start=t, dur_ms=2, kind=SPAN_KIND_CLIENT, name="GET"))
            spans.append(span(1000 + i, 2, 1, start=t + MS, dur_ms=1, service="new-svc"))
        Pipeline(s).submit_spans(P, spans).result(30)
        [edge] = query.service_map(s, P, HOUR).edges
        assert (edge.caller, edge.callee, edge.calls) == ("api", "new-svc", 60)
        assert edge.rpm == pytest.approx(60 / 2.5)
        rows = {r.service: r for r in query.service_table(s, P, HOUR)}
        assert rows["new-svc"].rpm == pytest.approx(edge.rpm)
    finally:
        s.close()


# ----------------------------------------------------------------------- critical path


def trace_of(*spans: tuple[str, str | None, int, int]) -> TraceDetail:
    """Spans as (id, parent, start ms, end ms); linked like get_trace does."""
    details = [
        SpanDetail(
            span_id=sid,
            parent_id=parent,
            service="s",
            name=sid,
            kind="server",
            start_ns=a * MS,
            duration_ns=(b - a) * MS,
            duration_ms=b - a,
            status="unset",
            status_message=None,
            attributes={},
            resource={},
            events=[],
            links=[],
            environment="",
            release="",
            scope=None,
        )
        for sid, parent, a, b in spans
    ]
    by_id = {d.span_id: d for d in details}
    for d in details:
        if d.parent_id in by_id:
            by_id[d.parent_id].children.append(d.span_id)
    roots = [d.span_id for d in details if d.parent_id not in by_id]
    return TraceDetail("t", 0, 0.0, len(details), False, ["s"], details, roots)


def ms_path(path: dict[str, list[tuple[int, int]]]) -> dict[str, list[tuple[int, int]]]:
    return {k: sorted((a // MS, b // MS) for a, b in v) for k, v in path.items()}


def test_critical_path_sequential_and_parallel() -> None:
    # root 0..100: a 10..40 and b 20..90 overlap; b ends last, so b is on the path, and a
    # only where it ran before b started; c 50..60 is inside b's shadow; d is b's child.
    t = trace_of(
        ("root", None, 0, 100),
        ("a", "root", 10, 40),
        ("b", "root", 20, 90),
        ("c", "root", 50, 60),
        ("d", "b", 30, 80),
    )
    path = ms_path(query.critical_path(t))
    assert path == {
        "root": [(0, 10), (90, 100)],
        "b": [(20, 30), (80, 90)],
        "d": [(30, 80)],
        "a": [(10, 20)],
    }
    assert sum(b - a for segs in path.values() for a, b in segs) == 100


def test_critical_path_clips_children_that_overrun() -> None:
    t = trace_of(("root", None, 0, 50), ("late", "root", 40, 80), ("early", "root", -10, 20))
    assert ms_path(query.critical_path(t)) == {
        "root": [(20, 40)],
        "late": [(40, 50)],
        "early": [(0, 20)],
    }


def test_critical_path_of_a_deep_chain_needs_no_recursion() -> None:
    depth = 5000
    spans = [("s0", None, 0, 2 * depth)]
    spans += [(f"s{i}", f"s{i - 1}", i, 2 * depth - i) for i in range(1, depth)]
    path = query.critical_path(trace_of(*spans))
    assert len(path) == depth
    assert math.isclose(sum(b - a for v in path.values() for a, b in v), 2 * depth * MS)


def test_critical_path_empty_and_orphans() -> None:
    assert query.critical_path(TraceDetail("t", 0, 0.0, 0, False, [], [], [])) == {}
    t = trace_of(("root", None, 0, 10), ("orphan", "missing", 2, 5))
    assert set(query.critical_path(t)) == {"root"}
