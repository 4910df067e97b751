"""Browser traffic for the demo: a headless Chromium shopping on the demo shop's pages.

Real page loads are what fill Heron's RUM views: web vitals, slow resources, the slow
"Add to cart" interaction, JavaScript errors, sessions. A thread drives Chromium through
Playwright (the system's ``chromium``; no browser download) in two contexts — a desktop
and an iPhone-sized one, each with a realistic user agent (Heron drops ``HeadlessChrome``
as a bot) — visiting the list, a product, the cart and the checkout every few seconds.
Each journey ends by leaving the page and closing it, so the SDK's last beacon is sent.
Each device gets a Chromium of its own, started with its user agent: a context's
user-agent override does not reach the beacons Chromium sends after a page unloaded
(those would say ``HeadlessChrome`` and be dropped as a bot's).

Without Playwright or Chromium :meth:`BrowserTraffic.unavailable` says why in one line and
the rest of the demo runs without browser traffic.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import shutil
import threading
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("heron.demo.browser")

CHROMIUM_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-dev-shm-usage"]
STEP_TIMEOUT_MS = 10_000
DECLINED_CARD = "4000000000000002"


@dataclass(frozen=True)
class Device:
    """A browser context's look: what the SDK's user-agent parsing classifies."""

    name: str
    user_agent: str
    viewport: tuple[int, int]
    mobile: bool = False


DESKTOP = Device(
    "desktop",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    (1366, 768),
)
IPHONE = Device(
    "mobile",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    (390, 844),
    mobile=True,
)
DEVICES = (DESKTOP, IPHONE)


def find_chromium() -> str | None:
    """The system's Chromium: ``HERON_CHROMIUM`` when set (even if missing: then there is
    no browser traffic), else a Debian path or ``chromium`` on PATH."""
    chosen = os.environ.get("HERON_CHROMIUM")
    if chosen:
        return chosen
    for path in CHROMIUM_PATHS:
        if os.access(path, os.X_OK):
            return path
    return shutil.which("chromium")


def launch(playwright: Any, executable: str, device: Device) -> Any:
    """A headless Chromium whose every request, beacons included, has ``device``'s UA."""
    return playwright.chromium.launch(
        executable_path=executable,
        args=[*CHROMIUM_ARGS, f"--user-agent={device.user_agent}"],
        # The runner stops us; a terminal's Ctrl-C must not kill Chromium first.
        handle_sigint=False,
        handle_sigterm=False,
        handle_sighup=False,
    )


def new_context(browser: Any, device: Device) -> Any:
    """A browser context that looks like ``device`` (viewport, touch, user agent)."""
    width, height = device.viewport
    ctx = browser.new_context(
        user_agent=device.user_agent,
        viewport={"width": width, "height": height},
        is_mobile=device.mobile,
        has_touch=device.mobile,
        device_scale_factor=3 if device.mobile else 1,
    )
    ctx.set_default_timeout(STEP_TIMEOUT_MS)
    return ctx


class BrowserTraffic:
    """Shops on ``shop_url``'s pages every ``interval_s`` seconds until stopped."""

    def __init__(
        self,
        shop_url: str,
        *,
        interval_s: float = 3.0,
        seed: int | None = None,
        chromium: str | None = None,
    ) -> None:
        self.shop_url = shop_url.rstrip("/")
        self.interval_s = interval_s
        self.rng = random.Random(seed)
        self.journeys = 0
        self.failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-browser", daemon=True)
        self._chromium = chromium if chromium is not None else find_chromium()

    def unavailable(self) -> str | None:
        """Why there can be no browser traffic here, or None."""
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            return "Playwright is not installed (pip install 'heron[demo]')"
        if not self._chromium:
            return "no Chromium found (make browser, or set HERON_CHROMIUM)"
        if not os.access(self._chromium, os.X_OK):
            return f"no Chromium at {self._chromium} (make browser, or set HERON_CHROMIUM)"
        return None

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        from playwright.sync_api import Error, sync_playwright

        try:
            with sync_playwright() as pw:
                browsers: list[Any] = []
                try:
                    for device in DEVICES:
                        browsers.append(launch(pw, self._chromium or "", device))
                    self._loop(
                        [new_context(b, d) for b, d in zip(browsers, DEVICES, strict=True)], Error
                    )
                finally:
                    for b in browsers:
                        with contextlib.suppress(Error):
                            b.close()
        except Exception as e:  # the demo goes on without browser traffic
            if not self._stop.is_set():
                print(f"heron demo: browser traffic stopped: {e}", flush=True)

    def _loop(self, contexts: list[Any], error: type[Exception]) -> None:
        turn = 0
        while not self._stop.is_set():
            ctx = contexts[turn % len(contexts)]
            turn += 1
            try:
                self.journey(ctx)
                self.journeys += 1
            except error as e:
                self.failed += 1
                log.debug("demo browser journey failed: %s", e)
            if self._stop.wait(self.interval_s):
                return

    def journey(self, ctx: Any) -> None:
        """One visit: list → product → add to cart → cart → checkout → coupon (→ order)."""
        page = ctx.new_page()
        try:
            page.goto(f"{self.shop_url}/shop?page={self.rng.randint(1, 3)}", wait_until="load")
            links = page.locator("a.product-link")
            links.nth(self.rng.randrange(links.count())).click()
            page.wait_for_load_state("load")
            with page.expect_response(lambda r: "/products/" in r.url):
                page.click("#add-to-cart")
            page.wait_for_selector("#status:has-text('Added')")
            if self._stop.is_set():
                return
            page.click("#nav-cart")
            page.wait_for_load_state("load")
            page.click("#nav-checkout")
            page.wait_for_load_state("load")
            page.click("#apply-coupon")  # throws a TypeError in the page, on purpose
            if self.rng.random() < 0.3:
                page.fill("#card", DECLINED_CARD)  # a 500 and an unhandled rejection
            with page.expect_response(lambda r: r.url.endswith("/checkout")):
                page.click("#place-order")
            page.wait_for_timeout(200)
        finally:
            # Leaving the page hides it: the SDK sends its last beacon (CLS, INP, ...).
            with contextlib.suppress(Exception):
                page.goto("about:blank")
            page.close()
