"""The load-test pages in-process: runs created through the real API over windows whose
spans came through the real ingest path (tests/ui/loadtest_seed.py), then rendered.

The second run's ``GET /lt/products`` is 50 % slower than the baseline's: the compare
page must call it a regression, and ``GET /lt/health`` unchanged. A run name and a label
are XSS payloads: they must come out escaped everywhere.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio.from_thread
import httpx
import pytest
from bs4 import BeautifulSoup

from heron.server.app import create_app
from heron.server.config import Config
from heron.server.ui.security import PAGE_HEADERS
from tests.ui import loadtest_seed as lts
from tests.ui.conftest import INGEST_KEY, NOW_NS, PASSWORD, Ui

TOKEN = "ht_ui_loadtest_token_0123456789"
BEARER = {"authorization": f"Bearer {TOKEN}"}


class LtUi(Ui):
    """The UI fixture plus the JSON API with a bearer token (as the CLI calls it)."""

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return self.portal.call(
            lambda: self.client.request(method, "/api/v1" + path, json=body, headers=BEARER)
        )

    def new_run(self, name: str, window: tuple[int, int], **extra: Any) -> dict[str, Any]:
        r = self.api("POST", "/loadtests", {"name": name, "start_ns": window[0], **extra})
        assert r.status_code == 201, r.text
        run_id = r.json()["id"]
        r = self.api("POST", f"/loadtests/{run_id}/finish", {"end_ns": window[1], "exit_code": 0})
        assert r.status_code == 200, r.text
        return dict(r.json())


def _start(tmp: Path, seeded: bool) -> Iterator[LtUi]:
    config = Config(
        data_dir=str(tmp),
        ingest_key=INGEST_KEY,
        admin_password=PASSWORD,
        api_token=TOKEN,
        commit_interval_ms=0,
    )
    app = create_app(config, clock=lambda: NOW_NS, maintenance_interval_s=3600)
    with (
        anyio.from_thread.start_blocking_portal() as portal,
        portal.wrap_async_context_manager(app.router.lifespan_context(app)),
    ):
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://heron.test"
        )
        ui = LtUi(portal, client, app, None)
        try:
            if seeded:
                ui.ingest(lts.build(NOW_NS).requests())
            ui.sign_in()
            yield ui
        finally:
            portal.call(client.aclose)


@pytest.fixture(scope="module")
def lt_ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LtUi]:
    yield from _start(tmp_path_factory.mktemp("lt-ui"), seeded=True)


@pytest.fixture(scope="module")
def runs(lt_ui: LtUi) -> dict[str, dict[str, Any]]:
    """baseline and slowed run named ``checkout``; a third run whose name is a payload."""
    base_w, run_w = lts.windows(NOW_NS)
    base = lt_ui.new_run(
        "checkout", base_w, labels={"branch": "main", "note": lts.XSS_LABEL}, tool="locust"
    )
    slowed = lt_ui.new_run(
        "checkout",
        run_w,
        baseline="checkout",
        labels={"branch": "feature"},
        load={"users": 10, "host": lts.XSS_LABEL},
        command=f"locust --host {lts.XSS_LABEL}",
    )
    evil = lt_ui.new_run(lts.XSS_RUN, base_w, labels={lts.XSS_LABEL: lts.XSS_LABEL})
    return {"base": base, "slowed": slowed, "evil": evil}


def _no_payload(html: str) -> None:
    for payload in (lts.XSS_RUN, lts.XSS_LABEL):
        assert payload not in html
    assert "<script>alert" not in html and "<img src=x" not in html


def _rows(soup: BeautifulSoup, table_id: str) -> dict[str, Any]:
    table = soup.find(id=table_id)
    assert table is not None, soup.get_text()[:2000]
    return {tr["data-name"]: tr for tr in table.select("tbody tr")}


def test_runs_list(lt_ui: LtUi, runs: dict[str, dict[str, Any]]) -> None:
    r = lt_ui.ok("/loadtests")
    _no_payload(r.text)
    soup = BeautifulSoup(r.text, "html.parser")
    rows = soup.select("#lt-runs tbody tr")
    assert [int(tr["data-run"]) for tr in rows] == sorted(
        (run["id"] for run in runs.values()), reverse=True
    )
    by_id = {int(tr["data-run"]): tr for tr in rows}
    slowed = by_id[runs["slowed"]["id"]]
    text = slowed.get_text(" ", strip=True)
    assert "checkout" in text and "finished" in text
    # The run's requests: both endpoints, every span of its window.
    assert f"{2 * lts.WINDOW_S * lts.PER_S + lts.RARE_PER_WINDOW:,}" in text
    assert slowed.find("a", href=f"/loadtests/{runs['slowed']['id']}/compare")
    # The escaped payloads are there as text.
    evil = by_id[runs["evil"]["id"]].get_text(" ", strip=True)
    assert lts.XSS_RUN in evil and lts.XSS_LABEL in evil
    nav = soup.select_one("nav.tabs a.on")
    assert nav is not None and nav.get_text() == "Load tests"


def test_runs_list_filters_by_name(lt_ui: LtUi, runs: dict[str, dict[str, Any]]) -> None:
    soup = lt_ui.soup("/loadtests?name=checkout")
    ids = {int(tr["data-run"]) for tr in soup.select("#lt-runs tbody tr")}
    assert ids == {runs["base"]["id"], runs["slowed"]["id"]}
    soup = lt_ui.soup("/loadtests?name=nope")
    assert "No runs named" in soup.get_text()


def test_run_page(lt_ui: LtUi, runs: dict[str, dict[str, Any]]) -> None:
    run = runs["slowed"]
    r = lt_ui.ok(f"/loadtests/{run['id']}")
    _no_payload(r.text)
    soup = BeautifulSoup(r.text, "html.parser")
    rows = _rows(soup, "lt-endpoints")
    assert set(rows) == {f"{lts.SERVICE} {e}" for e in (lts.SLOW, lts.STEADY, lts.RARE)}
    n = lts.WINDOW_S * lts.PER_S
    for e in (lts.SLOW, lts.STEADY):
        assert f"{n:,}" in rows[f"{lts.SERVICE} {e}"].get_text(" ", strip=True)
    slow = rows[f"{lts.SERVICE} {lts.SLOW}"].get_text(" ", strip=True)
    assert "ms" in slow
    health = rows[f"{lts.SERVICE} {lts.STEADY}"].get_text(" ", strip=True)
    assert "2.08 %" in health  # 10 failures in 480
    # The series for the charts: offsets from the run's start, every request counted.
    data = json.loads(soup.find(id="lt-series").string)
    points = data["run"]["points"]
    assert points and points[0]["offset_s"] == 0
    assert sum(p["requests"] for p in points) == 2 * n + lts.RARE_PER_WINDOW
    assert data["baseline"] is None
    assert soup.select(".lt-charts .chart[data-lt-chart]")
    meta = soup.select_one(".lt-meta").get_text(" ", strip=True)
    assert lts.XSS_LABEL in meta  # command and load, as text
    # The baseline link of a run with a baseline.
    assert soup.find(
        "a", href=lambda h: bool(h) and h.startswith(f"/loadtests/{run['id']}/compare")
    )


def test_compare_page_shows_the_regression(lt_ui: LtUi, runs: dict[str, dict[str, Any]]) -> None:
    run, base = runs["slowed"], runs["base"]
    r = lt_ui.ok(f"/loadtests/{run['id']}/compare")  # baseline: the run's own ("checkout")
    _no_payload(r.text)
    soup = BeautifulSoup(r.text, "html.parser")
    assert soup.select_one("h1 .lt-verdict-regression") is not None
    rows = _rows(soup, "lt-compare")
    slow = rows[f"{lts.SERVICE} {lts.SLOW}"]
    assert slow["data-status"] == "regression"
    assert "+" in slow.get_text() and "%" in slow.get_text()
    assert rows[f"{lts.SERVICE} {lts.STEADY}"]["data-status"] == "unchanged"
    # Regressions first; too few requests: apart, under "not compared".
    assert next(iter(rows.values()))["data-status"] == "regression"
    others = _rows(soup, "lt-others")
    assert list(others) == [f"{lts.SERVICE} {lts.RARE}"]
    assert others[f"{lts.SERVICE} {lts.RARE}"]["data-status"] == "insufficient-data"
    assert "1 endpoint not compared" in soup.select_one(".lt-others summary").get_text()
    # Both runs' series, for the overlaid charts.
    data = json.loads(soup.find(id="lt-series").string)
    assert data["run"]["points"] and data["baseline"]["points"]
    assert data["baseline_label"] == f"baseline #{base['id']}"
    keys = [(c["service"], c["endpoint"]) for c in data["choices"]]
    assert sorted(keys) == sorted((lts.SERVICE, e) for e in (lts.SLOW, lts.STEADY, lts.RARE))
    assert keys[data["focus"]] == (lts.SERVICE, lts.SLOW)  # the charts open on the regression
    picked = soup.select_one("#lt-endpoint option[selected]")
    assert picked is not None and lts.SLOW in picked.get_text()
    # Each side's series is whole steps of its 60 s window, per endpoint too.
    for side in ("run", "baseline"):
        pts = data[side]["endpoints"][lts.SERVICE][lts.SLOW]
        assert sum(p["requests"] for p in pts) == lts.WINDOW_S * lts.PER_S
        assert pts[-1]["offset_s"] + data[side]["step_s"] <= lts.WINDOW_S
    assert len(soup.select(".lt-charts .chart[data-lt-chart]")) == 3
    # The verdict was stored: the list shows it.
    listed = lt_ui.soup("/loadtests").select_one(f"#lt-runs tr[data-run='{run['id']}']")
    assert listed.select_one(".lt-verdict-regression") is not None


def test_compare_with_an_explicit_baseline(lt_ui: LtUi, runs: dict[str, dict[str, Any]]) -> None:
    run, base = runs["slowed"], runs["base"]
    soup = lt_ui.soup(f"/loadtests/{run['id']}/compare?baseline={base['id']}&threshold=0.9")
    # +50 % is below a 90 % threshold: no regression at this setting.
    assert soup.select_one("h1 .lt-verdict-pass") is not None
    assert _rows(soup, "lt-compare")[f"{lts.SERVICE} {lts.SLOW}"]["data-status"] == "unchanged"


def test_compare_escapes_payload_names(lt_ui: LtUi, runs: dict[str, dict[str, Any]]) -> None:
    evil, base = runs["evil"], runs["base"]
    r = lt_ui.ok(f"/loadtests/{evil['id']}/compare?baseline={base['id']}")
    _no_payload(r.text)
    assert "&lt;script&gt;alert(&#39;run&#39;)&lt;/script&gt;" in r.text


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        ("/loadtests/999999", 404, "was not found"),
        ("/loadtests/abc", 404, "was not found"),
        ("/loadtests/999999/compare?baseline=1", 404, "was not found"),
        ("/loadtests/{base}/compare?baseline=999999", 404, "999999 does not exist"),
        ("/loadtests/{base}/compare?baseline=no-such-name", 404, "'no-such-name'"),
        ("/loadtests/{base}/compare?baseline={base}", 400, "its own baseline"),
        ("/loadtests/{base}/compare", 400, "no baseline"),
        ("/loadtests/{slowed}/compare?threshold=lots", 400, "threshold"),
        ("/loadtests/{slowed}/compare?alpha=2", 400, "alpha"),
        ("/loadtests?before=x", 400, "before"),
    ],
)
def test_bad_requests(
    lt_ui: LtUi, runs: dict[str, dict[str, Any]], path: str, status: int, says: str
) -> None:
    url = path.format(base=runs["base"]["id"], slowed=runs["slowed"]["id"])
    r = lt_ui.get(url)
    assert r.status_code == status, (url, r.status_code, r.text[:500])
    assert says in BeautifulSoup(r.text, "html.parser").get_text(), r.text[:2000]


def test_running_run(lt_ui: LtUi, runs: dict[str, dict[str, Any]]) -> None:
    r = lt_ui.api("POST", "/loadtests", {"name": "still-going", "baseline": "checkout"})
    assert r.status_code == 201, r.text
    run_id = r.json()["id"]
    try:
        soup = lt_ui.soup(f"/loadtests/{run_id}")
        assert "still running" in soup.get_text()
        r = lt_ui.get(f"/loadtests/{run_id}/compare")
        assert r.status_code in (400, 409), r.text[:500]
        assert "running" in BeautifulSoup(r.text, "html.parser").get_text()
    finally:
        assert lt_ui.api("DELETE", f"/loadtests/{run_id}").status_code == 204


@pytest.fixture
def empty_lt(tmp_path: Path) -> Iterator[LtUi]:
    yield from _start(tmp_path, seeded=False)


def test_empty_state(empty_lt: LtUi) -> None:
    soup = empty_lt.soup("/loadtests")
    empty = soup.select_one(".lt-empty")
    assert empty is not None
    assert "heron loadtest run --name" in empty.get_text()
    assert soup.find(id="lt-runs") is None


def test_signed_out_redirects(lt_ui: LtUi, runs: dict[str, dict[str, Any]]) -> None:
    for path in ("/loadtests", f"/loadtests/{runs['base']['id']}"):
        r = lt_ui.anonymous_get(path)
        assert r.status_code == 303 and "/login" in r.headers["location"], path


def test_security_headers_and_inert_scripts(lt_ui: LtUi, runs: dict[str, dict[str, Any]]) -> None:
    run, base = runs["slowed"], runs["base"]
    for path in (
        "/loadtests",
        f"/loadtests/{run['id']}",
        f"/loadtests/{run['id']}/compare?baseline={base['id']}",
        f"/loadtests/{runs['evil']['id']}/compare?baseline={base['id']}",
    ):
        r = lt_ui.ok(path)
        for name, value in PAGE_HEADERS.items():
            assert r.headers.get(name) == value, (path, name)
        for script in BeautifulSoup(r.text, "html.parser").find_all("script"):
            if script.get("src"):
                assert str(script["src"]).startswith("/static/") and not script.string
            else:
                assert script.get("type") == "application/json", (path, script)
                json.loads(script.string or "")
