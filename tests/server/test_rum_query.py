"""The web-vitals math as pure functions over rollup rows and RUM rows (no store): p75
from log buckets, the rating of the p75, rating shares, the device split, trend steps,
breakdown order, session timelines; and the trace view's page-load re-rooting."""

from __future__ import annotations

from typing import Any

import pytest

from heron.server.histogram import bucket_of
from heron.server.model.rum import (
    RumEvent,
    rate,
    rollup_rum,
    rollup_value_ns,
    rum_values,
)
from heron.server.query import InvalidQuery, rum
from heron.server.query._trace_detail import (
    SpanDetail,
    _link_tree,
    phase_spans,
    reroot_pageload,
)


def rows(metric: str, values: list[float], *, step: int = 0, group: str = "") -> list[Any]:
    """Rollup rows ``(step, group, metric, rating, bucket, 1)`` of single samples."""
    return [
        (step, group, metric, rate(metric, v), bucket_of(rollup_value_ns(metric, v)), 1)
        for v in values
    ]


def test_p75_of_bucketed_lcp_is_within_the_bucket_precision() -> None:
    values = [float(v) for v in range(100, 4100, 40)]  # 100 samples, exact p75 = 3080 ms
    acc = rum.accumulate(rows("LCP", values), 1)[""]
    summary = acc.vitals()[0]
    assert summary.name == "LCP"
    assert summary.count == 100
    assert summary.p75 == pytest.approx(3080, rel=0.06)
    assert summary.rating == "needs-improvement"  # the rating of the p75, not of the mean


def test_cls_is_unitless_through_its_scaled_buckets() -> None:
    # 50 samples of 0.01 and 50 of 0.3: the p75 falls among the 0.3s
    s = rum.vital_summary(
        "CLS",
        {bucket_of(rollup_value_ns("CLS", v)): n for v, n in ((0.01, 50), (0.3, 50))},
        {"good": 50, "poor": 50},
    )
    assert s.p75 == pytest.approx(0.3, rel=0.06)
    assert s.rating == "poor"
    assert (s.good, s.needs_improvement, s.poor) == (0.5, 0.0, 0.5)
    assert s.count == 100


def test_rating_shares_come_from_stored_ratings() -> None:
    r = rows("INP", [50, 150, 250, 300, 600, 700, 800, 900])
    s = rum.accumulate(r, 1)[""].vitals()[1]
    assert s.name == "INP"
    assert (s.good, s.needs_improvement, s.poor) == (0.25, 0.25, 0.5)
    assert s.rating == "poor"


def test_no_samples_means_no_p75_and_no_rating() -> None:
    s = rum.vital_summary("TTFB", {}, {})
    assert (s.p75, s.rating, s.count, s.good) == (None, None, 0, 0.0)


def test_rollup_of_events_feeds_the_same_math() -> None:
    """From RumEvents through model.rum.rollup_rum to the summary: views, loads, errors."""
    acc_rows: dict[tuple[Any, ...], int] = {}
    evs = [_event("view", "navigate", 1200.0), _event("view", "soft-navigation", 0.0)]
    evs += [_event("vital", "LCP", v, rating=rate("LCP", v)) for v in (1000.0, 2000.0, 5000.0)]
    evs += [_event("error", "TypeError", 0.0)]
    rollup_rum(1, evs, acc_rows)
    flat = [(0, k[6], k[7], k[8], k[9], n) for k, n in acc_rows.items()]
    acc = rum.accumulate(flat, 1)["desktop"]
    assert acc.count("views") == 2
    assert acc.count("load") == 1
    assert acc.load_p75_ms() == pytest.approx(1200, rel=0.06)
    assert acc.count("errors") == 1
    lcp = acc.vitals()[0]
    assert lcp.count == 3
    assert lcp.poor == pytest.approx(1 / 3)


def test_trend_fills_every_step_and_puts_samples_in_theirs() -> None:
    r = rows("LCP", [1000.0], step=600) + rows("LCP", [5000.0], step=1200)
    r += [(1200, "", "views", "", 0, 3)]
    t = rum.trend_from_rows(r, 0, 1800, 600)
    assert t.t == [0, 600, 1200]
    assert t.p75["LCP"][0] is None
    assert t.p75["LCP"][1] == pytest.approx(1000, rel=0.1)
    assert t.p75["LCP"][2] == pytest.approx(5000, rel=0.1)
    assert t.views == [0, 0, 3]
    assert t.p75["CLS"] == [None, None, None]


