"""Small pieces of the UI: URL state, formatting, colours, map layout, waterfall order."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.requests import Request

from heron.server.query import InvalidQuery, MapEdge, ServiceMap, SpanDetail, TraceDetail
from heron.server.ui._map_page import layout
from heron.server.ui._pages import sparkline_points
from heron.server.ui._render import PALETTE_SIZE, Renderer, color_index, fmt_ms, fmt_num, fmt_pct
from heron.server.ui._state import read_state
from heron.server.ui._trace_pages import tree_order, waterfall_doc

NS = 1_000_000_000
NOW = 1_700_000_000 * NS


def request(query: str) -> Request:
    return Request(
        {
            "type": "http",
            "method": "GET",
            "path": "/",
            "query_string": query.encode(),
            "headers": [],
        }
    )


def test_state_defaults_and_urls() -> None:
    s = read_state(request(""), NOW)
    assert (s.range, s.environment, s.refresh) == ("1h", None, "off")
    assert s.time_range.end_ns == NOW and s.time_range.start_ns == NOW - 3600 * NS
    assert s.url("/") == "/"
    assert s.url("/service", service="a b&c") == "/service?service=a+b%26c"
    assert s.with_range("7d").url("/x", q=None) == "/x?range=7d"
    s2 = read_state(request("range=15m&env=prod&refresh=1m"), NOW)
    url = s2.url("/traces", attr=["k=v", "x=y"], status="error")
    assert parse_qs(urlsplit(url).query) == {
        "range": ["15m"],
        "env": ["prod"],
        "refresh": ["1m"],
        "attr": ["k=v", "x=y"],
        "status": ["error"],
    }
    assert s2.refresh_s == 60
    assert s2.url("/", env=None) == "/?range=15m&refresh=1m"


def test_custom_range_state() -> None:
    s = read_state(request("from=-2h"), NOW)
    assert s.range == "custom" and s.time_range.start_ns == NOW - 7200 * NS
    assert s.params() == {"from": "-2h", "to": "now"}
    absolute = read_state(request("from=2023-11-14T00:00:00Z&to=2023-11-14T01:00:00Z"), NOW)
    assert absolute.time_range.end_ns - absolute.time_range.start_ns == 3600 * NS
    only_to = read_state(request("to=2023-11-14T01:00:00Z"), NOW)
    assert only_to.time_range.end_ns - only_to.time_range.start_ns == 3600 * NS


@pytest.mark.parametrize(
    "query", ["range=1y", "refresh=2s", "from=tomorrow", "from=-100d", "from=now&to=-1h"]
)
def test_bad_state(query: str) -> None:
    with pytest.raises(InvalidQuery):
        read_state(request(query), NOW)


def test_formatting() -> None:
    assert [fmt_ms(v) for v in (None, 0.25, 4.5, 12.34, 456.7, 1234, 125_000)] == [
        "–",
        "250 µs",
        "4.50 ms",
        "12.3 ms",
        "457 ms",
        "1.23 s",
        "2.1 min",
    ]
    assert [fmt_pct(v) for v in (None, 0, 0.00001, 0.0123, 0.5)] == [
        "–",
        "0%",
        "<0.01%",
        "1.23%",
        "50.0%",
    ]
    # An overspent error budget is negative: shown as such, not as "<0.01%".
    assert [fmt_pct(v) for v in (-0.005, -28.77)] == ["-0.5%", "-2,877%"]
    assert [fmt_num(v) for v in (None, 3, 2.5, 12.34, 12_345, 2_500_000)] == [
        "–",
        "3",
        "2.50",
        "12.3",
        "12.3k",
        "2.5M",
    ]


def test_service_colours_are_stable_and_spread() -> None:
    assert color_index("checkout") == color_index("checkout")
    slots = {color_index(f"service-{i}") for i in range(100)}
    assert slots == set(range(PALETTE_SIZE))
    assert 0 <= color_index("<script>") < PALETTE_SIZE
    assert 0 <= color_index("\udcff") < PALETTE_SIZE  # lone surrogates from bad UTF-8


def test_sparkline_points() -> None:
    assert sparkline_points([]) == ""
    pts = [tuple(map(float, p.split(","))) for p in sparkline_points([0, None, 5, 10]).split()]
    assert [x for x, _ in pts] == pytest.approx([0, 33.3, 66.7, 100], abs=0.1)
    assert pts[0][1] == pts[1][1] == 23.0 and pts[3][1] == 1.0  # zero at the bottom, max on top
    assert sparkline_points([0, 0]) == "0.0,23.0 100.0,23.0"


def edge(a: str, b: str, rpm: float = 1.0, err: float = 0.0) -> MapEdge:
    return MapEdge(a, b, 60, rpm, int(err * 60), err, 12.0)


def test_map_layout_columns_and_cycles() -> None:
    smap = ServiceMap(
        services=["a", "b", "c", "d"],
        edges=[
            edge("a", "b"),
            edge("b", "c", err=0.2),
            edge("a", "c"),
            edge("c", "b"),
            edge("d", "c"),
        ],
    )
    drawing = layout(smap, {})
    x = {n.name: n.x for n in drawing.nodes}
    assert x["a"] == x["d"] < x["b"] < x["c"]  # b → c → b is a cycle: one edge is an arc
    back = [e for e in drawing.edges if e.back]
    assert len(back) == 1 and (back[0].edge.caller, back[0].edge.callee) == ("c", "b")
    hot = [e for e in drawing.edges if e.hot]
    assert [(e.edge.caller, e.edge.callee) for e in hot] == [("b", "c")]
    assert drawing.width > max(x.values()) and drawing.height > 0
    assert all(n.label == "no entry spans" for n in drawing.nodes)


def detail(sid: str, parent: str | None, start: int, dur: int) -> SpanDetail:
    return SpanDetail(
        sid,
        parent,
        "svc",
        sid,
        "internal",
        start,
        dur,
        dur / 1e6,
        "unset",
        None,
        {"k": "v"},
        {"service.name": "svc"},
        [],
        [],
        "prod",
        "1",
        None,
    )


def test_waterfall_doc_is_tree_ordered_with_subtree_ends() -> None:
    spans = [
        detail("r", None, 0, 100),
        detail("b", "r", 50, 10),
        detail("a", "r", 10, 30),
        detail("a1", "a", 15, 5),
        detail("x", "gone", 5, 1),  # an orphan: a second root
    ]
    by = {s.span_id: s for s in spans}
    for s in spans:
        if s.parent_id in by:
            by[s.parent_id].children.append(s.span_id)
    trace = TraceDetail("t" * 32, 0, 0.1, 5, False, ["svc"], spans, ["r", "x"])
    assert [s.span_id for _, s in tree_order(trace)] == ["r", "a", "a1", "b", "x"]
    doc = waterfall_doc(trace)
    rows = doc["spans"]
    assert [r[9]["id"] for r in rows] == ["r", "a", "a1", "b", "x"]
    assert [r[0] for r in rows] == [-1, 0, 1, 0, -1]  # parent row indexes
    assert [r[10] for r in rows] == [4, 3, 3, 4, 5]  # one past each subtree
    assert len(doc["resources"]) == 1 and all(r[9]["res"] == 0 for r in rows)
    assert rows[0][4] == 0 and rows[1][4] == 0.01  # µs since the trace started (10 ns)


def test_exception_types_render_without_main_or_builtins() -> None:
    env = Renderer().env
    page = env.from_string("{{ t|bare_type }} · {{ title|bare_type }}")
    text = page.render(t="__main__.PaymentDeclined", title="builtins.KeyError: 'sku'")
    assert text == "PaymentDeclined · KeyError: &#39;sku&#39;"
