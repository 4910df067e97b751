"""The metrics pages and dashboards in Chromium against a real ``heron serve`` fed with
real OTLP metrics (``/v1/metrics``) and traces: the Runtime tab draws its charts, the
explorer charts a chosen metric and its URL reloads to the same state, an exemplar opens
its trace, a dashboard is built, exported, deleted, imported back and draws the same
panels, and a hostile label value is shown as text."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.conftest import HeronProcess, make_heron
from tests.ui import metrics_seed
from tests.ui import seed as seed_data
from tests.ui.browser.conftest import PASSWORD, Watched, post_traces
from tests.ui.metrics_seed import XSS

pytestmark = pytest.mark.e2e


class MetricsServed:
    def __init__(self, heron: HeronProcess, seed: seed_data.Seed) -> None:
        self.heron, self.seed, self.url = heron, seed, heron.url


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MetricsServed]:
    h = make_heron(tmp_path_factory.mktemp("metrics-browser"), HERON_ADMIN_PASSWORD=PASSWORD)
    h.start()
    try:
        now = time.time_ns()
        data = seed_data.build(now)
        post_traces(h, data.requests())
        with httpx.Client(base_url=h.url, headers={"x-heron-key": h.key}, timeout=60) as c:
            for body in metrics_seed.bodies(now, data.error_trace):
                r = c.post("/v1/metrics", json=body)
                assert r.status_code == 200 and "rejected" not in r.text, r.text
        h.wait_for(
            "/api/v1/metrics/label-values",
            lambda j: len(j["values"]) == 3,
            metric="orders.placed",
            key="region",
        )
        yield MetricsServed(h, data)
    finally:
        h.stop()


def panel(page: Any, title: str) -> Any:
    return page.locator(f".panel:has(.ptitle:text-is('{title}'))")


def wait_panels(page: Any) -> None:
    page.wait_for_selector(".panels[data-ready]")


def drawn_values(page: Any, title: str) -> dict[str, set[float]]:
    """The distinct values each line of a panel's chart draws, by legend label."""
    values = page.evaluate(
        """(title) => {
          const u = Heron.panelPlots.find(p => p.root.closest('.panel')
            .querySelector('.ptitle').textContent === title);
          return u.series.slice(1).map((s, i) => [s.label, u.data[i + 1]]);
        }""",
        title,
    )
    return {label: {round(v, 6) for v in vals if v is not None} for label, vals in values}


def test_runtime_tab_draws_each_instance(served: MetricsServed, watched: Watched) -> None:
    page = watched.page
    watched.sign_in(served.url, "/service?service=frontend")
    page.click("nav.subtabs a:text-is('Runtime')")
    wait_panels(page)
    assert urlsplit(page.url).path == "/service/runtime"
    for title in (
        "CPU utilisation",
        "Memory (RSS)",
        "Threads",
        "GC collections per second",
        "Event-loop lag (max)",
    ):
        box = panel(page, title)
        assert box.get_attribute("data-drawn") == "1", title
        assert box.get_attribute("data-series") == "2", title  # one line per process
        assert box.locator("canvas").count() == 1, title
    # Throughput and latency are drawn above, on the same time axis.
    assert panel(page, "Throughput (req/min)").locator("canvas").count() == 1
    assert drawn_values(page, "CPU utilisation") == {
        "host.name=web-1, process.pid=101": {0.1},
        "host.name=web-1, process.pid=202": {0.2},
    }
    assert sorted(drawn_values(page, "Threads").values(), key=min) == [{4.0}, {5.0}]
    legend = panel(page, "Threads").locator(".u-legend").inner_text()
    assert "web-1, 101" in legend.replace("host.name=", "").replace("process.pid=", "")
    watched.shot("runtime-tab")
    watched.assert_clean()


def test_host_view(served: MetricsServed, watched: Watched) -> None:
    page = watched.page
    watched.sign_in(served.url, "/hosts")
    page.click("#host-list a:text-is('web-1')")
    wait_panels(page)
    assert parse_qs(urlsplit(page.url).query)["host"] == ["web-1"]
    disk = panel(page, "Disk used by mount")
    assert disk.get_attribute("data-series") == "2"
    assert XSS in disk.locator(".u-legend").inner_text()  # the mount point, as text
    assert page.locator("main img[src=x]").count() == 0
    assert panel(page, "Load average (1 min)").locator("canvas").count() == 1
    watched.shot("hosts")
    watched.assert_clean()


