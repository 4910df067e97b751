"""The load-test pages in Chromium against a real ``heron serve``: the compare page draws
its three overlaid charts (run and baseline: two series each) with no console error, no
page error and no CSP violation; the run and list pages render cleanly too.

Screenshots of the three pages go to test-artifacts/ui/ (and /tmp/lt-*.png when
``HERON_LT_SHOTS=1``, for the integrator).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import HeronProcess, make_heron
from tests.ui import loadtest_seed as lts
from tests.ui.browser.conftest import PASSWORD, Watched, post_traces


@pytest.fixture(scope="module")
def lt_served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HeronProcess, int, int]]:
    """A server with the two seeded windows and runs over them: (server, run, baseline)."""
    h = make_heron(tmp_path_factory.mktemp("lt-browser"), HERON_ADMIN_PASSWORD=PASSWORD).start()
    try:
        now = time.time_ns()
        post_traces(h, lts.build(now).requests())
        base_w, run_w = lts.windows(now)
        ids = []
        headers = {"authorization": f"Bearer {h.token}"}
        with httpx.Client(base_url=h.url + "/api/v1", headers=headers, timeout=30) as c:
            for (start, end), extra in (
                (base_w, {"labels": {"branch": "main"}}),
                (run_w, {"baseline": "checkout", "labels": {"branch": lts.XSS_LABEL}}),
            ):
                r = c.post("/loadtests", json={"name": "checkout", "start_ns": start, **extra})
                assert r.status_code == 201, r.text
                rid = r.json()["id"]
                r = c.post(f"/loadtests/{rid}/finish", json={"end_ns": end, "exit_code": 0})
                assert r.status_code == 200, r.text
                ids.append(rid)
        yield h, ids[1], ids[0]
    finally:
        h.stop()


def _shot(w: Watched, name: str) -> None:
    path = w.shot(name, full_page=True)
    if os.environ.get("HERON_LT_SHOTS") == "1":
        shutil.copyfile(path, f"/tmp/{name}.png")


def _charts(w: Watched) -> list[dict[str, Any]]:
    w.page.wait_for_selector(".lt-charts[data-drawn='3']", timeout=15_000)
    return list(
        w.page.eval_on_selector_all(
            ".lt-charts .chart[data-lt-chart]",
            """els => els.map(el => ({
                kind: el.getAttribute('data-lt-chart'),
                series: Number(el.getAttribute('data-series-count')),
                points: Number(el.getAttribute('data-points')),
                canvas: el.querySelectorAll('canvas').length,
                legend: Array.from(el.querySelectorAll('.u-legend .u-series th'))
                    .map(th => th.textContent.trim()),
            }))""",
        )
    )


def test_compare_page_overlays_run_and_baseline(
    lt_served: tuple[HeronProcess, int, int], watched: Watched
) -> None:
    h, run_id, base_id = lt_served
    watched.sign_in(h.url, f"/loadtests/{run_id}/compare")
    page = watched.page
    assert page.url.endswith(f"/loadtests/{run_id}/compare")
    charts = _charts(watched)
    assert [c["kind"] for c in charts] == ["rps", "p95", "errors"]
    for c in charts:
        assert c["canvas"] == 1, c
        assert c["series"] == 2, c  # run and baseline on one chart
        assert c["points"] >= 2, c
        assert f"baseline #{base_id}" in c["legend"] and f"run #{run_id}" in c["legend"], c
    # The charts open on the regressed endpoint; "all endpoints" redraws both runs.
    box = page.locator(".lt-charts")
    assert box.get_attribute("data-endpoint") == f"{lts.SERVICE} {lts.SLOW}"
    page.select_option("#lt-endpoint", "")
    page.wait_for_selector(".lt-charts[data-endpoint='']")
    assert all(c["series"] == 2 and c["canvas"] == 1 for c in _charts(watched))
    assert page.locator("h1 .lt-verdict-regression").count() == 1
    assert page.locator("#lt-compare tr[data-status='regression']").count() == 1
    assert lts.XSS_LABEL in page.locator(".lt-runs-side").inner_text()
    watched.assert_clean()
    _shot(watched, "lt-compare")


def test_run_and_list_pages(lt_served: tuple[HeronProcess, int, int], watched: Watched) -> None:
    h, run_id, _ = lt_served
    watched.sign_in(h.url, f"/loadtests/{run_id}")
    charts = _charts(watched)
    assert all(c["series"] == 1 and c["canvas"] == 1 for c in charts), charts
    assert watched.page.locator("#lt-endpoints tbody tr").count() == 3
    _shot(watched, "lt-run")
    watched.page.goto(h.url + "/loadtests")
    watched.page.wait_for_selector("body[data-ready]")
    assert watched.page.locator("#lt-runs tbody tr").count() == 2
    _shot(watched, "lt-runs")
    watched.assert_clean()