def test_breakdown_orders_groups_by_views() -> None:
    r = rows("LCP", [900.0], group="/a") + rows("LCP", [3000.0, 3100.0], group="/b")
    r += [(0, "/b", "views", "", 0, 5), (0, "/a", "views", "", 0, 9), (0, "/a", "errors", "", 0, 2)]
    out = rum.breakdown_from_rows(r)
    assert [g.value for g in out] == ["/a", "/b"]
    assert out[0].views == 9 and out[0].errors == 2
    assert out[0].vitals[0].rating == "good"
    assert out[1].vitals[0].rating == "needs-improvement"
    assert rum.breakdown_from_rows(r, limit=1)[0].value == "/a"


def test_filters_and_session_ids_are_checked() -> None:
    assert rum.rum_filters(page="/p", device="mobile").items() == [
        ("page", "/p"),
        ("device", "mobile"),
    ]
    assert rum.rum_filters(page="", app="").items() == []
    with pytest.raises(InvalidQuery, match="device must be one of"):
        rum.rum_filters(device="toaster")
    with pytest.raises(InvalidQuery, match="longer than"):
        rum.rum_filters(page="x" * 3000)
    assert rum.check_session_id("k3J9aQ2mZx7wP1sT") == "k3J9aQ2mZx7wP1sT"
    for bad in ("short", "has space in it", "<script>alert(1)</script>", "x" * 65):
        with pytest.raises(InvalidQuery, match="session id"):
            rum.check_session_id(bad)


def _event(kind: str, name: str, value: float, *, t: int = 0, **kw: Any) -> RumEvent:
    base: dict[str, Any] = {
        "time_ns": 1_700_000_000_000_000_000 + t,
        "kind": kind,
        "session_id": "sess-0001",
        "view_id": "v1",
        "page": "/products/:id",
        "url": "https://shop.example/products/42",
        "name": name,
        "value": value,
        "rating": "",
        "target": "",
        "browser": "Chrome",
        "browser_version": "120",
        "os": "Linux",
        "device": "desktop",
        "app": "shop-web",
        "release": "1.0",
        "environment": "prod",
    }
    base.update(kw)
    return RumEvent(**base)


def test_timeline_orders_events_and_picks_the_last_user() -> None:
    trace = bytes.fromhex("ab" * 16)
    evs = [
        _event("error", "TypeError", 0.0, t=300, target="x is undefined", user_id="u-2"),
        _event("view", "navigate", 900.0, t=100, trace_id=trace, span_id=0x1234),
        _event("vital", "LCP", 1800.0, t=200, rating="good", user_id="u-1"),
        _event("fetch", "GET /api/cart", 120.0, t=250, trace_id=trace, span_id=0x99),
    ]
    tl = rum.timeline_from_rows("sess-0001", [rum_values(e) for e in evs], limit=10)
    assert tl is not None
    assert [e.kind for e in tl.events] == ["view", "vital", "fetch", "error"]
    assert tl.user_id == "u-2"
    assert (tl.views, tl.errors, tl.truncated) == (1, 1, False)
    assert tl.events[0].trace_id == "ab" * 16
    assert tl.events[0].span_id == "0000000000001234"
    assert tl.events[0].browser == "Chrome 120"
    assert tl.last_ns - tl.first_ns == 200
    assert rum.timeline_from_rows("sess-0001", [], limit=10) is None


# ------------------------------------------------------------------------ trace re-rooting


def _sd(span_id: str, parent: str | None, name: str, start: int, **attrs: Any) -> SpanDetail:
    return SpanDetail(
        span_id=span_id,
        parent_id=parent,
        service="shop-web" if attrs else "shop",
        name=name,
        kind="client" if attrs else "server",
        start_ns=start,
        duration_ns=100,
        duration_ms=0.0,
        status="unset",
        status_message=None,
        attributes=dict(attrs),
        resource={},
        events=[],
        links=[],
        environment="",
        release="",
        scope=None,
        browser="heron.rum.kind" in attrs,
    )


def _pageload_trace(document_span: str) -> list[SpanDetail]:
    kind = "heron.rum.kind"
    return [
        _sd("00000000000000b1", None, "GET /products/:id", 20),  # the backend's root
        _sd("00000000000000b2", "00000000000000b1", "SELECT products", 25),
        _sd(
            "00000000000000f1",
            None,
            "pageload /products/:id",
            0,
            **{
                kind: "pageload",
                "heron.rum.document_span": document_span,
                "heron.rum.session": "sess-0001",
            },
        ),
        _sd("00000000000000f2", "00000000000000f1", "dns", 1, **{kind: "phase"}),
        _sd("00000000000000f3", "00000000000000f1", "request", 10, **{kind: "phase"}),
    ]


