"""The alerting and SLO pages in a real browser against ``heron serve``: alerts fired by the
real engine from a rule file on tests/ui/seed.py's data, whose labels carry script and
``<img onerror>`` strings (a service name and a rule label) that must show as text and
never run; the rule's preview chart, a silence from an alert, and an SLO's burn-down.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_heron
from tests.ui import seed as seed_data
from tests.ui.browser.conftest import PASSWORD, Served, Watched, post_traces

pytestmark = pytest.mark.e2e

XSS_LABEL = "<img src=x onerror=alert('label')>"
RULE = "Requests seen"


def rules(path: Path) -> Path:
    path.write_text(
        f"""
[[channel]]
name = "log"
config = {{ type = "log" }}

[[rule]]
name = "{RULE}"
severity = "critical"
interval = "10s"
channels = ["log"]
labels = {{ note = {json.dumps(XSS_LABEL)} }}
condition = {{ kind = "red", figure = "requests", window = "30m", op = ">", threshold = 0 }}
annotations = {{ summary = "{{{{ labels.service }}}} saw {{{{ value }}}} requests" }}
"""
    )
    return path


@pytest.fixture(scope="module")
def alerting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("alerts-browser")
    h = make_heron(
        tmp,
        HERON_ADMIN_PASSWORD=PASSWORD,
        HERON_ALERT_RULES_PATH=str(rules(tmp / "rules.toml")),
        HERON_ALERT_TICK_S="0.5",
    ).start()
    try:
        data = seed_data.build(time.time_ns())
        post_traces(h, data.requests())
        yield Served(h, data)
    finally:
        h.stop()


def wait_for_firing(w: Watched, base: str, timeout: float = 45) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        w.page.goto(base + "/alerts")
        w.page.wait_for_selector("body[data-ready]")
        rows = w.page.locator("#firing tr[data-state=firing]")
        if rows.count() > 0:
            return rows
        time.sleep(1)
    raise AssertionError("no alert fired")


def test_alerts_with_hostile_labels_render_inert(alerting: Served, watched: Watched) -> None:
    base = alerting.url
    watched.sign_in(base, "/alerts")
    rows = wait_for_firing(watched, base)
    texts = rows.all_inner_texts()
    assert any(seed_data.XSS_SERVICE in t for t in texts), texts
    assert all(XSS_LABEL in t for t in texts)
    assert watched.page.locator("main img").count() == 0
    watched.shot("alerts")
    # The rule's page: read-only (it comes from a file), the preview chart drawn.
    watched.page.locator("#firing td.name a").first.click()
    watched.page.wait_for_selector("body[data-ready]")
    assert watched.page.locator("#read-only").count() == 1
    fig = watched.page.locator("figure[data-alert-chart=preview]")
    fig.wait_for()
    watched.page.wait_for_function(
        "document.querySelector('figure[data-alert-chart=preview]').dataset.drawn > 0"
    )
    assert watched.page.locator("figure[data-alert-chart=preview] canvas").count() == 1
    assert "Would have fired at" in watched.page.inner_text("#preview-events")
    watched.shot("alert-rule")
    # Silence the hostile alert from its labels.
    watched.page.goto(base + "/alerts")
    row = watched.page.locator("#firing tr", has_text=seed_data.XSS_SERVICE).first
    row.locator("a.silence-link").click()
    watched.page.wait_for_selector("#spec-json")
    spec = json.loads(watched.page.input_value("#spec-json"))
    assert {"label": "service", "value": seed_data.XSS_SERVICE, "op": "="} in spec["matchers"]
    watched.page.click("#save")
    watched.page.wait_for_selector("#silences tr[data-state=active]")
    assert seed_data.XSS_SERVICE in watched.page.inner_text("#silences")
    watched.page.goto(base + "/alerts")
    silenced = watched.page.locator("#silenced tr", has_text=seed_data.XSS_SERVICE)
    assert silenced.count() == 1
    watched.assert_clean()


def test_slo_page_draws_the_burn_down(alerting: Served, watched: Watched) -> None:
    base = alerting.url
    watched.sign_in(base, "/slos/new")
    spec = {"name": "Frontend availability", "service": "frontend", "objective": 99.0}
    watched.page.fill("#spec-json", json.dumps(spec))
    watched.page.click("#save")
    watched.page.wait_for_selector("#burn-rates")
    watched.page.wait_for_function(
        "document.querySelector('figure[data-alert-chart=burndown]').dataset.drawn > 0"
    )
    assert watched.page.locator("figure[data-alert-chart=burndown] canvas").count() == 1
    assert watched.page.locator("#slo-rules li").count() == 2
    watched.page.goto(base + "/slos")
    assert watched.page.locator("#slos tr[data-slo]").count() == 1
    watched.shot("slo")
    watched.assert_clean()
