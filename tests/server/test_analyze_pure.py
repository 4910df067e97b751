"""The analysis rules as pure functions over plain rows (no store): the endpoint a span
ran under, repeat groups of outgoing calls, and readable fingerprint names."""

from __future__ import annotations

from heron.server.analyze._entry import entry_endpoints
from heron.server.analyze.n_plus_one import MAX_TOTAL_NS, http_groups, with_endpoints
from heron.server.analyze.query_stats import name_fingerprints

T1, T2 = b"\x01" * 16, b"\x02" * 16


def test_the_endpoint_is_the_latest_entry_of_the_same_service_started_before() -> None:
    entries = [
        (1, T1, "shop", 100, "GET /outer"),
        (1, T1, "shop", 200, "GET /inner"),
        (1, T1, "stock", 150, "GET /stock"),
        (2, T1, "shop", 190, "GET /other-project"),
    ]
    spans = [
        (1, T1, "shop", 250),  # under /inner, the latest that started before it
        (1, T1, "shop", 150),  # /inner had not started yet
        (1, T1, "stock", 160),
        (1, T1, "mail", 300),  # no entry span of its service
        (1, T2, "shop", 300),  # no entry span in its trace
        (1, T1, "shop", 100),  # an entry starting at the same time counts
    ]
    assert entry_endpoints(entries, spans) == [
        "GET /inner",
        "GET /outer",
        "GET /stock",
        "",
        "",
        "GET /outer",
    ]


def _call(span_id: int, start: int, dur: int, url: str, parent: int = 7) -> tuple[object, ...]:
    return (1, T1, parent, span_id, start, dur, "shop", "prod", "GET", "GET", url) + (None,) * 5


def test_http_groups_template_urls_and_keep_groups_of_min_count_in_the_window() -> None:
    rows = [_call(i, 1000 + i, 10, f"http://stock/items/{i}") for i in range(1, 6)]
    rows += [_call(10 + i, 1000 + i, 10, f"http://stock/other/{i}", parent=8) for i in range(4)]
    rows += [_call(20 + i, 10 + i, 10, f"http://stock/early/{i}", parent=9) for i in range(5)]
    groups = http_groups(rows, lo_ns=1000, min_count=5)
    assert [(g["display"], g["count"], g["total_ns"], g["example_span_id"]) for g in groups] == [
        ("GET http://stock/items/{id}", 5, 50, 1)
    ]
    (found,) = with_endpoints(groups, [(1, T1, "shop", 900, "GET /order")])
    assert (found.endpoint, found.kind, found.parent_id) == ("GET /order", "http", 7)


def test_http_group_time_saturates() -> None:
    rows = [_call(i, 1000 + i, MAX_TOTAL_NS // 2, "http://stock/x") for i in range(5)]
    (group,) = http_groups(rows, lo_ns=0, min_count=5)
    assert group["total_ns"] == MAX_TOTAL_NS


def test_fingerprints_get_their_readable_form() -> None:
    named = name_fingerprints([(42, "postgresql", "SELECT * FROM t WHERE id = ?", 5)])
    assert named == [(42, "postgresql", "SELECT * FROM t WHERE id = ?", 5)]
    assert name_fingerprints([(43, "", None, 6)]) == [(43, "", "", 6)]