def test_pageload_becomes_the_root_with_the_document_span_under_its_request_phase() -> None:
    spans = _pageload_trace("00000000000000B1")  # hex case does not matter
    assert reroot_pageload(spans) == "sess-0001"
    roots = _link_tree(spans)
    assert roots == ["00000000000000f1"]
    by_id = {s.span_id: s for s in spans}
    assert by_id["00000000000000b1"].parent_id == "00000000000000f3"
    assert by_id["00000000000000b1"].depth == 2
    assert by_id["00000000000000b2"].depth == 3
    assert [s.browser for s in spans] == [False, False, True, True, True]


def test_pageload_naming_an_unknown_or_non_root_span_changes_nothing() -> None:
    for doc in ("00000000000000ff", "00000000000000b2"):
        spans = _pageload_trace(doc)
        assert reroot_pageload(spans) == "sess-0001"
        assert sorted(_link_tree(spans)) == ["00000000000000b1", "00000000000000f1"]


def test_without_a_request_phase_the_document_span_nests_under_the_pageload() -> None:
    spans = [s for s in _pageload_trace("00000000000000b1") if s.name != "request"]
    reroot_pageload(spans)
    assert _link_tree(spans) == ["00000000000000f1"]
    assert spans[0].parent_id == "00000000000000f1"


def test_a_trace_without_browser_spans_is_untouched() -> None:
    spans = _pageload_trace("00000000000000b1")[:2]
    assert reroot_pageload(spans) is None
    assert spans[0].parent_id is None


def test_a_scrubbed_document_span_falls_back_to_the_only_backend_root() -> None:
    """Ingest scrubs attribute text; a span id with 13+ digits may look like a card."""
    spans = _pageload_trace("[Filtered]d0c")
    reroot_pageload(spans)
    assert _link_tree(spans) == ["00000000000000f1"]
    assert spans[0].parent_id == "00000000000000f3"
    two_roots = [*_pageload_trace("[Filtered]d0c"), _sd("00000000000000c1", None, "GET /x", 30)]
    reroot_pageload(two_roots)  # ambiguous: nothing moves
    assert len(_link_tree(two_roots)) == 3


def test_phases_kept_by_the_pageload_become_its_child_spans() -> None:
    """Ingest keeps a page load's phases in ``heron.rum.phases``; the trace view makes
    them child spans with stable ids, under which the document's span is re-rooted."""
    spans = _pageload_trace("00000000000000b1")[:3]  # no phase rows
    load = spans[2]
    load.attributes["heron.rum.phases"] = {"dns": [1_000, 6_000], "request": [10_000, 90_000]}
    made = phase_spans(spans)
    assert "heron.rum.phases" not in load.attributes  # shown as spans, not an attribute
    assert [(p.name, p.start_ns, p.duration_ns) for p in made] == [
        ("dns", load.start_ns + 1_000, 6_000),
        ("request", load.start_ns + 10_000, 90_000),
    ]
    assert all(p.parent_id == load.span_id and p.browser and p.kind == "internal" for p in made)
    assert all(p.attributes == {"heron.rum.kind": "phase"} for p in made)
    assert len({p.span_id for p in made}) == 2 and all(len(p.span_id) == 16 for p in made)
    load.attributes["heron.rum.phases"] = {"dns": [1_000, 6_000], "request": [10_000, 90_000]}
    assert [p.span_id for p in phase_spans(spans)] == [p.span_id for p in made]  # stable
    spans += made
    reroot_pageload(spans)
    assert _link_tree(spans) == [load.span_id]
    assert spans[0].parent_id == made[1].span_id  # the backend root under `request`


def test_phase_rows_stored_before_are_not_doubled_and_bad_phases_are_skipped() -> None:
    spans = _pageload_trace("00000000000000b1")  # with phase rows
    spans[2].attributes["heron.rum.phases"] = {"dns": [1_000, 6_000]}
    assert phase_spans(spans) == []
    spans = _pageload_trace("00000000000000b1")[:3]
    spans[2].attributes["heron.rum.phases"] = {"dns": [-5, 6], "tls": "x", "load": [1.5, 2]}
    assert phase_spans(spans) == []
