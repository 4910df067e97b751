"""``heron demo`` end to end: the shop's ``GET /orders`` N+1 is found, nothing else is.

The shop loads an order's items in a loop (one query per order, 20 orders, each a scan of
an unindexed table): at the default thresholds (5 repeats, 50 ms) the findings API must
report that query under ``GET /orders``, repeated 20 times per request, with an example
trace whose spans show it. ``GET /v2/orders`` returns the same data from one JOIN and must
not be reported; nor must the other endpoints (one query per request, or a handful of
inserts at checkout). The database analytics must list both endpoints' queries.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest

from heron.demo import DEMO_API_TOKEN, SHOP_SERVICE

from .test_demo import Demo

pytestmark = pytest.mark.e2e

FOUND_WITHIN_S = 75.0  # traffic hits /orders every few seconds; analysis runs every ~10 s
ITEMS_QUERY = "FROM order_items WHERE order_id = ?"


def orders_finding(body: Any) -> dict[str, Any] | None:
    for f in body["findings"]:
        if f["endpoint"] == "GET /orders" and f["kind"] == "db" and ITEMS_QUERY in f["display"]:
            return f  # type: ignore[no-any-return]
    return None


def wait_for(demo: Demo, path: str, ok: Any, **params: str) -> Any:
    deadline = demo.started + FOUND_WITHIN_S
    last = None
    while time.monotonic() < deadline:
        last = demo.api(path, DEMO_API_TOKEN, **params)
        if last is not None and ok(last):
            return last
        time.sleep(1.0)
    raise AssertionError(f"{path} {params}: not within {FOUND_WITHIN_S:.0f}s; last: {last}")


def test_demo_orders_n_plus_one_is_found_and_nothing_else(tmp_path: Path) -> None:
    demo = Demo(tmp_path, "--duration", "120")
    try:
        demo.wait_for_output(r"Press Ctrl-C to stop", 30)
        # Default thresholds: the server's own (5 repeats, 50 ms in all).
        body = wait_for(
            demo,
            "/api/v1/n-plus-one",
            lambda j: orders_finding(j) is not None,
            **{"from": "-15m"},
        )
        finding = orders_finding(body)
        assert finding is not None
        assert finding["service"] == SHOP_SERVICE
        assert finding["db_system"] == "sqlite"
        assert finding["avg_repeats"] >= 5 and finding["max_repeats"] == 20, finding
        assert finding["occurrences"] >= 1
        assert finding["total_time_ms"] >= 50.0 * finding["occurrences"], finding
        # Only the loop is a finding: one query per request, or 1-4 inserts per checkout,
        # never reaches five repeats under one parent.
        others = [f for f in body["findings"] if f is not finding]
        assert others == [], others

        trace = demo.api(f"/api/v1/traces/{finding['example_trace_id']}", DEMO_API_TOKEN)
        assert trace is not None
        repeated = [
            s for s in trace["spans"] if ITEMS_QUERY in (s["attributes"].get("db.query.text") or "")
        ]
        assert len(repeated) == 20
        assert len({s["parent_id"] for s in repeated}) == 1
        assert f"{0:016x}" != finding["example_span_id"]

        queries = wait_for(
            demo,
            "/api/v1/db/queries",
            lambda j: any(ITEMS_QUERY in q["display"] for q in j["queries"]),
            endpoint="GET /orders",
            **{"from": "-15m"},
        )
        items = next(q for q in queries["queries"] if ITEMS_QUERY in q["display"])
        assert items["fingerprint"] == finding["fingerprint"]
        detail = demo.api(f"/api/v1/db/queries/{items['fingerprint']}", DEMO_API_TOKEN)
        assert detail is not None
        by_endpoint = {e["endpoint"]: e for e in detail["endpoints"]}
        assert by_endpoint["GET /orders"]["calls_per_request"] > 10  # requests count sooner

        # The JOIN twin ran (the traffic's tour calls it once at start) and is not a finding,
        # even with the time threshold off: one statement per request never repeats.
        joined = wait_for(
            demo,
            "/api/v1/db/queries",
            lambda j: any("JOIN order_items" in q["display"] for q in j["queries"]),
            endpoint="GET /v2/orders",
            **{"from": "-15m"},
        )
        join_q = next(q for q in joined["queries"] if "JOIN order_items" in q["display"])
        assert join_q["calls"] >= 1
        body = demo.api("/api/v1/n-plus-one", DEMO_API_TOKEN, min_total_ms="0", **{"from": "-15m"})
        assert body is not None
        assert [f for f in body["findings"] if f["endpoint"] == "GET /v2/orders"] == []
        print(
            "\nGET /orders N+1:",
            {k: finding[k] for k in ("occurrences", "total_time_ms", "wasted_time_ms")},
        )
    finally:
        rc = demo.finish(signal.SIGINT)
    assert rc == 0, demo.output
