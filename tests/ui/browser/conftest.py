"""Browser tests: a real ``heron serve`` subprocess driven by Playwright and Debian's Chromium.

No browser is downloaded: Chromium comes from the system (``/usr/bin/chromium``, or
``HERON_CHROMIUM``). Screenshots go to ``test-artifacts/ui/``; with
``HERON_UPDATE_SCREENSHOTS=1`` they are also copied to ``docs/screenshots/``.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import HeronProcess, make_heron
from tests.ui import seed as seed_data

ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = ROOT / "test-artifacts" / "ui"
DOCS_SHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = os.environ.get("HERON_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--disable-dev-shm-usage",
]
PASSWORD = "browser-test-password"


def post_traces(h: HeronProcess, bodies: list[dict[str, Any]]) -> None:
    with httpx.Client(base_url=h.url, headers={"x-heron-key": h.key}, timeout=60) as client:
        for body in bodies:
            r = client.post("/v1/traces", json=body)
            assert r.status_code == 200, r.text


@dataclass
class Served:
    heron: HeronProcess
    seed: seed_data.Seed

    @property
    def url(self) -> str:
        return self.heron.url


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A signed-out server holding tests/ui/seed.py's data, relative to the wall clock."""
    h = make_heron(tmp_path_factory.mktemp("browser"), HERON_ADMIN_PASSWORD=PASSWORD).start()
    try:
        data = seed_data.build(time.time_ns())
        post_traces(h, data.requests())
        yield Served(h, data)
    finally:
        h.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # Never skip: a missing browser must fail the suite (make test installs Chromium).
    from playwright import sync_api

    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: run `make browser` or set HERON_CHROMIUM")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield b
        finally:
            b.close()


@dataclass
class Watched:
    """A page plus everything it reported: console errors, page errors, dialogs, CSP."""

    page: Any
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def csp_violations(self) -> list[str]:
        return list(self.page.evaluate("window.__cspViolations || []"))

    def assert_clean(self) -> None:
        assert self.dialogs == [], self.dialogs
        assert self.page_errors == [], self.page_errors
        assert self.console_errors == [], self.console_errors
        assert self.csp_violations() == []

    def sign_in(self, base: str, next_path: str = "/") -> None:
        self.page.goto(base + next_path)
        assert "/login" in self.page.url
        self.page.fill("#username", "admin")
        self.page.fill("#password", PASSWORD)
        self.page.click("button[type=submit]")
        self.page.wait_for_selector("body[data-ready]")

    def shot(self, name: str, full_page: bool = False) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        if os.environ.get("HERON_UPDATE_SCREENSHOTS") == "1":
            DOCS_SHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, DOCS_SHOTS / path.name)
        return path


# Recorded in the page before any of its scripts run: CSP violations would mean that
# markup or a script tried something the policy forbids (inline code, style, sinks).
_WATCH_CSP = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', e => {
  window.__cspViolations.push(e.violatedDirective + ' ' + (e.blockedURI || '') + ' ' + (e.sample || ''));
});
"""


def _watched(browser: Any, **context: Any) -> Iterator[Watched]:
    ctx = browser.new_context(viewport={"width": 1440, "height": 900}, **context)
    page = ctx.new_page()
    page.add_init_script(_WATCH_CSP)
    w = Watched(page)
    page.on("console", lambda m: m.type == "error" and w.console_errors.append(m.text))
    page.on("pageerror", lambda e: w.page_errors.append(str(e)))

    def on_dialog(d: Any) -> None:
        w.dialogs.append(d.message)
        d.dismiss()

    page.on("dialog", on_dialog)
    try:
        yield w
    finally:
        ctx.close()


@pytest.fixture
def watched(browser: Any) -> Iterator[Watched]:
    yield from _watched(browser)


@pytest.fixture
def watched_dark(browser: Any) -> Iterator[Watched]:
    yield from _watched(browser, color_scheme="dark")
