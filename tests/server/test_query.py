"""The read-side query functions against a real DuckDB store seeded with known spans."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from heron.server import query
from heron.server.ingest.pipeline import Pipeline
from heron.server.model import (
    SPAN_KIND_CLIENT,
    SPAN_KIND_CONSUMER,
    SPAN_KIND_INTERNAL,
    SPAN_KIND_SERVER,
    STATUS_ERROR,
    STATUS_OK,
    STATUS_UNSET,
    Span,
)
from heron.server.query import AttrFilter, InvalidQuery, TimeRange, TraceQuery
from heron.server.store.base import Store
from heron.server.store.duckdb_store import DuckDBStore
from tests.server.backends import BACKENDS, open_store

NS = 1_000_000_000
MS = 1_000_000
MINUTE_S = 1_700_000_040  # a minute boundary
NOW_NS = (MINUTE_S + 30) * NS  # half-way through that minute
PROJECT = 1
HOUR = TimeRange(NOW_NS - 3600 * NS, NOW_NS)
USERS = "GET /users/{id}"
# Minutes (before the current one) holding the /users requests; 5 is left empty.
USER_MINUTES = (1, 2, 3, 4, 6, 7, 8, 9, 10, 11)


def make_span(
    trace: int,
    span_id: int,
    parent: int = 0,
    *,
    start_ns: int,
    dur_ms: float,
    name: str = "op",
    kind: int = SPAN_KIND_SERVER,
    status: int = STATUS_UNSET,
    service: str = "api",
    env: str = "prod",
    release: str = "1.0",
    method: str | None = None,
    route: str | None = None,
    http_status: int | None = None,
    db_system: str | None = None,
    statement: str | None = None,
    attrs: dict[str, Any] | None = None,
    resource: dict[str, Any] | None = None,
) -> Span:
    return Span(
        trace_id=trace.to_bytes(16, "big"),
        span_id=span_id,
        parent_id=parent,
        start_ns=start_ns,
        duration_ns=round(dur_ms * MS),
        name=name,
        kind=kind,
        status=status,
        status_message="boom" if status == STATUS_ERROR else "",
        service=service,
        environment=env,
        release=release,
        http_method=method,
        http_route=route,
        http_status=http_status,
        db_system=db_system,
        db_statement=statement,
        attributes=attrs or {},
        resource=resource or {"service.name": service},
    )


def user_request(i: int) -> list[Span]:
    """Request ``i`` (1..200) of GET /users/{id}: i ms long, with a DB child span."""
    minute = USER_MINUTES[i % len(USER_MINUTES)]
    start = (MINUTE_S - 60 * minute) * NS + i * 100 * MS
    status = STATUS_ERROR if i % 10 == 0 else STATUS_OK
    http_status = 500 if i % 25 == 1 else 200
    trace = 1000 + i
    return [
        make_span(
            trace,
            1,
            start_ns=start,
            dur_ms=i,
            name="GET /users/{id}",
            status=status,
            method="GET",
            route="/users/{id}",
            http_status=http_status,
            release="1.0" if i <= 100 else "2.0",
            attrs={"user.tier": "gold" if i % 2 else "free", 'we"ird.key': f"v{i}"},
        ),
        make_span(
            trace,
            2,
            1,
            start_ns=start + MS,
            dur_ms=i / 4,
            name="SELECT users",
            kind=SPAN_KIND_CLIENT,
            db_system="postgresql",
            statement="SELECT * FROM users WHERE id = ?",
            release="1.0" if i <= 100 else "2.0",
        ),
    ]


USER_DURATIONS = list(range(1, 201))
USER_ERRORS = sum(1 for i in USER_DURATIONS if i % 10 == 0 or i % 25 == 1)

# A two-service trace: api POST /orders -> client call -> worker consumer -> db.
ORDER_TRACE = 42
ORDER_START = (MINUTE_S - 120) * NS + 7 * MS


def order_trace() -> list[Span]:
    t, s = ORDER_TRACE, ORDER_START
    return [
        make_span(
            t,
            0xA1,
            start_ns=s,
            dur_ms=300,
            name="POST /orders",
            method="POST",
            route="/orders",
            http_status=201,
            status=STATUS_OK,
            attrs={"http.request.body.size": 512},
            resource={"service.name": "api", "k8s.pod.name": "api-7f9c"},
        ),
        make_span(
            t,
            0xA2,
            0xA1,
            start_ns=s + 10 * MS,
            dur_ms=250,
            name="publish order",
            kind=SPAN_KIND_CLIENT,
        ),
        make_span(
            t,
            0xB1,
            0xA2,
            start_ns=s + 20 * MS,
            dur_ms=200,
            name="process order",
            kind=SPAN_KIND_CONSUMER,
            service="worker",
            env="staging",
        ),
        make_span(
            t,
            0xB2,
            0xB1,
            start_ns=s + 30 * MS,
            dur_ms=50,
            name="INSERT orders",
            kind=SPAN_KIND_CLIENT,
            service="worker",
            env="staging",
            db_system="postgresql",
            statement="INSERT INTO orders VALUES (?)",
        ),
        make_span(
            t,
            0xB3,
            0xB1,
            start_ns=s + 90 * MS,
            dur_ms=5,
            name="render",
            kind=SPAN_KIND_INTERNAL,
            service="worker",
            env="staging",
        ),
    ]


def health_checks() -> list[Span]:
    """Server spans without a route: their endpoint is the span name."""
    return [
        make_span(
            5000 + k, 1, start_ns=(MINUTE_S - 60 * 3) * NS + k * MS, dur_ms=2, name="healthcheck"
        )
        for k in range(5)
    ]


def old_span() -> Span:
    """Two hours old: outside the one-hour range."""
    return make_span(
        9000,
        1,
        start_ns=NOW_NS - 2 * 3600 * NS,
        dur_ms=1000,
        name="GET /old",
        method="GET",
        route="/old",
    )


def all_spans() -> list[Span]:
    spans = [s for i in USER_DURATIONS for s in user_request(i)]
    return spans + order_trace() + health_checks() + [old_span()]


def _fed(s: Store) -> Store:
    spans = all_spans()
    # Two batches, so the rollups hold several partial rows per key, as in production.
    Pipeline(s).submit_spans(PROJECT, spans[::2]).result(30)
    Pipeline(s).submit_spans(PROJECT, spans[1::2]).result(30)
    return s


@pytest.fixture(scope="module", params=BACKENDS)
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, chdb_dir: Path
) -> Iterator[Store]:
    """The same spans in each backend: every test here runs on each (conformance)."""
    s = _fed(open_store(request.param, tmp_path_factory.mktemp("query"), chdb_dir))
    yield s
    s.close()


@pytest.fixture(scope="module")
def duck(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DuckDBStore]:
    """The DuckDB store alone, for tests of its query plans."""
    s = DuckDBStore(tmp_path_factory.mktemp("query") / "heron.duckdb", commit_interval_ms=0)
    _fed(s.start())
    yield s
    s.close()


def exact_quantile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(math.ceil(q * len(ordered)) - 1, 0)]


def exact_apdex(values: list[float], t: float) -> float:
    satisfied = sum(1 for v in values if v <= t)
    tolerating = sum(1 for v in values if t < v <= 4 * t)
    return (satisfied + tolerating / 2) / len(values)


# ---------------------------------------------------------------------------- services


def test_service_table_red_figures(store: Store) -> None:
    rows = query.service_table(store, PROJECT, HOUR, apdex_t_ms=50)
    assert [r.service for r in rows] == ["api", "worker"]  # requests desc
    api = rows[0]
    # 200 /users + 1 POST /orders + 5 health checks; client spans are not requests.
    assert api.requests == 206
    assert api.errors == USER_ERRORS
    assert api.error_rate == pytest.approx(USER_ERRORS / 206)
    # Over the time the service was seen: its first minute (11 before the current one)
    # to the range's end (half-way through the current one), not the whole hour.
    assert api.rpm == pytest.approx(206 / 11.5, abs=1e-3)
    durations = [*USER_DURATIONS, 300, *[2] * 5]
    for q, got in ((0.50, api.p50_ms), (0.95, api.p95_ms), (0.99, api.p99_ms)):
        assert got == pytest.approx(exact_quantile(durations, q), rel=0.05)
    assert api.apdex == pytest.approx(exact_apdex(durations, 50), abs=0.02)
    assert api.avg_ms == pytest.approx(sum(durations) / len(durations), abs=1e-3)
    worker = rows[1]
    assert (worker.requests, worker.errors, worker.error_rate) == (1, 0, 0.0)
    assert worker.p50_ms == pytest.approx(200, rel=0.05)


def test_service_table_environment_and_release_filters(store: Store) -> None:
    assert [
        r.service for r in query.service_table(store, PROJECT, HOUR, environment="staging")
    ] == ["worker"]
    prod = query.service_table(store, PROJECT, HOUR, environment="prod")
    assert [(r.service, r.requests) for r in prod] == [("api", 206)]
    v2 = query.service_table(store, PROJECT, HOUR, release="2.0")
    assert [(r.service, r.requests) for r in v2] == [("api", 100)]
    assert query.service_table(store, PROJECT, HOUR, environment="nope") == []


def test_apdex_threshold_changes_score(store: Store) -> None:
    durations = [*USER_DURATIONS, 300, *[2] * 5]
    for t in (10, 50, 100, 500):
        (api, *_) = query.service_table(store, PROJECT, HOUR, apdex_t_ms=t)
        assert api.apdex == pytest.approx(exact_apdex(durations, t), abs=0.02), t


def test_service_table_sorting(store: Store) -> None:
    by_name = query.service_table(store, PROJECT, HOUR, sort="service")
    assert [r.service for r in by_name] == ["api", "worker"]
    by_p50 = query.service_table(store, PROJECT, HOUR, sort="p50_ms")
    assert [r.service for r in by_p50] == ["worker", "api"]
    asc = query.service_table(store, PROJECT, HOUR, sort="p50_ms", descending=False)
    assert [r.service for r in asc] == ["api", "worker"]
    with pytest.raises(InvalidQuery, match="cannot sort by"):
        query.service_table(store, PROJECT, HOUR, sort="service; DROP TABLE spans")


def test_time_range_excludes_old_and_counts_overlapping_minutes(store: Store) -> None:
    two_hours = TimeRange(NOW_NS - 2 * 3600 * NS - 30 * NS, NOW_NS)
    (api, *_) = query.service_table(store, PROJECT, two_hours)
    assert api.requests == 207  # the old request is now inside
    # A range ending 30 s into minute -1 still counts that whole minute.
    minute_1 = TimeRange((MINUTE_S - 60) * NS + 1, (MINUTE_S - 30) * NS)
    (api, *_) = query.service_table(store, PROJECT, minute_1)
    assert api.requests == sum(1 for i in USER_DURATIONS if USER_MINUTES[i % 10] == 1)


# --------------------------------------------------------------------------- endpoints


def test_endpoint_table(store: Store) -> None:
    rows = query.endpoint_table(store, PROJECT, HOUR, "api", apdex_t_ms=50)
    assert [r.endpoint for r in rows] == [USERS, "healthcheck", "POST /orders"]
    users, health, orders = rows
    assert (users.requests, users.errors) == (200, USER_ERRORS)
    assert users.error_rate == pytest.approx(USER_ERRORS / 200)
    for q, got in ((0.50, users.p50_ms), (0.95, users.p95_ms), (0.99, users.p99_ms)):
        assert got == pytest.approx(exact_quantile(USER_DURATIONS, q), rel=0.05)
    assert users.apdex == pytest.approx(exact_apdex(USER_DURATIONS, 50), abs=0.02)
    assert health.requests == 5  # fell back to the span name
    assert orders.requests == 1
    total = sum(USER_DURATIONS) + 10 + 300
    assert users.total_time_ms == pytest.approx(sum(USER_DURATIONS))
    assert users.time_share == pytest.approx(sum(USER_DURATIONS) / total)
    assert sum(r.time_share for r in rows) == pytest.approx(1.0)
    by_time = query.endpoint_table(store, PROJECT, HOUR, "api", sort="total_time_ms")
    assert [r.endpoint for r in by_time] == [USERS, "POST /orders", "healthcheck"]


def test_endpoint_table_release_filter_and_unknown_service(store: Store) -> None:
    rows = query.endpoint_table(store, PROJECT, HOUR, "api", release="1.0")
    users = next(r for r in rows if r.endpoint == USERS)
    assert users.requests == 100
    assert users.p50_ms == pytest.approx(exact_quantile(list(range(1, 101)), 0.5), rel=0.05)
    assert query.endpoint_table(store, PROJECT, HOUR, "nope") == []


# -------------------------------------------------------------------------- timeseries


def expected_user_counts(step_s: int, lo_s: int, hi_s: int) -> dict[int, tuple[int, int]]:
    out = {t: (0, 0) for t in range(lo_s, hi_s, step_s)}
    for i in USER_DURATIONS:
        span = user_request(i)[0]
        t = span.start_ns // NS // step_s * step_s
        n, e = out[t]
        out[t] = (n + 1, e + span.is_error)
    return out


def test_timeseries_per_minute_with_empty_minutes(store: Store) -> None:
    tr = TimeRange((MINUTE_S - 15 * 60) * NS, NOW_NS)
    ts = query.service_timeseries(store, PROJECT, tr, "api", endpoint=USERS)
    assert ts.step_s == 60 and ts.endpoint == USERS
    times = [p.t for p in ts.points]
    assert times == list(range(MINUTE_S - 15 * 60, MINUTE_S + 60, 60))
    expected = expected_user_counts(60, times[0], times[-1] + 60)
    assert {p.t: (p.requests, p.errors) for p in ts.points} == expected
    empty = next(p for p in ts.points if p.t == MINUTE_S - 5 * 60)
    assert (empty.requests, empty.error_rate, empty.p50_ms, empty.apdex) == (0, 0.0, None, None)
    busy = next(p for p in ts.points if p.t == MINUTE_S - 60)
    durations = [i for i in USER_DURATIONS if USER_MINUTES[i % 10] == 1]
    assert busy.requests == len(durations)
    assert busy.p95_ms == pytest.approx(exact_quantile(durations, 0.95), rel=0.05)
    assert busy.rpm == busy.requests


def test_timeseries_larger_step_and_whole_service(store: Store) -> None:
    tr = TimeRange((MINUTE_S - 15 * 60) * NS, NOW_NS)
    ts = query.service_timeseries(store, PROJECT, tr, "api", step_s=300)
    lo = (MINUTE_S - 15 * 60) // 300 * 300
    assert [p.t for p in ts.points] == list(range(lo, MINUTE_S + 1, 300))
    assert sum(p.requests for p in ts.points) == 206
    users = expected_user_counts(300, lo, ts.points[-1].t + 300)
    step_of_orders = ORDER_START // NS // 300 * 300
    step_of_health = (MINUTE_S - 180) // 300 * 300
    for p in ts.points:
        extra = (p.t == step_of_orders) + 5 * (p.t == step_of_health)
        assert p.requests == users[p.t][0] + extra
        assert p.rpm == pytest.approx(p.requests / 5)


def test_rates_count_only_the_time_a_service_was_seen(store: Store) -> None:
    # The worker's only request came 2 minutes before the current one: 1 request over
    # the 2.5 minutes since, not over the hour; a range that starts later has none.
    (worker,) = query.service_table(store, PROJECT, HOUR, environment="staging")
    assert worker.rpm == pytest.approx(1 / 2.5, abs=1e-3)
    (users,) = [e for e in query.endpoint_table(store, PROJECT, HOUR, "api") if e.endpoint == USERS]
    assert users.rpm == pytest.approx(200 / 11.5, abs=1e-3)
    late = TimeRange((MINUTE_S - 60) * NS, NOW_NS)
    assert [s.service for s in query.service_table(store, PROJECT, late)] == ["api"]


def test_timeseries_marks_the_step_still_filling_as_partial(store: Store) -> None:
    tr = TimeRange((MINUTE_S - 15 * 60) * NS, NOW_NS)
    ts = query.service_timeseries(store, PROJECT, tr, "api", endpoint=USERS, now_ns=NOW_NS)
    *done, last = ts.points
    assert last.t == MINUTE_S and last.partial and not any(p.partial for p in done)
    busy = next(p for p in done if p.t == MINUTE_S - 60)
    assert busy.rpm == busy.requests  # a whole minute
    # Without a clock nothing is partial; a step ending at "now" is complete.
    assert not any(p.partial for p in query.service_timeseries(store, PROJECT, tr, "api").points)
    past = query.service_timeseries(store, PROJECT, tr, "api", now_ns=(MINUTE_S + 60) * NS)
    assert not any(p.partial for p in past.points)


def test_filling_share_is_the_elapsed_part_of_the_step() -> None:
    assert query.filling_share(MINUTE_S, 60, NOW_NS) == pytest.approx(0.5)
    assert query.filling_share(MINUTE_S, 300, (MINUTE_S + 30) * NS) == pytest.approx(0.1)
    assert query.filling_share(MINUTE_S, 60, MINUTE_S * NS) == pytest.approx(1 / 60)  # ≥ 1 s
    assert query.filling_share(MINUTE_S - 60, 60, NOW_NS) is None
    assert query.filling_share(MINUTE_S, 60, None) is None


def test_timeseries_rejects_bad_steps(store: Store) -> None:
    with pytest.raises(InvalidQuery, match="multiple of 60"):
        query.service_timeseries(store, PROJECT, HOUR, "api", step_s=90)
    with pytest.raises(InvalidQuery, match="too many points"):
        query.service_timeseries(store, PROJECT, TimeRange(0, NOW_NS), "api", step_s=60)


# ------------------------------------------------------------------------ trace search


def search(store: Store, tr: TimeRange = HOUR, **kw: Any) -> list[query.TraceSummary]:
    return query.search_traces(store, PROJECT, tr, TraceQuery(**kw))


def trace_ints(found: list[query.TraceSummary]) -> set[int]:
    return {int(t.trace_id, 16) for t in found}


USER_TRACES = {1000 + i for i in USER_DURATIONS}
HEALTH_TRACES = {5000 + k for k in range(5)}


def test_search_newest_first_with_summary(store: Store) -> None:
    found = search(store, limit=1000)
    assert trace_ints(found) == USER_TRACES | HEALTH_TRACES | {ORDER_TRACE}
    starts = [t.start_ns for t in found]
    assert starts == sorted(starts, reverse=True)
    order = next(t for t in found if int(t.trace_id, 16) == ORDER_TRACE)
    assert len(order.trace_id) == 32 and order.trace_id == order.trace_id.lower()
    assert (order.root_service, order.root_name, order.span_count) == ("api", "POST /orders", 5)
    assert order.services == ["api", "worker"]
    assert order.duration_ms == pytest.approx(300)
    assert order.start_ns == ORDER_START and order.error is False
    assert order.match is not None and order.match.span_id == f"{0xA1:016x}"
    newest = search(store, limit=3)
    assert [t.trace_id for t in newest] == [t.trace_id for t in found[:3]]


def test_search_by_service_endpoint_and_name_fallback(store: Store) -> None:
    worker = search(store, service="worker")
    assert trace_ints(worker) == {ORDER_TRACE}
    assert worker[0].match is not None and worker[0].match.service == "worker"
    assert worker[0].match.name == "process order"  # the earliest matching span
    assert trace_ints(search(store, endpoint=USERS, limit=1000)) == USER_TRACES
    assert trace_ints(search(store, endpoint="/users/{id}", limit=1000)) == USER_TRACES
    assert trace_ints(search(store, endpoint="healthcheck")) == HEALTH_TRACES
    assert search(store, service="api", endpoint="process order") == []


def test_search_by_duration(store: Store) -> None:
    slow = search(store, service="api", endpoint=USERS, min_duration_ms=190.5)
    assert trace_ints(slow) == {1000 + i for i in range(191, 201)}
    assert all(t.match is not None and t.match.duration_ms >= 190.5 for t in slow)
    band = search(store, endpoint=USERS, min_duration_ms=10, max_duration_ms=12)
    assert trace_ints(band) == {1010, 1011, 1012}
    with pytest.raises(InvalidQuery):
        TraceQuery(min_duration_ms=5, max_duration_ms=1)


def test_search_by_status(store: Store) -> None:
    errors = search(store, status="error", limit=1000)
    expected = {1000 + i for i in USER_DURATIONS if i % 10 == 0 or i % 25 == 1}
    assert trace_ints(errors) == expected
    assert all(t.error for t in errors)
    ok_users = search(store, status="ok", endpoint=USERS, limit=1000)
    assert trace_ints(ok_users) == USER_TRACES - expected


@pytest.mark.parametrize(
    ("attr", "expected"),
    [
        (("http.method", "POST"), {ORDER_TRACE}),
        (("http.request.method", "POST"), {ORDER_TRACE}),
        (("http.status_code", "201"), {ORDER_TRACE}),
        (("http.response.status_code", "201"), {ORDER_TRACE}),
        (("http.status_code", "not-a-number"), set()),
        (("db.statement", "INSERT INTO orders VALUES (?)"), {ORDER_TRACE}),
        (("db.query.text", "INSERT INTO orders VALUES (?)"), {ORDER_TRACE}),
        (("db.system", "postgresql"), USER_TRACES | {ORDER_TRACE}),
        (("http.route", "/orders"), {ORDER_TRACE}),
        (("http.request.body.size", "512"), {ORDER_TRACE}),  # a number in the JSON
        (("user.tier", "gold"), {1000 + i for i in USER_DURATIONS if i % 2}),  # dotted key
        (('we"ird.key', "v7"), {1007}),  # a key needing JSON quoting
        (("k8s.pod.name", "api-7f9c"), {ORDER_TRACE}),  # a resource attribute
        (("deployment.environment", "staging"), {ORDER_TRACE}),
        (("user.tier", "platinum"), set()),
    ],
)
def test_search_by_attribute(store: Store, attr: tuple[str, str], expected: set[int]) -> None:
    found = search(store, attributes=[AttrFilter(*attr)], limit=1000)
    assert trace_ints(found) == expected


def test_search_attributes_must_match_the_same_span(store: Store) -> None:
    both = [AttrFilter("user.tier", "gold"), AttrFilter("http.status_code", "500")]
    expected = {1000 + i for i in USER_DURATIONS if i % 2 and i % 25 == 1}
    assert trace_ints(search(store, attributes=both, limit=1000)) == expected
    # http.method is on the server span, db.statement on its child: never one span.
    split = [
        AttrFilter("http.method", "GET"),
        AttrFilter("db.statement", "SELECT * FROM users WHERE id = ?"),
    ]
    assert search(store, attributes=split) == []


def test_search_time_range_and_environment(store: Store) -> None:
    two_hours = TimeRange(NOW_NS - 3 * 3600 * NS, NOW_NS)
    assert trace_ints(search(store, two_hours, endpoint="GET /old")) == {9000}
    assert search(store, endpoint="GET /old") == []
    assert trace_ints(search(store, environment="staging")) == {ORDER_TRACE}


def test_attr_filter_parse() -> None:
    assert AttrFilter.parse("db.query.text=a=b") == AttrFilter("db.query.text", "a=b")
    assert AttrFilter.parse("k=") == AttrFilter("k", "")
    for bad in ("novalue", "=v", ""):
        with pytest.raises(InvalidQuery):
            AttrFilter.parse(bad)


@pytest.mark.parametrize(
    "kw",
    [
        {"service": "x' OR 1=1 --"},
        {"endpoint": "GET /users/{id}' OR '1'='1"},
        {"attributes": [AttrFilter("user.tier') OR 1=1 --", "gold")]},
        {"attributes": [AttrFilter("a\"]') OR 1=1; DROP TABLE spans; --", "x' OR '1'='1")]},
        {"attributes": [AttrFilter("$.user.tier", "gold")]},
        {"attributes": [AttrFilter("user.tier", "gold' OR '1'='1")]},
    ],
)
def test_search_injection_attempts_find_nothing(store: Store, kw: dict[str, Any]) -> None:
    assert search(store, **kw) == []
    assert query.service_table(store, PROJECT, HOUR)[0].requests == 206  # tables intact


def test_red_injection_attempts_find_nothing(store: Store) -> None:
    assert query.endpoint_table(store, PROJECT, HOUR, "api' OR 1=1 --") == []
    assert query.service_table(store, PROJECT, HOUR, environment="' OR ''='") == []
    ts = query.service_timeseries(store, PROJECT, HOUR, "x' OR 1=1 --")
    assert sum(p.requests for p in ts.points) == 0


# ------------------------------------------------------------------------ trace detail


def test_trace_detail_tree_across_services(store: Store) -> None:
    detail = query.get_trace(store, PROJECT, ORDER_TRACE.to_bytes(16, "big"))
    assert detail is not None
    assert detail.trace_id == f"{ORDER_TRACE:032x}"
    assert (detail.span_count, detail.services) == (5, ["api", "worker"])
    assert detail.start_ns == ORDER_START and detail.duration_ms == pytest.approx(300)
    ids = [s.span_id for s in detail.spans]
    assert ids == [f"{x:016x}" for x in (0xA1, 0xA2, 0xB1, 0xB2, 0xB3)]  # by start
    by_id = {s.span_id: s for s in detail.spans}
    assert detail.roots == [f"{0xA1:016x}"]
    assert [(s.depth, s.parent_id) for s in detail.spans] == [
        (0, None),
        (1, f"{0xA1:016x}"),
        (2, f"{0xA2:016x}"),
        (3, f"{0xB1:016x}"),
        (3, f"{0xB1:016x}"),
    ]
    assert by_id[f"{0xB1:016x}"].children == [f"{0xB2:016x}", f"{0xB3:016x}"]
    root = by_id[f"{0xA1:016x}"]
    assert (root.kind, root.status, root.service) == ("server", "ok", "api")
    assert root.attributes == {
        "http.request.body.size": 512,
        "http.request.method": "POST",
        "http.route": "/orders",
        "http.response.status_code": 201,
    }
    assert root.resource == {"service.name": "api", "k8s.pod.name": "api-7f9c"}
    assert root.duration_ns == 300 * MS and root.duration_ms == 300.0
    db = by_id[f"{0xB2:016x}"]
    assert db.kind == "client" and db.service == "worker"
    assert db.attributes == {
        "db.system.name": "postgresql",
        "db.query.text": "INSERT INTO orders VALUES (?)",
    }
    assert (db.events, db.links, db.status, db.status_message) == ([], [], "unset", None)


def test_trace_detail_error_and_partial_trace(store: Store) -> None:
    detail = query.get_trace(store, PROJECT, (1010).to_bytes(16, "big"))
    assert detail is not None and detail.error
    assert detail.spans[0].status == "error" and detail.spans[0].status_message == "boom"
    assert query.get_trace(store, PROJECT, (123456).to_bytes(16, "big")) is None


@pytest.mark.parametrize("kind", BACKENDS)
def test_trace_detail_orphans_and_duplicates(kind: str, tmp_path: Path, chdb_dir: Path) -> None:
    s = open_store(kind, tmp_path, chdb_dir)
    try:
        t0 = NOW_NS - 60 * NS
        orphan = make_span(77, 5, 4, start_ns=t0 + MS, dur_ms=1, name="orphan")
        child = make_span(77, 6, 5, start_ns=t0 + 2 * MS, dur_ms=1, name="child")
        Pipeline(s).submit_spans(PROJECT, [orphan, child]).result(30)
        Pipeline(s).submit_spans(PROJECT, [child]).result(30)  # a retried export
        detail = query.get_trace(s, PROJECT, (77).to_bytes(16, "big"))
        assert detail is not None
        assert detail.span_count == 2 and detail.roots == [f"{5:016x}"]
        assert [sp.depth for sp in detail.spans] == [0, 1]
        # Corrupt data: two spans each naming the other as parent, beside a real root.
        cycle = [
            make_span(78, 1, start_ns=t0, dur_ms=9, name="root"),
            make_span(78, 2, 3, start_ns=t0 + MS, dur_ms=1, name="a"),
            make_span(78, 3, 2, start_ns=t0 + 2 * MS, dur_ms=1, name="b"),
        ]
        Pipeline(s).submit_spans(PROJECT, cycle).result(30)
        detail = query.get_trace(s, PROJECT, (78).to_bytes(16, "big"))
        assert detail is not None
        assert detail.roots == [f"{1:016x}", f"{2:016x}"]
        assert [sp.depth for sp in detail.spans] == [0, 0, 1]
    finally:
        s.close()


def test_trace_lookup_uses_the_trace_id_index(duck: DuckDBStore) -> None:
    from heron.server.store.duckdb.traces import TRACE_SQL

    plan = duck.read("EXPLAIN ANALYZE " + TRACE_SQL, [ORDER_TRACE.to_bytes(16, "big"), PROJECT])
    text = "\n".join(str(row[-1]) for row in plan)
    assert "Index Scan" in text


def test_parse_trace_id() -> None:
    assert query.parse_trace_id("AB" * 16) == bytes([0xAB]) * 16
    for bad in ("", "ab" * 15, "zz" * 16, "ab" * 17, "0x" + "ab" * 15):
        with pytest.raises(InvalidQuery):
            query.parse_trace_id(bad)


def test_time_range_must_not_be_empty() -> None:
    with pytest.raises(InvalidQuery):
        TimeRange(NOW_NS, NOW_NS)


def test_exported_names() -> None:
    assert sorted(query.__all__) == sorted(
        name for name in dir(query) if not name.startswith("_") and name != "annotations"
    )
