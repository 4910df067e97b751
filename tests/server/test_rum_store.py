"""Conformance of the RUM store (``store.rum.RumReader``, ``Store.submit_rum``): DuckDB and
ClickHouse (in-process chdb; a real server with ``HERON_TEST_CLICKHOUSE_URL``) are fed
the same RUM events through ``submit_rum`` in two writes (so the rollup holds partial
rows of the same keys) and give the same answers, asserted outright.

Retention and compaction: DuckDB deletes and merges in ``upkeep``; ClickHouse drops
expired parts by TTL and sums rollup rows in background merges, which
``OPTIMIZE … FINAL`` forces here (what the merges would do in time).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from heron.server.histogram import bucket_of
from heron.server.model.rum import (
    METRIC_ERRORS,
    METRIC_LOAD,
    METRIC_VIEWS,
    RumEvent,
    RumRollups,
    RumWrite,
    rate,
    rollup_rum,
    rollup_value_ns,
    rum_values,
)
from heron.server.store.base import QueueFull, Store
from heron.server.store.rum import RumFilters
from tests.server.backends import BACKENDS, LONG_RETENTION, open_store

P = 1  # the project under test; project 2 holds one event that must never show
T0_S = 28_333_333 * 60  # a minute boundary (2023-11-14), not a multiple of 120
T0 = T0_S * 10**9
S = 10**9
HOUR_S = 3600
TRACE_A = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")
TRACE_B = bytes.fromhex("4bf92f3577b34da6a3ce929d0e0e4736")
ANY = RumFilters()

_CHROME = {
    "browser": "Chrome",
    "browser_version": "120",
    "os": "Windows",
    "device": "desktop",
    "app": "shop",
    "release": "1.0",
    "environment": "prod",
}
_FIREFOX = {
    "browser": "Firefox",
    "browser_version": "121",
    "os": "Android",
    "device": "mobile",
    "app": "shop",
    "release": "1.0",
    "environment": "",
}


def ev(
    t_s: float,
    kind: str,
    session: str,
    view: str,
    page: str,
    name: str,
    value: float,
    *,
    ua: dict[str, str],
    target: str = "",
    user: str = "",
    trace: bytes | None = None,
    span: int = 0,
    attributes: dict[str, Any] | None = None,
) -> RumEvent:
    rating = rate(name, value) if kind == "vital" else ""
    return RumEvent(
        time_ns=T0 + int(t_s * S),
        kind=kind,
        session_id=session,
        view_id=view,
        page=page,
        url=f"https://shop.example{page}",
        name=name,
        value=value,
        rating=rating,
        target=target,
        user_id=user,
        trace_id=trace,
        span_id=span,
        attributes=attributes or {},
        **ua,
    )


A = {"ua": _CHROME, "user": "u-1"}
B = {"ua": _FIREFOX}
EVENTS_1 = [
    ev(
        0,
        "view",
        "sessA",
        "vA1",
        "/",
        "navigate",
        1200,
        trace=TRACE_A,
        span=5,
        **A,
        attributes={"timing": {"load_end": 1200, "response_start": 80}},
    ),  # fmt: skip
    ev(1, "vital", "sessA", "vA1", "/", "LCP", 2000, target="img.hero", **A),
    ev(2, "vital", "sessA", "vA1", "/", "LCP", 3000, target="img.hero", **A),
    ev(
        3, "resource", "sessA", "vA1", "/", "https://cdn.example/app.js", 1500, target="script", **A
    ),
    ev(4, "interaction", "sessA", "vA1", "/", "pointer", 300, target="#buy", **A),
    ev(5, "interaction", "sessA", "vA1", "/", "pointer", 300, target="#buy", **A),
    ev(6, "interaction", "sessA", "vA1", "/", "keyboard", 300, target="#q", **A),
]
EVENTS_2 = [
    ev(65, "view", "sessA", "vA2", "/products/:id", "soft-navigation", 0, **A),
    ev(70, "error", "sessA", "vA2", "/products/:id", "TypeError", 0, target="x is undefined", **A),
    ev(120, "view", "sessB", "vB1", "/checkout", "navigate", 2500, **B),
    ev(121, "vital", "sessB", "vB1", "/checkout", "LCP", 5000, **B),
    ev(122, "vital", "sessB", "vB1", "/checkout", "CLS", 0.3, **B),
    ev(
        123,
        "resource",
        "sessB",
        "vB1",
        "/checkout",
        "https://cdn.example/app.js",
        2500,
        target="script",
        trace=TRACE_B,
        **B,
    ),  # fmt: skip
    ev(
        124,
        "resource",
        "sessB",
        "vB1",
        "/checkout",
        "https://cdn.example/img.png",
        1100,
        target="img",
        **B,
    ),
    ev(
        125,
        "resource",
        "sessB",
        "vB1",
        "/checkout",
        "https://cdn.example/app.js",
        1000,
        target="script",
        user="u-2",
        **B,
    ),  # fmt: skip
    ev(
        126,
        "fetch",
        "sessB",
        "vB1",
        "/checkout",
        "POST https://shop.example/api/cart",
        180,
        trace=TRACE_B,
        span=7,
        user="u-2",
        **B,
    ),  # fmt: skip
    # Two days later, outside every range below but part of the session.
    ev(2 * 86_400, "error", "sessA", "vA3", "/", "Error", 0, target="late", **A),
    # The first write's LCP key again: a second partial rollup row of the same key.
    ev(1.5, "vital", "sessA", "vA1", "/", "LCP", 2000, target="img.hero", **A),
]
OTHER_PROJECT = [ev(0, "view", "sessZ", "vZ", "/", "navigate", 900, ua=_CHROME, user="u-1")]
ALL = EVENTS_1 + EVENTS_2


def write(project_id: int, events: list[RumEvent]) -> RumWrite:
    rollups: RumRollups = {}
    rollup_rum(project_id, events, rollups)
    return RumWrite(project_id, events, rollups)


def feed(store: Store) -> Store:
    futures = [store.submit_rum(write(P, EVENTS_1)), store.submit_rum(write(P, EVENTS_2))]
    futures.append(store.submit_rum(write(2, OTHER_PROJECT)))
    assert [f.result(30) for f in futures] == [len(EVENTS_1), len(EVENTS_2), 1]
    return store


@pytest.fixture(scope="module", params=BACKENDS)
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, chdb_dir: Path
) -> Iterator[Store]:
    kind = request.param
    s = feed(open_store(kind, tmp_path_factory.mktemp(kind), chdb_dir))
    yield s
    s.close()


def totals(rows: list[tuple[Any, ...]]) -> dict[tuple[Any, ...], int]:
    """(step, group, metric, rating) → count, summed over buckets."""
    out: dict[tuple[Any, ...], int] = {}
    for s, g, metric, rating, _bucket, n in rows:
        out[(s, g, metric, rating)] = out.get((s, g, metric, rating), 0) + n
    return out


def test_rollup_sums_every_metric_without_by_or_step(store: Store) -> None:
    rows = store.rum.rollup(P, T0_S, T0_S + HOUR_S, filters=ANY)
    assert all(len(r) == 6 for r in rows)
    assert totals(rows) == {
        (0, "", METRIC_VIEWS, ""): 3,
        (0, "", METRIC_LOAD, ""): 2,
        (0, "", METRIC_ERRORS, ""): 1,
        (0, "", "LCP", "good"): 2,
        (0, "", "LCP", "needs-improvement"): 1,
        (0, "", "LCP", "poor"): 1,
        (0, "", "CLS", "poor"): 1,
    }
    # Partial rows of one key are summed: both 2000 ms LCPs in one bucket.
    lcp_good = [r for r in rows if r[2] == "LCP" and r[3] == "good"]
    assert lcp_good == [(0, "", "LCP", "good", bucket_of(rollup_value_ns("LCP", 2000)), 2)]
    cls = [r for r in rows if r[2] == "CLS"]
    assert cls == [(0, "", "CLS", "poor", bucket_of(rollup_value_ns("CLS", 0.3)), 1)]
    loads = sorted((r[4], r[5]) for r in rows if r[2] == METRIC_LOAD)
    assert loads == sorted((bucket_of(rollup_value_ns("load", v)), 1) for v in (1200, 2500))


def test_rollup_by_group_and_metrics(store: Store) -> None:
    rows = store.rum.rollup(P, T0_S, T0_S + HOUR_S, filters=ANY, metrics=["LCP"], by="page")
    assert {r[2] for r in rows} == {"LCP"}
    by_page: dict[str, int] = {}
    for r in rows:
        by_page[r[1]] = by_page.get(r[1], 0) + r[5]
    assert by_page == {"/": 3, "/checkout": 1}
    rows = store.rum.rollup(P, T0_S, T0_S + HOUR_S, filters=ANY, metrics=["views"], by="browser")
    assert totals(rows) == {(0, "Chrome", "views", ""): 2, (0, "Firefox", "views", ""): 1}
    assert store.rum.rollup(P, T0_S, T0_S + HOUR_S, filters=ANY, metrics=[]) == []


def test_rollup_steps_align_to_the_epoch(store: Store) -> None:
    rows = store.rum.rollup(P, T0_S, T0_S + HOUR_S, filters=ANY, metrics=["views"], step_s=120)
    # T0 is not a multiple of 120: its minute falls in the step starting a minute earlier.
    assert totals(rows) == {(T0_S - 60, "", "views", ""): 1, (T0_S + 60, "", "views", ""): 2}
    rows = store.rum.rollup(
        P, T0_S, T0_S + HOUR_S, filters=ANY, metrics=["views"], by="device", step_s=60
    )
    assert totals(rows) == {
        (T0_S, "desktop", "views", ""): 1,
        (T0_S + 60, "desktop", "views", ""): 1,
        (T0_S + 120, "mobile", "views", ""): 1,
    }


def test_rollup_filters_and_range(store: Store) -> None:
    firefox = RumFilters(browser="Firefox")
    assert totals(store.rum.rollup(P, T0_S, T0_S + HOUR_S, filters=firefox, metrics=["views"])) == {
        (0, "", "views", ""): 1
    }
    checkout_prod = RumFilters(page="/checkout", environment="prod")
    assert store.rum.rollup(P, T0_S, T0_S + HOUR_S, filters=checkout_prod) == []
    both = RumFilters(app="shop", environment="prod", device="desktop", page="/")
    assert totals(store.rum.rollup(P, T0_S, T0_S + HOUR_S, filters=both, metrics=["LCP"])) == {
        (0, "", "LCP", "good"): 2,
        (0, "", "LCP", "needs-improvement"): 1,
    }
    # Minutes in [start, end): the first minute excluded, the third's minute included.
    rows = store.rum.rollup(P, T0_S + 60, T0_S + 180, filters=ANY, metrics=["LCP"])
    assert totals(rows) == {(0, "", "LCP", "poor"): 1}
    assert store.rum.rollup(P, T0_S, T0_S + 60, filters=ANY, metrics=["errors"]) == []
    # Another project's rows never show.
    assert totals(store.rum.rollup(2, T0_S, T0_S + HOUR_S, filters=ANY)) == {
        (0, "", "views", ""): 1,
        (0, "", "load", ""): 1,
    }


def test_choices(store: Store) -> None:
    assert store.rum.choices(P, T0_S, T0_S + HOUR_S) == {
        "page": ["/", "/checkout", "/products/:id"],
        "browser": ["Chrome", "Firefox"],
        "device": ["desktop", "mobile"],
        "app": ["shop"],
        "environment": ["prod"],  # sessB's "" is not a choice
    }
    assert store.rum.choices(P, T0_S + 120, T0_S + HOUR_S)["page"] == ["/checkout"]
    assert store.rum.choices(P, T0_S - HOUR_S, T0_S) == {
        k: [] for k in ("page", "browser", "device", "app", "environment")
    }


def test_events_rows_order_and_range(store: Store) -> None:
    rows = store.rum.events(P, T0, T0 + HOUR_S * S, kinds=["resource"], filters=ANY, limit=10)
    assert [r[0] for r in rows] == [T0 + 125 * S, T0 + 124 * S, T0 + 123 * S, T0 + 3 * S]
    # A whole RUM_ROW: every field as stored, trace id as bytes, attributes JSON text.
    assert rows[2] == rum_values(EVENTS_2[5])
    view = store.rum.events(P, T0, T0 + S, kinds=["view"], filters=ANY, limit=10)
    assert view == [rum_values(EVENTS_1[0])]
    assert view[0][-1] == '{"timing":{"load_end":1200,"response_start":80}}'
    assert view[0][-3:-1] == (TRACE_A, 5)
    by_value = store.rum.events(
        P, T0, T0 + HOUR_S * S, kinds=["resource"], filters=ANY, order="value", limit=3
    )
    assert [r[7] for r in by_value] == [2500.0, 1500.0, 1100.0]
    # [start, end): the event at the end is out.
    rows = store.rum.events(P, T0 + 3 * S, T0 + 123 * S, kinds=["resource"], filters=ANY, limit=10)
    assert [r[0] for r in rows] == [T0 + 3 * S]
    several = store.rum.events(
        P, T0, T0 + HOUR_S * S, kinds=["error", "fetch"], filters=ANY, limit=10
    )
    assert [(r[1], r[6]) for r in several] == [
        ("fetch", "POST https://shop.example/api/cart"),
        ("error", "TypeError"),
    ]
    assert store.rum.events(P, T0, T0 + HOUR_S * S, kinds=[], filters=ANY, limit=10) == []


def test_events_filters(store: Store) -> None:
    def names(**kw: Any) -> list[tuple[str, str]]:
        rows = store.rum.events(P, T0, T0 + HOUR_S * S, limit=50, **kw)
        return [(r[1], r[2]) for r in rows]

    kinds = ["view", "vital", "resource", "fetch", "error", "interaction"]
    assert len(names(kinds=kinds, filters=ANY)) == len(ALL) - 1  # the late error is out
    assert names(kinds=kinds, filters=ANY, session_id="sessB") == [("fetch", "sessB")] + [
        ("resource", "sessB")
    ] * 3 + [("vital", "sessB")] * 2 + [("view", "sessB")]
    assert names(kinds=kinds, filters=ANY, view_id="vA2") == [("error", "sessA"), ("view", "sessA")]
    traced = store.rum.events(
        P, T0, T0 + HOUR_S * S, kinds=kinds, filters=ANY, trace_id=TRACE_B, limit=50
    )
    assert [(r[1], r[-2]) for r in traced] == [("fetch", 7), ("resource", 0)]
    assert names(kinds=["resource"], filters=RumFilters(browser="Chrome")) == [
        ("resource", "sessA")
    ]
    assert (
        names(kinds=["vital"], filters=RumFilters(page="/checkout", device="mobile"))
        == [("vital", "sessB")] * 2
    )
    assert names(kinds=kinds, filters=RumFilters(app="other")) == []
    assert names(kinds=kinds, filters=ANY, session_id="sessA", view_id="vB1") == []
    assert store.rum.events(2, T0, T0 + S, kinds=kinds, filters=ANY, limit=5)[0][2] == "sessZ"


def test_top(store: Store) -> None:
    rows = store.rum.top(P, T0, T0 + HOUR_S * S, kind="resource", filters=ANY, limit=10)
    assert rows == [
        # app.js: 1000, 1500, 2500 → p75 (linear interpolation) 2000; one traced sample.
        ("https://cdn.example/app.js", "script", 3, 2000.0, 2500.0, T0 + 125 * S, TRACE_B),
        ("https://cdn.example/img.png", "img", 1, 1100.0, 1100.0, T0 + 124 * S, None),
    ]
    # Equal p75: the more frequent first.
    rows = store.rum.top(P, T0, T0 + HOUR_S * S, kind="interaction", filters=ANY, limit=10)
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        ("pointer", "#buy", 2, 300.0),
        ("keyboard", "#q", 1, 300.0),
    ]
    assert len(store.rum.top(P, T0, T0 + HOUR_S * S, kind="interaction", filters=ANY, limit=1)) == 1
    chrome = store.rum.top(
        P, T0, T0 + HOUR_S * S, kind="resource", filters=RumFilters(browser="Chrome"), limit=10
    )
    assert chrome == [("https://cdn.example/app.js", "script", 1, 1500.0, 1500.0, T0 + 3 * S, None)]
    errors = store.rum.top(P, T0, T0 + 3 * 86_400 * S, kind="error", filters=ANY, limit=10)
    assert sorted((r[0], r[2]) for r in errors) == [("Error", 1), ("TypeError", 1)]


def test_sessions(store: Store) -> None:
    rows = store.rum.sessions(P, T0, T0 + HOUR_S * S, filters=ANY, limit=10)
    assert rows == [
        (
            "sessB",
            "u-2",
            T0 + 120 * S,
            T0 + 126 * S,
            1,
            0,
            "shop",
            "Firefox",
            "Android",
            "mobile",
            "/checkout",
        ),  # fmt: skip
        ("sessA", "u-1", T0, T0 + 70 * S, 2, 1, "shop", "Chrome", "Windows", "desktop", "/"),
    ]
    # A filter picks sessions with a matching event; their figures count every event.
    products = store.rum.sessions(
        P, T0, T0 + HOUR_S * S, filters=RumFilters(page="/products/:id"), limit=10
    )
    assert products == rows[1:]
    assert (
        store.rum.sessions(P, T0, T0 + HOUR_S * S, filters=ANY, user_id="u-2", limit=10) == rows[:1]
    )
    assert store.rum.sessions(P, T0, T0 + HOUR_S * S, filters=ANY, user_id="u-9", limit=10) == []
    assert store.rum.sessions(P, T0, T0 + HOUR_S * S, filters=ANY, limit=1) == rows[:1]
    # The range bounds the events counted: only sessA's late error two days on.
    late = store.rum.sessions(P, T0 + 86_400 * S, T0 + 3 * 86_400 * S, filters=ANY, limit=10)
    t = T0 + 2 * 86_400 * S
    assert late == [("sessA", "u-1", t, t, 0, 1, "shop", "Chrome", "Windows", "desktop", "")]


def test_session_timeline(store: Store) -> None:
    rows = store.rum.session(P, "sessA", 100)
    session_a = sorted((e for e in ALL if e.session_id == "sessA"), key=lambda e: e.time_ns)
    assert rows == [rum_values(e) for e in session_a]
    assert len(rows) == 11 and rows[-1][6] == "Error"  # any time: the late error too
    assert len(store.rum.session(P, "sessA", 3)) == 3
    assert store.rum.session(P, "nope", 10) == []
    assert store.rum.session(2, "sessA", 10) == []


def test_unknown_group_is_refused(store: Store) -> None:
    with pytest.raises(ValueError):
        store.rum.rollup(P, T0_S, T0_S + 60, filters=ANY, by="url; DROP TABLE x")  # type: ignore[arg-type]


def test_stats_count_committed_rum(store: Store) -> None:
    assert store.stats["committed_rum"] == len(ALL) + 1
    assert store.queued_rum == 0


# ------------------------------------------------------- retention and compaction


def _merge(store: Store, table: str) -> None:
    """ClickHouse: what background merges do in time (TTL, summing); DuckDB: nothing
    (its upkeep did it)."""
    if hasattr(store, "_writes"):
        store._writes.command(f"OPTIMIZE TABLE {{db}}.{table} FINAL")


def _rollup_rows(store: Store) -> int:
    sql = "SELECT count(*) FROM {db}.rum_rollup_1m WHERE project_id = 1"
    if hasattr(store, "_writes"):
        return int(store._writes.rows(sql)[0][0])
    return int(store.read(sql.replace("{db}.", ""))[0][0])  # type: ignore[attr-defined]


def test_compaction_keeps_sums(store: Store) -> None:
    before = sorted(store.rum.rollup(P, T0_S - HOUR_S, T0_S + 3 * 86_400, filters=ANY))
    keys = write(P, ALL).rollups  # one row per key once compacted
    assert len(write(P, EVENTS_1).rollups) + len(write(P, EVENTS_2).rollups) > len(keys)
    assert _rollup_rows(store) >= len(keys)
    store.upkeep(
        T0 + 86_400 * S,
        retention_days=LONG_RETENTION,
        rollup_retention_days=LONG_RETENTION,
        compact_from_s=T0_S - HOUR_S,
        compact_to_s=T0_S + 3 * 86_400,
    )
    _merge(store, "rum_rollup_1m")
    assert _rollup_rows(store) == len(keys)
    assert sorted(store.rum.rollup(P, T0_S - HOUR_S, T0_S + 3 * 86_400, filters=ANY)) == before
    assert len(store.rum.session(P, "sessA", 100)) == 11  # upkeep left the events


@pytest.fixture(params=BACKENDS)
def short_store(request: pytest.FixtureRequest, tmp_path: Path, chdb_dir: Path) -> Iterator[Store]:
    """A store keeping raw events 7 days and rollups 90 (ClickHouse: its TTLs)."""
    kind = request.param
    if kind == "duckdb":
        s = open_store(kind, tmp_path, chdb_dir)
    else:
        from heron.server.store.clickhouse.store import ClickHouseStore
        from tests.server.backends import SERVER_URL

        s = ClickHouseStore(
            f"chdb://{chdb_dir}" if kind == "clickhouse" else str(SERVER_URL),
            database=f"heron_test_{uuid.uuid4().hex[:12]}",
            retention_days=7,
            rollup_retention_days=90,
            state_path=tmp_path / "state.duckdb",
        )
    yield s
    s.close()


def test_retention_deletes_old_rows(short_store: Store) -> None:
    store = short_store
    now = time.time_ns() // (60 * S) * (60 * S)
    day = 86_400 * S

    def view(age_ns: int, session: str) -> RumEvent:
        e = ev(0, "view", session, session, "/", "navigate", 1000, ua=_CHROME)
        e.time_ns = now - age_ns
        return e

    events = [view(100 * day, "old100"), view(10 * day, "old10"), view(day, "fresh")]
    assert store.submit_rum(write(P, events)).result(30) == 3
    store.upkeep(
        now,
        retention_days=7,
        rollup_retention_days=90,
        compact_from_s=(now - 2 * day) // S,
        compact_to_s=now // S,
    )
    _merge(store, "rum_events")
    _merge(store, "rum_rollup_1m")
    rows = store.rum.events(P, now - 200 * day, now, kinds=["view"], filters=ANY, limit=10)
    assert [r[2] for r in rows] == ["fresh"]
    assert store.rum.session(P, "old10", 10) == []
    views = store.rum.rollup(P, (now - 200 * day) // S, now // S, filters=ANY, metrics=["views"])
    assert sum(r[5] for r in views) == 2  # the 100-day-old minute is gone


def test_a_full_queue_refuses_at_once(tmp_path: Path) -> None:
    from heron.server.store.duckdb_store import DuckDBStore

    store = DuckDBStore(tmp_path / "q.duckdb", queue_max_rum=5)  # not started: nothing drains
    try:
        first = store.submit_rum(write(P, EVENTS_1))  # a write larger than the bound fits alone
        assert store.queued_rum == len(EVENTS_1)
        with pytest.raises(QueueFull):
            store.submit_rum(write(P, EVENTS_1[:1]))
        assert store.stats["rejected_full"] == 1
        store.start()
        assert first.result(30) == len(EVENTS_1)
        assert store.queued_rum == 0
        assert store.submit_rum(write(P, EVENTS_1[:1])).result(30) == 1
    finally:
        store.close()


def expected_rollup(
    events: list[RumEvent],
    start_s: int,
    end_s: int,
    *,
    filters: RumFilters = ANY,
    metrics: list[str] | None = None,
    by: str | None = None,
    step_s: int | None = None,
) -> list[tuple[Any, ...]]:
    """The reference answer of ``rollup``, from ``model.rum.rollup_rum`` itself."""
    names = ("project_id", "minute_s", "app", "environment", "page", "browser", "device")
    acc = write(P, events).rollups
    out: dict[tuple[Any, ...], int] = {}
    for key, n in acc.items():
        k = dict(zip(names, key[:7], strict=True))
        metric, rating, bucket = key[7:]
        if not start_s <= k["minute_s"] < end_s or (metrics is not None and metric not in metrics):
            continue
        if any(k[col] != value for col, value in filters.items()):
            continue
        s = k["minute_s"] // step_s * step_s if step_s else 0
        row = (s, k[by] if by else "", metric, rating, bucket)
        out[row] = out.get(row, 0) + n
    return sorted((*row, n) for row, n in out.items())


SHAPES: list[dict[str, Any]] = [
    {},
    {"by": "page"},
    {"by": "page", "metrics": ["LCP"]},
    {"step_s": 3600, "metrics": ["LCP", "CLS", "views"]},
    {"step_s": 7200, "by": "app"},
    {"step_s": 60, "by": "environment"},
    {"by": "browser"},
    {"filters": RumFilters(page="/")},
    {"filters": RumFilters(app="shop", environment="prod"), "by": "page", "step_s": 3600},
    {"filters": RumFilters(device="mobile")},
]
WIDE = (T0_S - 2 * HOUR_S - 120, T0_S + 3 * 86_400 + 300)  # whole hours and partial edges


def test_rollups_after_upkeep_and_a_late_write(store: Store) -> None:
    """After upkeep (DuckDB: the hourly tier is built) every shape of read answers as the
    rollup of the events says; a write of minutes upkeep had already covered counts at
    once."""
    store.upkeep(
        T0 + 4 * 86_400 * S,
        retention_days=LONG_RETENTION,
        rollup_retention_days=LONG_RETENTION,
        compact_from_s=T0_S - HOUR_S,
        compact_to_s=T0_S + 4 * 86_400,
    )
    if hasattr(store, "_writes"):
        assert store.rum.rollup(P, *WIDE, filters=ANY) != []
    else:
        assert store.read("SELECT count(*) FROM rum_rollup_1h")[0][0] > 0  # type: ignore[attr-defined]
    for shape in SHAPES:
        got = sorted(store.rum.rollup(P, *WIDE, **{"filters": ANY, **shape}))
        assert got == expected_rollup(ALL, *WIDE, **shape), shape
    late = [
        ev(30, "vital", "sessC", "vC1", "/", "LCP", 900, ua=_CHROME),
        ev(3 * 3600, "view", "sessC", "vC2", "/late", "navigate", 700, ua=_FIREFOX),
    ]
    assert store.submit_rum(write(P, late)).result(30) == 2
    for shape in SHAPES:
        got = sorted(store.rum.rollup(P, *WIDE, **{"filters": ANY, **shape}))
        assert got == expected_rollup(ALL + late, *WIDE, **shape), shape


def test_a_beacon_batch_commits_its_rum_events_and_spans_in_one_transaction(
    tmp_path: Path,
) -> None:
    """DuckDB: a RUM write whose spans follow (``RumWrite.spans_follow``, the beacon
    endpoint's batches) waits for them and commits both in one transaction; one without
    commits at once, not after ``commit_interval_ms``."""
    import os

    from heron.server.ingest.pipeline import Pipeline
    from heron.server.model import Span
    from heron.server.store.duckdb_store import DuckDBStore

    store = DuckDBStore(tmp_path / "r.duckdb", commit_interval_ms=2_000).start()
    try:
        pipeline = Pipeline(store)
        trace = os.urandom(16)
        span = Span(
            trace_id=trace,
            span_id=0xB00,
            parent_id=0,
            start_ns=T0,
            duration_ns=10**9,
            name="pageload /",
            kind=3,
            status=0,
            status_message="",
            service="shop-web",
            environment="prod",
            release="1",
        )
        rum = pipeline.submit_rum(P, EVENTS_1[:3], spans_follow=True)
        time.sleep(0.05)  # the writer holds the round open for the spans
        spans = pipeline.submit_spans(P, [span], rollup=False)
        assert (rum.result(30), spans.result(30)) == (3, 1)
        rounds = store.commit_times.snapshot()
        assert rounds["rum"].count == 1 and "spans" not in rounds
        assert [r.span_id for r in store.traces.trace_spans(P, trace)] == [0xB00]
        t0 = time.monotonic()
        assert pipeline.submit_rum(P, EVENTS_1[3:4]).result(30) == 1
        assert time.monotonic() - t0 < 1.5  # not held for the 2 s commit interval
        assert store.stats["committed_rum"] == 4 and store.stats["committed_spans"] == 1
    finally:
        store.close()