def test_explorer_charts_and_reloads_the_same_state(
    served: MetricsServed, watched: Watched
) -> None:
    page = watched.page
    watched.sign_in(served.url, "/explore")
    page.fill("#ex-metric", "orders.placed")
    page.select_option("#ex-agg", "rate")
    page.fill("#ex-by", "region")
    page.click("#explorer button[type=submit]")
    wait_panels(page)
    query = parse_qs(urlsplit(page.url).query)
    assert (query["metric"], query["agg"], query["by"]) == (["orders.placed"], ["rate"], ["region"])
    box = page.locator(".panel").first
    assert box.get_attribute("data-series") == "3"
    legend = box.locator(".u-legend").inner_text()
    assert XSS in legend and "eu" in legend  # the hostile label value is text
    # Two processes each count 6, 3 and 1 orders a minute: the rate sums them.
    assert drawn_values(page, "orders.placed") == {
        "eu": {0.2},
        "us": {0.1},
        XSS: {round(2 / 60, 6)},
    }
    assert page.locator("main img[src=x]").count() == 0

    page.reload()
    wait_panels(page)
    assert page.input_value("#ex-metric") == "orders.placed"
    assert page.input_value("#ex-agg") == "rate"
    assert page.input_value("#ex-by") == "region"
    assert page.locator(".panel").first.get_attribute("data-series") == "3"
    watched.shot("explorer")
    watched.assert_clean()


def test_exemplar_opens_its_trace(served: MetricsServed, watched: Watched) -> None:
    page = watched.page
    watched.sign_in(served.url, "/explore?metric=http.server.request.duration&agg=p95")
    wait_panels(page)
    # A dot on the chart: clicking it opens the trace.
    body = served.heron.api(
        "/api/v1/metrics/query", metric="http.server.request.duration", agg="p95"
    ).json()
    ex = body["exemplars"][0]
    assert ex["trace_id"] == served.seed.error_trace
    x, y = page.evaluate(
        """([t, v]) => { const u = Heron.panelPlots[0], r = u.over.getBoundingClientRect();
                       return [r.left + u.valToPos(t, 'x'), r.top + u.valToPos(v, 'y')]; }""",
        [ex["time_ns"] / 1e9, ex["value"]],
    )
    page.mouse.click(x, y)
    page.wait_for_url(f"**/traces/{served.seed.error_trace}**")
    # And the list below the chart.
    page.go_back()
    wait_panels(page)
    assert page.locator("#exemplars a.exemplar").count() == len(body["exemplars"])
    page.locator("#exemplars a.exemplar").first.click()
    page.wait_for_url(f"**/traces/{served.seed.error_trace}**")
    watched.assert_clean()


BOARD = {
    "title": "Shop board",
    "description": "built in the browser",
    "panels": [
        {
            "title": "Orders",
            "type": "bar",
            "query": {"metric": "orders.placed", "agg": "increase", "by": ["region"]},
            "width": 6,
        },
        {
            "title": "Frontend p95",
            "type": "stat",
            "query": {"service": "frontend", "figure": "p95"},
            "width": 3,
        },
        {
            "title": "Threads table",
            "type": "table",
            "query": {"metric": "process.thread.count", "agg": "avg", "by": ["process.pid"]},
            "width": 3,
        },
        {
            "title": "Frontend rpm",
            "type": "area",
            "query": {"service": "frontend", "figure": "rpm"},
            "width": 12,
        },
    ],
}


def drawn_panels(page: Any) -> list[tuple[str, str | None]]:
    wait_panels(page)
    boxes = page.locator(".panel")
    return [
        (
            boxes.nth(i).locator(".ptitle").inner_text(),
            boxes.nth(i).get_attribute("data-drawn"),
        )
        for i in range(boxes.count())
    ]


def test_dashboard_built_exported_deleted_imported(
    served: MetricsServed, watched: Watched, tmp_path: Path
) -> None:
    page = watched.page
    watched.sign_in(served.url, "/dashboards")
    page.click("#new-dashboard")
    page.fill("#dashboard-json", json.dumps(BOARD))
    page.click("#save")
    before = drawn_panels(page)
    assert [t for t, _ in before] == [p["title"] for p in BOARD["panels"]]
    assert all(d == "1" for _, d in before), before
    stat = panel(page, "Frontend p95").locator(".stat").inner_text()
    assert stat.endswith("ms"), stat
    assert panel(page, "Threads table").locator("tbody tr").count() == 2
    watched.shot("dashboard")

    with page.expect_download() as info:
        page.click("#export")
    saved = tmp_path / "board.json"
    info.value.save_as(saved)
    exported = json.loads(saved.read_text())
    assert exported["title"] == "Shop board" and len(exported["panels"]) == 4

    page.click("#delete")
    page.click("#delete-confirm")
    page.wait_for_url(f"{served.url}/dashboards")
    assert page.locator("#dashboards a:text-is('Shop board')").count() == 0
    watched.shot("dashboards")

    page.set_input_files("#import-form input[type=file]", str(saved))
    page.click("#import-form button[type=submit]")
    after = drawn_panels(page)
    assert after == before
    assert page.locator("#dashboard-title").inner_text() == "Shop board"
    watched.assert_clean()
