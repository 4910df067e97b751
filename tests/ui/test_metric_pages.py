"""Structural tests of the metrics pages (Runtime tab, Host view, explorer) and the
dashboard pages (list, view, editor, duplicate, delete, import, default per service),
in-process against a seeded store. Charts themselves are drawn in the browser tests."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from bs4 import BeautifulSoup, Tag

from tests.ui.conftest import Ui
from tests.ui.test_pages import json_block, query_of

XSS = "<img src=x onerror=alert(1)>"


def csrf(soup: BeautifulSoup) -> str:
    field = soup.find("input", attrs={"name": "csrf_token"})
    assert isinstance(field, Tag)
    return str(field["value"])


def post_form(ui: Ui, page: str, action: str, **data: Any) -> Any:
    token = csrf(ui.soup(page))
    return ui.post(action, data={"csrf_token": token, **data})


def test_runtime_tab_lines_up_red_and_runtime_panels(ui: Ui) -> None:
    soup = ui.soup("/service/runtime?service=frontend&range=6h")
    tabs = soup.select("nav.subtabs.service a")
    assert [a.get_text() for a in tabs] == ["Overview", "Runtime"]
    assert "on" in (tabs[1].get("class") or [])
    data = json_block(soup, "panels-data")
    assert data["to_s"] - data["from_s"] == 6 * 3600
    kinds = [p["query"].get("figure") or p["query"]["metric"] for p in data["panels"]]
    assert kinds[:2] == ["rpm", "p95"]
    assert {
        "process.cpu.utilization",
        "process.memory.usage",
        "cpython.gc.collections",
        "process.thread.count",
        "heron.asyncio.event_loop.lag",
    } <= set(kinds)
    for p in data["panels"][2:]:
        assert p["query"]["filter"] == {"service": "frontend"}
        assert p["query"]["by"] == ["host.name", "process.pid"]
    assert len(soup.select(".panels .panel[data-panel]")) == len(data["panels"])
    # The service page links to it, keeping the range.
    service = ui.soup("/service?service=frontend&range=6h")
    link = service.select("nav.subtabs a")[1]
    assert query_of(str(link["href"])) == {"service": ["frontend"], "range": ["6h"]}


def test_host_view(ui: Ui) -> None:
    soup = ui.soup("/hosts")
    assert soup.find("ul", id="host-list") is not None
    assert soup.select_one("nav.tabs a.on").get_text() == "Metrics"  # type: ignore[union-attr]
    assert soup.select_one("nav.subtabs a.on").get_text() == "Hosts"  # type: ignore[union-attr]
    soup = ui.soup(f"/hosts?host={XSS}")
    data = json_block(soup, "panels-data")
    assert [p["query"]["metric"] for p in data["panels"]] == [
        "system.cpu.utilization",
        "system.memory.utilization",
        "system.cpu.load_average.1m",
        "system.filesystem.utilization",
    ]
    assert all(p["query"]["filter"]["host.name"] == XSS for p in data["panels"])
    assert XSS not in ui.ok(f"/hosts?host={XSS}").text  # escaped everywhere


def test_explorer_state_is_in_the_url(ui: Ui) -> None:
    soup = ui.soup("/explore")
    assert soup.find(id="catalog") is not None and soup.find("script", id="panels-data")
    assert json_block(soup, "panels-data")["panels"] == []
    soup = ui.soup(
        "/explore?metric=orders.placed&agg=rate&by=region,+service&filter=env%3Dprod&step=300&type=bar"
    )
    panel = json_block(soup, "panels-data")["panels"][0]
    assert panel["type"] == "bar"
    assert panel["query"] == {
        "metric": "orders.placed",
        "agg": "rate",
        "by": ["region", "service"],
        "filter": {"env": "prod"},
        "step": 300,
    }
    assert soup.find("input", id="ex-metric")["value"] == "orders.placed"  # type: ignore[index]
    assert soup.select_one("#ex-agg option[selected]").get_text() == "rate"  # type: ignore[union-attr]
    assert [i["value"] for i in soup.select("input.ex-filter")][0] == "env=prod"
    # "New dashboard with this chart" posts the panel as a dashboard.
    saved = json.loads(
        str(soup.find("form", class_="save-chart").find("input", attrs={"name": "json"})["value"])
    )  # type: ignore[union-attr,index]
    assert saved["title"] == "orders.placed" and saved["panels"] == [panel]
    # The time-range links keep the query.
    link = soup.select_one('a[data-range="24h"]')
    assert query_of(str(link["href"]))["metric"] == ["orders.placed"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("qs", "says"),
    [
        ("metric=m&agg=p42", "agg"),
        ("metric=m&filter=nolabel", "label=value"),
        ("metric=m&step=90", "step"),
    ],
)
def test_explorer_bad_query_is_a_400_page(ui: Ui, qs: str, says: str) -> None:
    r = ui.get(f"/explore?{qs}")
    assert r.status_code == 400 and says in r.text


def test_dashboard_pages_round_trip(ui: Ui) -> None:
    listing = ui.soup("/dashboards")
    assert "frontend" in [a.get_text() for a in listing.select("#service-dashboards a")]
    default = ui.soup("/dashboards/default?service=frontend")
    spec = json.loads(str(default.find("input", attrs={"name": "json"})["value"]))  # type: ignore[index]
    assert spec["title"] == "frontend overview"
    r = post_form(
        ui, "/dashboards/default?service=frontend", "/dashboards/new", json=json.dumps(spec)
    )
    assert r.status_code == 303
    did = int(re.fullmatch(r"/dashboards/(\d+)", r.headers["location"]).group(1))  # type: ignore[union-attr]
    view = ui.soup(f"/dashboards/{did}")
    assert view.find("h1").get_text() == "frontend overview"  # type: ignore[union-attr]
    assert len(json_block(view, "panels-data")["panels"]) == len(spec["panels"])
    assert view.find("a", id="export")["href"] == f"/api/v1/dashboards/{did}?download=1"  # type: ignore[index]

    # Edit: a bad dashboard comes back with the error and the text kept.
    bad = json.dumps({**spec, "panels": [{"query": {"metric": "m", "agg": "p42"}}]})
    r = post_form(ui, f"/dashboards/{did}/edit", f"/dashboards/{did}/edit", json=bad)
    assert r.status_code == 400
    page = BeautifulSoup(r.text, "html.parser")
    assert "panels.0.query.agg" in page.find(id="editor-error").get_text()  # type: ignore[union-attr]
    assert page.find("textarea").get_text() == bad  # type: ignore[union-attr]
    edited = json.dumps({**spec, "title": XSS, "version": 1})
    r = post_form(ui, f"/dashboards/{did}/edit", f"/dashboards/{did}/edit", json=edited)
    assert r.status_code == 303
    assert XSS not in ui.ok(f"/dashboards/{did}").text
    assert ui.soup(f"/dashboards/{did}").find("h1").get_text() == XSS  # type: ignore[union-attr]
    stale = post_form(ui, f"/dashboards/{did}/edit", f"/dashboards/{did}/edit", json=edited)
    assert stale.status_code == 400 and "now version 2" in stale.text

    r = post_form(ui, f"/dashboards/{did}", f"/dashboards/{did}/duplicate")
    copy = int(r.headers["location"].rsplit("/", 1)[1])
    assert copy != did
    titles = [a.get_text() for a in ui.soup("/dashboards").select("#dashboards a")]
    assert XSS in titles and f"Copy of {XSS}" in titles

    upload = {
        "file": ("board.json", json.dumps({"title": "Imported", "panels": []}), "application/json")
    }
    token = csrf(ui.soup("/dashboards"))
    r = ui.post("/dashboards/import", data={"csrf_token": token}, files=upload)
    assert r.status_code == 303
    assert ui.soup(r.headers["location"]).find("h1").get_text() == "Imported"  # type: ignore[union-attr]

    for d in (did, copy):
        assert post_form(ui, f"/dashboards/{d}", f"/dashboards/{d}/delete").status_code == 303
        assert ui.get(f"/dashboards/{d}").status_code == 404
    # Without the CSRF token nothing changes.
    assert ui.post("/dashboards/new", data={"json": json.dumps(spec)}).status_code == 403
