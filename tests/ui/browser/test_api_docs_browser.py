"""/docs in real Chromium: Swagger UI from Heron's own static files renders under its CSP."""

from __future__ import annotations

import httpx

from tests.ui.browser.conftest import Served, Watched


def test_swagger_ui_renders_the_api_with_no_csp_violation(served: Served, watched: Watched) -> None:
    page = watched.page
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.goto(served.url + "/docs")
    page.wait_for_selector(".opblock-tag-section", timeout=30_000)
    assert page.locator(".information-container .title").first.inner_text().startswith("Heron")
    assert page.locator(".opblock-summary-path[data-path='/api/v1/services']").count() >= 1
    page.locator(".opblock-summary-path[data-path='/api/v1/services']").first.click()
    page.wait_for_selector(".opblock-body", timeout=10_000)
    watched.shot("api-docs")
    watched.assert_clean()
    assert all(u.startswith(served.url) for u in requested), requested  # no CDN


def test_redoc_is_not_served(served: Served) -> None:
    r = httpx.get(served.url + "/redoc", headers={"Accept": "application/json"}, timeout=10)
    assert r.status_code == 404
