"""Issues, issue detail, status buttons and logs in a real browser against ``heron serve``.

The data file is seeded (tests/server/errors_seed.py, relative to the wall clock) before
the server starts, since only one process may open it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from heron.server.config import Config
from heron.server.store.duckdb_store import DuckDBStore
from tests.conftest import HeronProcess, make_heron
from tests.server import errors_seed
from tests.ui.browser.conftest import PASSWORD, Watched

pytestmark = pytest.mark.e2e


@dataclass
class ErrorsServed:
    heron: HeronProcess
    data: errors_seed.Seed
    ids: dict[str, int]

    @property
    def url(self) -> str:
        return self.heron.url


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ErrorsServed]:
    h = make_heron(tmp_path, HERON_ADMIN_PASSWORD=PASSWORD)
    store = DuckDBStore(Config(data_dir=str(h.data_dir)).db_path, commit_interval_ms=0).start()
    try:
        data = errors_seed.build(time.time_ns())
        ids = errors_seed.insert(store, data)
    finally:
        store.close()
    h.start()
    try:
        yield ErrorsServed(h, data, ids)
    finally:
        h.stop()


def test_issues_list_to_detail_to_trace(served: ErrorsServed, watched: Watched) -> None:
    page = watched.page
    watched.sign_in(served.url, "/issues")
    assert page.locator("#issues tbody tr").count() == 3
    watched.shot("issues")
    page.click("#issues a.issue-title:text-is('ZeroDivisionError: division by zero')")
    page.wait_for_selector(".charts[data-drawn]")
    assert page.url.endswith(f"/issues/{served.ids['zero']}")
    assert page.locator(".chart[data-chart=events] canvas").count() == 1
    # In-app frames are open, library frames collapsed until clicked.
    app = page.locator("#exceptions .exception >> nth=0").locator("li.frame.in-app")
    lib = page.locator("#exceptions .exception >> nth=0").locator("li.frame.lib")
    assert app.locator("ol.src").is_visible()
    assert not lib.locator("ol.src").is_visible()
    lib.locator("summary").click()
    assert lib.locator("ol.src").is_visible()
    assert "avg = total / count" in app.locator("li.cur").inner_text()
    watched.shot("issue", full_page=True)
    page.click("#trace-link")
    page.wait_for_selector("#waterfall[data-ready]")
    assert f"/traces/{served.data.trace_with_logs}" in page.url
    assert page.locator("#trace-log-lines tbody tr").count() == 3
    assert page.locator(".wf-row.sel").count() == 1  # the event's span is selected
    watched.assert_clean()


def test_resolve_and_reopen_with_the_buttons(served: ErrorsServed, watched: Watched) -> None:
    page = watched.page
    iid = served.ids["zero"]
    watched.sign_in(served.url, f"/issues/{iid}")
    page.fill("#resolve-form input[name=release]", "2.1")
    page.click("button[data-action=resolve]")
    page.wait_for_selector("#issue-actions .badge.st-resolved")
    assert page.url.endswith(f"/issues/{iid}")
    assert "Resolved in" in page.locator("#issue-facts").inner_text()
    assert "2.1" in page.locator("#issue-facts").inner_text()
    page.goto(served.url + "/issues?status=resolved")
    page.wait_for_selector("body[data-ready]")
    assert page.locator(f"#issues tr[data-issue='{iid}']").count() == 1
    page.goto(served.url + f"/issues/{iid}")
    page.click("button[data-action=reopen]")
    page.wait_for_selector("#issue-actions .badge.st-open")
    r = served.heron.api(f"/api/v1/issues/{iid}")
    assert r.json()["issue"]["status"] == "open"
    watched.assert_clean()


def test_payloads_in_errors_and_logs_execute_nothing(
    served: ErrorsServed, watched: Watched
) -> None:
    page = watched.page
    watched.sign_in(served.url, "/issues")
    assert (
        page.locator(f'#issues a.issue-title:text-is("{served.data.titles()["xss"]}")').count() == 1
    )
    page.goto(served.url + f"/issues/{served.ids['xss']}")
    page.wait_for_selector(".charts[data-drawn]")
    for details in page.locator("details").all():
        details.locator("summary").first.click()
    text = page.locator("main").inner_text()
    for payload in (
        errors_seed.XSS_TYPE,
        errors_seed.XSS_MESSAGE,
        errors_seed.XSS_FRAME,
        errors_seed.XSS_CRUMB,
        errors_seed.XSS_TAG,
    ):
        assert payload in text, payload
    watched.shot("issue-xss-inert")
    page.goto(served.url + "/logs")
    page.wait_for_selector("body[data-ready]")
    assert errors_seed.XSS_LOG in page.locator("#logs").inner_text()
    assert errors_seed.XSS_FRAME in page.locator("#logs").inner_text()  # the logger's name
    watched.shot("logs")
    assert page.locator("main img, main svg[onload], main iframe").count() == 0
    page.wait_for_timeout(300)  # give any injected handler the chance to fire
    watched.assert_clean()
