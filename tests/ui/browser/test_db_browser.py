"""The grouped slow query log in a real browser against ``heron serve``.

Its own server and data: a shop on SQLite whose search is slow every time (one row in the
log, with the plan an EXPLAIN child span recorded for one call) and an orders query that
is slow now and then.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.conftest import HeronProcess, make_heron
from tests.ui.browser.conftest import PASSWORD, Watched, post_traces
from tests.ui.seed import MIN, MS, Seed, Sp

pytestmark = pytest.mark.e2e

SERVER, CLIENT, INTERNAL = 2, 3, 1
SEARCH_SQL = (
    "SELECT p.id, p.name, (SELECT AVG(r2.rating) FROM reviews r2 WHERE r2.product_id = p.id) "
    "AS rating FROM products p WHERE p.name LIKE ? OR EXISTS (SELECT ? FROM reviews r "
    "WHERE r.product_id = p.id AND r.body LIKE ?) ORDER BY rating DESC LIMIT ?"
)
ORDERS_SQL = "SELECT id, total_cents FROM orders WHERE customer_id = ? ORDER BY id DESC"
PLAN = (
    "SCAN p\n  CORRELATED SCALAR SUBQUERY 1\n    SCAN r2\n  CORRELATED SCALAR SUBQUERY 2\n"
    "    SCAN r\nUSE TEMP B-TREE FOR ORDER BY"
)
SEARCHES = 24


def _request(seed: Seed, trace: int, start: int, route: str, sql: str, dur_ms: int) -> int:
    """A shop request running one query; returns the query span's id."""
    root = seed.add(
        "shop",
        "production",
        "1.4.0",
        Sp(
            trace,
            seed.sid(),
            0,
            f"GET {route}",
            SERVER,
            start,
            (dur_ms + 20) * MS,
            {
                "http.request.method": "GET",
                "http.route": route,
                "http.response.status_code": 200,
            },
        ),
    )
    attrs = {"db.system.name": "sqlite", "db.namespace": "shop", "db.query.text": sql}
    name = f"SELECT {'products' if 'products' in sql else 'orders'}"
    query = Sp(trace, seed.sid(), root.span, name, CLIENT, start + 5 * MS, dur_ms * MS, attrs)
    return seed.add("shop", "production", "1.4.0", query).span


def slow_shop(now_ns: int) -> Seed:
    seed = Seed(now_ns)
    for n in range(SEARCHES):  # the search: slow every time, over the last half hour
        start = now_ns - 30 * MIN + n * MIN
        trace = 0x5EA0C000 + n
        span = _request(seed, trace, start, "/search", SEARCH_SQL, 380 + (n % 5) * 40)
        if n == SEARCHES - 3:  # the agent explained one call (its EXPLAIN child span)
            explain = Sp(
                trace,
                seed.sid(),
                span,
                "EXPLAIN SELECT products",
                INTERNAL,
                start + 600 * MS,
                2 * MS,
                {"heron.db.plan": PLAN, "heron.db.plan.format": "text"},
            )
            seed.add("shop", "production", "1.4.0", explain)
    for n in range(6):  # the orders list: slow now and then
        _request(seed, 0x0DE50000 + n, now_ns - 25 * MIN + n * 3 * MIN, "/orders", ORDERS_SQL, 130)
    return seed


@pytest.fixture
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HeronProcess]:
    h = make_heron(tmp_path_factory.mktemp("slow"), HERON_ADMIN_PASSWORD=PASSWORD).start()
    try:
        post_traces(h, slow_shop(time.time_ns()).requests())
        yield h
    finally:
        h.stop()


def test_slow_query_log_groups_calls_and_shows_the_plan(
    shop: HeronProcess, watched: Watched
) -> None:
    page = watched.page
    watched.sign_in(shop.url, "/db/slow")
    groups = page.locator("#slow-groups tbody tr")
    assert groups.count() == 2  # 30 slow calls, two query shapes
    search = groups.nth(0)  # most total time first
    assert search.locator("td.num").nth(0).inner_text().startswith(str(SEARCHES))
    assert search.locator("a.sql").inner_text().startswith("SELECT p.id, p.name")
    plan = search.locator("details.sample .plan pre")
    assert plan.is_visible()  # the first group's statement & plan are open
    assert plan.inner_text().splitlines()[:3] == [
        "SCAN p",
        "  CORRELATED SCALAR SUBQUERY 1",
        "    SCAN r2",
    ]
    assert groups.nth(1).locator("td.num").nth(0).inner_text().startswith("6")
    watched.shot("slow-queries")
    # A group's count lists its calls, slowest query shape's 24 executions.
    search.locator("td.num a").first.click()
    page.wait_for_selector("#slow tbody tr")
    assert page.locator("#slow tbody tr").count() == SEARCHES
    assert "fp=" in page.url
    page.click("#slow-views a:text-is('By query')")
    page.wait_for_selector("#slow-groups")
    watched.assert_clean()
